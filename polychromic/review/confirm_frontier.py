"""The confirmation's gains against the baseline's temperature frontier (issues 20 and 19).

A study judges its trials against the λ=0 baseline's temperature frontier
(``polychromic.review.frontier``); ``study/confirm.py`` re-trains the chosen trial and the
baseline with R new seeds, and each seed pair's λ=0 run samples its own frontier on the fresh
prompts (``frontier.parquet``, polychromic.tuning.trial.evaluate_baseline), the λ>0 run its
eval temperature. Per seed pair r, the trial's gain is taken against *that pair's* baseline
frontier (``polychromic.stats.frontier.gain_draws``: the point on all prompts and on every
prompt resample, the resamples shared by every pair), and the R pairs go through the two-level
bootstrap (``polychromic.stats.two_level.two_level_from_draws``): the gain's interval counts
the training seeds as well as the prompts.

Columns of a confirmed trial's leaderboard row (NaN / "" where there is nothing to say):

- per (quality Q, diversity D) pair of ``frontier.PAIRS`` and both directions (Y at X):
  ``confirm_frontier_gain_Y_at_X`` with ``_ci_low``/``_ci_high``,
  ``confirm_frontier_defined_Y_at_X`` (share of prompt resamples in which every pair's gain is
  defined) and ``confirm_frontier_range_Y_at_X`` (why there is no number, or "near the edge");
- per k: ``confirm_delta_pass@k_vs_best_T`` with ``_ci_low``/``_ci_high`` (the trial's
  pass@k − its pair baseline's best over the frontier temperatures, re-chosen per resample);
- ``confirm_frontier``: the temperatures measured per seed pair, or ``not measured (…)``.

``confirmed_M`` of each follows the confirmation rule of every metric
(``polychromic.review.confirmation.RULE``), against the study's selection value (``M`` for a
frontier gain, ``delta_M`` for pass@k vs best T); a gain near the edge of the baseline's range
(defined in fewer than 95% of resamples) or outside it is not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.core import columns
from polychromic.stats.bootstrap import N_RESAMPLES, SEED, Weighted, weighted_metrics
from polychromic.stats.frontier import MIN_DEFINED, PAIRS, best_draws, gain_column, gain_draws
from polychromic.stats.two_level import two_level_from_draws
from polychromic.stats.verdict import as_float as _num
from polychromic.store import layout
from polychromic.store.generations import read_frontier

NOT_MEASURED = ("not measured (the confirmation's λ=0 runs have no frontier.parquet on the "
                "fresh prompts: the study's frontier_temperatures is [] or their frontier pass "
                "failed)")


def gain_metrics() -> list[str]:
    """Every frontier gain a confirmation computes: ``frontier_gain_Y_at_X``, per pair of
    ``PAIRS`` the gain in D at equal Q, then in Q at equal D."""
    return [gain_column(y, x) for q, d in PAIRS for y, x in ((d, q), (q, d))]


def best_t_metrics(ks: Sequence[int] = columns.PASS_KS) -> list[str]:
    """``pass@k_vs_best_T`` of each k."""
    return [f"pass@{k}_vs_best_T" for k in ks]


#: the frontier rows the selection-vs-confirmation view shows: the gain in each headline
#: diversity at equal pass@1, then pass@1 against the baseline's best temperature (all of
#: ``gain_metrics`` and ``best_t_metrics`` are in the leaderboard)
SHOWN = (*(gain_column(d, "pass@1") for q, d in PAIRS if q == "pass@1"), "pass@1_vs_best_T")


def is_frontier_metric(m: str) -> bool:
    """A frontier gain or a pass@k vs best T (``SHOWN``, ``gain_metrics``, ``best_t_metrics``)."""
    return m.startswith("frontier_gain_") or m.endswith("_vs_best_T")


def selection_column(m: str) -> str:
    """The study's (selection) column of metric ``m``: ``M`` for a frontier gain (its own
    column), else ``delta_M``; its interval is ``…_ci_low``/``…_ci_high``."""
    return m if m.startswith("frontier_gain_") else f"delta_{m}"


def confirm_column(m: str) -> str:
    """The confirmation's column of metric ``m``: ``confirm_`` + its selection column."""
    return f"confirm_{selection_column(m)}"


def empty_columns(n: int) -> dict[str, list[Any]]:
    """The module docstring's columns for ``n`` rows, all NaN / ""."""
    cols: dict[str, list[Any]] = {}
    for m in (*gain_metrics(), *best_t_metrics()):
        c = confirm_column(m)
        for name in (c, f"{c}_ci_low", f"{c}_ci_high", f"confirmed_{m}"):
            cols[name] = [np.nan] * n
    for m in gain_metrics():
        tail = m[len("frontier_gain_"):]
        cols[f"confirm_frontier_defined_{tail}"] = [np.nan] * n
        cols[f"confirm_frontier_range_{tail}"] = [""] * n
    cols["confirm_frontier"] = [""] * n
    return cols


def pair_frontier(study_dir: Path, base_id: str, prompts: Sequence[Any],
                  class_threshold: float) -> dict[float, dict[str, Weighted]]:
    """{temperature: metric functions of prompt weights} of one confirmation λ=0 run's
    ``frontier.parquet`` on ``prompts`` (sorted ids; a temperature that lacks one is left
    out); {} when it has none or it cannot be read."""
    out = {}
    for t, part in read_frontier(layout.trial_dir(study_dir, base_id) / layout.FRONTIER).items():
        part = part[part["prompt_id"].isin(prompts)]
        if sorted(set(part["prompt_id"])) == list(prompts):
            out[t] = weighted_metrics(part, class_threshold=class_threshold)
    return out


def confirm_frontier(trials: Sequence[Mapping[str, Weighted]],
                     frontiers: Sequence[Mapping[float, Mapping[str, Weighted]]],
                     n_prompts: int, ks: Sequence[int] = columns.PASS_KS,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """One confirmed trial's columns (module docstring; no ``confirmed_M``): ``trials[r]``
    the metric functions of pair r's trial run, ``frontiers[r]`` its baseline run's frontier
    (``pair_frontier``), over the same ``n_prompts`` prompts in the same order."""
    out: dict[str, Any] = {}
    measured = [sorted(f) for f in frontiers if f]
    if len(measured) < len(frontiers) or not frontiers:
        out["confirm_frontier"] = NOT_MEASURED if not measured else (
            f"not measured in {len(frontiers) - len(measured)} of {len(frontiers)} seed "
            "pair(s) (their λ=0 run has no frontier.parquet on the fresh prompts): no gain")
        return out
    grids = {", ".join(f"{t:g}" for t in ts) for ts in measured}
    out["confirm_frontier"] = (f"T = {grids.pop()} in each of {len(measured)} seed pair(s)"
                               if len(grids) == 1 else
                               f"measured in each of {len(measured)} seed pair(s), "
                               f"temperatures differ: {'; '.join(sorted(grids))}")
    better = {m: columns.better(m) for p in PAIRS for m in p}
    per_pair = [gain_draws(t, f, PAIRS, n_prompts, better, n_resamples, seed)
                for t, f in zip(trials, frontiers)]
    for pair in PAIRS:
        if not all(pair in g for g in per_pair):
            continue
        q, d = pair
        for k, (y, x) in enumerate(((d, q), (q, d))):
            points = np.array([g[pair][0][k] for g in per_pair])
            draws = np.stack([g[pair][1][k] for g in per_pair])
            res, defined = two_level_from_draws(points, draws)
            c, tail = confirm_column(gain_column(y, x)), f"{y}_at_{x}"
            out[c], out[f"{c}_ci_low"], out[f"{c}_ci_high"] = res.delta, res.ci_low, res.ci_high
            out[f"confirm_frontier_defined_{tail}"] = defined
            outside = int(np.sum(~np.isfinite(points)))
            if outside:
                out[f"confirm_frontier_range_{tail}"] = (
                    f"outside the baseline's range in {outside} of {len(points)} seed "
                    f"pair(s): the trial's {x} is beyond every temperature of that pair's "
                    "baseline frontier")
            elif defined < MIN_DEFINED:
                out[f"confirm_frontier_range_{tail}"] = (
                    f"near the edge of the baseline's range (defined in {100 * defined:.0f}% "
                    "of resamples)")
    for k in ks:
        m = f"pass@{k}"
        if not all(m in t for t in trials) or not all(m in b for f in frontiers
                                                      for b in f.values()):
            continue
        draws = [best_draws(t[m], {tt: b[m] for tt, b in f.items()}, n_prompts, n_resamples,
                            seed) for t, f in zip(trials, frontiers)]
        res, _ = two_level_from_draws(np.array([d[0] for d in draws]),
                                      np.stack([d[1] for d in draws]))
        c = confirm_column(f"{m}_vs_best_T")
        out[c], out[f"{c}_ci_low"], out[f"{c}_ci_high"] = res.delta, res.ci_low, res.ci_high
    return out


def judged(m: str, values: Mapping[str, Any]) -> bool:
    """Whether the confirmation of frontier metric ``m`` can be judged: a finite gain defined
    in at least ``MIN_DEFINED`` of the resamples (pass@k vs best T: a finite delta)."""
    c = confirm_column(m)
    if not np.isfinite(float(values.get(c, np.nan))):
        return False
    if m.startswith("frontier_gain_"):
        defined = float(values.get(f"confirm_frontier_defined_{m[len('frontier_gain_'):]}",
                                   np.nan))
        return bool(defined >= MIN_DEFINED)
    return True


def cell(row: Mapping[str, Any], m: str) -> str:
    """The confirmation of frontier metric ``m`` of a leaderboard row as one cell:
    ``+0.05 [+0.01, +0.09] confirmed``, ``… not confirmed``, ``… not judged``, the range note
    when there is no number, or "" when the trial has no confirmation of it."""
    c = confirm_column(m)
    value = _num(row.get(c))
    note = (str(row.get(f"confirm_frontier_range_{m[len('frontier_gain_'):]}") or "")
            if m.startswith("frontier_gain_") else "")
    if not np.isfinite(value):
        return note.split(":")[0] if note else ""
    low, high = _num(row.get(f"{c}_ci_low")), _num(row.get(f"{c}_ci_high"))
    ci = f" [{low:+.3g}, {high:+.3g}]" if np.isfinite(low) and np.isfinite(high) else ""
    state = row.get(f"confirmed_{m}")
    word = ("not judged" if not isinstance(state, (bool, np.bool_)) and not np.isfinite(
        _num(state)) else "confirmed" if bool(state) else "not confirmed")
    return f"{value:+.3g}{ci} {word}"
