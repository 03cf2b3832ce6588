"""Pareto optimality of trials over one or more objectives, and the study's order built on it
(pure: a table in, booleans, ranks or the sorted table out).

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


def default_order(df: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The study's order, best first by its objective(s): one objective → its value; two →
    Pareto rank (non-dominated sorting), then each objective in turn. Missing values last,
    stable. The one owner of the order: the review shows it and ``leaderboard.parquet`` is
    written in it. A frame without ``pareto_rank`` (a bare leaderboard) is ranked here, as
    :func:`enrich` ranks it, without adding the column."""
    keys, ascending = [], []
    ranked = df
    if len(objectives) > 1:
        if "pareto_rank" not in df:
            ranked = df.assign(pareto_rank=pareto_levels(df, objectives))
        keys.append("pareto_rank")
        ascending.append(True)
    for metric, mode in objectives:
        if metric in df:
            keys.append(metric)
            ascending.append(mode == "min")
    if not keys or df.empty:
        return df.reset_index(drop=True)
    return sort_rows(ranked, keys, ascending)[list(df.columns)]


def pareto_levels(df: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """``pareto_rank`` of every row; all rows tie (``inf``) when an objective is no column,
    as they do in ``polychromic.review.study.enrich``, which adds it as NaN."""
    if len(df) and all(metric in df for metric, _ in objectives):
        return pareto_rank(df, list(objectives))
    return np.full(len(df), np.inf)


def sort_rows(df: pd.DataFrame, keys: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Stable multi-key sort with NaN last for every key (pandas only does it for the first)."""
    out = df.copy()
    order = np.arange(len(out))
    for key, asc in reversed(list(zip(keys, ascending, strict=True))):
        values = out[key].iloc[order]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() >= values.notna().sum() and values.notna().any():
            values = numeric.astype(float)
        idx = values.reset_index(drop=True).sort_values(ascending=asc, kind="stable",
                                                        na_position="last").index
        order = order[np.asarray(idx)]
    return out.iloc[order].reset_index(drop=True)
