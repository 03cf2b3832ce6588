"""Fault injection for the tests that show nothing is lost when a worker dies, a trial
diverges or a scoring batch fails. Every hook is inert unless ``POLYCHROMIC_FAULT`` is set.

``POLYCHROMIC_FAULT`` holds one fault or a JSON list of faults:

* ``{"kind": "kill"|"nan", "step": s, "lambda_": x, "marker": path, "delay_s": d}``: a
  training step (:func:`at_training_step`);
* ``{"kind": "score", "prompt_index": i}``: evaluation scoring (:func:`at_scoring`).

Ray workers and actors see the variable when it is in their ``runtime_env`` (the study driver
passes every ``POLYCHROMIC_*`` variable on)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: the environment variable holding the faults to inject (JSON: one fault or a list)
FAULT_ENV = "POLYCHROMIC_FAULT"


def _faults() -> list[dict[str, Any]]:
    """The faults of ``POLYCHROMIC_FAULT`` ([] when unset)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return []
    faults = json.loads(spec)
    return faults if isinstance(faults, list) else [faults]


def at_training_step(lambda_: float, step: int) -> str | None:
    """Before training step ``step`` of the trial whose λ is ``lambda_``: a ``kill`` fault for
    that step (and λ, when it names one) kills this worker process, once (its ``marker`` file
    records it; the kill waits ``delay_s``, default 5 s); a ``nan`` fault returns ``"nan"``,
    once, and the caller poisons the weights with NaN. None when no fault applies."""
    for fault in _faults():
        if fault.get("kind") not in ("kill", "nan") or step != fault["step"]:
            continue
        if abs(lambda_ - float(fault.get("lambda_", lambda_))) > 1e-12:
            continue
        marker = Path(fault["marker"])
        if marker.exists():
            continue
        marker.write_text(f"step {step}")
        if fault["kind"] == "kill":
            # Train V2 collects reports by polling workers: a kill within moments of a report
            # can lose that report's checkpoint (the trial then resumes from the one before).
            # Wait so the test sees the common case, a kill well after the last report.
            time.sleep(float(fault.get("delay_s", 5.0)))
            os.kill(os.getpid(), signal.SIGKILL)
        return fault["kind"]
    return None


def at_scoring(prompt_indices: Iterable[Any]) -> None:
    """Before scoring a batch holding the prompts ``prompt_indices``: a ``score`` fault for
    one of them raises ``RuntimeError`` (every time)."""
    faults = _faults()
    if not faults:
        return
    present = set(prompt_indices)
    for fault in faults:
        if fault.get("kind") == "score" and fault["prompt_index"] in present:
            raise RuntimeError(f"injected scoring failure for prompt {fault['prompt_index']}")
