"""``diversity_measure`` and ``class_threshold`` as settings: validated in TrialConfig (so in
spaces, ``--set`` and ``--check``), searchable as a ``choice``, refused in one line by
``study/run.py`` (in-process ``main``, as the scripts are run)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from polychromic.core.config import DIVERSITY_MEASURES, TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.tuning.space import load_space, parse_space
from tests.conftest import load_cli, one_line_error

SPACE: dict[str, Any] = {
    "description": "diversity measure space",
    "settings": {"model": "tiny", "task": "chitchat", "steps": 8, "batch_size": 4,
                 "n_eval_prompts": 4, "n_eval_samples": 10},
    "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
    "objectives": [{"metric": "distinct_classes", "mode": "max"}],
    "scheduler": {"enabled": False},
    "num_trials": 4,
}


def space_with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(SPACE)
    for key, value in changes.items():
        outer, inner = key.split("__")
        raw[outer][inner] = value
    return raw


def test_defaults_and_every_choice_are_valid() -> None:
    cfg = TrialConfig()
    assert cfg.diversity_measure == "semantic" and cfg.class_threshold == 0.8
    for name in DIVERSITY_MEASURES:
        assert TrialConfig.from_dict({"diversity_measure": name}).diversity_measure == name
    assert TrialConfig.from_dict({"class_threshold": 1}).class_threshold == 1.0
    assert TrialConfig.from_dict({"class_threshold": "0.5"}).class_threshold == 0.5


def test_unknown_measure_names_the_field_and_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        TrialConfig.from_dict({"diversity_measure": "bleu"})
    assert info.value.field == "diversity_measure"
    for name in DIVERSITY_MEASURES:
        assert name in info.value.message
    assert "'bleu'" in info.value.message


@pytest.mark.parametrize("value", [0, 0.0, -0.2, 1.01, 2, "nan", "inf"])
def test_class_threshold_outside_0_1_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        TrialConfig.from_dict({"class_threshold": value})
    assert info.value.field == "class_threshold"
    assert "(0, 1]" in info.value.message or "finite" in info.value.message  # nan/inf: _coerce


def test_diversity_measure_can_be_searched_as_a_choice(tmp_path: Path) -> None:
    raw = space_with(params__diversity_measure={"distribution": "choice",
                                                "values": list(DIVERSITY_MEASURES)},
                     settings__class_threshold=0.9)
    raw["points"] = [{"lambda_": 1.0, "diversity_measure": "self_bleu"}]
    space = parse_space(raw, "test.yaml", "test")
    assert space.params["diversity_measure"].values == list(DIVERSITY_MEASURES)
    assert space.baseline()["diversity_measure"] == "semantic"  # the default
    assert space.points == [{"lambda_": 1.0, "diversity_measure": "self_bleu"}]
    for name in DIVERSITY_MEASURES:
        cfg = space.trial_config({"lambda_": 1.0, "diversity_measure": name})
        assert cfg.diversity_measure == name and cfg.class_threshold == 0.9
    dist = space.optuna_distributions()["diversity_measure"]
    assert list(dist.choices) == list(DIVERSITY_MEASURES)
    path = tmp_path / "measures.yaml"  # the same through the file loader
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert load_space(str(path)).params["diversity_measure"].distribution == "choice"


def test_a_bad_choice_or_setting_names_where_it_is() -> None:
    raw = space_with(params__diversity_measure={"distribution": "choice",
                                                "values": ["semantic", "sematic"]})
    with pytest.raises(ConfigError) as info:
        parse_space(raw, "test.yaml", "test")
    assert info.value.field == "params.diversity_measure.values[1]"
    assert "semantic_classes" in info.value.message
    with pytest.raises(ConfigError) as info:
        parse_space(space_with(settings__class_threshold=0), "test.yaml", "test")
    assert info.value.field == "settings.class_threshold"
    with pytest.raises(ConfigError) as info:
        parse_space(SPACE, "test.yaml", "test", {"diversity_measure": "nope"})
    assert info.value.field == "--set diversity_measure"


# --- study/run.py --check: one line, exit 2 ----------------------------------------------------

def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = load_cli("run").main([*argv, "--check"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"settings__diversity_measure": "entropy"}, "settings.diversity_measure",
     ["must be one of", *DIVERSITY_MEASURES]),
    ({"settings__class_threshold": 1.5}, "settings.class_threshold", ["(0, 1]"]),
    ({"settings__class_threshold": 0}, "settings.class_threshold", ["(0, 1]"]),
    ({"params__diversity_measure": {"distribution": "choice", "values": ["semantic", "bleu"]}},
     "params.diversity_measure.values[1]", ["must be one of", "self_bleu"]),
])
def test_check_refuses_bad_values_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              change: dict[str, Any], field: str,
                                              words: list[str]) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space_with(**change), sort_keys=False), encoding="utf-8")
    code, out, err = check(capsys, "--space", str(path))
    line = one_line_error(err)
    assert code == 2, err
    assert line.startswith(f"error: {path}: {field}: "), line
    assert all(w in line for w in words), line
    assert not out.startswith("ok")


@pytest.mark.parametrize(("setting", "field"), [("diversity_measure=entropy", "diversity_measure"),
                                                ("class_threshold=-1", "class_threshold")])
def test_check_refuses_a_bad_set_in_one_line(capsys: pytest.CaptureFixture[str], setting: str,
                                             field: str) -> None:
    code, _, err = check(capsys, "--space", "smoke", "--set", setting)
    assert code == 2
    assert one_line_error(err).startswith(f"error: command line: --set {field}: ")


def test_check_accepts_a_measure_search(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "space.yaml"
    raw = space_with(params__diversity_measure={"distribution": "choice",
                                                "values": list(DIVERSITY_MEASURES)},
                     settings__class_threshold=1.0)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    code, out, err = check(capsys, "--space", str(path), "--set", "diversity_measure=distinct_2")
    assert code == 2 and "--set diversity_measure: is searched" in err  # searched: not --set
    code, out, err = check(capsys, "--space", str(path))
    assert code == 0, err
    assert out.startswith(f"ok: {path}: ") and "distinct_classes (max)" in out
