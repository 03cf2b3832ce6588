"""Where a trial's wall time goes: the phases of ``phase_seconds`` in its ``result.json``.

A trial (``polychromic.tuning.trial.run_trial``) is timed from the moment its Tune function
starts the Ray Train run to the moment its result is complete:

* ``worker_start``: until the Train worker entered the training loop (Train controller,
  placement group, worker process, imports; a restarted trial's earlier attempts count here);
* ``model_load``: base model + LoRA (+ the sentence encoder when the diversity measure reads
  embeddings) in the worker;
* ``training``: from then until the Train run returned (steps, checkpoints, worker teardown);
* ``evaluation_startup``: from the start of the evaluation until the first generation call
  (Ray Data plan, actor processes, model + adapter load in the actors; in the Train worker,
  ``eval_placement``: the task and sentence encoder only, the model is already loaded);
* ``generation`` / ``scoring``: seconds inside the generation and scoring calls, summed over
  actors (with several actors, or scoring overlapping generation, they can exceed wall time);
* ``writing``: the samples to ``generations.parquet`` and the metrics computed from them;
* ``headroom``: the baseline's floor and ceiling sets (0 for every other trial);
* ``other``: the rest of the wall time (what the phases above do not cover, e.g. reading the
  final checkpoint's history; negative when generation and scoring overlapped).

``other`` makes the phases add up to ``wall_seconds``. A phase that could not be measured
(e.g. the vLLM processor records no per-call times) is None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: the phases, in the order they happen
PHASES = ("worker_start", "model_load", "training", "evaluation_startup", "generation",
          "scoring", "writing", "headroom", "other")
#: the evaluation's own phases (``polychromic.evaluation.pipeline.evaluate`` fills them)
EVALUATION_PHASES = ("evaluation_startup", "generation", "scoring", "writing")
#: what the terminal calls them
LABELS = {"worker_start": "worker start", "model_load": "model load", "training": "training",
          "evaluation_startup": "evaluation start-up", "generation": "generation",
          "scoring": "scoring", "writing": "writing", "headroom": "headroom", "other": "other"}


def _seconds(value: float | None) -> float | None:
    """A finite duration, or None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def trial_phases(wall: float, started: float, worker_started_at: float | None,
                 model_load: float | None, fit_end: float,
                 evaluation: Mapping[str, float | None] | None = None,
                 headroom: float = 0.0, evaluated_in_fit: bool = False) -> dict[str, float | None]:
    """``phase_seconds`` of one trial from its clock readings (``time.time()`` seconds).

    ``started``: the trial began the Train run; ``worker_started_at``: the worker entered the
    training loop (its last attempt); ``model_load``: the worker's load time; ``fit_end``: the
    Train run returned; ``evaluation``: ``evaluate``'s timings (EVALUATION_PHASES);
    ``wall``: the whole trial; ``evaluated_in_fit``: the evaluation ran in the Train worker
    after the last step (``eval_placement``), so its phases are taken out of ``training``.
    Clock readings from another node are clamped so that no phase before ``fit_end`` is
    negative."""
    fit = max(0.0, fit_end - started)
    load = _seconds(model_load)
    out: dict[str, float | None] = dict.fromkeys(PHASES)
    if worker_started_at is not None and load is not None:
        out["worker_start"] = min(fit, max(0.0, worker_started_at - started))
        out["model_load"] = min(load, fit - out["worker_start"])
        out["training"] = fit - out["worker_start"] - out["model_load"]
    else:  # no report from the worker: the whole Train run is one phase
        out["training"] = fit
    for key in EVALUATION_PHASES:
        out[key] = _seconds((evaluation or {}).get(key))
    if evaluated_in_fit and out["training"] is not None:
        inside = sum(out[k] or 0.0 for k in EVALUATION_PHASES)
        out["training"] = max(0.0, out["training"] - inside)
    out["headroom"] = float(headroom)
    out["other"] = wall - sum(v for k, v in out.items() if k != "other" and v is not None)
    return out


def describe(phases: Mapping[str, object]) -> str:
    """One line: ``worker start 12.3 s · model load 1.0 s · …`` (unknown phases left out)."""
    parts = []
    for key in PHASES:
        value = phases.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{LABELS[key]} {value:.1f} s")
    return " · ".join(parts)
