"""End to end on the tiny model: `study/run.py` runs a real local Ray cluster, Ray Train
trials under Ray Tune with Optuna (SQLite) and W&B (offline), the Ray Data evaluation, and
writes a Parquet leaderboard whose numbers obey the definitions.

The same study carries two injected faults, so one run shows that nothing is lost: the
λ=0.5 trial's Train worker is SIGKILLed at step 3 (it resumes from its step-2 checkpoint and
finishes), and a fourth trial (λ=5) turns its weights into NaN at step 1 (it is recorded as an
error while the study goes on)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from polychromic.store.records import read_jsonl
from tests.conftest import ROOT, TINY_SETTINGS, stop_shared_ray, write_space

# each test runs study/run.py (its own local Ray cluster): never beside the shared one, and slow
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_shared_ray")]

REQUIRED = ["trial_id", "status", "error", "lambda_", "n_generations", "compute_every_n_steps",
            "max_examples_for_diversity", "steps", "final_quality_loss", "mean_diversity_score",
            "mean_diversity_grad_share", "pass@1", "pass@5", "pass@10", "distinct_1", "distinct_2",
            "self_bleu", "semantic_diversity", "quality_mean", "train_seconds",
            "checkpoint_path"]

#: the study's temperature frontier: two temperatures besides TINY_SETTINGS' eval_temperature
#: 1.0, one on each side of it (the default grid's five, pinned by tests/test_space.py, would
#: cost the baseline, each swept Pareto trial and each confirmation baseline two more
#: temperatures' samples and scoring, which no assertion here needs)
FRONTIER = {"frontier_temperatures": [0.5, 1.2]}
GRID = [0.5, 1.0, 1.2]


def run_study(*args: str, timeout: int = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stop_shared_ray()  # module-scoped: set up before the tests' ``no_shared_ray``
    tmp = tmp_path_factory.mktemp("study")
    space = write_space(tmp / "tiny.yaml", num_trials=4, settings={**TINY_SETTINGS, **FRONTIER},
                        points=[{"lambda_": 0.5}, {"lambda_": 2.0}, {"lambda_": 5.0}])
    faults = [{"kind": "kill", "step": 3, "lambda_": 0.5, "marker": str(tmp / "killed")},
              {"kind": "nan", "step": 1, "lambda_": 5.0, "marker": str(tmp / "poisoned")}]
    proc = run_study("--space", str(space), "--storage-path", str(tmp), "--name", "tiny",
                     timeout=900, env={"POLYCHROMIC_FAULT": json.dumps(faults),
                                       "WANDB_MODE": "offline", "WANDB_API_KEY": ""})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "leaderboard:" in proc.stdout
    assert (tmp / "killed").exists() and (tmp / "poisoned").exists()
    (tmp / "stdout.txt").write_text(proc.stdout)  # test_a_quiet_run_prints_trial_events_only
    (tmp / "stderr.txt").write_text(proc.stderr)
    return tmp / "tiny"


def finished_rows(study: Path) -> pd.DataFrame:
    df = pd.read_parquet(study / "leaderboard.parquet")
    return df[df["lambda_"] != 5.0]


def test_a_quiet_run_prints_trial_events_only(finished_study: Path) -> None:
    """Through a pipe (not a terminal) the run prints the log's name, then one plain line per
    trial event (started / retried / finished / failed), a summary and the leaderboard; what
    Ray, Train, Tune and W&B printed is in ``<study>/logs/run.log``."""
    out = (finished_study.parent / "stdout.txt").read_text().splitlines()
    log = finished_study / "logs" / "run.log"
    assert out[0].startswith(f"logs: {log.resolve()} ")
    assert (finished_study.parent / "stderr.txt").read_text() == ""
    events = out[1:out.index("")]  # up to the blank line before the leaderboard
    ids = set(pd.read_parquet(finished_study / "leaderboard.parquet")["trial_id"])
    for tid in ids:
        mine = [e for e in events if f"trial {tid} " in e]
        assert any(" started · " in e for e in mine), (tid, events)
        assert any(" finished in " in e or " failed after " in e for e in mine), (tid, events)
    retried = sum(" will be retried: " in e or " restarted (attempt " in e for e in events)
    assert len(events) == 2 * len(ids) + retried + 1, events  # + the closing summary
    assert events[-1].startswith("study tiny: 4/4 trials done (1 failed), 0 running · ")
    # after the events comes the review's view; nothing of Ray, Train, Tune or W&B is in it
    assert out[len(events) + 2].startswith("study tiny: 4 of 4 trials"), out
    # The whole stdout, view included, is bounded. Issue 22's bar is 60 lines for the smoke
    # study (3 trials, none failed). This study has one more trial, which fails: its 2 event
    # lines, its row in the table and its failure line under the verdicts (4 lines); and each
    # retry of the killed worker's trial adds its 2 event lines (counted in ``retried``).
    # Nothing else may grow it: a verdict is at most a few lines (its frontier clause claims
    # only, tests/test_frontier_review.py), the caption says each fact once.
    assert len(out) <= 60 + 4 + retried, "\n".join(out)
    text = log.read_text()
    assert "Started a local Ray instance" in text  # Ray's driver log
    assert "RayTrainWorker" in text  # a Train worker's output, forwarded to the driver
    assert "Trial status" in text  # Tune's status report
    assert not any(w in "\n".join(out) for w in ("RayTrainWorker", "Trial status", "wandb"))


def test_verbose_prints_rays_output_as_it_comes(finished_study: Path, tmp_path: Path) -> None:
    """``--resume -v`` of a finished study (a copy; nothing left to train) prints Ray's and
    Tune's output on the terminal. Without ``-v`` a ``--resume`` prints none of it: the
    resumes of tests/test_resume.py (a third Ray start here would only repeat them), as the
    first run does (test_a_quiet_run_prints_trial_events_only)."""
    import shutil

    shutil.copytree(finished_study, tmp_path / "tiny")
    loud = run_study("--resume", "tiny", "--storage-path", str(tmp_path), "-v",
                     env={"WANDB_MODE": "offline", "WANDB_API_KEY": ""})
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "Started a local Ray instance" in loud.stdout + loud.stderr
    assert not loud.stdout.startswith("logs: ")
    # more than the quiet run's view: Ray's lines come on top of the summary and the table
    quiet = (finished_study.parent / "stdout.txt").read_text().splitlines()
    view = quiet[quiet.index("") + 1:]
    assert len((loud.stdout + loud.stderr).splitlines()) > len(view)


def test_leaderboard_has_every_trial_and_column(finished_study: Path) -> None:
    df = pd.read_parquet(finished_study / "leaderboard.parquet")
    assert set(REQUIRED) <= set(df.columns)
    assert len(df) == 4
    assert sorted(df["lambda_"].round(6)) == [0.0, 0.5, 2.0, 5.0]
    ok = finished_rows(finished_study)
    assert (ok["status"] == "finished").all(), ok[["status", "error"]]
    assert (ok["steps"] == TINY_SETTINGS["steps"]).all()


def test_metrics_are_finite_bounded_and_monotone(finished_study: Path) -> None:
    df = finished_rows(finished_study)
    for col in ["pass@1", "pass@5", "pass@10", "distinct_1", "distinct_2", "self_bleu",
                "semantic_diversity", "quality_mean"]:
        vals = df[col].astype(float)
        assert vals.map(math.isfinite).all(), (col, vals.tolist())
        assert ((vals >= 0) & (vals <= 1)).all(), (col, vals.tolist())
    assert (df["pass@1"] <= df["pass@5"] + 1e-12).all()
    assert (df["pass@5"] <= df["pass@10"] + 1e-12).all()


def test_grad_share_is_zero_for_baseline_and_positive_otherwise(finished_study: Path) -> None:
    df = finished_rows(finished_study).set_index("lambda_")
    assert df.loc[0.0, "mean_diversity_grad_share"] == 0.0
    assert df.loc[0.5, "mean_diversity_grad_share"] > 0
    assert df.loc[2.0, "mean_diversity_grad_share"] > df.loc[0.5, "mean_diversity_grad_share"] * 0.5


def test_deltas_against_the_baseline_have_confidence_intervals(finished_study: Path) -> None:
    df = finished_rows(finished_study).set_index("lambda_")
    for lam in (0.5, 2.0):
        row = df.loc[lam]
        for m in ("pass@10", "distinct_2", "semantic_diversity"):
            d, lo, hi = row[f"delta_{m}"], row[f"delta_{m}_ci_low"], row[f"delta_{m}_ci_high"]
            assert lo <= d <= hi, (lam, m, lo, d, hi)
            # float32 embeddings: the bootstrap's float64 sums agree to ~1e-8
            assert d == pytest.approx(row[m] - df.loc[0.0, m], abs=1e-6)
            assert bool(row[f"significant_unadjusted_{m}"]) == (lo > 0 or hi < 0)
    assert math.isnan(df.loc[0.0, "delta_pass@10"])


def test_killed_worker_resumed_from_its_checkpoint(finished_study: Path) -> None:
    row = finished_rows(finished_study).set_index("lambda_").loc[0.5]
    history = read_jsonl(finished_study / "trials" / row["trial_id"] / "history.jsonl")
    # reported step 2, killed at step 3, restored from the step-2 checkpoint, reported step 4:
    # the step count continued instead of starting over
    assert [h["step"] for h in history] == [2, 4], history
    assert history[-1]["restored_from_step"] == 2
    assert "restored_from_step" not in history[0]


def test_nan_trial_is_an_error_and_the_study_goes_on(finished_study: Path) -> None:
    df = pd.read_parquet(finished_study / "leaderboard.parquet").set_index("lambda_")
    bad = df.loc[5.0]
    assert bad["status"] == "error"
    assert "non-finite" in bad["error"]
    assert math.isnan(bad["pass@1"])


def test_every_trial_records_where_its_time_went(finished_study: Path) -> None:
    """``phase_seconds`` in every trial's result.json (polychromic.core.phases): every phase
    of a finished trial measured, none negative but ``other``, all adding up to the trial's
    wall time; the NaN trial never reached the evaluation, so those phases are unknown."""
    from polychromic.core.phases import EVALUATION_PHASES, PHASES
    from polychromic.store.records import read_json

    df = pd.read_parquet(finished_study / "leaderboard.parquet").set_index("lambda_")
    for lam, row in df.iterrows():
        result = read_json(finished_study / "trials" / row["trial_id"] / "result.json")
        phases = result["phase_seconds"]
        assert set(phases) == set(PHASES), (lam, phases)  # result.json sorts its keys
        known = [v for v in phases.values() if v is not None]
        assert sum(known) == pytest.approx(result["wall_seconds"], abs=1e-6), (lam, phases)
        assert all(phases[k] >= 0 for k in PHASES if k != "other" and phases[k] is not None)
        assert phases["worker_start"] > 0 and phases["model_load"] > 0, (lam, phases)
        assert phases["training"] > 0, (lam, phases)
        if lam == 5.0:  # poisoned at step 1: an error before any evaluation
            assert all(phases[k] is None for k in EVALUATION_PHASES), phases
            continue
        assert all(phases[k] > 0 for k in EVALUATION_PHASES), (lam, phases)
        assert (phases["headroom"] > 0) == (lam == 0.0), (lam, phases)  # the baseline's sets
        # eval_placement auto on a 2-CPU cluster: one generation actor would sample, so the
        # Train worker evaluates the model it trained (no actor start-up)
        assert result["evaluated_in"] == "worker", (lam, result)


def test_every_trial_is_a_wandb_run(finished_study: Path) -> None:
    df = pd.read_parquet(finished_study / "leaderboard.parquet")
    runs = list((finished_study / "wandb").glob("offline-run-*"))
    for tid in df["trial_id"]:
        assert any(r.name.endswith(tid) for r in runs), (tid, runs)


def test_every_sample_and_checkpoint_is_on_disk(finished_study: Path) -> None:
    df = finished_rows(finished_study)
    for _, row in df.iterrows():
        tdir = finished_study / "trials" / row["trial_id"]
        gens = pd.read_parquet(tdir / "generations.parquet")
        n = TINY_SETTINGS["n_eval_prompts"] * TINY_SETTINGS["n_eval_samples"]
        assert len(gens) == n
        assert {"prompt_id", "sample_index", "text", "quality_score", "passed"} <= set(gens.columns)
        assert (Path(row["checkpoint_path"]) / "adapter" / "adapter_config.json").is_file()


def test_optuna_study_is_in_sqlite(finished_study: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{finished_study / 'optuna.db'}")
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # the λ=0 baseline is run outside Optuna (it lies outside the log-uniform range)
    assert sorted(round(t.params["lambda_"], 6) for t in done) == [0.5, 2.0]
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [round(t.params["lambda_"], 6) for t in failed] == [5.0]
    assert len(study.trials) == 3


def test_rescore_reproduces_the_leaderboard_then_applies_a_new_threshold(
        finished_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``study/score.py`` through ``main(argv)`` in this process (rescoring starts no Ray; a
    fresh interpreter per call would only add its imports)."""
    import shutil

    from tests.conftest import load_cli

    score = load_cli("score")
    copy = tmp_path / "copy"
    shutil.copytree(finished_study, copy)
    before = pd.read_parquet(copy / "leaderboard.parquet").set_index("trial_id").sort_index()
    before = before[before["lambda_"] != 5.0]
    assert score.main([str(copy)]) == 0, capsys.readouterr().err[-2000:]
    after = pd.read_parquet(copy / "leaderboard.parquet").set_index("trial_id").sort_index()
    after = after.loc[before.index]
    numeric = [c for c in before.columns if c.startswith(("pass@", "delta_", "distinct_",
                                                          "self_bleu", "semantic_", "quality_"))]
    pd.testing.assert_frame_equal(before[numeric], after[numeric])

    assert score.main([str(copy), "--threshold", "0"]) == 0, capsys.readouterr().err[-2000:]
    lenient = finished_rows(copy)
    assert (lenient["pass@1"] == 1.0).all()  # every scored sample passes at threshold 0
    assert lenient["warnings"].str.contains("ceiling").all()


def test_multi_objective_leaderboard_marks_the_pareto_front(
        finished_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``study/leaderboard.py --format json`` through ``main(argv)`` in this process."""
    import json

    from tests.conftest import load_cli

    capsys.readouterr()
    assert load_cli("leaderboard").main([str(finished_study), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["trials"] if isinstance(rows, dict) else rows
    assert len(rows) == 4
    failed = [r for r in rows if r["status"] != "finished"]
    assert len(failed) == 1 and not failed[0]["pareto"]  # no objective values: never optimal
    rows = [r for r in rows if r["status"] == "finished"]
    pts = {r["trial_id"]: (r["semantic_diversity"], r["pass@10"]) for r in rows}

    def dominated(a: tuple[float, float]) -> bool:
        return any(b[0] >= a[0] and b[1] >= a[1] and b != a for b in pts.values())

    for r in rows:
        assert bool(r["pareto"]) == (not dominated(pts[r["trial_id"]])), r["trial_id"]
    assert any(r["pareto"] for r in rows)


def test_baseline_headroom_mde_and_verdict(finished_study: Path) -> None:
    """The baseline stores its floor and ceiling sets; every diversity metric has a floor,
    a ceiling and a headroom; every finished trial has an MDE per delta and a verdict line."""
    from polychromic.core import columns
    from polychromic.stats.headroom import CEILING, FLOOR

    df = pd.read_parquet(finished_study / "leaderboard.parquet").set_index("lambda_")
    base_id = df.loc[0.0, "trial_id"]
    sets = pd.read_parquet(finished_study / "trials" / base_id / "headroom.parquet")
    assert sorted(sets["set"].unique()) == [CEILING, FLOOR]
    gens = pd.read_parquet(finished_study / "trials" / base_id / "generations.parquet")
    assert (sets["set"] == FLOOR).sum() == len(gens) == (sets["set"] == CEILING).sum()
    assert df.loc[0.0, "floor_semantic_diversity_per_prompt"] == pytest.approx(0.0, abs=1e-6)
    # identical copies: Self-BLEU 1 for texts of ≥ 4 tokens (shorter ones score less)
    assert df.loc[0.0, "floor_self_bleu_per_prompt"] >= df.loc[0.0, "self_bleu_per_prompt"]
    for m in columns.HEADLINE_DIVERSITY:
        assert math.isfinite(df.loc[0.0, f"ceiling_{m}"]), m
        assert math.isfinite(df.loc[0.0, f"headroom_{m}"]), m
    for lam in (0.5, 2.0):
        row = df.loc[lam]
        for m in ("pass@1", "quality_mean", *columns.HEADLINE_DIVERSITY, "mean_tokens"):
            assert row[f"mde_{m}"] >= 0, (lam, m)
        assert row["verdict"].startswith(f"λ={lam:g}: quality "), row["verdict"]
        assert " | diversity " in row["verdict"]
    assert df.loc[0.0, "verdict"] == ""


def test_baseline_frontier_and_the_pareto_trials_curves(finished_study: Path) -> None:
    """Issue 20: the λ=0 baseline's final adapter sampled at every frontier temperature (the
    space's ``frontier_temperatures`` plus eval_temperature) in its evaluation pass, and,
    with the default ``frontier_for: pareto``, the study's Pareto-optimal trials swept after
    the study; the other finished trials have none. Same prompts, sample counts and seeds at
    every T."""
    from polychromic.stats.ranking import pareto_mask

    df = pd.read_parquet(finished_study / "leaderboard.parquet")
    done = df[df["status"].eq("finished")].reset_index(drop=True)
    grid = GRID  # TINY_SETTINGS' eval_temperature 1.0 is in it
    optimal = set(done.loc[pareto_mask(done, [("semantic_diversity", "max"),
                                              ("pass@10", "max")]), "trial_id"])
    base = str(done.loc[done["lambda_"] == 0.0, "trial_id"].iloc[0])
    assert optimal  # at least one trial to sweep
    for tid in done["trial_id"]:
        tdir = finished_study / "trials" / tid
        has = (tdir / "frontier.parquet").exists()
        assert has == (tid == base or tid in optimal), tid
        if not has:
            continue
        front = pd.read_parquet(tdir / "frontier.parquet")
        gens = pd.read_parquet(tdir / "generations.parquet")
        assert sorted(set(front["eval_temperature"])) == grid, tid
        assert list(front.columns) == list(gens.columns), tid
        parts = {t: g.reset_index(drop=True) for t, g in front.groupby("eval_temperature")}
        for t, g in parts.items():
            assert g[["prompt_id", "sample_index", "eval_seed"]].equals(
                parts[1.0][["prompt_id", "sample_index", "eval_seed"]]), (tid, t)
        assert parts[1.0]["text"].tolist() == gens["text"].tolist(), tid


def test_plan_reports_headroom_mde_and_cost_and_trains_nothing(tmp_path: Path) -> None:
    """`--plan` on the smoke space (tiny model): base-model evaluation through the Ray Data
    pipeline, the floor/ceiling sets, timed steps, and the report; no trial, no Tune state."""
    storage = tmp_path / "studies"
    # the tiny model's 8 new tokens (TINY_SETTINGS) rather than smoke's 24: three temperatures'
    # samples are generated, and nothing here reads their length
    proc = run_study("--space", "smoke", "--set", "model=tiny", "--set", "n_eval_prompts=4",
                     "--set", "eval_max_new_tokens=8", "--set", "frontier_temperatures=0.5,1.5",
                     "--plan", "--storage-path", str(storage), "--no-wandb", timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    # quiet like a study: the first line names the log, the second what runs; Ray's, Ray
    # Data's and the timing task's output is in the log, none on the terminal
    root = storage / "smoke"
    log = root / "logs" / "plan.log"
    assert out.startswith(f"logs: {log.resolve()} ("), out[:300]
    assert out.splitlines()[1].startswith("plan: the base model at 3 temperature(s) (0.5, 1, "
                                          "1.5) × 4 prompts × 10 samples"), out[:300]
    assert proc.stderr.strip() == "", proc.stderr[-3000:]
    assert "ray" in log.read_text().lower()
    for text in ("headroom", "MDE", "semantic_diversity_per_prompt", "cost: 3 trials × 4 steps",
                 "GPU-hours", "SFT step", "diversity step"):
        assert text in out, text
    plan = json.loads((root / "plan" / "plan.json").read_text())
    rows = {r["metric"]: r for r in plan["metrics"]}
    assert rows["semantic_diversity_per_prompt"]["floor"] == pytest.approx(0.0, abs=1e-6)
    assert rows["semantic_diversity_per_prompt"]["mde"] > 0
    assert plan["sft_seconds"] > 0 and plan["diversity_seconds"] > 0
    assert len(pd.read_parquet(root / "plan" / "generations.parquet")) == 4 * 10
    # the base model's temperature frontier: one pass, every temperature, headroom at each
    grid = sorted({0.5, 1.5, plan["eval_temperature"]})
    assert "temperature frontier of the base model" in out
    assert [row["temperature"] for row in plan["frontier"]] == grid
    for row in plan["frontier"]:
        assert 0 <= row["metrics"]["pass@1"] <= 1
        assert math.isfinite(row["headroom"]["semantic_diversity_per_prompt"]), row
    front = pd.read_parquet(root / "plan" / "frontier.parquet")
    assert sorted(set(front["eval_temperature"])) == grid and len(front) == len(grid) * 4 * 10
    assert not (root / "trials").exists() and not (root / "tune").exists()
    assert not (root / "optuna.db").exists()


def test_confirm_refuses_bad_input_before_anything_starts(
        finished_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process through ``main(argv)`` (a refusal starts nothing, so no subprocess is needed:
    each would cost seconds of imports)."""
    from tests.conftest import load_cli, one_line_error

    confirm = load_cli("confirm")
    df = pd.read_parquet(finished_study / "leaderboard.parquet").set_index("lambda_")
    where = ["--storage-path", str(finished_study.parent)]
    cases = [
        (["--trial", df.loc[0.5, "trial_id"], "--seeds", "1"], "--seeds"),
        (["--trial", "nosuchtrial"], "--trial"),
        (["--trial", df.loc[5.0, "trial_id"]], "--trial"),   # failed (NaN) trial
        (["--trial", df.loc[0.0, "trial_id"]], "--trial"),   # the baseline itself
        (["--trial", df.loc[0.5, "trial_id"], "--prompts", "0"], "--prompts"),
        (["--trial", df.loc[0.5, "trial_id"], "--prompts", "10000000"], "--prompts"),
    ]
    before = sorted(p.name for p in (finished_study / "trials").iterdir())
    for args, field in cases:
        capsys.readouterr()
        assert confirm.main([finished_study.name, *args, *where]) == 2, args
        line = one_line_error(capsys.readouterr().err)
        assert field in line, (args, line)
    assert sorted(p.name for p in (finished_study / "trials").iterdir()) == before
    assert not list(finished_study.glob("confirm-*"))


def test_confirm_on_fresh_prompts_and_seeds_survives_a_killed_driver(
        finished_study: Path, tmp_path: Path) -> None:
    """2 seed pairs × (λ=0.5, baseline) on the confirmation split; the driver is SIGKILLed
    after the first run finished; the same command resumes and every run happens once."""
    import signal
    import time

    from polychromic.store.records import read_json

    df = pd.read_parquet(finished_study / "leaderboard.parquet").set_index("lambda_")
    chosen, base = df.loc[0.5, "trial_id"], df.loc[0.0, "trial_id"]
    cmd = [sys.executable, str(ROOT / "study" / "confirm.py"), finished_study.name, "--trial",
           chosen, "--seeds", "2", "--prompts", "4", "--storage-path",
           str(finished_study.parent)]

    def runs() -> list[Path]:
        return [t for t in (finished_study / "trials").iterdir()
                if (read_json(t / "config.json") or {}).get("role") == "confirm"]

    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            if any((t / "result.json").exists() for t in runs()):
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("no confirmation run finished in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    first = {t.name: read_json(t / "result.json") for t in runs() if (t / "result.json").exists()}
    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "fresh prompts" in resumed.stdout

    live = [t for t in runs() if (read_json(t / "status.json") or {}).get("status") != "abandoned"]
    configs = [read_json(t / "config.json") for t in live]
    # exactly one run per (seed, arm), all finished
    keys = sorted((c["seed"], c["lambda_"]) for c in configs)
    seed0 = int(read_json(finished_study / "trials" / chosen / "config.json")["seed"])
    assert keys == [(seed0 + 1, 0.0), (seed0 + 1, 0.5), (seed0 + 2, 0.0), (seed0 + 2, 0.5)]
    assert all(read_json(t / "result.json")["status"] == "finished" for t in live)
    for tid, before in first.items():  # finished before the kill: not run again
        carrier = (read_json(finished_study / "trials" / tid / "status.json") or {}).get(
            "adopted_by") or tid
        assert read_json(finished_study / "trials" / carrier / "result.json")[
            "wall_seconds"] == before["wall_seconds"]
    # confirmation prompts: the validation split, disjoint from the selection prompts
    selection = set(pd.read_parquet(finished_study / "trials" / base / "generations.parquet")
                    ["prompt_id"])
    for t in live:
        fresh = set(pd.read_parquet(t / "generations.parquet")["prompt_id"])
        assert len(fresh) == 4 and not fresh & selection
        # each seed's baseline re-runs the temperature frontier on the fresh prompts
        lam = read_json(t / "config.json")["lambda_"]
        assert (t / "frontier.parquet").exists() == (lam == 0.0), t.name
        if lam == 0.0:
            front = pd.read_parquet(t / "frontier.parquet")
            assert set(front["prompt_id"]) == fresh
            assert len(front) == len(GRID) * len(pd.read_parquet(t / "generations.parquet"))
    board = pd.read_parquet(finished_study / "leaderboard.parquet")
    assert len(board) == 4  # confirmation runs are not leaderboard rows
    row = board.set_index("lambda_").loc[0.5]
    assert row["confirm_seeds"] == 2 and row["confirm_prompts"] == 4
    for m in ("pass@1", "semantic_diversity_per_prompt", "mean_tokens"):
        lo, d, hi = (row[f"confirm_delta_{m}_ci_low"], row[f"confirm_delta_{m}"],
                     row[f"confirm_delta_{m}_ci_high"])
        assert lo <= d <= hi, (m, lo, d, hi)
    assert row["confirmation"].startswith("2 seed pair(s) × 4 fresh prompts")
    # the gains against each pair's own baseline frontier, through the two-level bootstrap
    assert row["confirm_frontier"] == "T = 0.5, 1, 1.2 in each of 2 seed pair(s)"
    for y, x in (("semantic_diversity_per_prompt", "pass@1"),
                 ("pass@1", "semantic_diversity_per_prompt")):
        c = f"confirm_frontier_gain_{y}_at_{x}"
        if math.isfinite(row[c]):  # an interval wherever the resamples define the gain
            assert 0 < row[f"confirm_frontier_defined_{y}_at_{x}"] <= 1
            if math.isfinite(row[f"{c}_ci_low"]):
                assert row[f"{c}_ci_low"] <= row[c] <= row[f"{c}_ci_high"], c
        else:  # outside a pair's range: said, never an extrapolated number
            assert row[f"confirm_frontier_range_{y}_at_{x}"].startswith("outside"), c
    lo, d, hi = (row[f"confirm_delta_pass@1_vs_best_T{s}"] for s in ("_ci_low", "", "_ci_high"))
    assert lo <= d <= hi
