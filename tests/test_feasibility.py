"""A trial the cluster can never place is refused in one line before any trial starts
(polychromic.tuning.feasibility), instead of waiting forever; ``--check`` says which
quantization the trials load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.tuning.feasibility import NodeType, autoscaler_node_types, check_feasible
from tests.conftest import ROOT, one_line_error

CPU_NODE = {"CPU": 2.0}
GPU_TYPE = {"gpu_a10g_spot": NodeType({"CPU": 8.0, "GPU": 1.0}, 4, "g5.2xlarge", 24.0)}
#: settings whose estimate (540 GiB per GPU worker) no GPU holds
TOO_BIG = ["model=Qwen/Qwen3-8B", "quantize=none", "max_length=4096", "batch_size=16"]


def cfg(**settings: object) -> TrialConfig:
    return TrialConfig.from_dict({"model": "tiny", **settings})


def refused(config: TrialConfig, nodes: list[dict[str, float]],
            types: dict[str, NodeType] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        check_feasible(config, nodes, types or {}, 0.25, "space.yaml")
    return err.value


def ray_up_head(home: Path) -> dict[str, str]:
    """An environment whose home holds the bootstrap config ``ray up cluster.yaml`` writes on
    the head (the cluster.yaml node types, as the autoscaler reads them)."""
    import os

    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text((ROOT / "cluster.yaml").read_text())
    return {**os.environ, "HOME": str(home)}


def run_check(capsys: pytest.CaptureFixture[str], *sets: str) -> subprocess.CompletedProcess:
    """``study/run.py --space smoke --set S… --check`` through ``main(argv)`` in this process
    (``--check`` starts nothing, so a fresh interpreter would only add its imports)."""
    from tests.conftest import load_cli

    args = ["--space", "smoke", *[a for s in sets for a in ("--set", s)], "--check"]
    capsys.readouterr()
    try:
        code = load_cli("run").main(args)
    except SystemExit as done:  # the parser exits like argparse
        code = done.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["study/run.py", *args], code, out, err)


def test_gpu_request_on_a_gpu_less_cluster_is_refused() -> None:
    err = refused(cfg(use_gpu=True), [CPU_NODE])
    assert err.field == "use_gpu"
    assert "needs 1 GPU per worker; this cluster has none" in err.message


def test_node_types_that_add_gpus_make_it_pending_not_refused() -> None:
    note = check_feasible(cfg(use_gpu=True), [{"CPU": 4.0}], GPU_TYPE, 0.25, "space.yaml")
    assert "gpu_a10g_spot" in note and "pending" in note
    # auto use_gpu on a cluster whose types add GPUs: a GPU worker, also pending
    assert check_feasible(cfg(), [{"CPU": 4.0}], GPU_TYPE, 0.25, "s") != ""
    assert check_feasible(cfg(), [CPU_NODE], {}, 0.25, "s") == ""  # a CPU trial fits now


@pytest.mark.parametrize("settings, nodes, field", [
    ({"cpus_per_worker": 4}, [CPU_NODE, CPU_NODE], "cpus_per_worker"),  # no node has 4
    ({"num_workers": 4}, [CPU_NODE], "num_workers"),  # 2 slots of 1 CPU
    ({"num_workers": 2}, [CPU_NODE], "cpus_per_worker"),  # 2 workers + the driver > 2 CPUs
])
def test_requests_no_node_can_hold_are_refused(settings: dict, nodes: list, field: str) -> None:
    assert refused(cfg(**settings), nodes).field == field


def test_a_custom_resource_no_node_has_yet_is_pending_not_refused() -> None:
    """Nodes started by hand with ``ray start --resources`` may join after the study starts
    (tests/test_multinode.py starts its worker node so)."""
    note = check_feasible(cfg(worker_resources={"trainer_node": 1}), [CPU_NODE], {}, 0.25, "s")
    assert "trainer_node" in note and "pending" in note
    assert check_feasible(cfg(worker_resources={"trainer_node": 1}),
                          [CPU_NODE, {"CPU": 3.0, "trainer_node": 2.0}], {}, 0.25, "s") == ""


def test_autoscaler_node_types_are_read_from_the_bootstrap_config(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text((ROOT / "cluster.yaml").read_text())
    types = autoscaler_node_types(tmp_path / "c.yaml")
    # the head is never added, and a type with max_workers: 0 (the on-demand fallback) neither
    assert set(types) == {"gpu_a10g_spot"}, types
    assert types["gpu_a10g_spot"] == NodeType({"CPU": 8.0, "GPU": 1.0}, 4, "g5.2xlarge", 24.0)
    assert autoscaler_node_types(tmp_path / "missing.yaml") == {}


def test_run_refuses_use_gpu_on_this_gpu_less_machine_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: use_gpu=true is feasible here")
    run = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", "smoke",
                          "--set", "use_gpu=true", "--set", "model=tiny", "--storage-path",
                          str(tmp_path), "--no-wandb"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    line = one_line_error(run.stderr)
    assert "use_gpu: each trial needs 1 GPU per worker; this cluster has none" in line
    assert not list(tmp_path.glob("*/trials/*")), "a trial started"
    # a refused start leaves no study behind: no study.json (its log stays, beside nothing)
    assert not list(tmp_path.glob("*/study.json")), "a refused study left its study.json"


def test_check_says_which_quantization_the_trials_load(
        capsys: pytest.CaptureFixture[str]) -> None:
    def check(*sets: str) -> str:
        run = run_check(capsys, *sets)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert "quantization: every trial loads the base 4bit (NF4" in check("quantize=4bit")
    auto = check("quantize=auto")
    assert "quantize=auto → 4bit (NF4) on a CUDA worker, none (fp32) on a CPU worker" in auto
    assert "--set quantize=4bit forces NF4" in auto


def test_memory_estimate_parts_for_qwen3_8b_at_4bit() -> None:
    """The worked example of docs/cluster.md: 8.19 B parameters; NF4 linear weights ≈ 0.51
    byte each plus fp32 embeddings and LM head (prepare_model_for_kbit_training upcasts them)."""
    from polychromic.models.memory import GIB, KNOWN_SHAPES, estimate

    shape = KNOWN_SHAPES["Qwen/Qwen3-8B"]
    assert shape.parameters() == pytest.approx(8.19e9, rel=0.01)
    settings = cfg(batch_size=8, max_length=128).to_dict()
    gpu = estimate(shape, settings, "nf4", cuda=True)
    embed = 2 * 151936 * 4096 * 4 / GIB
    assert gpu["weights"] == pytest.approx(embed + (8.19e9 - 2 * 151936 * 4096) * 0.508 / GIB,
                                           rel=0.02)
    # the diversity forward over 16 rollouts × 160 tokens dominates: without gradient
    # checkpointing it does not fit a 24 GiB A10G, with it it does
    ckpt = estimate(shape, settings, "nf4", cuda=True, gradient_checkpointing=True)
    assert ckpt["training_worker"] < 24 < gpu["training_worker"] < 40
    assert estimate(shape, settings, "bf16", cuda=True)["weights"] > 2 * gpu["weights"] - embed


def test_check_prints_the_memory_plan_and_does_not_refuse_for_cluster_yaml_alone(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Off a ``ray up`` head, cluster.yaml is what to rent, not the cluster the study runs on
    (a local one, or ``--address``): --check says which of its GPU types hold the estimate and
    refuses nothing for them; the joined cluster is checked when the study starts."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no bootstrap config: not a `ray up` head
    ok = run_check(capsys, "model=tiny", "quantize=4bit")
    assert ok.returncode == 0, ok.stderr
    assert "per training worker on a GPU at nf4:" in ok.stdout
    assert "fits cluster.yaml worker types: gpu_a10g_spot (g5.2xlarge, 24 GiB)" in ok.stdout
    big = run_check(capsys, *TOO_BIG)
    assert big.returncode == 0, big.stderr
    assert "fits cluster.yaml worker types: none (a study on a cluster launched from it would " \
        "be refused)" in big.stdout
    assert "checked against its nodes and autoscaler node types when the study" in big.stdout


def test_check_on_a_ray_up_head_refuses_a_too_small_gpu(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """On the head of a cluster launched from cluster.yaml, its node types are the cluster the
    study runs on: a GPU space none of their GPUs holds is refused in one line."""
    monkeypatch.setenv("HOME", ray_up_head(tmp_path)["HOME"])
    ok = run_check(capsys, "model=tiny", "quantize=4bit")
    assert ok.returncode == 0, ok.stderr
    assert "checked against this `ray up` cluster's node types" in ok.stdout
    big = run_check(capsys, *TOO_BIG)
    assert big.returncode == 2 and not big.stdout, big.stdout
    line = one_line_error(big.stderr)
    assert "model: estimated 540 GiB per training worker (Qwen/Qwen3-8B at none)" in line
    assert "exceeds the 24 GiB of g5.2xlarge (gpu_a10g_spot" in line


@pytest.mark.parametrize("accelerator, fits", [("A10G", False), ("H200", True),
                                               ("SOMETHING-NEW", True)])
def test_gpus_now_are_sized_by_their_accelerator_type(accelerator: str, fits: bool) -> None:
    """A GPU node now is sized by Ray's ``accelerator_type:…`` resource (24 GiB A10G, 141 GiB
    H200); an unknown model is taken to hold the request. Qwen3-8B at 4-bit without gradient
    checkpointing needs ~30 GiB at these settings, 14 with it."""
    config = cfg(model="Qwen/Qwen3-8B", quantize="4bit", batch_size=8, max_length=128,
                 use_gpu=True)
    node = {"CPU": 8.0, "GPU": 1.0, f"accelerator_type:{accelerator}": 1.0}
    if fits:
        assert check_feasible(config, [node], {}, 0.25, "s") == ""
        return
    err = refused(config, [node])
    assert err.field == "model"
    assert "exceeds the 24 GiB of A10G (a node now" in err.message
    assert "--set gradient_checkpointing=true: 14 GiB" in err.message


def test_too_small_gpus_now_leave_the_trial_pending_on_a_node_type_that_holds_it() -> None:
    config = cfg(model="Qwen/Qwen3-8B", quantize="4bit", batch_size=8, max_length=128)
    small = {"CPU": 8.0, "GPU": 1.0, "accelerator_type:A10G": 1.0}
    big = {"gpu_h200": NodeType({"CPU": 16.0, "GPU": 1.0}, 2, "p5e.48xlarge", 141.0)}
    note = check_feasible(config, [small], {**GPU_TYPE, **big}, 0.25, "s")
    assert "pending" in note and "gpu_h200" in note and "gpu_a10g_spot" not in note


def test_a_connected_cluster_is_checked_by_its_own_gpus(own_ray) -> None:
    """Through a real local cluster whose node says it has one A10G (Ray takes ``num_gpus``
    and an ``accelerator_type`` resource as given): what ``refuse_infeasible`` reads from
    ``ray.nodes()`` sizes the refusal, with no cluster.yaml involved. (HOME is not moved to
    hide a bootstrap config: Ray reads its auth token from there.)"""
    from polychromic.tuning.feasibility import refuse_infeasible

    assert autoscaler_node_types() == {}, "this machine is a `ray up` head"
    own_ray(num_cpus=2, num_gpus=1, resources={"accelerator_type:A10G": 1.0},
            include_dashboard=False)
    assert refuse_infeasible(cfg(use_gpu=True), 0.25, "space.yaml") == ""
    with pytest.raises(ConfigError) as err:
        refuse_infeasible(cfg(model="Qwen/Qwen3-8B", quantize="4bit", batch_size=8,
                              max_length=128), 0.25, "space.yaml")
    assert "exceeds the 24 GiB of A10G (a node now" in err.value.message


def test_a_worker_whose_memory_estimate_no_node_holds_is_refused() -> None:
    """The Train worker requests the estimate's memory (polychromic.models.memory.ray_memory);
    a cluster whose nodes all report less Ray memory can never place it: refused, one line.
    A node type that declares no memory (Ray measures it at start) is taken to hold it."""
    from polychromic.tuning.feasibility import worker_bundle

    big = cfg(model="smollm2-135m-instruct")  # defaults: ~7 GiB per CPU worker
    need = worker_bundle(big, 0.0)["memory"]
    assert need > 4 * 2**30
    err = refused(big, [{"CPU": 4.0, "memory": need / 2}])
    assert err.field == "model"
    assert "GiB of memory" in err.message and "smollm2-135m-instruct" in err.message
    assert check_feasible(big, [{"CPU": 4.0, "memory": 2 * need}], {}, 0.25, "s") == ""
    note = check_feasible(big, [{"CPU": 4.0, "memory": need / 2}],
                          {"cpu_big": NodeType({"CPU": 8.0}, 2)}, 0.25, "s")
    assert "cpu_big" in note and "pending" in note and "GiB" in note


def test_run_on_a_ray_up_head_refuses_a_too_small_gpu_before_ray_starts(tmp_path: Path) -> None:
    """Not only ``--check``: starting the study on a ``ray up`` head refuses it in the same one
    line, exit 2, with nothing started or written (no study folder, no Ray)."""
    out = tmp_path / "studies"
    out.mkdir()
    run = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", "smoke",
                          *[a for s in TOO_BIG for a in ("--set", s)], "--storage-path",
                          str(out), "--no-wandb"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=ray_up_head(tmp_path / "home"))
    assert run.returncode == 2, run.stdout + run.stderr
    line = one_line_error(run.stderr)
    assert "model: estimated" in line and "exceeds the 24 GiB of g5.2xlarge" in line
    assert list(out.iterdir()) == []


def test_a_local_run_is_refused_by_this_machine_not_by_cluster_yaml(tmp_path: Path) -> None:
    """A local run of a space cluster.yaml's GPUs cannot hold runs on this machine's nodes: it
    is refused (or not) by what they hold — here its CPU worker's memory request, which no node
    of a 2-core test machine has — never by the g5.2xlarge of a cluster it does not run on."""
    assert autoscaler_node_types() == {}, "this machine is a `ray up` head"
    out = tmp_path / "studies"
    run = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", "smoke",
                          *[a for s in TOO_BIG for a in ("--set", s)], "--set", "use_gpu=false",
                          "--storage-path", str(out), "--no-wandb"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    line = one_line_error(run.stderr)
    assert "g5.2xlarge" not in line
    assert "model: each Train worker requests" in line and "GiB of memory" in line
    assert not list(out.glob("*/trials/*")), "a trial started"
    assert not list(out.glob("*/study.json")), "a refused study left its study.json"


@pytest.mark.parametrize("quantize", ["4bit", "8bit", "none", "auto"])
def test_what_a_quantize_setting_loads_has_one_owner(quantize: str) -> None:
    """--check's lines, the memory requests and the model card all take what a ``quantize``
    setting loads from polychromic.models.memory.loaded_as; the card, which has no device,
    says ``unknown`` for ``auto`` (it depended on the device) unless the record says."""
    from polychromic.export.card import trained_quantization
    from polychromic.models.memory import loaded_as

    card = trained_quantization({"config": {"quantize": quantize}})
    if quantize == "auto":
        assert card == "unknown"
        assert (loaded_as("auto", cuda=True), loaded_as("auto", cuda=False)) == ("nf4", "none")
    else:
        assert card == loaded_as(quantize, cuda=False) == loaded_as(quantize, cuda=True)
    assert trained_quantization({"metrics": {"quantization": "nf4"},
                                 "config": {"quantize": quantize}}) == "nf4"
