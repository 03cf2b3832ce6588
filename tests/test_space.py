"""Search spaces in-process: every shipped space loads, the schema's semantics (baseline first,
complete points, ``--set``, ``resources``, pass@k that evaluation really reports), and a
two-objective space is accepted by Ray's OptunaSearch as it is built in polychromic/tuning/runner.py.

The command-line behaviour (exit status, one-line errors, nothing started) is in
test_run_cli.py."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from polychromic.core.errors import ConfigError
from polychromic.store import saved_space
from polychromic.store.saved_space import shipped_spaces
from polychromic.tuning import space as S
from polychromic.tuning.space import Space, load_space, parse_space

SHIPPED = ("smoke", "lambda_wide", "lambda_narrow", "full")
SETTINGS = {"model": "tiny", "task": "chitchat", "steps": 8, "batch_size": 4,
            "n_eval_prompts": 4, "n_eval_samples": 10}


def space_dict(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "description": "test space",
        "settings": dict(SETTINGS),
        "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
        "objectives": [{"metric": "semantic_diversity", "mode": "max"}],
        "scheduler": {"enabled": False},
        "num_trials": 4,
    }
    base.update(copy.deepcopy(extra))
    return base


def parse(raw: Any, overrides: dict[str, Any] | None = None) -> Space:
    return parse_space(raw, "test.yaml", "test", overrides)


def refused(raw: Any, overrides: dict[str, Any] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(raw, overrides)
    return info.value


# --- shipped spaces ---------------------------------------------------------------------------

def test_the_shipped_spaces_are_the_documented_ones() -> None:
    spaces = shipped_spaces()
    assert set(SHIPPED) <= set(spaces)
    for name, desc in spaces.items():
        assert desc and "\n" not in desc, name
        assert name in (Path(__file__).resolve().parent.parent / "docs" /
                        "search_spaces.md").read_text(encoding="utf-8"), f"{name} is not documented"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_loads_with_baseline_first(name: str) -> None:
    space = load_space(name)
    assert space.name == name and space.num_trials >= 1 + len(space.points)
    base = space.baseline()
    assert base["lambda_"] == 0.0
    assert space.trial_config(base).lambda_ == 0.0
    for point in space.points:  # complete and inside the distributions
        assert set(point) == set(space.params)
        assert all(space.params[k].contains(v) for k, v in point.items())
        assert space.trial_config(point).lambda_ > 0
    assert space.optuna_distributions().keys() == space.params.keys()


@pytest.mark.parametrize("name", ("lambda_wide", "lambda_narrow", "full"))
def test_gpu_spaces_follow_the_brief(name: str) -> None:
    space = load_space(name)
    cfg = space.trial_config(space.baseline())
    assert cfg.model == "smollm2-135m-instruct"
    assert 200 <= cfg.steps <= 1000
    assert cfg.n_eval_prompts >= 64 and cfg.n_eval_samples == 10
    assert space.scheduler["enabled"] and space.scheduler["grace_period"] < cfg.steps
    assert space.scheduler["grace_period"] % cfg.report_every == 0  # ASHA sees its rungs
    lam = space.params["lambda_"]
    assert lam.distribution == "log_uniform"
    if name != "lambda_narrow":
        assert (lam.low, lam.high) == (0.01, 10.0)
    if name == "lambda_wide":
        assert set(space.params) == {"lambda_"}


def test_full_is_multi_objective_over_every_knob() -> None:
    space = load_space("full")
    assert space.objectives == [("pass@10", "max"), ("semantic_diversity_per_prompt", "max")]
    p = space.params
    assert set(p) == {"lambda_", "n_generations", "compute_every_n_steps",
                      "max_examples_for_diversity", "lora_r", "learning_rate"}
    assert (p["n_generations"].low, p["n_generations"].high) == (2, 8)
    assert (p["compute_every_n_steps"].low, p["compute_every_n_steps"].high) == (1, 10)
    assert (p["max_examples_for_diversity"].low, p["max_examples_for_diversity"].high) == (2, 16)
    assert p["learning_rate"].distribution == "log_uniform"


def test_set_overrides_a_shipped_space() -> None:
    space = load_space("lambda_wide", {"model": "Qwen/Qwen3-8B", "quantize": "4bit"})
    cfg = space.trial_config(space.baseline())
    assert (cfg.model, cfg.quantize) == ("Qwen/Qwen3-8B", "4bit")


# --- schema semantics -------------------------------------------------------------------------

def test_two_objectives_parse_and_build_a_multi_objective_optuna_search() -> None:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from polychromic.tuning.search import BaselineFirst

    space = parse(space_dict(
        params={"lambda_": {"distribution": "log_uniform", "low": 0.01, "high": 10},
                "n_generations": {"distribution": "int", "low": 2, "high": 6},
                "lora_r": {"distribution": "choice", "values": [8, 16]}},
        points=[{"lambda_": 1.0}],
        objectives=[{"metric": "pass@10", "mode": "max"},
                    {"metric": "semantic_diversity_per_prompt", "mode": "max"}],
        sampler="tpe"))
    assert space.objectives == [("pass@10", "max"), ("semantic_diversity_per_prompt", "max")]
    assert space.points == [{"lambda_": 1.0, "n_generations": 4, "lora_r": 16}]
    for sampler in (optuna.samplers.TPESampler(seed=0, multivariate=True),
                    optuna.samplers.NSGAIISampler(seed=0)):
        inner = OptunaSearch(space=space.optuna_distributions(),
                             metric=["pass@10", "semantic_diversity_per_prompt"],
                             mode=["max", "max"], points_to_evaluate=space.points,
                             sampler=sampler)
        searcher = BaselineFirst(inner, space.baseline())
        assert searcher.suggest("t0")["lambda_"] == 0.0  # baseline, never shown to Optuna
        assert searcher.suggest("t1") == space.points[0]
        searcher.on_trial_complete("t0", {"pass@10": 0.5, "semantic_diversity_per_prompt": 0.2})
        searcher.on_trial_complete("t1", {"pass@10": 0.6, "semantic_diversity_per_prompt": 0.3})
        third = searcher.suggest("t2")
        assert 0.01 <= third["lambda_"] <= 10 and 2 <= third["n_generations"] <= 6
        trials = inner._ot_study.get_trials()
        assert [t.params["lambda_"] for t in trials][:1] == [1.0]
        assert trials[0].values == [0.6, 0.3] and len(inner._ot_study.directions) == 2


def test_pass_at_k_objectives_are_the_ones_evaluation_reports() -> None:
    from polychromic.metrics.aggregate import PASS_KS

    assert PASS_KS == S.PASS_KS
    ok = parse(space_dict(objectives=[{"metric": "pass@5", "mode": "max"}],
                          settings={**SETTINGS, "n_eval_samples": 5}))
    assert ok.objectives == [("pass@5", "max")]
    parse(space_dict(objectives=[{"metric": "pass@7", "mode": "max"}],
                     settings={**SETTINGS, "n_eval_samples": 7}))  # k = n is reported
    for metric, n in (("pass@3", 10), ("pass@10", 5), ("pass@11", 10)):
        err = refused(space_dict(objectives=[{"metric": metric, "mode": "max"}],
                                 settings={**SETTINGS, "n_eval_samples": n}))
        assert err.field == "objectives[0].metric" and "not reported" in err.message


def test_a_training_metric_is_not_an_objective_but_can_drive_asha() -> None:
    err = refused(space_dict(objectives=[{"metric": "poly_score", "mode": "max"}]))
    assert err.field == "objectives[0].metric" and "scheduler.metric" in err.message
    assert parse(space_dict(scheduler={"metric": "quality_loss", "mode": "min",
                                       "grace_period": 2})).scheduler["metric"] == "quality_loss"


def test_points_are_completed_with_baseline_values_and_checked() -> None:
    raw = space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10},
                             "n_generations": {"distribution": "int", "low": 2, "high": 8,
                                               "baseline": 3}},
                     points=[{"lambda_": 2}, {"lambda_": 0.5, "n_generations": 6.0}])
    space = parse(raw)
    assert space.points == [{"lambda_": 2.0, "n_generations": 3},
                            {"lambda_": 0.5, "n_generations": 6}]
    assert space.baseline() == {"lambda_": 0.0, "n_generations": 3}
    err = refused(space_dict(points=[{"lambda_": 0}]))
    assert err.field == "points[0].lambda_" and "baseline runs first" in err.message
    err = refused(space_dict(points=[{"lambda_": 1, "n_generations": 4}]))
    assert err.field == "points[0].n_generations"
    # a parameter whose default lies outside its range must be given in every point
    err = refused(space_dict(params={
        "lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10},
        "lora_r": {"distribution": "choice", "values": [32, 64]}}, points=[{"lambda_": 1}]))
    assert err.field == "points[0].lora_r" and "baseline" in err.message


def test_resources_block_maps_onto_settings_and_can_be_set() -> None:
    space = parse(space_dict(resources={"num_workers": 2, "cpus_per_worker": 0.5,
                                        "use_gpu": "auto"}))
    cfg = space.trial_config(space.baseline())
    assert (cfg.num_workers, cfg.cpus_per_worker, cfg.use_gpu) == (2, 0.5, None)
    assert parse(space_dict(resources={"num_workers": 2}),
                 {"num_workers": 4}).trial_config({}).num_workers == 4
    # 3 workers cannot split an effective batch of 4 equally: refused, naming the field
    with pytest.raises(ConfigError, match="num_workers.*effective batch"):
        parse(space_dict(resources={"num_workers": 2}), {"num_workers": 3})
    assert refused(space_dict(resources={"gpus": 1})).field == "resources.gpus"
    err = refused(space_dict(resources={"num_workers": 2},
                             settings={**SETTINGS, "num_workers": 1}))
    assert err.field == "resources.num_workers"
    assert refused(space_dict(resources={"num_workers": 0})).field == "resources.num_workers"


def test_set_errors_name_the_command_line() -> None:
    err = refused(space_dict(), {"quantise": "4bit"})
    assert (err.source, err.field) == ("command line", "--set quantise")
    assert "did you mean 'quantize'" in err.message
    err = refused(space_dict(), {"lambda_": 1.0})
    assert (err.source, err.field) == ("command line", "--set lambda_")
    err = refused(space_dict(), {"n_generations": 1})
    assert (err.source, err.field) == ("command line", "--set n_generations")
    err = refused(space_dict(), {"model": "./no/such/model"})
    assert (err.source, err.field) == ("command line", "--set model")
    err = refused(space_dict(), {"task": "nope"})
    assert (err.source, err.field) == ("command line", "--set task")


def test_numbers_written_like_1e_minus_3_are_numbers() -> None:
    # PyYAML reads `1e-3` (no dot) as a string; bounds and points accept it anyway.
    space = parse(space_dict(params={"learning_rate": {"distribution": "log_uniform",
                                                       "low": "1e-5", "high": "1e-3"},
                                     "lambda_": {"distribution": "uniform", "low": 0,
                                                 "high": 2}},
                             points=[{"learning_rate": "1e-4", "lambda_": 1}]))
    assert space.params["learning_rate"].low == 1e-5
    assert math.isclose(space.points[0]["learning_rate"], 1e-4)


@pytest.mark.parametrize(("raw", "field"), [
    ([1, 2], "(top level)"),
    (None, "(top level)"),
    ("text", "(top level)"),
    (space_dict(params={"lambda_": {"distribution": "gaussian", "low": 0.1, "high": 1}}),
     "params.lambda_.distribution"),
    (space_dict(params={"lambda": {"distribution": "uniform", "low": 0.1, "high": 1}}),
     "params.lambda"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": 2, "high": 1}}),
     "params.lambda_.low"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": 1, "high": 1}}),
     "params.lambda_.low"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": -1, "high": 1}}),
     "params.lambda_.low"),
    (space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0, "high": 1}}),
     "params.lambda_.low"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": 0, "high": "x"}}),
     "params.lambda_.high"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": 0.1}}),
     "params.lambda_.high"),
    (space_dict(params={"lambda_": {"distribution": "uniform", "low": 0.1, "high": 1,
                                    "step": 2}}), "params.lambda_.step"),
    (space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 1},
                        "n_generations": {"distribution": "int", "low": 1, "high": 4}}),
     "params.n_generations.low"),
    (space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 1},
                        "n_generations": {"distribution": "int", "low": 2.5, "high": 4}}),
     "params.n_generations.low"),
    (space_dict(settings={**SETTINGS, "n_generations": 1}), "settings.n_generations"),
    (space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 1},
                        "max_examples_for_diversity": {"distribution": "int", "low": 0,
                                                       "high": 4}}),
     "params.max_examples_for_diversity.low"),
    (space_dict(params={"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 1},
                        "max_examples_for_diversity": {"distribution": "int", "low": 1,
                                                       "high": 16}}),
     "params.max_examples_for_diversity.high"),  # > batch_size: wasted search budget
    (space_dict(settings={**SETTINGS, "max_examples_for_diversity": 0}),
     "settings.max_examples_for_diversity"),
    (space_dict(params={"lambda_": {"distribution": "choice", "values": []}}),
     "params.lambda_.values"),
    (space_dict(params={"lambda_": {"distribution": "choice", "values": [0.1, [1]]}}),
     "params.lambda_.values[1]"),
    (space_dict(objectives=[{"metric": "accuracy", "mode": "max"}]), "objectives[0].metric"),
    (space_dict(objectives=[{"metric": "pass@10", "mode": "up"}]), "objectives[0].mode"),
    (space_dict(objectives=[{"metric": "pass@10", "direction": "maximize"}]),
     "objectives[0].direction"),
    (space_dict(objectives=[{"metric": "pass@10", "mode": "max"}] * 2),
     "objectives[1].metric"),
    (space_dict(objectives=[]), "objectives"),
    (space_dict(objectives=None), "objectives"),
    (space_dict(settings={**SETTINGS, "quantise": "4bit"}), "settings.quantise"),
    (space_dict(settings={**SETTINGS, "steps": 0}), "settings.steps"),
    (space_dict(settings={**SETTINGS, "model": "not a model"}), "settings.model"),
    (space_dict(settings={**SETTINGS, "task": "nope"}), "settings.task"),
    (space_dict(settings={**SETTINGS, "lambda_": 1.0}), "params.lambda_"),
    (space_dict(scheduler={"metric": "pass@10"}), "scheduler.metric"),
    (space_dict(scheduler={"grace_period": 8}), "scheduler.grace_period"),
    (space_dict(scheduler={"reduction_factor": 1}), "scheduler.reduction_factor"),
    (space_dict(scheduler={"patience": 1}), "scheduler.patience"),
    (space_dict(num_trials=0), "num_trials"),
    (space_dict(num_trials=1, points=[{"lambda_": 1}]), "num_trials"),
    (space_dict(params={}), "params"),
    (space_dict(sampler="random"), "sampler"),
    (space_dict(max_concurrent_trials=-1), "max_concurrent_trials"),
    (space_dict(trials=3), "trials"),
    (space_dict(description="two\nlines"), "description"),
    (space_dict(points={"lambda_": 1}), "points"),
    (space_dict(points=[{"lambda_": 20}]), "points[0].lambda_"),
    (space_dict(points=[{"lambda_": 1, "lora_r": 8}]), "points[0].lora_r"),
])
def test_malformed_spaces_are_refused_naming_the_field(raw: Any, field: str) -> None:
    err = refused(raw)
    assert err.field == field, str(err)
    assert err.source == "test.yaml"
    assert "\n" not in str(err)


# --- the lenient reader (review, the --space listing) ------------------------------------------


def test_read_saved_space_reads_the_file_as_written_without_validating(tmp_path: Path) -> None:
    path = tmp_path / "saved.yaml"
    # a model and a task this machine does not have: load_space refuses it, review must not
    path.write_text("description: |-\n  two  words\nsettings: {model: ./gone, task: nope}\n"
                    "objectives: [{metric: pass@1, mode: max}, {metric: anything, mode: min}]\n")
    saved = saved_space.read_saved_space(str(path))
    assert saved == saved_space.SavedSpace("two words", [("pass@1", "max"), ("anything", "min")])
    with pytest.raises(ConfigError):
        load_space(str(path))
    path.write_text("objectives: [{metric: pass@1, mode: up}]\n")
    assert saved_space.read_saved_space(path) == saved_space.SavedSpace("", None)
    path.write_text("[1, 2]\n")
    assert saved_space.read_saved_space(path) == saved_space.SavedSpace("", None)


@pytest.mark.parametrize("content", ["a: &x 1\nb: *x\n", "a: 1\na: 2\n", "{{{", b"\xff"],
                         ids=["alias", "duplicate-key", "not-yaml", "not-utf8"])
def test_read_saved_space_is_none_for_an_unreadable_file(tmp_path: Path,
                                                         content: str | bytes) -> None:
    path = tmp_path / "saved.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert saved_space.read_saved_space(path) is None
    assert saved_space.read_saved_space(tmp_path / "gone.yaml") is None
    assert saved_space.read_saved_space(tmp_path) is None  # a folder
    assert saved_space.read_saved_space("a\0b") is None


def test_frontier_settings_default_turn_off_and_add_the_eval_temperature() -> None:
    """The baseline's temperature frontier (issue 20): the default grid plus the space's
    ``eval_temperature``, ``[]`` turns it off, ``--set`` takes ``0.5,1.5``; searching it is
    refused (it holds for the whole study)."""
    base = parse(space_dict()).trial_config({})
    assert base.frontier_for == "pareto"
    assert base.frontier_grid() == [0.5, 0.7, 0.85, 1.0, 1.2]  # eval_temperature 1.0 is in it
    own = parse(space_dict(settings={**SETTINGS, "eval_temperature": 0.6,
                                     "frontier_temperatures": [1.2, 0.4]}))
    assert own.trial_config({}).frontier_grid() == [0.4, 0.6, 1.2]
    off = parse(space_dict(settings={**SETTINGS, "frontier_temperatures": []}))
    assert off.trial_config({}).frontier_grid() == []
    cli = parse(space_dict(), {"frontier_temperatures": "0.5,1.5", "frontier_for": "all"})
    assert cli.trial_config({}).frontier_temperatures == [0.5, 1.5]
    assert cli.trial_config({}).frontier_for == "all"
    err = refused(space_dict(params={"frontier_temperatures": {
        "distribution": "choice", "values": [0.5, 0.7]}, "lambda_": {
        "distribution": "log_uniform", "low": 0.1, "high": 10.0}}))
    assert err.field == "params.frontier_temperatures" and "study-wide" in err.message
