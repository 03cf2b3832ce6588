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
    rows = [r for t in sorted((Path(study_dir) / "trials").glob("*")) if (r := trial_row(t))]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, *(k for r in rows for k in r)])))
    for col in df.columns:
        if col not in ("trial_id", "status", "error", "checkpoint_path", "is_baseline"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if space is not None and len(df):
        metric, mode = space.objectives[0]
        df = df.sort_values(metric, ascending=mode == "min", na_position="last", kind="stable")
    return df.reset_index(drop=True)


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
