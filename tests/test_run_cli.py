"""``study/run.py`` as a real subprocess: every bad input is refused before Ray starts (exit 2,
one line ``error: <file>: <field>: <what>`` on stderr, no traceback, well under 10 s, no study
folder), ``--space``/``--help`` list the shipped spaces, and every shipped space passes
``--check``.

The bad-input runs go through the real path (no ``--check``): if validation ever let one
through, the run would start Ray; the test then fails on the exit status, the time and the
study folder, and the whole process group is killed. The ``--check`` runs, which can start
nothing, call ``main(argv)`` in this process (``check``): the same code without paying for a
fresh interpreter and its torch import each time."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("smoke", "lambda_wide", "lambda_narrow", "full", "demo")
LIMIT_S = 10.0
#: a valid space on the tiny test model; each case below breaks exactly one thing
VALID: dict[str, Any] = {
    "description": "valid tiny space (the base of the bad-input cases)",
    "settings": {"model": "tiny", "task": "chitchat", "steps": 2, "batch_size": 2,
                 "report_every": 1, "n_generations": 2, "compute_every_n_steps": 1,
                 "max_examples_for_diversity": 1, "max_new_tokens": 4, "n_eval_prompts": 2,
                 "n_eval_samples": 10, "eval_max_new_tokens": 4, "eval_batch_prompts": 2,
                 "max_failures": 0},
    "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
    "objectives": [{"metric": "semantic_diversity", "mode": "max"}],
    "scheduler": {"enabled": False},
    "num_trials": 2,
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_cli(*args: str, timeout: float = 120) -> Run:
    """``python study/run.py ARGS`` from the repo root; on timeout the whole process group
    (Ray included, if a bug let it start) is killed."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "study/run.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"study/run.py {' '.join(args)} still running after {timeout} s:\n{err[-2000:]}")
    return Run(proc.returncode, out, err, time.monotonic() - t0)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """``study/run.py ARGS --check`` in this process, through ``main(argv)``."""
    from tests.conftest import load_cli

    capsys.readouterr()
    t0 = time.monotonic()
    code = load_cli("run").main([*args, "--check"])
    out, err = capsys.readouterr()
    return Run(code, out, err, time.monotonic() - t0)


def write(path: Path, raw: Any) -> Path:
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False),
                    encoding="utf-8")
    return path


def with_(**changes: Any) -> dict[str, Any]:
    """VALID with top-level keys replaced (``None`` deletes) and ``settings__x`` /
    ``params__x`` replacing one entry of those mappings (searching ``x`` un-fixes it)."""
    raw = copy.deepcopy(VALID)
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__", 1)
            raw[outer][inner] = value
            if outer == "params":
                raw["settings"].pop(inner, None)
        elif value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return raw


def assert_refused(run: Run, source: str, field: str, storage: Path,
                   limit_s: float = LIMIT_S) -> str:
    """Exit 2, exactly one stderr line ``error: <source>: <field>: ...``, fast, nothing made."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert len(lines) == 1, run.stderr
    line = lines[0]
    assert line.startswith(f"error: {source}: {field}: "), line
    assert len(line) > len(f"error: {source}: {field}: ") + 3, line  # says what is wrong
    assert "Traceback" not in run.stderr + run.stdout
    assert run.seconds < limit_s, f"{run.seconds:.1f} s: {line}"
    assert not (storage / "bad" / "tune").exists()
    assert not storage.exists() or not any(storage.iterdir()), list(storage.rglob("*"))
    return line


# (case id, YAML document or text, field named in the error)
BAD_SPACES: list[tuple[str, Any, str]] = [
    ("not-a-mapping-list", "- lambda_\n- 1\n", "(top level)"),
    ("not-a-mapping-scalar", "just some text\n", "(top level)"),
    ("empty-file", "", "(top level)"),
    ("invalid-yaml", "params: {lambda_: [1, 2\n", "(yaml)"),
    ("unknown-top-level-key", with_(trials=3), "trials"),
    ("unknown-distribution",
     with_(params__lambda_={"distribution": "normal", "low": 0.1, "high": 1}),
     "params.lambda_.distribution"),
    ("unknown-parameter",
     with_(params__lamda={"distribution": "uniform", "low": 0.1, "high": 1}), "params.lamda"),
    ("low-above-high", with_(params__lambda_={"distribution": "uniform", "low": 2, "high": 1}),
     "params.lambda_.low"),
    ("low-equals-high",
     with_(params__lambda_={"distribution": "log_uniform", "low": 1, "high": 1}),
     "params.lambda_.low"),
    ("negative-lambda-bound",
     with_(params__lambda_={"distribution": "uniform", "low": -0.5, "high": 1}),
     "params.lambda_.low"),
    ("log-uniform-lambda-bound-zero",
     with_(params__lambda_={"distribution": "log_uniform", "low": 0, "high": 10}),
     "params.lambda_.low"),
    ("log-uniform-lambda-bound-negative",
     with_(params__lambda_={"distribution": "log_uniform", "low": -1, "high": 10}),
     "params.lambda_.low"),
    ("n-generations-below-2-searched",
     with_(params__n_generations={"distribution": "int", "low": 1, "high": 4}),
     "params.n_generations.low"),
    ("n-generations-below-2-fixed", with_(settings__n_generations=1), "settings.n_generations"),
    ("max-examples-below-1-searched",
     with_(params__max_examples_for_diversity={"distribution": "int", "low": 0, "high": 2}),
     "params.max_examples_for_diversity.low"),
    ("max-examples-below-1-fixed", with_(settings__max_examples_for_diversity=0),
     "settings.max_examples_for_diversity"),
    ("objective-not-reported", with_(objectives=[{"metric": "accuracy", "mode": "max"}]),
     "objectives[0].metric"),
    ("objective-is-a-training-metric",
     with_(objectives=[{"metric": "poly_score", "mode": "max"}]), "objectives[0].metric"),
    ("objective-pass-at-k-above-samples",
     with_(objectives=[{"metric": "pass@20", "mode": "max"}]), "objectives[0].metric"),
    ("second-objective-not-reported",
     with_(objectives=[{"metric": "pass@10", "mode": "max"},
                       {"metric": "diversity", "mode": "max"}]), "objectives[1].metric"),
    ("objective-bad-mode", with_(objectives=[{"metric": "pass@10", "mode": "maximum"}]),
     "objectives[0].mode"),
    ("objectives-missing", with_(objectives=None), "objectives"),
    ("unknown-setting", with_(settings__quantise="4bit"), "settings.quantise"),
    ("scheduler-metric-not-reported", with_(scheduler={"metric": "pass@10"}), "scheduler.metric"),
    ("point-outside-range", with_(points=[{"lambda_": 0}]), "points[0].lambda_"),
    ("unknown-sampler", with_(sampler="cmaes"), "sampler"),
    ("bad-resources", with_(resources={"gpus": 1}), "resources.gpus"),
]


@pytest.mark.parametrize(("raw", "field"), [c[1:] for c in BAD_SPACES],
                         ids=[c[0] for c in BAD_SPACES])
def test_bad_space_is_refused_in_one_line_before_ray(tmp_path: Path, raw: Any,
                                                     field: str) -> None:
    space = write(tmp_path / "space.yaml", raw)
    storage = tmp_path / "studies"
    run = run_cli("--space", str(space), "--storage-path", str(storage), "--name", "bad",
                  "--no-wandb")
    assert_refused(run, str(space), field, storage)


# (case id, extra arguments, field named in the error) — problems on the command line
BAD_ARGS: list[tuple[str, list[str], str]] = [
    ("unknown-space-name", ["--space", "no_such_space"], "--space"),
    ("missing-space-file", ["--space", "no/such/space.yaml"], "--space"),
    ("set-unknown-key", ["--space", "smoke", "--set", "quantise=4bit"], "--set quantise"),
    ("set-searched-parameter", ["--space", "smoke", "--set", "lambda_=1"], "--set lambda_"),
    ("set-bad-value", ["--space", "smoke", "--set", "n_generations=1"], "--set n_generations"),
    ("set-not-key-value", ["--space", "smoke", "--set", "quantize"], "--set"),
    ("unknown-option", ["--space", "smoke", "--bogus"], "arguments"),
    ("no-space", [], "--space"),
    ("resume-missing-study", ["--resume", "nothing_here"], "--resume"),
    ("plan-with-resume", ["--resume", "smoke", "--plan"], "--plan"),
    ("set-confirm-role", ["--space", "smoke", "--set", "role=confirm"], "--set role"),
    ("plan-negative-price", ["--space", "smoke", "--plan", "--gpu-hour-price", "-1"],
     "--gpu-hour-price"),
    ("plan-nan-price", ["--space", "smoke", "--plan", "--gpu-hour-price", "nan"],
     "--gpu-hour-price"),
    ("plan-inf-price", ["--space", "smoke", "--plan", "--gpu-hour-price", "inf"],
     "--gpu-hour-price"),
    ("plan-bad-diversity-measure", ["--space", "smoke", "--plan", "--set",
                                    "diversity_measure=colour"], "--set diversity_measure"),
]


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in BAD_ARGS],
                         ids=[c[0] for c in BAD_ARGS])
def test_bad_command_line_is_refused_in_one_line_before_ray(tmp_path: Path, args: list[str],
                                                            field: str) -> None:
    storage = tmp_path / "studies"
    run = run_cli(*args, "--storage-path", str(storage), "--name", "bad", "--no-wandb")
    line = assert_refused(run, "command line", field, storage)
    if "no_such_space" in args:
        assert "smoke" in line  # an unknown name lists the shipped ones


def test_bad_model_path_is_refused_in_one_line(tmp_path: Path) -> None:
    # Checking a model name imports torch (seconds), so this is not held to LIMIT_S on a
    # loaded CI machine; it is still refused before Ray with one line.
    storage = tmp_path / "studies"
    run = run_cli("--space", "smoke", "--set", "model=./no/such/model", "--storage-path",
                  str(storage), "--no-wandb")
    assert_refused(run, "command line", "--set model", storage, limit_s=60.0)


def test_valid_base_space_passes_check(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The bad cases above fail because of their one change, not because the base is bad."""
    space = write(tmp_path / "space.yaml", VALID)
    run = check(capsys, "--space", str(space))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok: ")


@pytest.mark.parametrize("flag", [["--space"], ["--help"]])
def test_space_without_value_and_help_list_the_shipped_spaces(flag: list[str]) -> None:
    from polychromic.store.saved_space import shipped_spaces

    run = run_cli(*flag)
    assert run.returncode == 0, run.stderr
    assert run.seconds < LIMIT_S
    for name, desc in shipped_spaces().items():
        assert any(line.split() and line.split()[0] == name and desc in line
                   for line in run.stdout.splitlines()), (name, run.stdout)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_passes_check(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = check(capsys, "--space", name)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"ok: {ROOT / 'search_spaces' / name}.yaml: ")


def test_check_accepts_the_documented_set_example(capsys: pytest.CaptureFixture[str]) -> None:
    run = check(capsys, "--space", "lambda_wide", "--set", "model=Qwen/Qwen3-8B", "--set",
                "quantize=4bit", "--set", "gradient_checkpointing=true")
    assert run.returncode == 0, run.stderr


def test_plan_table_columns_never_touch() -> None:
    """``--plan``'s metric table: a name longer than the usual column (the effective metrics)
    widens it, and a percentage of 100 or more prints as digits, not 1.2e+02 (seen on the
    smoke plan: ``±0.131.2e+02%``)."""
    import math

    from polychromic.tuning.plan import report_lines

    nan = math.nan
    metrics = [
        {"metric": "pass@1", "value": 0.3625, "floor": nan, "ceiling": nan, "headroom": nan,
         "mde": 0.189, "mde_relative": 52.1},
        {"metric": "effective_semantic_diversity_per_prompt", "value": 0.102, "floor": 0.0,
         "ceiling": 0.901, "headroom": 0.887, "mde": 0.126, "mde_relative": 123.4},
        {"metric": "distinct_classes", "value": 1.0, "floor": 1.0, "ceiling": 10.0,
         "headroom": 1.0, "mde": 0.0, "mde_relative": 0.0},
    ]
    plan = {"space": "s.yaml", "model": "tiny", "task": "chitchat", "eval_prompts": 8,
            "eval_samples": 80, "metrics": metrics, "frontier": [], "num_trials": 3, "steps": 4,
            "sft_seconds": 1.0, "diversity_seconds": 6.0, "eval_seconds": 100.0,
            "device": "cpu", "gpu_hour_price": 2.0,
            "cost": {"asha_fraction": 1.0, "concurrency": 1, "cost_usd": 0.0, "gpu_hours": 0.0,
                     "study_seconds": 111.0, "study_seconds_no_asha": 111.0,
                     "wall_seconds": 111.0}}
    lines = report_lines(plan)
    rows = {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in {m["metric"] for m in metrics}}
    assert rows["effective_semantic_diversity_per_prompt"][1:] == [
        "0.102", "0", "0.901", "89%", "±0.13", "123%"]
    assert rows["distinct_classes"][4] == "100%"  # at the floor: all the room there is
    assert rows["pass@1"][-1] == "52%"
    assert not any("e+" in line for line in lines)
