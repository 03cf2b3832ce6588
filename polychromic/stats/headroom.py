"""How much room a diversity metric has left: floor, ceiling and headroom.

A diversity gain can only be shown where the baseline is not already as diverse as text of
that kind gets. For every diversity metric M (``polychromic.core.columns.DIVERSITY``), on the same
prompts and sample counts as the baseline's evaluation:

- **floor**: each prompt's samples all identical (every sample replaced by the prompt's first
  sample; for the per-prompt metrics this is the analytic floor: semantic diversity 0,
  Self-BLEU 1, distinct-n 1/n for a text without repeated n-grams, 1 class);
- **ceiling**: each prompt's n samples replaced by n reference texts of the task drawn
  (seeded) from *other* prompts' references, each cut to the word count of the sample it
  replaces: unrelated texts of the same kind and length;
- ``headroom_M = (ceiling − value) / (ceiling − floor)``: 1 = as uniform as it gets, 0 = as
  diverse as unrelated texts. The same formula is oriented for Self-BLEU (lower is more
  diverse: its floor is the high end). A trial past the ceiling has negative headroom.

Both sets are scored as if every sample passed the checker with score 1 (``VALID``): the raw
metrics do not read the checker, and the effective ones (``effective_semantic_diversity_per
_prompt``, ``effective_distinct_classes``, ``utility_k``: failed samples count 0) get the
bounds of *valid* text: identical valid samples (0, 1/n and (1−p)/(1−pⁿ)) and unrelated valid
texts. A baseline whose samples fail the checker can sit below that floor: headroom above 1,
fewer valid classes than one valid answer repeated.

The floor and ceiling sample sets are stored next to the baseline's generations
(``headroom.parquet``, column ``set``), so the numbers are recomputed from files, exactly like
every other metric, without a model or encoder.

``human_M`` (the references' own value where a task has several references per prompt) is not
computed: none of the shipped tasks has more than one reference per prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.metrics.aggregate import aggregate
from polychromic.store.generations import write_generations

FLOOR, CEILING = "floor", "ceiling"
#: the checker's verdict the floor and ceiling sets are scored with (module docstring)
VALID = {"quality_score": 1.0, "passed": True}
#: a baseline whose headroom is below this cannot show a diversity gain: a warning says so
LOW_HEADROOM = 0.10
SEED = 0
_COPY = ("prompt_index", "prompt_id", "sample_index")


def headroom(value: float, floor: float, ceiling: float) -> float:
    """(ceiling − value) / (ceiling − floor); NaN when undefined (equal or missing bounds)."""
    vals = (value, floor, ceiling)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
        return float("nan")
    if ceiling == floor:
        return float("nan")
    return (ceiling - value) / (ceiling - floor)


def floor_set(gens: pd.DataFrame) -> pd.DataFrame:
    """Every prompt's samples replaced by copies of its first sample (text and embedding)."""
    gens = gens.sort_values(["prompt_index", "sample_index"], kind="stable")
    first = gens.groupby("prompt_index", sort=True).head(1).set_index("prompt_index")
    out = gens[list(_COPY)].copy()
    for col in ("text", "token_count", "embedding"):
        if col in gens:
            out[col] = first.loc[out["prompt_index"], col].to_numpy()
    return out.reset_index(drop=True)


def ceiling_set(gens: pd.DataFrame, pool: Sequence[tuple[str, str, str]],
                seed: int = SEED) -> pd.DataFrame:
    """Every prompt's samples replaced by unrelated references (no embeddings yet).

    ``pool`` holds (prompt id, group, reference text) of the task's examples; a prompt draws
    its n texts without replacement from the references of other prompts and other groups
    (another conversation, another problem), seeded by (``seed``, prompt index), and each text
    is cut to the word count of the sample it replaces."""
    ids = np.array([p[0] for p in pool], dtype=object)
    groups = np.array([p[1] for p in pool], dtype=object)
    texts = [p[2] for p in pool]
    gens = gens.sort_values(["prompt_index", "sample_index"], kind="stable")
    out = gens[list(_COPY)].copy().reset_index(drop=True)
    new: list[str] = []
    for (pidx, pid), g in gens.groupby(["prompt_index", "prompt_id"], sort=True):
        group = str(g["group"].iloc[0]) if "group" in g else ""
        allowed = np.flatnonzero((ids != str(pid)) & ((groups != group) | (group == "")))
        n = len(g)
        if len(allowed) < n:
            raise ValueError(f"ceiling: only {len(allowed)} references of other prompts for "
                             f"prompt {pid!r}, need {n}")
        rng = np.random.default_rng([seed, int(pidx)])
        pick = rng.choice(allowed, size=n, replace=False)
        for j, sample in zip(pick, g["text"].astype(str)):
            words = texts[j].split()
            new.append(" ".join(words[: max(1, len(sample.split()))]))
    out["text"] = new
    return out


def reference_pool(task: Any, limit: int = 20000) -> list[tuple[str, str, str]]:
    """(id, group, target) of the task's examples, test split first, at most ``limit``."""
    pool: list[tuple[str, str, str]] = []
    for split in ("test", "validation", "train"):
        for ex in task.examples(split):
            if ex.target.strip():
                pool.append((ex.id, ex.group, ex.target))
            if len(pool) >= limit:
                return pool
    return pool


def build_sets(gens: pd.DataFrame, pool: Sequence[tuple[str, str, str]], encoder: Any,
               seed: int = SEED) -> pd.DataFrame:
    """The floor and ceiling sample sets of ``gens`` as one table (column ``set``), with
    embeddings (the ceiling's from ``encoder``) and token counts (words for the ceiling)."""
    floor = floor_set(gens)
    ceiling = ceiling_set(gens, pool, seed)
    ceiling["token_count"] = [len(t.split()) for t in ceiling["text"]]
    ceiling["embedding"] = list(np.asarray(encoder.encode(ceiling["text"].tolist()),
                                           dtype=np.float32))
    both = pd.concat([floor.assign(set=FLOOR), ceiling.assign(set=CEILING)], ignore_index=True)
    return both


def write_sets(sets: pd.DataFrame, path: Path) -> None:
    """Atomically write the sets (a sample table, ``polychromic.store.generations``)."""

    write_generations(sets, path)


def bounds(sets: pd.DataFrame, class_threshold: float | None = None) -> dict[str, dict[str, float]]:
    """{"floor": {M: value}, "ceiling": {M: value}} for every diversity metric M."""

    out: dict[str, dict[str, float]] = {}
    for name in (FLOOR, CEILING):
        part = sets[sets["set"] == name].drop(columns="set").copy()
        for col, value in VALID.items():
            part[col] = value
        kwargs = {"class_threshold": class_threshold} if class_threshold is not None else {}
        try:
            values = aggregate(part, **kwargs)
        except TypeError:  # an aggregate without the class threshold
            values = aggregate(part)
        # float noise reads as what it is: identical samples' 1 − cos is −4e-16, i.e. 0
        out[name] = {m: round(float(values.get(m, float("nan"))), 12) + 0.0
                     for m in columns.DIVERSITY}
    return out


AT_CEILING, PAST_CEILING = "at ceiling", "past ceiling"


def ceiling_state(h: float) -> str:
    """``past ceiling`` for a negative headroom (the value is beyond the unrelated texts of the
    ceiling set), ``at ceiling`` below LOW_HEADROOM, else "": either way no gain can be shown,
    but "at ceiling" would misread a value the ceiling set does not even bound."""
    if not math.isfinite(h) or h >= LOW_HEADROOM:
        return ""
    return PAST_CEILING if h < 0 else AT_CEILING


def level_name(metric: str) -> str:
    """``metric`` with its level as the table names it: ``semantic_diversity (corpus)``,
    ``distinct_classes (per prompt)``; a ``…_per_prompt`` name says it already."""
    col = columns.column(metric)
    level = {"corpus": "corpus", "per_prompt": "per prompt"}.get(col.level if col else "", "")
    return metric if not level or metric.endswith("_per_prompt") else f"{metric} ({level})"


def low_headroom_warning(metric: str, value: float, floor: float, ceiling: float) -> str:
    """``ceiling: baseline M at 97% of unrelated texts …`` when the headroom is below 10%, or
    ``past ceiling: baseline M beyond unrelated texts …`` when it is negative (M named with
    its level, :func:`level_name`)."""
    h = headroom(value, floor, ceiling)
    state = ceiling_state(h)
    if not state:
        return ""

    def show(x: float) -> str:  # float noise (1 − cos of equal vectors = −4e-16) reads as 0
        return f"{round(x, 12) + 0.0:.3g}"

    numbers = f"({show(value)}, floor {show(floor)}, ceiling {show(ceiling)})"
    if state == PAST_CEILING:
        return (f"past ceiling: baseline {level_name(metric)} beyond unrelated texts "
                f"{numbers}, headroom {100 * h:.0f}%: a gain on it would not mean more diverse "
                "replies")
    return (f"ceiling: baseline {level_name(metric)} at {100 * (1 - h):.0f}% of unrelated "
            f"texts {numbers}: no diversity gain on it can be shown")


_AT = re.compile(r"^ceiling: baseline (?P<m>.+?) at (?P<pct>\d+)% of unrelated texts "
                 r"\((?P<num>[^()]*)\): no diversity gain on it can be shown$")
_PAST = re.compile(r"^past ceiling: baseline (?P<m>.+?) beyond unrelated texts "
                   r"\((?P<num>[^()]*)\), headroom (?P<h>-?\d+)%: a gain on it would not mean "
                   r"more diverse replies$")


def merged_warnings(warnings: Sequence[str]) -> list[str]:
    """``warnings`` with the :func:`low_headroom_warning` lines of one kind (at / past ceiling)
    said once, every metric with its numbers, at the place of the first; the others as they
    are. For the default view's caption: two metrics at ceiling are one fact, not two lines
    (``ceiling: baseline at ≥90% of unrelated texts, no diversity gain can be shown on M1 (93%:
    0.838, floor 0, ceiling 0.897), M2 (…)``); a single one keeps its own wording."""
    at = [m for w in warnings if (m := _AT.match(w))]
    past = [m for w in warnings if (m := _PAST.match(w))]
    out: list[str] = []
    for w in warnings:
        if _AT.match(w) and len(at) > 1:
            if w == at[0].string:
                out.append(f"ceiling: baseline at ≥{100 * (1 - LOW_HEADROOM):.0f}% of unrelated "
                           "texts, no diversity gain can be shown on " + ", ".join(
                               f"{m['m']} ({m['pct']}%: {m['num']})" for m in at))
        elif _PAST.match(w) and len(past) > 1:
            if w == past[0].string:
                out.append("past ceiling: baseline beyond unrelated texts, a gain would not "
                           "mean more diverse replies on " + ", ".join(
                               f"{m['m']} ({m['num']}; headroom {m['h']}%)" for m in past))
        else:
            out.append(w)
    return out
