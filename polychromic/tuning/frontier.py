"""The temperature frontiers swept after a study (issue 20; ``frontier_for``).

The λ=0 baseline's frontier is sampled in its own evaluation pass (polychromic.tuning.trial);
after the study, ``sweep_frontiers`` evaluates, one pipeline pass each, the final adapter of:

* ``frontier_for: baseline``: the baseline only, when its frontier is missing (a failed
  frontier pass, a study started before the frontier existed);
* ``pareto`` (default): also the study's Pareto-optimal finished trials, the review's ★: on
  its quality and diversity axes (``polychromic.review.study.quality_diversity_axes``: the two
  objectives, or one objective paired with the other side of the trade-off), so a trial
  that buys quality at a diversity cost, the one a temperature could imitate, is swept;
* ``all``: every finished trial.

Each swept trial gets ``frontier.parquet`` beside its ``generations.parquet`` (its stored
eval-temperature samples plus the other temperatures, drawn from the same seeds). Resumable:
a trial whose ``frontier.parquet`` exists is skipped and each file is written whole, so a
driver killed mid-sweep (``--resume``) neither loses a finished frontier nor samples it twice.
The frontier settings are the study's (the baseline's config), since a frontier is compared
with the baseline's at the same temperatures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core.config import TrialConfig
from polychromic.evaluation.pipeline import evaluate_frontier
from polychromic.review.study import quality_diversity_axes
from polychromic.stats.ranking import pareto_mask
from polychromic.store import layout
from polychromic.store.records import read_json
from polychromic.store.remote import join

log = logging.getLogger(__name__)


def frontier_trials(board: pd.DataFrame, objectives: list[tuple[str, str]],
                    frontier_for: str) -> list[str]:
    """The trial ids ``frontier_for`` asks a frontier of, baseline first (see the module
    docstring); only finished trials with a checkpoint, none twice."""
    if board.empty:
        return []
    done = board[board["status"].eq("finished") & board["checkpoint_path"].notna()]
    base = done[done["is_baseline"].astype(bool)]
    chosen = [str(t) for t in base["trial_id"]]
    if frontier_for == "all":
        chosen += [str(t) for t in done["trial_id"]]
    elif frontier_for == "pareto" and len(done):
        axes = quality_diversity_axes(objectives, done)  # the ★'s axes, not the objectives alone
        if all(m in done for m, _ in axes):
            chosen += [str(t) for t in done.loc[pareto_mask(done, axes), "trial_id"]]
    return list(dict.fromkeys(chosen))


def study_frontier_settings(study: Path, board: pd.DataFrame) -> dict[str, Any] | None:
    """``frontier_temperatures`` and ``frontier_for`` of the study (its baseline's config), or
    None without a readable baseline config. (Each trial keeps its own ``eval_temperature``:
    its stored generations were drawn at it, and its grid adds it.)"""
    for tid in board.loc[board["is_baseline"].astype(bool), "trial_id"]:
        config = read_json(layout.trial_dir(study, str(tid)) / layout.CONFIG)
        if config:
            cfg = TrialConfig.from_dict(config)
            return {"frontier_temperatures": cfg.frontier_temperatures,
                    "frontier_for": cfg.frontier_for}
    return None


def sweep_frontiers(study: Path, board: pd.DataFrame, objectives: list[tuple[str, str]],
                    actors: int | None = None) -> list[str]:
    """Evaluate the frontier of every trial ``frontier_trials`` names that has none yet (on the
    connected Ray cluster, one pipeline pass per trial); returns the trial ids swept. A
    trial whose sweep fails is logged and left without a frontier (the review says
    ``frontier: not measured``); the study's result stands."""
    settings = study_frontier_settings(study, board)
    if settings is None or not settings["frontier_temperatures"]:
        return []
    swept = []
    for tid in frontier_trials(board, objectives, settings["frontier_for"]):
        tdir = layout.trial_dir(study, tid)
        if (tdir / layout.FRONTIER).exists():
            continue
        config, result = read_json(tdir / layout.CONFIG), read_json(tdir / layout.RESULT)
        if not config or not result or not result.get("checkpoint_path"):
            continue
        cfg = TrialConfig.from_dict({**config, **settings})
        try:
            evaluate_frontier(cfg, join(result["checkpoint_path"], layout.ADAPTER), tdir,
                              actors=actors)
        except Exception as err:  # noqa: BLE001 - advisory: the trial's own result stands
            log.warning("frontier of trial %s not measured: %s: %s", tid, type(err).__name__,
                        err)
            continue
        swept.append(tid)
        log.info("frontier of trial %s: %s", tid, cfg.frontier_grid())
    return swept
