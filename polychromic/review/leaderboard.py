"""Trial leaderboard: one row per trial, built from the study folder alone.

It reads only what trials wrote (config.json, history.jsonl, result.json, status.json), so it
works while a study runs, after it finished, and after it was interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.core.columns import KNOBS
from polychromic.metrics.aggregate import COMPARED
from polychromic.review import confirm_frontier as CF
from polychromic.review.frontier import add_frontier
from polychromic.stats import headroom as H
from polychromic.stats.bootstrap import N_RESAMPLES, SEED, paired_delta, weighted_metrics
from polychromic.stats.multiplicity import holm_reject
from polychromic.stats.ranking import default_order
from polychromic.stats.two_level import two_level_delta
from polychromic.stats.verdict import length_note, verdict_line
from polychromic.store import layout
from polychromic.store.generations import parquet_problem, read_generations
from polychromic.store.records import load_json, read_json, read_jsonl

#: leaderboard columns that hold text, not numbers
TEXT_COLUMNS = ("trial_id", "status", "error", "checkpoint_path", "is_baseline",
                "diversity_measure", "generation_backend", "verdict", "verdict_full", "warnings")
COLUMNS = (
    "trial_id", "status", "error", "is_baseline", *KNOBS, "steps", "final_quality_loss",
    "mean_diversity_score", "mean_diversity_grad_share",
    *(f"pass@{k}" for k in columns.PASS_KS), *columns.EVAL_METRICS,
    "train_seconds", "wall_seconds", "checkpoint_path",
)


def trial_row(tdir: Path) -> dict[str, Any] | None:
    """One trial's leaderboard row, or None when the folder holds no config yet.

    A trial whose files cannot be read (config.json or result.json/status.json not a JSON
    object, a truncated or garbage ``generations.parquet``, a FIFO or device in place of a
    file) is still a row: status ``corrupt`` with the reasons in ``error``, and whatever could
    be read. One bad trial never hides the others nor fails the whole study."""
    config, problem = load_json(tdir / layout.CONFIG)
    if config is None and problem is None:
        return None
    problems = [f"{layout.CONFIG}: {problem}"] if problem else []
    config = _record(config, layout.CONFIG, problems)
    result = _record(_loaded(tdir / layout.RESULT, problems), layout.RESULT, problems)
    status = _record(_loaded(tdir / layout.STATUS, problems), layout.STATUS, problems)
    for name in (layout.GENERATIONS, layout.HEADROOM):
        why = parquet_problem(tdir / name)
        if why:
            problems.append(f"{name}: {why}")
    history = read_jsonl(tdir / layout.HISTORY)
    last = result or (history[-1] if history else {})
    row: dict[str, Any] = {"trial_id": tdir.name}
    row["status"] = status.get("status") or result.get("status") or "running"
    row["error"] = status.get("error") or result.get("error") or ""
    if not isinstance(row["status"], str) or not isinstance(row["error"], str):
        problems.append(f"{layout.STATUS}/{layout.RESULT}: status and error must be text")
        row["error"] = str(row["error"])
    try:
        lam = float(config.get("lambda_", 0))
    except (TypeError, ValueError, OverflowError):
        problems.append(f"{layout.CONFIG}: lambda_ is not a number ({config.get('lambda_')!r:.40})")
        lam = float("nan")
    row["is_baseline"] = lam == 0.0
    row["role"] = str(config.get("role") or "search")
    row["confirm_of"] = config.get("confirm_of")
    row["seed"] = config.get("seed")
    for knob in KNOBS:
        row[knob] = config.get(knob)
    row["steps"] = last.get("step", 0)
    row["final_quality_loss"] = last.get("quality_loss")
    row["mean_diversity_score"] = last.get("mean_diversity_score")
    row["mean_diversity_grad_share"] = last.get("mean_diversity_grad_share")
    for key in COLUMNS:
        if key not in row:
            row[key] = result.get(key, last.get(key))
    row.update({k: v for k, v in result.items() if k.startswith("pass@") and k not in row})
    if problems and row["status"] != "abandoned":  # an abandoned folder is not shown at all
        row["status"] = "corrupt"
        row["error"] = "; ".join(problems)
    return row


def _loaded(path: Path, problems: list[str]) -> Any:
    """A JSON record of the trial, or None; a corrupt one adds its reason to ``problems``."""
    value, problem = load_json(path)
    if problem:
        problems.append(f"{path.name}: {problem}")
    return value


def _record(value: Any, name: str, problems: list[str]) -> dict[str, Any]:
    """``value`` if it is a JSON object; else ``{}``, and a reason in ``problems``."""
    if value is None or isinstance(value, dict):
        return value or {}
    problems.append(f"{name}: not a JSON object (a {type(value).__name__})")
    return {}


def build_leaderboard(study_dir: Path, space: Any | None = None) -> pd.DataFrame:
    """All trials of a study, in the study's order (``polychromic.stats.ranking.default_order``, best first)
    when the search space ``space`` is given, else by trial id; the confirmation runs
    (``role: confirm``) are not rows: they fill the ``confirm_*`` columns of the trial they
    confirm (``add_confirmation``). ``attrs``: ``bootstrap`` (how the delta CIs were
    computed), ``multiplicity`` (the Holm family of the verdicts) and ``notes``."""
    rows = [r for t in sorted(layout.trials_dir(study_dir).glob("*"))
            if t.is_dir() and (r := trial_row(t))
            and r["status"] != "abandoned"]  # see polychromic.tuning.resume
    confirm = [r for r in rows if r.get("role") == "confirm"]
    rows = [r for r in rows if r.get("role") != "confirm"]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, *(k for r in rows for k in r)])))
    for col in df.columns:
        if col not in TEXT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df = add_deltas(Path(study_dir), df)
    # what add_deltas says about the whole table (how the CIs were computed, the Holm family,
    # the frontier and same-encoder notes): the steps below build new frames without it
    attrs = {k: (list(v) if isinstance(v, list) else v) for k, v in df.attrs.items()}
    df = add_confirmation(Path(study_dir), df, confirm)
    if space is not None and len(df):
        df = default_order(df, space.objectives)
    df = df.reset_index(drop=True)
    df.attrs.update(attrs)
    return df


def add_deltas(study_dir: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Columns ``delta_M``, ``delta_M_ci_low``, ``delta_M_ci_high``,
    ``significant_unadjusted_M`` (this comparison alone: the CI excludes 0), ``rel_delta_M``
    (%), ``mde_M``, ``p_value_M`` and ``significant_M`` (Holm-adjusted, the verdict's: see
    ``polychromic.stats.significance``) for every compared
    metric M (``aggregate.COMPARED``), each finished trial against the λ=0 baseline (paired
    bootstrap over prompts, see ``polychromic.stats.bootstrap``; MDE: ``polychromic.stats.power``; Holm
    over the study's trials: ``polychromic.stats.multiplicity``); then the headroom columns
    (``add_headroom``), the frontier columns (``polychromic.review.frontier``), ``warnings`` and
    the ``verdict`` line (``polychromic.stats.verdict``)."""

    names = list(COMPARED)
    new: dict[str, list[Any]] = {f"{p}{m}{s}": [] for m in names
                                 for p, s in (("delta_", ""), ("delta_", "_ci_low"),
                                              ("delta_", "_ci_high"), ("significant_unadjusted_", ""),
                                              ("rel_delta_", ""), ("mde_", ""),
                                              ("p_value_", ""))}
    warnings: list[list[str]] = [[] for _ in range(len(df))]
    gens_path = {t: layout.trial_dir(study_dir, t) / layout.GENERATIONS for t in df["trial_id"]}
    finished = df["status"].eq("finished") & df["trial_id"].map(lambda t: gens_path[t].is_file())
    base_rows = df[df["is_baseline"].astype(bool) & finished]
    base = None
    if len(base_rows):
        base_gens = read_generations(gens_path[base_rows["trial_id"].iloc[0]])
        base_ids = sorted(set(base_gens["prompt_id"]))
        base_cfg = read_json(gens_path[base_rows["trial_id"].iloc[0]].parent / layout.CONFIG)
        # one class threshold for both sides of every delta: the baseline's
        class_threshold = float((base_cfg or {}).get("class_threshold") or 0.8)
        base = weighted_metrics(base_gens, class_threshold=class_threshold)
        top_k = max((int(c[5:]) for c in df.columns if c.startswith("pass@")), default=0)
        top = base_rows[f"pass@{top_k}"].iloc[0] if top_k else float("nan")
        if top > 0.95:
            for w in warnings:
                w.append(f"ceiling: baseline pass@{top_k} = {top:.3f} > 0.95; the task or "
                         "checker cannot show a gain")
    for i, (_, row) in enumerate(df.iterrows()):
        deltas = {}
        if base is not None and finished.iloc[i] and not row["is_baseline"]:
            gens = read_generations(gens_path[row["trial_id"]])
            if sorted(set(gens["prompt_id"])) == base_ids:
                mine = weighted_metrics(gens, class_threshold=class_threshold)
                deltas = {m: paired_delta(mine[m], base[m], len(base_ids), N_RESAMPLES, SEED)
                          for m in names if m in mine and m in base}
            else:
                warnings[i].append("prompts differ from the baseline's: no deltas")
        for m in names:
            d = deltas.get(m)
            new[f"delta_{m}"].append(d.delta if d else np.nan)
            new[f"delta_{m}_ci_low"].append(d.ci_low if d else np.nan)
            new[f"delta_{m}_ci_high"].append(d.ci_high if d else np.nan)
            new[f"significant_unadjusted_{m}"].append(d.significant if d else False)
            new[f"rel_delta_{m}"].append(d.relative if d else np.nan)
            new[f"mde_{m}"].append(d.mde if d else np.nan)
            new[f"p_value_{m}"].append(d.p_value if d else np.nan)
    for m in names:  # Holm over the study's finished non-baseline trials, per metric
        new[f"significant_{m}"] = list(holm_reject(np.asarray(new[f"p_value_{m}"])))
    out = pd.concat([df.reset_index(drop=True), pd.DataFrame(new)], axis=1)
    out = add_headroom(study_dir, out, warnings)
    out = add_frontier(study_dir, out, finished, warnings)
    for i, (_, row) in enumerate(out.iterrows()):
        note = length_warning(row)
        if note:
            warnings[i].append(note)
    out["warnings"] = ["; ".join(dict.fromkeys(w)) for w in warnings]
    base_headroom = {m: _baseline_value(out, f"headroom_{m}") for m in columns.DIVERSITY}
    base_headroom = {m: v for m, v in base_headroom.items() if v is not None}
    knobs = [k for k in KNOBS if k in out and (k == "lambda_" or out[k].nunique(dropna=True) > 1)]
    for col, full in (("verdict", False), ("verdict_full", True)):
        out[col] = [verdict_line(row, base_headroom, knobs, full=full) if not row["is_baseline"]
                    else "" for _, row in out.iterrows()]
    out.attrs["bootstrap"] = f"paired bootstrap over prompts, {N_RESAMPLES} resamples, seed {SEED}"
    compared = int((~out["is_baseline"].astype(bool) & finished.to_numpy()).sum())
    out.attrs["multiplicity"] = (f"Holm over the study's {compared} finished non-baseline "
                                 "trial(s) (significant_M)")
    return out


def add_confirmation(study_dir: Path, df: pd.DataFrame,
                     runs: list[dict[str, Any]]) -> pd.DataFrame:
    """For each trial that ``study/confirm.py`` re-trained: ``confirm_runs`` (finished /
    started), ``confirm_seeds`` (complete seed pairs), ``confirm_prompts``, and per compared
    metric M ``confirm_delta_M`` with ``_ci_low``/``_ci_high`` (two-level bootstrap over seed
    pairs and confirmation prompts, ``polychromic.stats.two_level``) and ``confirmed_M``: the
    confirmation interval excludes 0 on the side of the selection delta; the same for the
    gains against each seed pair's baseline temperature frontier
    (``polychromic.review.confirm_frontier``). ``confirmation`` holds the line a user reads."""

    cols: dict[str, list[Any]] = {c: [np.nan] * len(df) for c in (
        "confirm_runs", "confirm_started", "confirm_seeds", "confirm_prompts",
        *(f"confirm_delta_{m}{s}" for m in COMPARED for s in ("", "_ci_low", "_ci_high")),
        *(f"confirmed_{m}" for m in COMPARED))}
    cols.update(CF.empty_columns(len(df)))
    cols["confirmation"] = [""] * len(df)
    ks = [k for k in columns.PASS_KS if f"pass@{k}" in df]
    for i, trial_id in enumerate(df["trial_id"]):
        mine = [r for r in runs if r.get("confirm_of") == trial_id]
        if not mine:
            continue
        done = [r for r in mine if r["status"] == "finished"
                and (layout.trial_dir(study_dir, r["trial_id"]) / layout.GENERATIONS).is_file()]
        cols["confirm_runs"][i], cols["confirm_started"][i] = len(done), len(mine)
        by_seed: dict[Any, dict[bool, dict[str, Any]]] = {}
        for r in done:
            by_seed.setdefault(r.get("seed"), {})[bool(r["is_baseline"])] = r
        pairs = [(p[False], p[True]) for _, p in sorted(by_seed.items(), key=lambda kv: str(kv[0]))
                 if False in p and True in p]
        cols["confirm_seeds"][i] = len(pairs)
        if not pairs:
            continue
        gens = [(read_generations(layout.trial_dir(study_dir, t["trial_id"]) / layout.GENERATIONS),
                 read_generations(layout.trial_dir(study_dir, b["trial_id"]) / layout.GENERATIONS))
                for t, b in pairs]
        common = sorted(set.intersection(*(set(g["prompt_id"]) for pair in gens for g in pair)))
        cols["confirm_prompts"][i] = len(common)
        if not common:
            continue
        base_cfg = read_json(layout.trial_dir(study_dir, pairs[0][1]["trial_id"])
                             / layout.CONFIG) or {}
        ct = float(base_cfg.get("class_threshold") or 0.8)
        fns = [(weighted_metrics(t[t["prompt_id"].isin(common)], class_threshold=ct),
                weighted_metrics(b[b["prompt_id"].isin(common)], class_threshold=ct))
               for t, b in gens]
        parts: dict[str, list[str]] = {"confirmed": [], "not confirmed": []}
        for m in COMPARED:
            if not all(m in t and m in b for t, b in fns):
                continue
            d = two_level_delta([t[m] for t, _ in fns], [b[m] for _, b in fns], len(common))
            cols[f"confirm_delta_{m}"][i] = d.delta
            cols[f"confirm_delta_{m}_ci_low"][i] = d.ci_low
            cols[f"confirm_delta_{m}_ci_high"][i] = d.ci_high
            ok = _confirmed(df, i, f"delta_{m}", d.ci_low, d.ci_high)
            if ok is None:
                continue
            cols[f"confirmed_{m}"][i] = ok
            if m in ("pass@1", "quality_mean", *columns.HEADLINE_DIVERSITY):
                parts["confirmed" if ok else "not confirmed"].append(
                    f"{m} {d.delta:+.3g} [{d.ci_low:+.3g}, {d.ci_high:+.3g}] "
                    f"(selection {df[f'delta_{m}'].iloc[i]:+.3g})")
        # the gains against each seed pair's own baseline frontier (review.confirm_frontier)
        fronts = [CF.pair_frontier(study_dir, b["trial_id"], common, ct) for _, b in pairs]
        values = CF.confirm_frontier([t for t, _ in fns], fronts, len(common), ks)
        for c, v in values.items():
            cols[c][i] = v
        for m in (*CF.gain_metrics(), *CF.best_t_metrics(ks)):
            c = CF.confirm_column(m)
            ok = (_confirmed(df, i, CF.selection_column(m), values[f"{c}_ci_low"],
                             values[f"{c}_ci_high"]) if CF.judged(m, values) else None)
            if ok is None:
                continue
            cols[f"confirmed_{m}"][i] = ok
            if m in CF.SHOWN:
                parts["confirmed" if ok else "not confirmed"].append(
                    f"{columns.short(m)} {values[c]:+.3g} [{values[f'{c}_ci_low']:+.3g}, "
                    f"{values[f'{c}_ci_high']:+.3g}] "
                    f"(selection {df[CF.selection_column(m)].iloc[i]:+.3g})")
        head = (f"{len(pairs)} seed pair(s) × {len(common)} fresh prompts"
                + (f" ({len(mine) - len(done)} run(s) not finished)" if len(done) < len(mine)
                   else ""))
        body = "; ".join([*(f"{k}: {', '.join(v)}" for k, v in parts.items() if v),
                          *(["frontier: not measured"]
                            if values["confirm_frontier"].startswith("not measured") else [])])
        cols["confirmation"][i] = f"{head}: {body}" if body else head
    out = pd.concat([df.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
    return out


def _confirmed(df: pd.DataFrame, i: int, selection: str, low: float, high: float) -> bool | None:
    """The confirmation rule (``polychromic.review.confirmation.RULE``) of row ``i``: the
    interval [low, high] lies on the side of 0 of its selection value (column ``selection``);
    None when that value is missing or 0 (nothing to confirm)."""
    sel = df[selection].iloc[i] if selection in df else np.nan
    if not (np.isfinite(sel) and sel != 0):
        return None
    return bool(low > 0) if sel > 0 else bool(high < 0)


def _baseline_value(df: pd.DataFrame, col: str) -> float | None:
    """``col`` of the finished λ=0 trial, or None."""
    if col not in df:
        return None
    rows = df[df["is_baseline"].astype(bool) & df["status"].eq("finished")]
    if not len(rows) or pd.isna(rows[col].iloc[0]):
        return None
    return float(rows[col].iloc[0])


def add_headroom(study_dir: Path, df: pd.DataFrame,
                 warnings: list[list[str]] | None = None) -> pd.DataFrame:
    """``floor_M``, ``ceiling_M`` (from the baseline's ``headroom.parquet``, see
    ``polychromic.stats.headroom``) and ``headroom_M`` of each row's own value, for every diversity
    metric M; a warning on every row when the baseline's headroom on M is below 10%."""

    bounds: dict[str, dict[str, float]] = {}
    rows = df[df["is_baseline"].astype(bool) & df["status"].eq("finished")]
    if len(rows):
        path = layout.trial_dir(study_dir, str(rows["trial_id"].iloc[0])) / layout.HEADROOM
        if path.is_file():
            config = read_json(path.parent / layout.CONFIG) or {}
            bounds = H.bounds(read_generations(path), config.get("class_threshold"))
    for m in columns.DIVERSITY:
        floor = bounds.get(H.FLOOR, {}).get(m, np.nan)
        ceiling = bounds.get(H.CEILING, {}).get(m, np.nan)
        df[f"floor_{m}"] = floor
        df[f"ceiling_{m}"] = ceiling
        values = pd.to_numeric(df[m], errors="coerce") if m in df else pd.Series(np.nan, df.index)
        df[f"headroom_{m}"] = [H.headroom(float(v), floor, ceiling) for v in values]
        if warnings is not None and len(rows) and m in df:
            note = H.low_headroom_warning(m, float(pd.to_numeric(rows[m]).iloc[0]), floor, ceiling)
            if note:
                for w in warnings:
                    w.append(note)
    return df


def length_warning(row: pd.Series) -> str:
    """A warning when a trial's mean length changed by more than 10% (CI excludes 0)."""

    note = length_note(row)
    return (f"length: {note} than the baseline's (CI excludes 0); distinct-n, Self-BLEU and "
            "the checker are length-sensitive") if note else ""


def write_leaderboard(study_dir: Path, df: pd.DataFrame) -> Path:
    path = layout.leaderboard_file(study_dir)
    tmp = path.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
