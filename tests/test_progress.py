"""The quiet run's progress (``polychromic.tuning.progress``) without Ray: the tracker's counts,
lines and remaining time on a fake clock; ``quiet_run`` in a real child process whose stdout is
a pipe sends everything the body prints (Python, stderr, a raw file-descriptor write, a
grandchild process, an object torn down at exit) to the log and shows only the log's name and one line per trial event; the
Tune callback feeds the display. The whole path through Ray is in tests/test_study_e2e.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from polychromic.store import layout
from polychromic.store.records import write_json
from polychromic.tuning.progress import (
    Tracker,
    describe_trial,
    per_trial_seconds,
    planned_trial_seconds,
    remaining_seconds,
)
from tests.conftest import ROOT, TINY_SETTINGS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_remaining_time_is_pending_and_unfinished_work_over_trials_at_once() -> None:
    # 2 pending × 100 s + running trials 40 s and 100+ s in: 200 + 60 + 0 = 260 s, 2 at once
    assert remaining_seconds(100.0, 2, [40.0, 130.0], 2) == pytest.approx(130.0)
    assert remaining_seconds(None, 2, [1.0], 1) is None
    assert per_trial_seconds([90.0, 110.0], 500.0, []) == (100.0, "finished trials")
    assert per_trial_seconds([], 500.0, [(10.0, 2, 8)]) == (500.0, "--plan")
    assert per_trial_seconds([], None, [(10.0, 2, 8), (30.0, 2, 8)]) == (120.0, "step rate")
    assert per_trial_seconds([], None, [(10.0, 0, 8)]) == (None, "")


def test_tracker_counts_lines_and_estimate_follow_the_events() -> None:
    clock = Clock()
    tracker = Tracker("study s", 3, describe_trial, clock=clock)
    line = tracker.started("aaaa", {**TINY_SETTINGS, "lambda_": 0.0})
    assert line == "[0:00] trial aaaa λ=0 started · 0/3 done, 1 running"
    assert tracker.trials["aaaa"].steps == TINY_SETTINGS["steps"]
    tracker.started("bbbb", {**TINY_SETTINGS, "lambda_": 0.5})
    assert "time left: after the first step" in tracker.summary()
    clock.now = 20.0
    assert tracker.reported("aaaa", {"step": 2}, final=False) is None
    # step rate: 20 s for 2 of 4 steps → 40 s a trial; (1 pending × 40 + 20 + 20 left) / 2
    assert tracker.remaining() == (pytest.approx(40.0), "step rate")
    assert "step 2/4" in "\n".join(tracker.running_lines())
    tracker.reported("aaaa", {"step": 4}, final=False)
    assert tracker.trials["aaaa"].state == "evaluating"
    clock.now = 60.0
    assert tracker.ended("aaaa", "finished").startswith(
        "[1:00] trial aaaa λ=0 finished in 1:00 · 1/3 done, 1 running")
    assert tracker.remaining() == (pytest.approx(30.0), "finished trials")  # (60 + 0) / 2
    assert tracker.recovering("bbbb", "RuntimeError: boom").endswith(
        "failed, will be retried: RuntimeError: boom · 1/3 done, 1 running")
    assert "restarted (attempt 2)" in tracker.started("bbbb", {"lambda_": 0.5})
    tracker.started("cccc", {"lambda_": 2.0})
    clock.now = 90.0
    assert "failed after 1:30: ValueError: nan" in tracker.ended("bbbb", "error", "ValueError: nan")
    tracker.ended("cccc", "early_stopped")
    assert tracker.counts() == {"done": 2, "failed": 1, "running": 0, "pending": 0}
    assert tracker.summary() == "3/3 trials done (1 failed), 0 running · 1:30 elapsed"


def test_a_resumed_experiment_counts_the_trials_finished_before() -> None:
    tracker = Tracker("study s", 4, describe_trial)
    tracker.restored([("a", "TERMINATED"), ("b", "ERROR"), ("c", "PENDING")])
    tracker.restored([("d", "TERMINATED")])  # only the first step counts
    assert tracker.counts()["done"] == 2 and tracker.counts()["pending"] == 2


def test_planned_seconds_come_from_the_studys_plan(tmp_path: Path) -> None:
    assert planned_trial_seconds(tmp_path) is None
    write_json(layout.plan_dir(tmp_path) / layout.PLAN_FILE, {"cost": {"trial_seconds": 42.5}})
    assert planned_trial_seconds(tmp_path) == 42.5


CHILD = textwrap.dedent("""
    import logging, os, subprocess, sys
    from pathlib import Path
    from types import SimpleNamespace
    from polychromic.tuning.progress import Tracker, describe_trial, quiet_run
    from polychromic.tuning.recorder import StudyRecorder

    class Late:  # like Ray's W&B callback: prints as the interpreter tears it down
        def __del__(self):
            print("late teardown", file=sys.stderr)

    study = Path(sys.argv[1])
    logging.basicConfig(level=logging.INFO)
    recorder = StudyRecorder(study)
    trial = SimpleNamespace(trial_id="t1", config={"lambda_": 0.5}, error_file=None)
    with quiet_run(study / "logs" / "run.log", Tracker("study s", 1, describe_trial), "intro"):
        print("(RayTrainWorker pid=1) python print")
        print("python stderr", file=sys.stderr)
        logging.getLogger("ray.tune").info("a log record")
        os.write(1, b"raw fd write\\n")
        subprocess.run([sys.executable, "-c", "print('grandchild print')"], check=True)
        recorder.on_step_begin(0, [])
        recorder.on_trial_start(0, [], trial)
        recorder.on_trial_result(0, [], trial, {"step": 2})
        (study / "trials" / "t1").mkdir(parents=True, exist_ok=True)
        recorder.on_trial_complete(0, [], trial)
        KEEP = Late()
    print("after")
""")


def test_quiet_run_sends_all_output_to_the_log_and_prints_only_events(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = layout.log_file(tmp_path, layout.RUN_LOG)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"logs: {log} (Ray, Tune, Train and W&B output; -v prints it here)"
    assert lines[1] == "intro"
    assert lines[2].endswith("trial t1 λ=0.5 started · 0/1 done, 1 running")
    assert lines[3].endswith("trial t1 λ=0.5 stopped early at step 2 in 0:00 · 1/1 done, 0 running")
    assert lines[4].startswith("study s: 1/1 trials done, 0 running · ")
    assert lines[5:] == ["after"]
    assert proc.stderr == ""
    text = log.read_text()
    for printed in ("python print", "python stderr", "a log record", "raw fd write",
                    "grandchild print", "late teardown"):
        assert printed in text
