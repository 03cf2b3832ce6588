"""Ctrl+C during a study: Tune catches SIGINT (and SIGUSR1), snapshots the experiment and
returns from ``fit()`` as if it had finished. ``raise_if_interrupted`` turns that into
``Interrupted`` (the CLIs print its one line and exit 130, skipping the post-study frontier
sweep); a run whose trials all ended raises nothing.

A real Tune run on the shared local cluster with a function trainable (no model: the point is
Tune's signal handling, not training); the signal is SIGUSR1, which Tune handles exactly as
SIGINT but which pytest itself leaves alone.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from polychromic.core.errors import Interrupted
from polychromic.tuning.resume import raise_if_interrupted


def _fit(tmp_path: Path, name: str, steps: int) -> Any:
    from ray import tune

    def slow(config: dict[str, Any]) -> None:  # nested: pickled by value for the workers
        for i in range(int(config["steps"])):
            time.sleep(0.5)
            tune.report({"i": i})

    tuner = tune.Tuner(slow, param_space={"steps": steps, "x": tune.grid_search([0, 1])},
                       tune_config=tune.TuneConfig(max_concurrent_trials=1),
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                                 verbose=0))
    return tuner.fit()


def test_a_stopped_tune_run_is_interrupted_not_finished(ray_cluster: Any, tmp_path: Path) -> None:
    done = _fit(tmp_path, "whole", steps=1)
    assert done.num_terminated == 2, [r.error for r in done]
    raise_if_interrupted(done, 2, "resume")  # both trials ended: nothing to say
    previous = signal.getsignal(signal.SIGUSR1)
    # the first trial sleeps 60 × 0.5 s: the signal comes while it runs, the second pending
    timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        t0 = time.monotonic()
        grid = _fit(tmp_path, "stopped", steps=60)
        assert time.monotonic() - t0 < 25, "Tune did not stop on the signal"
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    # Tune returned: the first trial stopped mid-run, the second never created (a searcher
    # suggests trials as it goes, so the grid alone cannot tell how many are missing)
    assert grid.num_errors == 0 and grid.num_terminated < 2 and len(grid) <= 2
    with pytest.raises(Interrupted) as err:
        raise_if_interrupted(grid, 2, "python study/run.py --resume s")
    text = str(err.value)
    assert text.startswith(f"interrupted: {2 - grid.num_terminated} of 2 trial(s) did not "
                           "finish; ")
    assert text.endswith("the state is saved: python study/run.py --resume s continues it")
    assert "\n" not in text
