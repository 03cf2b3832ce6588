"""The sample table: one row per generated sample (``generations.parquet``; the headroom sets
of ``polychromic.stats.headroom`` share its schema). Its writer, its readers, the check of a stored
table, and the conversion between a prompt's row and its ``Example`` live here and nowhere
else: the evaluation writes the table, and the leaderboard, rescoring, the report, the plan
and the confirmation read it. (Sampling itself is ``polychromic.models.backends``.)

A prompt's row carries the ``Example`` with its ``meta`` as a JSON string (Arrow needs one type
per column, and every task's meta differs), so a stored sample can be re-checked without the
task's data (``polychromic.tuning.rescore``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core.errors import ConfigError
from polychromic.core.inputs import regular_file
from polychromic.store.layout import GENERATIONS
from polychromic.tasks.base import Example

#: the columns that carry a prompt's ``Example`` into every one of its samples
PROMPT_COLUMNS = ("prompt_index", "prompt_id", "prompt", "target", "group", "meta")
#: the columns a generation actor writes (one row per sample; ``eval_temperature`` is the
#: temperature the sample was drawn at: one per table, or every frontier temperature)
GENERATED_COLUMNS = ("prompt_index", "prompt_id", "sample_index", "prompt", "target", "group",
                     "meta", "text", "token_count", "eval_temperature")


def prompt_row(index: int, example: Example) -> dict[str, Any]:
    """The row of the ``index``-th evaluation prompt (``PROMPT_COLUMNS``)."""
    return {"prompt_index": index, "prompt_id": example.id, "prompt": example.prompt,
            "target": example.target, "group": example.group, "meta": json.dumps(example.meta)}


def example_of(row: Mapping[str, Any]) -> Example:
    """The ``Example`` a prompt's row (or any of its samples' rows) carries."""
    return Example(str(row["prompt_id"]), str(row["prompt"]), str(row["target"]),
                   str(row["group"]), json.loads(row["meta"]))


def examples_of(gens: pd.DataFrame) -> list[Example]:
    """The ``Example`` of every sample of a table, in row order."""
    return [example_of(r) for r in gens[["prompt_id", "prompt", "target", "group", "meta"]]
            .to_dict("records")]


def write_table(gens: pd.DataFrame, path: Path) -> None:
    """Write a sample table to ``path`` as it is (embeddings as float32 lists); callers that
    replace a file use :func:`write_generations` or stage it themselves."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(gens, preserve_index=False), path)


def write_generations(gens: pd.DataFrame, path: Path) -> None:
    """Atomically write a sample table (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    write_table(gens, tmp)
    tmp.replace(path)


def read_generations(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A stored sample table (only ``columns`` when given)."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(columns) if columns is not None else None).to_pandas()



def read_frontier(path: Path) -> dict[float, pd.DataFrame]:
    """Each temperature's samples of a ``frontier.parquet`` ({T: its rows, the
    ``eval_temperature`` column kept}, ascending T); {} when the file is absent, unusable
    (``parquet_problem``) or has no ``eval_temperature`` column."""
    if not path.is_file() or parquet_problem(path):
        return {}
    table = read_generations(path)
    if "eval_temperature" not in table:
        return {}
    return {float(t): part for t, part in table.groupby("eval_temperature", sort=True)}

def parquet_problem(path: Path) -> str | None:
    """Why the trial's Parquet file at ``path`` cannot be used (not a regular file, truncated,
    garbage, duplicate or missing columns), or None when it is fine or absent."""
    import pyarrow.parquet as pq


    if not os.path.lexists(path):
        return None
    try:
        regular_file(path, path.name, str(path))
        names = pq.read_table(path).column_names
    except ConfigError as err:
        return err.message
    except Exception as err:  # noqa: BLE001 — pyarrow raises many kinds for a broken file
        text = str(err).splitlines()[0][:160] if str(err) else ""
        return f"not a readable Parquet file ({type(err).__name__}: {text})"
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        return f"duplicate columns {', '.join(dups)}"
    if path.name == GENERATIONS and "prompt_id" not in names:
        return "no prompt_id column"
    return None
