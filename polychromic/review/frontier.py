"""The leaderboard's columns against the baseline's temperature frontier (issue 20).

The λ=0 baseline's ``frontier.parquet`` (``polychromic.store.layout.FRONTIER``: the
generations schema, one row per sample at every frontier temperature, the temperature in
``eval_temperature``) gives the baseline's metrics at each temperature; every finished trial's
``generations.parquet`` is judged against them with ``polychromic.stats.frontier``. The
columns (one set per row; NaN / "" where there is nothing to say):

- per (quality Q, diversity D) pair of ``frontier.PAIRS``, for the gain in D at equal Q and in
  Q at equal D (Y at X): ``frontier_gain_Y_at_X`` with ``_ci_low``/``_ci_high``,
  ``mde_frontier_gain_Y_at_X``, ``frontier_defined_Y_at_X`` (share of resamples with a gain),
  ``frontier_range_Y_at_X`` (text: outside / near the edge of the range, which temperature
  would extend it) and ``frontier_matched_T_Y_at_X`` (the baseline temperature with the
  trial's X);
- per k: ``pass@k_best_T`` and ``pass@k_best_T_temperature`` (the baseline's, same on every
  row), ``delta_pass@k_vs_best_T`` with ``_ci_low``/``_ci_high`` and ``mde_pass@k_vs_best_T``;
- ``frontier_temperatures``: the baseline's temperatures, or ``not measured``;
- ``frontier_curve_D_at_Q`` (text), for a trial that has its own ``frontier.parquet``
  (``frontier_for: pareto | all``): the gain in D at equal Q of the trial at each of its own
  temperatures, ``T=0.85: +0.057 [+0.003, +0.11] above*; T=1: +0.009 [−0.01, +0.033]``, where
  above / below means the interval excludes 0 and ``*`` that it survives Holm's adjustment over
  that trial's temperatures (per pair); the verdict names the Holm-significant ones.

A study whose baseline has no ``frontier.parquet`` (every study before issue 20) gets
``frontier_temperatures = "not measured"`` and the note ``frontier: not measured …``; its
verdicts carry no frontier clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.metrics.aggregate import aggregate
from polychromic.review import confirm_frontier as CF
from polychromic.stats.bootstrap import N_RESAMPLES, SEED, weighted_metrics
from polychromic.stats.frontier import (
    PAIRS,
    delta_vs_best,
    frontier_gains,
    gain_column,
)
from polychromic.stats.multiplicity import holm_reject
from polychromic.stats.verdict import GAIN, LOSS, NO_CHANGE, judge_frontier
from polychromic.stats.verdict import as_float as _num
from polychromic.store import layout
from polychromic.store.generations import parquet_problem, read_frontier, read_generations
from polychromic.store.records import read_json

NOT_MEASURED = ("frontier: not measured (the λ=0 baseline has no frontier.parquet: deltas "
                "compare trials with the baseline at the same temperature only)")
#: tasks whose checker scores relevance as a cosine in the same MiniLM space as the semantic
#: diversity metrics (polychromic.tasks.quality)
SAME_ENCODER_TASKS = ("chitchat", "replies")
SAME_ENCODER = ("same encoder: this task's checker scores relevance as a cosine in the MiniLM "
                "space of semantic diversity: a quality gain and a semantic diversity loss are "
                "partly one effect")


def _empty_columns(n: int, ks: list[int]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {}
    for q, d in PAIRS:
        for y, x in ((d, q), (q, d)):
            g = gain_column(y, x)
            for name in (g, f"{g}_ci_low", f"{g}_ci_high", f"mde_{g}", f"p_value_{g}",
                         f"frontier_defined_{y}_at_{x}", f"frontier_matched_T_{y}_at_{x}"):
                cols[name] = [np.nan] * n
            cols[f"frontier_range_{y}_at_{x}"] = [""] * n
    for k in ks:
        m = f"pass@{k}_vs_best_T"
        for name in (f"pass@{k}_best_T", f"pass@{k}_best_T_temperature", f"delta_{m}",
                     f"delta_{m}_ci_low", f"delta_{m}_ci_high", f"mde_{m}", f"p_value_{m}"):
            cols[name] = [np.nan] * n
    return cols


def add_frontier(study_dir: Path, df: pd.DataFrame, finished: pd.Series,
                 warnings: list[list[str]]) -> pd.DataFrame:
    """The frontier columns (module docstring) of every row; notes go to
    ``df.attrs["notes"]``, problems with the frontier file to every row's ``warnings``."""
    notes: list[str] = []
    base_rows = df[df["is_baseline"].astype(bool) & finished.to_numpy()]
    base_dir = (layout.trial_dir(study_dir, str(base_rows["trial_id"].iloc[0]))
                if len(base_rows) else None)
    base_cfg: dict[str, Any] = {}
    if base_dir is not None:
        base_cfg = read_json(base_dir / layout.CONFIG) or {}
    if str(base_cfg.get("task") or "") in SAME_ENCODER_TASKS:
        notes.append(SAME_ENCODER)
    ks = [k for k in columns.PASS_KS if f"pass@{k}" in df]
    cols = _empty_columns(len(df), ks)
    cols["frontier_temperatures"] = ["not measured"] * len(df)
    for q, d in PAIRS:
        cols[f"frontier_curve_{d}_at_{q}"] = [""] * len(df)
    path = base_dir / layout.FRONTIER if base_dir is not None else None
    problem = parquet_problem(path) if path is not None else None
    if path is None or not path.is_file() or problem:
        notes.append(NOT_MEASURED if not problem else f"frontier: not measured ({problem})")
        return _finish(df, cols, notes)
    frontier = read_generations(path)
    base_gens = read_generations(base_dir / layout.GENERATIONS, ["prompt_id"])
    base_ids = sorted(set(base_gens["prompt_id"]))
    ct = float(base_cfg.get("class_threshold") or 0.8)
    by_t: dict[float, Any] = {}
    for t, part in frontier.groupby("eval_temperature", sort=True) if (
            "eval_temperature" in frontier) else []:
        if sorted(set(part["prompt_id"])) != base_ids:
            notes.append(f"frontier: T={float(t):g} has other prompts than the baseline's "
                         "evaluation: left out")
            continue
        by_t[float(t)] = weighted_metrics(part, class_threshold=ct)
    if not by_t:
        notes.append("frontier: not measured (frontier.parquet holds no temperature on the "
                     "baseline's prompts)")
        return _finish(df, cols, notes)
    temps = sorted(by_t)
    cols["frontier_temperatures"] = [", ".join(f"{t:g}" for t in temps)] * len(df)
    ones = np.ones((1, len(base_ids)))
    for k in ks:
        values = {t: float(by_t[t][f"pass@{k}"](ones)[0]) for t in temps
                  if f"pass@{k}" in by_t[t]}
        if values:
            best = max(values.items(), key=lambda tv: (tv[1], -tv[0]))
            cols[f"pass@{k}_best_T"] = [best[1]] * len(df)
            cols[f"pass@{k}_best_T_temperature"] = [best[0]] * len(df)
    better = {m: columns.better(m) for p in PAIRS for m in p}
    for i, (_, row) in enumerate(df.iterrows()):
        if row["is_baseline"] or not finished.iloc[i]:
            continue
        gpath = layout.trial_dir(study_dir, str(row["trial_id"])) / layout.GENERATIONS
        gens = read_generations(gpath)
        if sorted(set(gens["prompt_id"])) != base_ids:
            continue  # the deltas already warn about it
        mine = weighted_metrics(gens, class_threshold=ct)
        for (q, d), pair in frontier_gains(mine, by_t, PAIRS, len(base_ids), better,
                                           N_RESAMPLES, SEED).items():
            for (y, x), g in zip(((d, q), (q, d)), pair):
                c = gain_column(y, x)
                cols[c][i], cols[f"{c}_ci_low"][i], cols[f"{c}_ci_high"][i] = (
                    g.gain, g.ci_low, g.ci_high)
                cols[f"mde_{c}"][i], cols[f"p_value_{c}"][i] = g.mde, g.p_value
                cols[f"frontier_defined_{y}_at_{x}"][i] = g.defined
                cols[f"frontier_range_{y}_at_{x}"][i] = g.range_note
                cols[f"frontier_matched_T_{y}_at_{x}"][i] = g.matched_temperature
        for (q, d), text in own_curve(study_dir, str(row["trial_id"]), by_t, base_ids, ct,
                                      better).items():
            cols[f"frontier_curve_{d}_at_{q}"][i] = text
        for k in ks:
            m = f"pass@{k}"
            if m not in mine or not all(m in by_t[t] for t in temps):
                continue
            b = delta_vs_best(mine[m], {t: by_t[t][m] for t in temps}, len(base_ids),
                              N_RESAMPLES, SEED)
            v = f"{m}_vs_best_T"
            cols[f"delta_{v}"][i], cols[f"delta_{v}_ci_low"][i] = b.delta, b.ci_low
            cols[f"delta_{v}_ci_high"][i], cols[f"mde_{v}"][i] = b.ci_high, b.mde
            cols[f"p_value_{v}"][i] = b.p_value
    _holm_over_trials(cols)
    return _finish(df, cols, notes)


def _holm_over_trials(cols: dict[str, list[Any]]) -> None:
    """``significant_G`` beside every ``p_value_G`` of the frontier (each gain against the
    frontier, each pass@k against the best temperature): Holm over the study's compared
    trials, per column, as ``significant_M`` is for the deltas — the verdict's claims against
    the frontier survive the same selection among trials as its other claims."""
    for name in [c for c in cols if c.startswith("p_value_")]:
        cols["significant_" + name[len("p_value_"):]] = list(
            holm_reject(np.asarray(cols[name], dtype=float)))


def own_curve(study_dir: Path, trial_id: str, by_t: dict[float, Any], base_ids: list[Any],
              ct: float, better: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``frontier_curve_D_at_Q`` of one trial from its own ``frontier.parquet`` (module
    docstring); {} when it has none or its prompts differ from the baseline's."""
    per_t: dict[float, Any] = {}
    for t, part in read_frontier(layout.trial_dir(study_dir, trial_id) / layout.FRONTIER).items():
        if sorted(set(part["prompt_id"])) == base_ids:
            per_t[t] = frontier_gains(weighted_metrics(part, class_threshold=ct), by_t,
                                             PAIRS, len(base_ids), better, N_RESAMPLES, SEED)
    out: dict[tuple[str, str], str] = {}
    for pair in PAIRS:
        temps = [t for t in per_t if pair in per_t[t]]
        if not temps:
            continue
        gains = [per_t[t][pair][0] for t in temps]
        holm = holm_reject(np.array([g.p_value for g in gains]))
        items = []
        for t, g, adj in zip(temps, gains, holm):
            if not np.isfinite(g.gain):
                items.append(f"T={t:g}: {'outside' if g.range_note else 'not measured'}")
                continue
            up, low, high = g.oriented
            side = ("above" if low > 0 else "below" if high < 0 else "")
            side = "" if g.near_edge else side
            items.append(f"T={t:g}: {_s(g.gain)} [{_s(g.ci_low)}, {_s(g.ci_high)}]"
                         + (f" {side}{'*' if adj else ''}" if side else "")
                         + (f" (defined in {100 * g.defined:.0f}%)" if g.near_edge else ""))
        out[pair] = "; ".join(items)
    return out


def _finish(df: pd.DataFrame, cols: dict[str, list[Any]], notes: list[str]) -> pd.DataFrame:
    attrs = dict(df.attrs)
    out = pd.concat([df.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
    out.attrs.update(attrs)
    out.attrs["notes"] = [*attrs.get("notes", []), *notes]
    return out


def _s(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:+.3g}"


def frontier_rows(row: Any, confirmation: bool = False) -> list[tuple[str, ...]]:
    """(what, gain, 95% CI, MDE, note) of one leaderboard row against the baseline's frontier,
    for ``--trial``: every pair's gain in D at equal Q and in Q at equal D, then pass@k vs the
    baseline's best temperature; [] when the row has none. ``confirmation``: (what, gain, 95%
    CI, MDE, confirmation, note), the confirmation's gain against its seed pairs' frontiers
    (``polychromic.review.confirm_frontier.cell``) before the note."""
    out: list[tuple[str, ...]] = []

    def add(metric: str, *cells: str) -> None:
        extra = (CF.cell(row, metric),) if confirmation else ()
        out.append((*cells[:4], *extra, cells[4]))

    for q, d in PAIRS:
        for y, x in ((d, q), (q, d)):
            c = gain_column(y, x)
            gain, note = _num(row.get(c)), str(row.get(f"frontier_range_{y}_at_{x}") or "")
            if not np.isfinite(gain) and not note:
                continue
            defined = _num(row.get(f"frontier_defined_{y}_at_{x}"))
            t = _num(row.get(f"frontier_matched_T_{y}_at_{x}"))
            extra = [f"defined in {100 * defined:.0f}% of resamples"] if np.isfinite(defined) \
                and np.isfinite(gain) else []
            if np.isfinite(t):
                extra.append(f"matched T≈{t:.2g}")
            mde = _num(row.get(f"mde_{c}"))
            add(c, f"{columns.short(y)} at equal {columns.short(x)}", _s(gain),
                        f"[{_s(_num(row.get(f'{c}_ci_low')))}, {_s(_num(row.get(f'{c}_ci_high')))}]"
                        if np.isfinite(gain) else "", f"±{mde:.2g}" if np.isfinite(mde) else "",
                "; ".join([*extra, *([note] if note else [])]))
    for k in columns.PASS_KS:
        v = f"pass@{k}_vs_best_T"
        delta = _num(row.get(f"delta_{v}"))
        if not np.isfinite(delta):
            continue
        mde = _num(row.get(f"mde_{v}"))
        add(v, f"pass@{k} vs best T", _s(delta),
            f"[{_s(_num(row.get(f'delta_{v}_ci_low')))}, "
            f"{_s(_num(row.get(f'delta_{v}_ci_high')))}]",
            f"±{mde:.2g}" if np.isfinite(mde) else "",
            f"baseline's best: {_num(row.get(f'pass@{k}_best_T')):.3g} at "
            f"T={_num(row.get(f'pass@{k}_best_T_temperature')):g}")
    return out



def own_curve_rows(row: Any) -> list[tuple[str, str]]:
    """(what, the trial's gain at each of its own temperatures) for ``--trial``: the
    ``frontier_curve_D_at_Q`` text of each pair the trial's own sweep measured (``frontier_for``),
    ``*`` = significant after Holm over that trial's temperatures; [] without a sweep."""
    out = []
    for q, d in PAIRS:
        text = str(row.get(f"frontier_curve_{d}_at_{q}") or "")
        if text and text != "nan":
            out.append((f"{columns.short(d)} at equal {columns.short(q)}", text))
    return out

#: the frontier columns ``--wide`` shows: the gain in each headline diversity at equal pass@1,
#: and pass@1 against the baseline's best temperature
WIDE = (*(gain_column(d, "pass@1") for q, d in PAIRS if q == "pass@1"), "delta_pass@1_vs_best_T")


def wide_cell(row: Any, col: str) -> str:
    """``+0.057\\n[+0.003, +0.11]`` (a ``--wide`` cell), the range note's head, or ""."""
    base = col[len("delta_"):] if col.startswith("delta_") else col
    value = _num(row.get(col))
    if np.isfinite(value):
        return (f"{_s(value)}\n[{_s(_num(row.get(f'{col}_ci_low')))}, "
                f"{_s(_num(row.get(f'{col}_ci_high')))}]")
    if base.startswith("frontier_gain_"):
        note = str(row.get(base.replace("frontier_gain_", "frontier_range_", 1)) or "")
        return "outside range" if note.startswith("outside") else ""
    return ""


def wide_header(col: str) -> str:
    """A ``--wide`` column's header: ``sem div @ pass@1 vs T``, ``pass@1 vs best T``."""
    return columns.short(col[len("delta_"):] if col.startswith("delta_") else col)


def baseline_points(study_dir: Path, df: pd.DataFrame,
                    metrics: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
    """(temperature, {metric: value}) of the λ=0 baseline at every frontier temperature
    (``trial_points``); [] when not measured or unreadable."""
    rows = df[df["is_baseline"].astype(bool) & df["status"].eq("finished")]
    if not len(rows):
        return []
    return trial_points(study_dir, str(rows["trial_id"].iloc[0]), metrics)


def trial_points(study_dir: Path, trial_id: str,
                 metrics: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
    """(temperature, {metric: value}) of one trial at every temperature of its
    ``frontier.parquet`` (``polychromic.metrics.aggregate`` of each temperature's samples, the
    trial's class threshold), ascending in T; [] when it has none or it cannot be read."""
    tdir = layout.trial_dir(study_dir, trial_id)
    parts = read_frontier(tdir / layout.FRONTIER)
    if not parts:
        return []
    ct = float((read_json(tdir / layout.CONFIG) or {}).get("class_threshold") or 0.8)
    out = []
    for t, part in parts.items():
        values = aggregate(part.drop(columns="eval_temperature"), class_threshold=ct)
        out.append((t, {m: _num(values.get(m)) for m in metrics}))
    return out


def position(row: Any, quality: str, diversity: str) -> str:
    """``above`` / ``below`` / ``on`` the frontier (or "" when unknown or no claim) for the
    plot's colours: the verdict's judgement of the pair (``polychromic.stats.verdict``)."""
    judged = judge_frontier(row, quality, diversity)
    return {GAIN: "above", LOSS: "below", NO_CHANGE: "on"}.get(judged.outcome, "") if judged else ""


def frontier_columns(names: Sequence[Any]) -> list[str]:
    """The frontier columns among ``names`` (module docstring), in their order: what the Optuna
    user attributes and the exported trial record carry besides the deltas."""
    return [c for c in map(str, names)
            if (c.startswith(("frontier_", "mde_frontier_gain_", "p_value_frontier_gain_",
                              "significant_frontier_gain_")) or "_best_T" in c)
            and not c.startswith("confirm")]  # the confirmation's: like every confirm_* column
