"""A study whose driver is SIGKILLed mid-trial continues with `--resume`: finished trials are
kept, the interrupted one restarts from its checkpoint, the Optuna study is the same, and no
trial is run or counted twice."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pandas as pd
import pytest

from polychromic.store.records import read_json, read_jsonl
from tests.conftest import NO_FRONTIER, TINY_SETTINGS, ResumedStudy, kill_then_resume, write_space

# each test runs study/run.py (its own local Ray cluster): never beside the shared one, and slow
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_shared_ray")]


def _continuer(study: Path, tid: str) -> str:
    """The trial that carries ``tid``'s work: itself, or the trial that adopted it."""
    status = read_json(study / "trials" / tid / "status.json") or {}
    if status.get("status") == "abandoned":
        assert status["adopted_by"], status
        return status["adopted_by"]
    return tid


@pytest.fixture(scope="module")
def after_snapshot(tmp_path_factory: pytest.TempPathFactory) -> ResumedStudy:
    """An fp32 study of λ = 0 and λ = 0.5 (frontier off) whose only Tune snapshot is its first."""
    tmp = tmp_path_factory.mktemp("resumable")
    space = write_space(tmp / "tiny.yaml", num_trials=2, points=[{"lambda_": 0.5}],
                        settings={**TINY_SETTINGS, **NO_FRONTIER})
    return kill_then_resume(tmp, "resumable", space, "3600", held=0.5)


@pytest.mark.parametrize("snapshot_s", ["2", "3600"], ids=["in_snapshot", "after_snapshot"])
def test_driver_killed_mid_trial_resumes_every_trial_exactly_once(
        request: pytest.FixtureRequest, snapshot_s: str) -> None:
    """``2`` (Tune snapshots every 2 s, so the restored experiment knows every trial): the
    4-bit study of tests/test_quantized.py (conftest ``nf4_study``; the resume does not depend
    on the quantization). ``3600``: Tune's only snapshot is its first, so the killed driver
    leaves trials that the restored experiment does not know; their configurations come back
    as new trials that take over their result or checkpoint (polychromic.tuning.resume)."""
    run: ResumedStudy = request.getfixturevalue(
        "nf4_study" if snapshot_s == "2" else "after_snapshot")
    study, interrupted, finished_before = run.study, run.interrupted, run.finished_before
    assert not run.board_at_kill
    # without -v the resume is quiet (its -v twin: test_study_e2e's verbose test): the log's
    # name, the trial events and the summary on stdout, nothing of Ray's, nothing on stderr
    out = run.resumed_stdout.splitlines()
    assert run.resumed_stderr == "", run.resumed_stderr[-3000:]
    assert out[0].startswith("logs: ") and "Started a local Ray instance" not in run.resumed_stdout
    assert any(re.match(rf"study {run.name}: \d+/2 trials done", line) for line in out), out
    searched = 2.0 if snapshot_s == "2" else 0.5

    df = pd.read_parquet(study / "leaderboard.parquet")
    assert len(df) == 2 and df["trial_id"].is_unique, df[["trial_id", "status"]]
    assert sorted(df["lambda_"].round(6)) == [0.0, searched]
    assert (df["status"] == "finished").all(), df[["trial_id", "status", "error"]]
    abandoned = [t.name for t in (study / "trials").iterdir()
                 if (read_json(t / "status.json") or {}).get("status") == "abandoned"]
    if snapshot_s == "3600":
        assert abandoned, "the first driver's snapshot knew every trial: nothing was adopted"
    # finished trials were not run again: their results were written once, before the kill
    for tid, before in finished_before.items():
        carrier = _continuer(study, tid)
        assert carrier in set(df["trial_id"])
        after = read_json(study / "trials" / carrier / "result.json")
        assert after["wall_seconds"] == before["wall_seconds"]
        assert after["pass@1"] == before["pass@1"]
    # the interrupted trial continued from its checkpoint rather than from step 0: every step
    # was trained once (a restart from 0 would report steps 2 and 4 again without
    # restored_from_step; a restore re-reporting its last step carries restored_from_step = step)
    history = read_jsonl(study / "trials" / _continuer(study, interrupted) / "history.jsonl")
    assert history[-1]["step"] == 4
    trained = [h["step"] for h in history if h.get("restored_from_step", 0) < h["step"]]
    assert trained == [2, 4], history
    assert all(h["restored_from_step"] >= 2 for h in history if "restored_from_step" in h)
    storage = optuna.storages.RDBStorage(f"sqlite:///{study / 'optuna.db'}")
    trials = optuna.load_study(study_name=run.name, storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [round(t.params["lambda_"], 6) for t in complete] == [searched]
    others = [t for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    # the only other trials: ones the killed driver asked for after its snapshot, failed
    assert all(t.state == optuna.trial.TrialState.FAIL and "abandoned" in t.user_attrs
               for t in others), [(t.number, t.state, t.user_attrs) for t in others]
