"""A quiet run: one progress display on the terminal, everything Ray prints in ``<study>/logs/``.

``study/run.py`` and ``study/confirm.py`` run their trials inside ``quiet_run``: the first line
on stdout names the log file; then the process's own stdout and stderr (file descriptors 1 and
2, so Ray's worker output forwarded to the driver, Tune's and Train's reports, W&B's lines,
Python logging and warnings, and anything a C library writes) go to that file, and the terminal
shows only the ``Tracker``:

* on a terminal, a live display (``rich``): a bar with trials done / running / failed, under
  it elapsed and estimated remaining time, then each running trial's step, with one line per
  trial event above it (``tests/test_progress.py`` checks it in a 100-column tmux window);
* elsewhere (CI, ``| tee``, a test's pipe), the same trial events as plain lines, one each.

The tracker is fed by the study's Tune callback (``polychromic.tuning.recorder.StudyRecorder``)
through ``active()``: Tune pickles its callbacks into the experiment and restores them on
``--resume``, so the display (an open terminal) cannot be one of their attributes.

The remaining time (``remaining_seconds``) is (pending trials × t + Σ over running trials of
max(0, t − elapsed)) ÷ trials at once, where t, the seconds of one trial, is the mean of the
trials finished so far; before any has finished, ``plan.json``'s estimate (``--plan``) when the
study has one; else the running trials' observed seconds per step × steps (a lower bound: the
evaluation is not in it). Trials ASHA stops early make the real time shorter.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.store import layout
from polychromic.store.records import read_json

TERMINATED_OK = {"finished", "early_stopped"}
TERMINAL = {*TERMINATED_OK, "error"}


@dataclass
class TrialProgress:
    """What the display knows of one trial."""

    trial_id: str
    label: str
    steps: int | None
    started: float
    step: int = 0
    state: str = "running"  # running | evaluating | finished | early_stopped | error
    ended: float | None = None
    restarts: int = 0


def per_trial_seconds(finished: list[float], planned: float | None,
                      running: list[tuple[float, int, int | None]]) -> tuple[float | None, str]:
    """Seconds of one trial and where the number comes from: the mean of ``finished`` trials'
    durations; else ``planned`` (``--plan``); else the slowest running trial's elapsed ÷ step ×
    steps (``running``: (elapsed, step, steps)); else (None, "")."""
    if finished:
        return sum(finished) / len(finished), "finished trials"
    if planned is not None and planned > 0:
        return planned, "--plan"
    rates = [elapsed / step * steps for elapsed, step, steps in running if step > 0 and steps]
    if rates:
        return max(rates), "step rate"
    return None, ""


def remaining_seconds(per_trial: float | None, pending: int, running_elapsed: list[float],
                      at_once: int) -> float | None:
    """Wall seconds left: (pending × t + Σ max(0, t − elapsed)) ÷ trials at once (None when t
    is unknown)."""
    if per_trial is None:
        return None
    work = pending * per_trial + sum(max(0.0, per_trial - e) for e in running_elapsed)
    return work / max(1, at_once)


def clock_text(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def lambda_label(config: dict[str, Any]) -> str:
    """``λ=0.5`` from a trial's configuration (``?`` when it has none)."""
    lam = config.get("lambda_")
    return f"λ={lam:g}" if isinstance(lam, int | float) else "λ=?"


def describe_trial(config: dict[str, Any]) -> tuple[str, int | None]:
    """A study trial's label (its λ) and training steps, from its Tune configuration."""
    try:
        steps: int | None = TrialConfig.from_dict(dict(config)).steps
    except (ConfigError, TypeError, ValueError):
        steps = None
    return lambda_label(config), steps


def planned_trial_seconds(study: Path) -> float | None:
    """One trial's seconds as ``--plan`` estimated them for this study, if it was planned."""
    plan = read_json(layout.plan_dir(study) / layout.PLAN_FILE)
    seconds = ((plan or {}).get("cost") or {}).get("trial_seconds")
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None


class Tracker:
    """Trials done / running / failed of one Tune experiment, as events arrive (pure state:
    each event method returns the plain line that describes it)."""

    def __init__(self, title: str, total: int, describe: Callable[[dict[str, Any]],
                 tuple[str, int | None]], planned_trial_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.title, self.total, self.describe = title, total, describe
        self.planned, self.clock = planned_trial_seconds, clock
        self.t0 = clock()
        self.trials: dict[str, TrialProgress] = {}
        self.done_before = 0  # trials finished by an earlier run of a resumed experiment
        self.peak_running = 0
        self._synced = False

    # --- events ------------------------------------------------------------------------------
    def restored(self, trials: list[tuple[str, str]]) -> None:
        """Once, from Tune's first step: (trial id, Tune status) of every trial; those already
        TERMINATED or ERROR before this run count as done."""
        if self._synced:
            return
        self._synced = True
        self.done_before = sum(1 for tid, status in trials
                               if status in ("TERMINATED", "ERROR") and tid not in self.trials)

    def started(self, trial_id: str, config: dict[str, Any]) -> str:
        known = self.trials.get(trial_id)
        if known is not None and known.state in ("running", "evaluating"):
            return ""
        if known is not None:  # restarted after a failure Tune retries
            known.state, known.ended, known.step = "running", None, 0
            known.restarts += 1
            self._peak()
            return self._line(known, f"restarted (attempt {known.restarts + 1})")
        label, steps = self.describe(config)
        trial = TrialProgress(trial_id, label, steps, self.clock())
        self.trials[trial_id] = trial
        self._peak()
        return self._line(trial, "started")

    def reported(self, trial_id: str, result: dict[str, Any], final: bool) -> None:
        """A training report (its ``step``; after the last one the trial is evaluating) or
        the final evaluation. No line: the live view shows it, a pipe gets trial events only."""
        trial = self.trials.get(trial_id)
        if trial is None:
            return
        step = result.get("step")
        if isinstance(step, int | float) and not final:
            trial.step = max(trial.step, int(step))
        if trial.state == "running" and (final or (trial.steps and trial.step >= trial.steps)):
            trial.state = "evaluating"

    def recovering(self, trial_id: str, error: str) -> str:
        trial = self.trials.get(trial_id)
        if trial is None:
            return ""
        trial.state = "restarting"
        return self._line(trial, f"failed, will be retried: {_short(error)}")

    def ended(self, trial_id: str, status: str, error: str = "") -> str:
        trial = self.trials.get(trial_id)
        if trial is None:
            trial = self.trials[trial_id] = TrialProgress(trial_id, "", None, self.t0)
        trial.state, trial.ended = status, self.clock()
        took = clock_text(trial.ended - trial.started)
        what = {"finished": f"finished in {took}",
                "early_stopped": f"stopped early at step {trial.step} in {took}",
                "error": f"failed after {took}: {_short(error) or 'see the log'}"}.get(
                    status, f"{status} after {took}")
        return self._line(trial, what)

    # --- what the display shows --------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        states = [t.state for t in self.trials.values()]
        failed = states.count("error")
        done = sum(s in TERMINATED_OK for s in states) + self.done_before
        running = sum(s not in TERMINAL for s in states)
        return {"done": done, "failed": failed, "running": running,
                "pending": max(0, self.total - done - failed - running)}

    def remaining(self) -> tuple[float | None, str]:
        now = self.clock()
        finished = [t.ended - t.started for t in self.trials.values()
                    if t.state == "finished" and t.ended is not None]
        running = [t for t in self.trials.values() if t.state not in TERMINAL]
        per, source = per_trial_seconds(finished, self.planned,
                                        [(now - t.started, t.step, t.steps) for t in running])
        c = self.counts()
        return remaining_seconds(per, c["pending"], [now - t.started for t in running],
                                 self.peak_running), source

    def summary(self) -> str:
        """``3/3 trials done (1 failed), 0 running · 5:12 elapsed · ~2:10 left (from …)``:
        :meth:`counts_text` · :meth:`times_text`."""
        return f"{self.counts_text()} · {self.times_text()}"

    def counts_text(self) -> str:
        """``3/3 trials done (1 failed), 0 running``."""
        c = self.counts()
        return (f"{c['done'] + c['failed']}/{self.total} trials done"
                + (f" ({c['failed']} failed)" if c["failed"] else "")
                + f", {c['running']} running")

    def times_text(self) -> str:
        """``5:12 elapsed · ~2:10 left (from finished trials)`` (no estimate once nothing is
        running or pending)."""
        c = self.counts()
        text = f"{clock_text(self.clock() - self.t0)} elapsed"
        left, source = self.remaining()
        if c["running"] or c["pending"]:
            text += (f" · ~{clock_text(left)} left (from {source})" if left is not None
                     else " · time left: after the first step")
        return text

    def running_lines(self) -> list[str]:
        now = self.clock()
        out = []
        for t in self.trials.values():
            if t.state in TERMINAL:
                continue
            where = ("evaluating" if t.state == "evaluating" else t.state if t.state != "running"
                     else f"step {t.step}/{t.steps}" if t.steps else f"step {t.step}")
            out.append(f"  {t.trial_id}  {t.label:<10} {where:<14} {clock_text(now - t.started)}")
        return out

    def _peak(self) -> None:
        self.peak_running = max(self.peak_running, self.counts()["running"])

    def _line(self, trial: TrialProgress, what: str) -> str:
        c = self.counts()
        return (f"[{clock_text(self.clock() - self.t0)}] trial {trial.trial_id} "
                f"{trial.label + ' ' if trial.label else ''}{what} · "
                f"{c['done'] + c['failed']}/{self.total} done, {c['running']} running")


def _short(text: str, limit: int = 160) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# --- the display ----------------------------------------------------------------------------------
class _Display:
    """Where the tracker's lines go: plain lines on a pipe, a rich live view on a terminal."""

    def __init__(self, tracker: Tracker, stream: TextIO, live: bool) -> None:
        self.tracker, self.stream = tracker, stream
        self._live: Any = None
        if live:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.progress_bar import ProgressBar
            from rich.table import Table
            from rich.text import Text

            tracker_ = tracker

            class _View:
                def __rich__(self) -> Any:
                    c = tracker_.counts()
                    head = Table.grid(padding=(0, 1))
                    # counts beside the bar, times under them: each fits 100 columns
                    head.add_row(ProgressBar(total=max(1, tracker_.total), width=20,
                                             completed=c["done"] + c["failed"]),
                                 Text(f"{tracker_.title}: {tracker_.counts_text()}"))
                    head.add_row("", Text(tracker_.times_text()))
                    return Group(head, *(Text(line) for line in tracker_.running_lines()))

            self.console = Console(file=stream, highlight=False)
            self._live = Live(_View(), console=self.console, refresh_per_second=2,
                              redirect_stdout=False, redirect_stderr=False, transient=True)
            self._live.start()

    def line(self, text: str) -> None:
        if not text:
            return
        if self._live is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
        self.line(f"{self.tracker.title}: {self.tracker.summary()}")
        self.stream.flush()


_ACTIVE: list[_Display] = []


def active() -> _Display | None:
    """The display of the quiet run in progress in this process, if any (for the callback)."""
    return _ACTIVE[-1] if _ACTIVE else None


def on_event(event: str, *args: Any) -> None:
    """Forward one Tune event to the active display (no display: nothing). ``event`` is a
    ``Tracker`` method name: restored, started, reported, recovering, ended."""
    display = active()
    if display is None:
        return
    line = getattr(display.tracker, event)(*args)
    if isinstance(line, str):
        display.line(line)
    else:
        display.refresh()


@contextmanager
def quiet_run(log_path: Path, tracker: Tracker | None,
              intro: str = "") -> Iterator[Tracker | None]:
    """Run the body with this process's stdout and stderr appended to ``log_path`` and the
    tracker shown on the real stdout (its first line names the log, ``intro`` follows it;
    ``tracker`` None: those lines only, for a command without trials such as ``--plan``);
    everything is restored on the way out, an exception included."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"logs: {log_path.resolve()} (Ray, Tune, Train and W&B output; -v prints it here)",
          flush=True)
    if intro:
        print(intro, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.isatty(saved[0])
    view = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n")
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        display = _Display(tracker, view, live=terminal) if tracker is not None else None
        if display is not None:
            _ACTIVE.append(display)
        try:
            yield tracker
        finally:
            if display is not None:
                _ACTIVE.remove(display)
            # what the body left behind and prints when collected (Ray's W&B callback's
            # __del__ after a --resume, at interpreter exit) prints into the log
            gc.collect()
            atexit.register(_stderr_to, str(log_path))
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if display is not None:
                display.close()
            view.close()


def _stderr_to(path: str) -> None:
    """At interpreter exit (after ``main`` returned or its traceback was printed): stderr to
    ``path``, for what objects of the run print as they are torn down."""
    sys.stderr.flush()
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 2)
