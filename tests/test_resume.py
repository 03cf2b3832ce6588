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

from polychromic.records import read_json, read_jsonl
from tests.conftest import ROOT
from tests.test_study_e2e import write_space


def _checkpointed_trials(study: Path) -> list[Path]:
    trials = study / "trials"
    if not trials.is_dir():
        return []
    return [t for t in trials.iterdir()
            if (t / "train").is_dir() and any((t / "train").glob("checkpoint_*/adapter"))]


def test_driver_killed_mid_trial_resumes_every_trial_exactly_once(tmp_path: Path) -> None:
    space = write_space(tmp_path / "tiny.yaml", num_trials=2, points=[{"lambda_": 0.5}])
    study = tmp_path / "resumable"
    cmd = [sys.executable, str(ROOT / "study" / "run.py"), "--space", str(space),
           "--storage-path", str(tmp_path), "--name", "resumable", "--no-wandb"]
    log = (tmp_path / "first.log").open("w")  # closed in the finally below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
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
    finished_before = {t.parent.name for t in (study / "trials").glob("*/result.json")}

    resumed = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--resume",
                              "resumable", "--storage-path", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    df = pd.read_parquet(study / "leaderboard.parquet")
    assert len(df) == 2 and df["trial_id"].is_unique
    assert sorted(df["lambda_"].round(6)) == [0.0, 0.5]
    assert (df["status"] == "finished").all(), df[["trial_id", "status", "error"]]
    # finished trials were not run again: their result files were written once, before
    for tid in finished_before:
        assert read_json(study / "trials" / tid / "result.json")["trial_id"] == tid
    # the interrupted trial continued from its checkpoint rather than from step 0
    history = read_jsonl(study / "trials" / interrupted / "history.jsonl")
    assert history[-1]["step"] == 4
    assert any(h.get("restored_from_step") for h in history), history
    storage = optuna.storages.RDBStorage(f"sqlite:///{study / 'optuna.db'}")
    trials = optuna.load_study(study_name="resumable", storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [round(t.params["lambda_"], 6) for t in complete] == [0.5]
    assert len(trials) == 1, [(t.number, t.state, t.params) for t in trials]
