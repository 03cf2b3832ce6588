"""A study whose driver is SIGKILLed mid-trial continues with `--resume`: finished trials are
kept, the interrupted one restarts from its checkpoint, the Optuna study is the same, and no
trial is run or counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from polychromic.store.records import read_json, read_jsonl
from tests.conftest import ROOT, write_space

# each test runs study/run.py (its own local Ray cluster): never beside the shared one, and slow
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_shared_ray")]


def _checkpointed_trials(study: Path) -> list[Path]:
    trials = study / "trials"
    if not trials.is_dir():
        return []
    return [t for t in trials.iterdir()
            if (t / "train").is_dir() and any((t / "train").glob("checkpoint_*/adapter"))]


def _continuer(study: Path, tid: str) -> str:
    """The trial that carries ``tid``'s work: itself, or the trial that adopted it."""
    status = read_json(study / "trials" / tid / "status.json") or {}
    if status.get("status") == "abandoned":
        assert status["adopted_by"], status
        return status["adopted_by"]
    return tid


@pytest.mark.parametrize("snapshot_s", ["2", "3600"], ids=["in_snapshot", "after_snapshot"])
def test_driver_killed_mid_trial_resumes_every_trial_exactly_once(tmp_path: Path,
                                                                  snapshot_s: str) -> None:
    """``3600``: Tune's only snapshot is its first, so the killed driver leaves trials that the
    restored experiment does not know; their configurations come back as new trials that take
    over their result or checkpoint (polychromic.tuning.resume)."""
    space = write_space(tmp_path / "tiny.yaml", num_trials=2, points=[{"lambda_": 0.5}])
    study = tmp_path / "resumable"
    cmd = [sys.executable, str(ROOT / "study" / "run.py"), "--space", str(space),
           "--storage-path", str(tmp_path), "--name", "resumable", "--no-wandb"]
    log = (tmp_path / "first.log").open("w")  # closed in the finally below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": snapshot_s})
    deadline = time.time() + 480
    try:
        # wait until one trial has finished and a second one has written a checkpoint
        while time.time() < deadline:
            done = [t for t in (study / "trials").glob("*/result.json")] if study.exists() else []
            busy = [t for t in _checkpointed_trials(study) if not (t / "result.json").exists()]
            if done and busy:
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("no trial reached a checkpoint in time")
        interrupted = busy[0].name
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
        proc.wait()
        log.close()
    assert not (study / "leaderboard.parquet").exists()
    finished_before = {t.parent.name: read_json(t) for t in (study / "trials").glob("*/result.json")}

    env = {k: v for k, v in os.environ.items() if k != "TUNE_GLOBAL_CHECKPOINT_S"}
    resumed = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--resume",
                              "resumable", "--storage-path", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    df = pd.read_parquet(study / "leaderboard.parquet")
    assert len(df) == 2 and df["trial_id"].is_unique, df[["trial_id", "status"]]
    assert sorted(df["lambda_"].round(6)) == [0.0, 0.5]
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
    trials = optuna.load_study(study_name="resumable", storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [round(t.params["lambda_"], 6) for t in complete] == [0.5]
    others = [t for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    # the only other trials: ones the killed driver asked for after its snapshot, failed
    assert all(t.state == optuna.trial.TrialState.FAIL and "abandoned" in t.user_attrs
               for t in others), [(t.number, t.state, t.user_attrs) for t in others]
