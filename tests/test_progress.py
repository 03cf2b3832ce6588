"""The quiet run's progress (``polychromic.tuning.progress``) without Ray: the tracker's counts,
lines and remaining time on a fake clock; ``quiet_run`` in a real child process whose stdout is
a pipe sends everything the body prints (Python, stderr, a raw file-descriptor write, a
grandchild process, an object torn down at exit) to the log and shows only the log's name and one line per trial event; the
Tune callback feeds the display. The whole path through Ray is in tests/test_study_e2e.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
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


LIVE_CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    from polychromic.store import layout
    from polychromic.store.records import write_json
    from polychromic.tuning.progress import Tracker, describe_trial, quiet_run
    from polychromic.tuning.recorder import StudyRecorder

    study, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    settings = json.loads(sys.argv[4])
    recorder = StudyRecorder(study)
    def trial(tid, lam, error_file=None):
        return SimpleNamespace(trial_id=tid, config={**settings, "lambda_": lam},
                               error_file=error_file, status="RUNNING")
    t1, t3 = trial("t1", 0.0), trial("t3", 2.0)
    (study / "err.txt").write_text("Traceback ...\\nValueError: boom")
    t2 = trial("t2", 0.5, str(study / "err.txt"))
    with quiet_run(study / "logs" / "run.log", Tracker("study s", 3, describe_trial)):
        recorder.on_step_begin(0, [])
        recorder.on_trial_start(0, [], t1)
        recorder.on_trial_result(0, [], t1, {"step": 2})
        write_json(layout.trial_dir(study, "t1") / layout.RESULT, {"status": "finished"})
        recorder.on_trial_complete(0, [], t1)
        recorder.on_trial_start(0, [], t2)
        recorder.on_trial_error(0, [], t2)
        recorder.on_trial_start(0, [], t3)
        recorder.on_trial_result(0, [], t3, {"step": 2})
        print("a Ray line", flush=True)  # into the log, never onto the screen
        time.sleep(1.5)  # the live view refreshes twice a second
        ready.touch()
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        write_json(layout.trial_dir(study, "t3") / layout.RESULT, {"status": "finished"})
        recorder.on_trial_complete(0, [], t3)
""")


def _wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"{what} within 120 s"


def test_live_view_in_a_real_terminal(tmp_path: Path) -> None:
    """On a terminal (a detached tmux window, 100 columns) the quiet run shows the live view,
    fed by the study's Tune callback: a bar with trials done / running / failed, elapsed and
    estimated time left, one line per running trial with its step, the trial events above
    it; when the run ends the view gives way to the one summary line."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux, or ./setup.sh as root)")
    study, ready, go, done = (tmp_path / "s", tmp_path / "ready", tmp_path / "go",
                              tmp_path / "done")
    study.mkdir()
    child = tmp_path / "child.py"
    child.write_text(LIVE_CHILD)
    script = tmp_path / "run.sh"
    script.write_text(f"unset COLUMNS LINES\ncd {ROOT}\nPYTHONPATH={ROOT} {sys.executable} "
                      f"{child} {study} {ready} {go} '{json.dumps(TINY_SETTINGS)}'\n"
                      f"echo $? > {done}\nsleep 600\n")
    base = [tmux, "-L", f"polychromic-progress-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            "-f", "/dev/null", "-u"]
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.pop("TMUX", None)

    def screen() -> list[str]:
        out = subprocess.run([*base, "capture-pane", "-p", "-J"], check=True, env=env,
                             capture_output=True, text=True, timeout=30).stdout
        return [line.rstrip() for line in out.splitlines() if line.strip()]

    subprocess.run([*base, "new-session", "-d", "-x", "100", "-y", "30", f"bash {script}"],
                   check=True, env=env, timeout=30)
    try:
        _wait_for(ready, "the live view did not come up")
        live = screen()
        go.touch()
        _wait_for(done, "the child did not finish")
        assert done.read_text().strip() == "0", screen()
        after = screen()
    finally:
        subprocess.run([*base, "kill-server"], env=env, timeout=30, check=False)

    log = layout.log_file(study, layout.RUN_LOG)
    assert live[0] == f"logs: {log} (Ray, Tune, Train and W&B output; -v prints it here)"
    # the view's own lines fit 100 columns (the log's path may be longer: the terminal wraps it)
    assert all(len(line) <= 100 for line in live[1:]), live
    events = [line for line in live if line.startswith("[")]
    assert [e.split(" · ")[0].split("] ", 1)[1].split(" in ")[0].split(" after ")[0]
            for e in events] == ["trial t1 λ=0 started", "trial t1 λ=0 finished",
                                 "trial t2 λ=0.5 started", "trial t2 λ=0.5 failed",
                                 "trial t3 λ=2 started"], events
    assert "failed after" in events[3] and events[3].endswith(": ValueError: boom · 2/3 done, "
                                                              "0 running")
    # the bar: ━ drawn for 2 of 3 trials, then what it counts and the times
    bar = [line for line in live if "study s: " in line]
    assert len(bar) == 1, live
    assert re.fullmatch(r"[━╸╺]{20} study s: 2/3 trials done \(1 failed\), 1 running",
                        bar[0]), live
    # 2 of 3 trials done: the completed part (━) ends where the rest begins (╺), at 2/3 of 20
    assert bar[0].index("╺") == 20 * 2 // 3, bar
    # under it the times: elapsed and the estimate from the finished trial
    times = live[live.index(bar[0]) + 1]
    assert re.fullmatch(r"\d+:\d\d elapsed · ~\d+:\d\d left \(from finished trials\)",
                        times.strip()), live
    # then the running trial with its step of the configured steps
    running = live[live.index(bar[0]) + 2:]
    assert len(running) == 1 and re.fullmatch(
        r"t3\s+λ=2\s+step 2/4\s+\d+:\d\d", running[0].strip()), running
    assert "a Ray line" not in "\n".join(live) and "a Ray line" in log.read_text()
    # the view is gone when the run ends: the events, then one summary line
    assert not any(line.startswith("━") or "step 2/4" in line for line in after), after
    assert after[-1].startswith("study s: 3/3 trials done (1 failed), 0 running · ")
    assert "trial t3 λ=2 finished in" in after[-2]
