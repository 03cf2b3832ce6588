"""Pareto optimality of trials over one or more objectives (pure: a table in, booleans out).

A trial is Pareto-optimal when no other trial is at least as good on every objective and
strictly better on one. A trial with a missing (NaN) objective value (failed, early-stopped,
still running) is never optimal and never dominates anything: an unknown value must not make
a finished trial look dominated, nor look like a result. Ties are kept: two trials with equal
values are both optimal when nothing else beats them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MODES = ("min", "max")


def _scores(df: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """Objective values as an (n_rows, n_objectives) float array where larger is better."""
    if not objectives:
        raise ValueError("pareto needs at least one objective")
    cols = []
    for metric, mode in objectives:
        if mode not in MODES:
            raise ValueError(f"objective {metric!r}: mode must be 'min' or 'max', got {mode!r}")
        if metric not in df.columns:
            raise ValueError(f"objective {metric!r} is not a column (columns: "
                             f"{', '.join(map(str, df.columns))})")
        values = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        cols.append(values if mode == "max" else -values)
    return np.stack(cols, axis=1) if len(df) else np.zeros((0, len(objectives)))


def _dominated(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each candidate row, whether another candidate row dominates it (O(n² m), vectorized)."""
    sub = scores[candidates]
    ge = (sub[:, None, :] >= sub[None, :, :]).all(axis=2)  # [j, i]: j ≥ i everywhere
    gt = (sub[:, None, :] > sub[None, :, :]).any(axis=2)  # [j, i]: j > i somewhere
    out = np.zeros(len(scores), dtype=bool)
    out[np.flatnonzero(candidates)] = (ge & gt).any(axis=0)
    return out


def pareto_mask(df: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """Boolean array, one per row of ``df``: True where the row is Pareto-optimal.

    ``objectives`` is a list of ``(column, mode)`` with mode ``"min"`` or ``"max"``; columns
    are coerced to numbers. Rows with a NaN in any objective are False and are ignored when
    deciding whether other rows are dominated. Raises ``ValueError`` for an unknown column or
    mode.
    """
    scores = _scores(df, objectives)
    valid = ~np.isnan(scores).any(axis=1)
    return valid & ~_dominated(scores, valid)


def pareto_rank(df: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """Non-dominated sorting: 1 for the Pareto front, 2 for the front once 1 is removed, …

    Rows with a NaN objective get ``np.inf`` (they sort after every ranked row). Used to order
    a multi-objective leaderboard, where no single column gives a total order.
    """
    scores = _scores(df, objectives)
    rank = np.full(len(scores), np.inf)
    left = ~np.isnan(scores).any(axis=1)
    level = 1
    while left.any():
        front = left & ~_dominated(scores, left)
        rank[front] = level
        left &= ~front
        level += 1
    return rank
