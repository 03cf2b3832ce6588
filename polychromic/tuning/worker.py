"""What a trial's Train worker runs (``TorchTrainer``'s entry point), kept apart from
polychromic.tuning.trial so that a worker imports only training and evaluation, not Ray Tune
(≈ 2 s of imports per worker process on 2 cores).

``train_and_evaluate``: the training loop, then, on rank 0 after the last step, the
evaluation of the model as trained (``eval_placement: worker``), written into the final
checkpoint; the trial adopts it (polychromic.evaluation.in_worker.adopt_evaluation).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.evaluation.in_worker import evaluate_loaded
from polychromic.store import layout

log = logging.getLogger(__name__)


def measures_frontier(cfg: TrialConfig) -> bool:
    """Whether a run's evaluation also samples the temperature frontier: a λ=0 run (the
    study's baseline, or a confirmation's on fresh prompts) with a frontier grid."""
    return cfg.lambda_ == 0 and bool(cfg.frontier_grid())


def evaluate_into_checkpoint(cfg: TrialConfig, model: Any, tok: Any, folder: Path) -> bool:
    """The Train worker's evaluation of the model it just trained, written into the final
    checkpoint ``folder`` (``CHECKPOINT_EVALUATION``, polychromic.evaluation.in_worker), the
    frontier too for a baseline. A failure is logged and leaves no files there (False): the
    trial then evaluates by actors, as if ``eval_placement`` were ``actors``."""
    out = folder / layout.CHECKPOINT_EVALUATION
    try:
        evaluate_loaded(cfg, model, tok, out, frontier=measures_frontier(cfg))
        return True
    except Exception as err:  # noqa: BLE001 - the trial evaluates by actors instead
        log.warning("evaluation in the Train worker failed (%s: %s); the trial evaluates by "
                    "actors", type(err).__name__, err)
        shutil.rmtree(out, ignore_errors=True)
        return False


def train_and_evaluate(config: dict[str, Any]) -> None:
    """Ray Train entry point of a trial evaluated in its Train worker (``eval_placement``):
    the training loop, then, on rank 0 after the last step, ``evaluate_into_checkpoint``."""
    # the trial's own process imports this module for the entry point's name only
    # lazy: pulls torch and transformers, which the trial's own process does not otherwise need
    from polychromic.training.loop import train_loop_per_worker

    cfg = TrialConfig.from_dict(config["trial"])
    train_loop_per_worker(
        config, finish=lambda model, tok, folder: evaluate_into_checkpoint(cfg, model, tok, folder)
    )
