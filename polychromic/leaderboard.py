"""Trial leaderboard: one row per trial, built from the study folder alone.

It reads only what trials wrote (config.json, history.jsonl, result.json, status.json), so it
works while a study runs, after it finished, and after it was interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.records import read_json, read_jsonl

KNOBS = ("lambda_", "n_generations", "compute_every_n_steps", "max_examples_for_diversity",
         "lora_r", "learning_rate")
COLUMNS = (
    "trial_id", "status", "error", "is_baseline", *KNOBS, "steps", "final_quality_loss",
    "mean_diversity_score", "diversity_grad_share", "pass@1", "pass@5", "pass@10",
    "distinct_1", "distinct_2", "self_bleu", "semantic_diversity", "quality_mean",
    "distinct_1_per_prompt", "distinct_2_per_prompt", "self_bleu_per_prompt",
    "semantic_diversity_per_prompt", "train_seconds", "wall_seconds", "checkpoint_path",
)


def trial_row(tdir: Path) -> dict[str, Any] | None:
    """One trial's leaderboard row, or None when the folder holds no config yet."""
    config = read_json(tdir / "config.json")
    if config is None:
        return None
    history = read_jsonl(tdir / "history.jsonl")
    result = read_json(tdir / "result.json") or {}
    status = read_json(tdir / "status.json") or {}
    last = result or (history[-1] if history else {})
    row: dict[str, Any] = {"trial_id": tdir.name}
    row["status"] = status.get("status") or result.get("status") or "running"
    row["error"] = status.get("error") or result.get("error") or ""
    row["is_baseline"] = float(config.get("lambda_", 0)) == 0.0
    for knob in KNOBS:
        row[knob] = config.get(knob)
    row["steps"] = last.get("step", 0)
    row["final_quality_loss"] = last.get("quality_loss")
    row["mean_diversity_score"] = last.get("mean_diversity_score")
    row["diversity_grad_share"] = last.get("mean_diversity_grad_share")
    for key in COLUMNS:
        if key not in row:
            row[key] = result.get(key, last.get(key))
    row.update({k: v for k, v in result.items() if k.startswith("pass@") and k not in row})
    return row


def build_leaderboard(study_dir: Path, space: Any | None = None) -> pd.DataFrame:
    """All trials of a study, sorted by the first objective (best first) when known."""
    rows = [r for t in sorted((Path(study_dir) / "trials").glob("*"))
            if (r := trial_row(t)) and r["status"] != "abandoned"]  # see polychromic.resume
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, *(k for r in rows for k in r)])))
    for col in df.columns:
        if col not in ("trial_id", "status", "error", "checkpoint_path", "is_baseline"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df = add_deltas(Path(study_dir), df)
    if space is not None and len(df):
        metric, mode = space.objectives[0]
        df = df.sort_values(metric, ascending=mode == "min", na_position="last", kind="stable")
    return df.reset_index(drop=True)


def add_deltas(study_dir: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Columns ``delta_M``, ``delta_M_ci_low``, ``delta_M_ci_high``, ``significant_M`` and
    ``rel_delta_M`` (%) for every headline metric M, each finished trial against the λ=0
    baseline (paired bootstrap over prompts, see ``polychromic.bootstrap``), and ``warnings``."""
    from polychromic.aggregate import HEADLINE, PER_PROMPT
    from polychromic.bootstrap import N_RESAMPLES, SEED, paired_delta, weighted_metrics
    from polychromic.evaluate import read_generations

    names = [*HEADLINE, *PER_PROMPT]
    new: dict[str, list[Any]] = {f"{p}{m}{s}": [] for m in names
                                 for p, s in (("delta_", ""), ("delta_", "_ci_low"),
                                              ("delta_", "_ci_high"), ("significant_", ""),
                                              ("rel_delta_", ""))}
    warnings = ["" for _ in range(len(df))]
    gens_path = {t: Path(study_dir) / "trials" / t / "generations.parquet" for t in df["trial_id"]}
    finished = df["status"].eq("finished") & df["trial_id"].map(lambda t: gens_path[t].is_file())
    base_rows = df[df["is_baseline"].astype(bool) & finished]
    base = None
    if len(base_rows):
        base_gens = read_generations(gens_path[base_rows["trial_id"].iloc[0]])
        base_ids = sorted(set(base_gens["prompt_id"]))
        base = weighted_metrics(base_gens)
        top_k = max((int(c[5:]) for c in df.columns if c.startswith("pass@")), default=0)
        top = base_rows[f"pass@{top_k}"].iloc[0] if top_k else float("nan")
        if top > 0.95:
            warnings = [f"ceiling: baseline pass@{top_k} = {top:.3f} > 0.95; the task or checker "
                        "cannot show a diversity gain" for _ in warnings]
    for i, (_, row) in enumerate(df.iterrows()):
        deltas = {}
        if base is not None and finished.iloc[i] and not row["is_baseline"]:
            gens = read_generations(gens_path[row["trial_id"]])
            if sorted(set(gens["prompt_id"])) == base_ids:
                mine = weighted_metrics(gens)
                deltas = {m: paired_delta(mine[m], base[m], len(base_ids), N_RESAMPLES, SEED)
                          for m in names if m in mine and m in base}
            else:
                warnings[i] = "; ".join(filter(None, [warnings[i], "prompts differ from the "
                                                      "baseline's: no deltas"]))
        for m in names:
            d = deltas.get(m)
            new[f"delta_{m}"].append(d.delta if d else np.nan)
            new[f"delta_{m}_ci_low"].append(d.ci_low if d else np.nan)
            new[f"delta_{m}_ci_high"].append(d.ci_high if d else np.nan)
            new[f"significant_{m}"].append(d.significant if d else False)
            new[f"rel_delta_{m}"].append(d.relative if d else np.nan)
    out = pd.concat([df.reset_index(drop=True), pd.DataFrame(new)], axis=1)
    out["warnings"] = warnings
    out.attrs["bootstrap"] = f"paired bootstrap over prompts, {N_RESAMPLES} resamples, seed {SEED}"
    return out


def write_leaderboard(study_dir: Path, df: pd.DataFrame) -> Path:
    path = Path(study_dir) / "leaderboard.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def print_table(df: pd.DataFrame, title: str = "leaderboard") -> None:
    """The main columns as a rich table in the terminal."""
    from rich.console import Console
    from rich.table import Table

    cols = ["trial_id", "status", "lambda_", "n_generations", "compute_every_n_steps",
            "max_examples_for_diversity", "steps", "final_quality_loss", "diversity_grad_share",
            "pass@1", "pass@10", "quality_mean", "distinct_2", "self_bleu", "semantic_diversity"]
    table = Table(title=title)
    for col in cols:
        table.add_column(col.replace("max_examples_for_diversity", "max_ex_div")
                         .replace("compute_every_n_steps", "every_n"), justify="right")
    for _, row in df.iterrows():
        table.add_row(*[_fmt(row.get(c)) for c in cols])
    Console(width=220).print(table)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)
