"""The study model: a study loaded by name or folder, its enriched leaderboard, its order, the
rows a ``--filter``/``--sort``/``--top`` selects, and the trial to export or confirm.

How a study is shown lives elsewhere: cells, captions and the csv/json/parquet/markdown
serializations in ``polychromic.review.format``, the terminal views in ``polychromic.review.terminal``, the
HTML report in ``polychromic.review.html_report``.

Everything is read from the study folder (see ``polychromic.store.layout``) through
``polychromic.review.leaderboard.build_leaderboard``, so a study can be read while it runs (trials
without a result show as ``running``), after it finished, and after it was interrupted. A
missing or corrupt folder raises ``ConfigError`` (one line on the command line), never a
traceback.

Columns added to the leaderboard frame here:

* ``pareto`` (★): not dominated on the study's two objectives, or, for a one-objective study,
  on (its quality metric, its diversity metric): the question of every study is the
  quality/diversity trade-off, and a one-objective "front" would only repeat the best row.
  ``pareto_rank`` is the non-dominated sorting level on the same two axes (1 = the front), so
  ``pareto`` ⇔ ``pareto_rank == 1`` in every output; a two-objective study is ordered by it.
* ``status_text``: ``finished`` / ``early-stopped`` / ``failed: <reason>`` / ``running``.
* ``device``, ``gpus``, ``elapsed_seconds``, ``gpu_hours`` = elapsed × GPUs / 3600, and
  ``cost_usd`` = GPU-hours × ``--gpu-hour-price`` (default :data:`DEFAULT_GPU_HOUR_PRICE`,
  about an on-demand cloud H100/A100 hour). CPU trials have 0 GPU-hours and ``device=cpu``.
  ``gpus`` is what the trial recorded it ran on; ``device`` ends in ``?`` when it was guessed
  (a study from before the record).
* ``delta_M``, ``delta_M_ci_low``, ``delta_M_ci_high``, ``rel_delta_M``, ``significant_M``
  and ``warnings`` are filled with NaN / "" when the leaderboard does not provide them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.core.cli import COMMAND_LINE
from polychromic.core.columns import KNOBS
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path
from polychromic.metrics.aggregate import HEADLINE
from polychromic.review.leaderboard import build_leaderboard
from polychromic.stats.ranking import default_order, pareto_levels, sort_rows
from polychromic.store import layout
from polychromic.store.records import read_json, read_jsonl
from polychromic.store.saved_space import read_saved_space

#: USD per GPU-hour used for ``cost_usd`` unless ``--gpu-hour-price`` says otherwise
DEFAULT_GPU_HOUR_PRICE = 2.00
#: used when the study's search space file cannot be read
DEFAULT_OBJECTIVES: list[tuple[str, str]] = [("pass@1", "max"), ("semantic_diversity", "max")]
SRC = COMMAND_LINE

#: the other side of the trade-off for a one-objective study, first one with a value wins
QUALITY_AXIS = ("pass@1", "quality_mean")
DIVERSITY_AXIS = ("semantic_diversity_per_prompt", "semantic_diversity", "distinct_2_per_prompt",
                  "distinct_2")
DELTA_PARTS = ("delta_{}", "delta_{}_ci_low", "delta_{}_ci_high", "rel_delta_{}")
STATUS_TEXT = {"finished": "finished", "early_stopped": "early-stopped", "running": "running"}
ALIASES = {"lambda": "lambda_", "λ": "lambda_", "trial": "trial_id", "gpu_h": "gpu_hours",
           "cost": "cost_usd"}


@dataclass
class Study:
    """A loaded study: its folder, objectives and the enriched, default-ordered leaderboard."""

    path: Path
    name: str
    objectives: list[tuple[str, str]]
    #: (quality metric, mode), (diversity metric, mode): the ★ marker and the scatter's axes
    axes: list[tuple[str, str]]
    frame: pd.DataFrame
    price: float = DEFAULT_GPU_HOUR_PRICE
    notes: list[str] = field(default_factory=list)
    model: str = ""
    #: how the leaderboard computed the delta CIs (its ``attrs["bootstrap"]``), if it said
    ci_method: str = ""
    #: the Holm family of the verdicts' significance (its ``attrs["multiplicity"]``), if it said
    multiplicity: str = ""

    def trial_dir(self, trial_id: str) -> Path:
        return layout.trial_dir(self.path, trial_id)

    def baseline(self) -> pd.Series | None:
        """The λ=0 trial (a finished one if there are several), or None."""
        base = self.frame[self.frame["is_baseline"].fillna(False).astype(bool)]
        if base.empty:
            return None
        done = base[base["status"] == "finished"]
        return (done if len(done) else base).iloc[0]


# --- loading -----------------------------------------------------------------------------------


def resolve_study(study: str, storage_path: str | Path = layout.DEFAULT_STORAGE) -> Path:
    """A study folder from a folder path or a name under ``storage_path``
    (``layout.study_dir``, as where ``study/run.py`` writes it); ``ConfigError`` naming what
    was tried (and the studies that do exist) when it is neither. Every recipe that takes a
    study argument finds it here."""

    if not str(study).strip():
        raise ConfigError("study", "empty study name", SRC)
    direct = expand_path(study, "study", SRC)  # ~user, NUL, over-long names: one line
    named = layout.study_dir(expand_path(storage_path, "--storage-path", SRC), str(study))
    dirs = [c for c in (direct, named) if c.is_dir()]
    for candidate in dirs:  # a folder that looks like a study wins over one that merely exists
        if layout.looks_like_study(candidate):
            return candidate.resolve()
    if dirs:
        return dirs[0].resolve()  # read_study_json says what is wrong with it
    storage = expand_path(storage_path, "--storage-path", SRC)
    known = sorted(p.name for p in storage.iterdir() if p.is_dir()) if storage.is_dir() else []
    hint = f" (studies in {storage}: {', '.join(known)})" if known else f" (no studies in {storage})"
    if direct.exists():
        raise ConfigError("study", f"{study!r} is a file, not a study folder", SRC)
    raise ConfigError("study", f"no study {study!r}: neither a folder nor a name under "
                      f"{storage}{hint}", SRC)


def read_study_json(path: Path) -> dict[str, Any]:
    """``study.json`` (empty dict when absent); ``ConfigError`` when the folder is not a study
    or the file is corrupt."""
    meta_path = layout.study_file(path)
    trials = layout.trials_dir(path)
    if trials.exists() and not trials.is_dir():
        raise ConfigError("study", f"{path} is corrupt: {layout.TRIALS} is not a folder", SRC)
    if not meta_path.exists():
        if not trials.is_dir():
            raise ConfigError("study", f"{path} is not a study folder (no {layout.STUDY_FILE}, "
                              f"no {layout.TRIALS}/)", SRC)
        return {}
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise ConfigError("study", f"{meta_path} is corrupt (not a JSON object)", SRC)
    return meta


def read_objectives(meta: dict[str, Any]) -> tuple[list[tuple[str, str]], str]:
    """The study's objectives from its search space file, and a note when they had to be guessed.

    The file is read leniently (``read_saved_space``, not ``load_space``), so a study copied
    to a machine without its model or data files can still be reviewed."""
    space = meta.get("space")
    fallback = "pass@1 (max), semantic_diversity (max)"
    if not space:
        return list(DEFAULT_OBJECTIVES), f"study.json names no search space; objectives assumed: {fallback}"

    saved = read_saved_space(space)
    if saved is None or saved.objectives is None:
        return list(DEFAULT_OBJECTIVES), (f"search space {space} unreadable; objectives "
                                          f"assumed: {fallback}")
    return saved.objectives, ""


def _finite(df: pd.DataFrame, col: str) -> bool:
    return col in df and pd.to_numeric(df[col], errors="coerce").notna().any()


def quality_diversity_axes(objectives: Sequence[tuple[str, str]],
                           df: pd.DataFrame) -> list[tuple[str, str]]:
    """[(quality metric, mode), (diversity metric, mode)] for the ★ marker and the scatter.

    Two objectives: those two (the quality-like one first when one is). One objective: it,
    paired with the other side of the trade-off: pass@1 (else quality_mean) for a diversity
    objective; for a quality objective the within-prompt semantic diversity the objective is
    about (else corpus semantic diversity, else distinct-2). Families and directions come
    from ``polychromic.core.columns``."""
    quality = next((m for m in QUALITY_AXIS if _finite(df, m)), QUALITY_AXIS[0])
    diversity = next((m for m in DIVERSITY_AXIS if _finite(df, m)), DIVERSITY_AXIS[0])
    objs = list(objectives)
    if len(objs) >= 2:
        a, b = objs[0], objs[1]
        return [b, a] if columns.is_diversity(a[0]) and not columns.is_diversity(b[0]) else [a, b]
    metric, mode = objs[0]
    if columns.is_diversity(metric):
        return [(quality, columns.better(quality) or "max"), (metric, mode)]
    if columns.is_quality(metric):
        return [(metric, mode), (diversity, columns.better(diversity) or "max")]
    return [(quality, columns.better(quality) or "max"),
            (diversity, columns.better(diversity) or "max")]


def load_study(study: str, storage_path: str | Path = layout.DEFAULT_STORAGE,
               price: float = DEFAULT_GPU_HOUR_PRICE,
               gpus_per_trial: float | None = None, frame: pd.DataFrame | None = None) -> Study:
    """Resolve, read and enrich a study; ``ConfigError`` (one line) when it cannot be read.
    ``frame``: the leaderboard its caller has just built (``build_leaderboard``), so that the
    bootstrap is not run twice."""

    if not (isinstance(price, (int, float)) and math.isfinite(price) and price >= 0):
        raise ConfigError("--gpu-hour-price", f"must be a number ≥ 0, got {price!r}", SRC)
    if gpus_per_trial is not None and not (
            isinstance(gpus_per_trial, (int, float)) and math.isfinite(gpus_per_trial)
            and 0 <= gpus_per_trial <= 10_000):
        raise ConfigError("--gpus-per-trial", f"must be a number from 0 to 10000, got "
                          f"{gpus_per_trial!r}", SRC)
    path = resolve_study(study, storage_path)
    meta = read_study_json(path)
    objectives, note = read_objectives(meta)
    try:
        df = build_leaderboard(path) if frame is None else frame.copy()
    except Exception as err:  # a corrupt trial file must not become a traceback
        raise ConfigError("study", f"{path} is corrupt: {type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}", SRC) from None
    notes = [note] if note else []
    notes += [str(n) for n in df.attrs.get("notes", [])]  # frontier, same encoder
    ci_method = str(df.attrs.get("bootstrap", ""))
    multiplicity = str(df.attrs.get("multiplicity", ""))
    configs = {t: read_json(layout.trial_dir(path, t) / layout.CONFIG) for t in df["trial_id"]}
    configs = {t: c if isinstance(c, dict) else {} for t, c in configs.items()}  # corrupt: {}
    models = sorted({str(c.get("model")) for c in configs.values() if c.get("model")})
    df = enrich(df, path, objectives, price, gpus_per_trial, configs)
    axes = quality_diversity_axes(objectives, df)
    if len(df):  # one front: pareto ⇔ pareto_rank == 1 (the axes are the objectives, if two)
        df["pareto_rank"] = pareto_levels(df, axes)
        df["pareto"] = df["pareto_rank"] == 1
        df = default_order(df, objectives)
    if (df["device"] == "cpu?").any():
        notes.append("device not recorded for some trials (use_gpu: auto): counted as CPU, "
                     "0 GPU-hours; pass --gpus-per-trial N if they ran on GPUs")
    if (df["device"] == "gpu?").any():
        notes.append("device not recorded for some 4bit/8bit trials (a study from before "
                     "trials recorded it): GPU-hours inferred from quantize, which also runs "
                     "on CPU; pass --gpus-per-trial 0 if they did")
    return Study(path, str(meta.get("name") or path.name), objectives, axes, df, float(price),
                 notes, ", ".join(models), ci_method, multiplicity)


def _gpus(result: dict[str, Any], config: dict[str, Any],
          override: float | None) -> tuple[float, str]:
    """GPUs one trial held and how we know: recorded > configured > override > 4/8-bit > CPU.

    A trial records what its Train workers ran on (``gpus``, ``device_type``: see
    ``polychromic.models.loading.device_record``). Trials from before that record fall back to
    ``use_gpu``, then ``--gpus-per-trial``, then ``quantize: 4bit/8bit`` (bitsandbytes once
    needed CUDA; it no longer does): that last guess is labelled ``gpu?`` (inferred)."""
    try:
        workers = float(config.get("num_workers") or 1)
    except (TypeError, ValueError, OverflowError):  # a hand-edited config.json
        workers = 1.0
    workers = workers if math.isfinite(workers) and workers >= 0 else 1.0
    if isinstance(result.get("gpus"), (int, float)) and not isinstance(result.get("gpus"), bool):
        n = float(result["gpus"])
        return n, "gpu" if n else "cpu"
    for source in (result, config):
        if isinstance(source.get("use_gpu"), bool):
            return (workers, "gpu") if source["use_gpu"] else (0.0, "cpu")
    if override is not None:
        return float(override), "gpu" if override else "cpu"
    if config.get("quantize") in ("4bit", "8bit"):  # an old study: inferred, and said so
        return workers, "gpu?"
    return 0.0, "cpu?"


def enrich(df: pd.DataFrame, path: Path, objectives: Sequence[tuple[str, str]], price: float,
           gpus_per_trial: float | None = None,
           configs: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Add status text, GPU-hours, cost, Pareto rank and any missing delta columns."""
    df = df.copy()
    for metric in HEADLINE:
        for part in DELTA_PARTS:
            if part.format(metric) not in df:
                df[part.format(metric)] = np.nan
        if f"significant_{metric}" not in df:
            df[f"significant_{metric}"] = np.nan
        if metric not in df:
            df[metric] = np.nan
    for metric, _ in objectives:
        if metric not in df:
            df[metric] = np.nan
    if "warnings" not in df:
        df["warnings"] = ""
    texts, devices, gpus, elapsed = [], [], [], []
    for _, row in df.iterrows():
        tdir = layout.trial_dir(path, row["trial_id"])
        status = str(row.get("status") or "running")
        reason = str(row.get("error") or "").strip().splitlines()
        if status == "error":  # the last line of a traceback is the useful one
            texts.append(f"failed: {reason[-1][:200] if reason else 'unknown reason'}")
        elif status == "corrupt":  # polychromic.review.leaderboard.trial_row: the unreadable files
            texts.append(f"corrupt: {reason[0][:200] if reason else 'unreadable files'}")
        else:
            texts.append(STATUS_TEXT.get(status, status))
        result = read_json(tdir / layout.RESULT) or {}
        config = (configs or {}).get(row["trial_id"]) or read_json(tdir / layout.CONFIG) or {}
        n, device = _gpus(result if isinstance(result, dict) else {},
                          config if isinstance(config, dict) else {}, gpus_per_trial)
        seconds = pd.to_numeric(pd.Series([row.get("wall_seconds")]), errors="coerce").iloc[0]
        if pd.isna(seconds):
            history = read_jsonl(tdir / layout.HISTORY)
            times = [h.get("time_total_s") for h in history
                     if isinstance(h, dict) and isinstance(h.get("time_total_s"), (int, float))]
            seconds = float(times[-1]) if times else np.nan
        devices.append(device)
        gpus.append(n)
        elapsed.append(float(seconds))
    df["status_text"] = pd.Series(texts, index=df.index, dtype=object)
    df["device"] = pd.Series(devices, index=df.index, dtype=object)
    df["gpus"] = np.asarray(gpus, dtype=float)
    df["elapsed_seconds"] = np.asarray(elapsed, dtype=float)
    df["gpu_hours"] = df["elapsed_seconds"] * df["gpus"] / 3600.0
    df.loc[df["gpus"] == 0, "gpu_hours"] = 0.0  # a CPU trial used no GPU, even if time is unknown
    df["cost_usd"] = df["gpu_hours"] * float(price)
    df["pareto"] = False
    df["pareto_rank"] = np.inf  # load_study ranks on the study's axes (quality vs diversity)
    return df


# --- ordering and selection -------------------------------------------------------------------


def resolve_column(df: pd.DataFrame, name: str, option: str) -> str:
    """The column ``name`` refers to (aliases: lambda/λ → lambda_, cost → cost_usd, …) or a
    one-line ``ConfigError`` with the 3 closest column names (``--metrics list`` prints them
    all: :func:`column_names`)."""
    name = name.strip()
    col = ALIASES.get(name, name)
    if col in df.columns:
        return col
    close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(option, f"unknown column {name[:80]!r} ({hint}--metrics list prints "
                      "every column)", SRC)


def column_names(df: pd.DataFrame) -> list[str]:
    """Every column a ``--sort``, ``--filter``, ``--by`` or ``--metrics`` can name, the
    per-metric derived ones (``delta_M``, CI bounds, …) after the rest."""
    derived = ("delta_", "rel_delta_", "significant_", "mde_", "p_value_", "headroom_",
               "floor_", "ceiling_", "confirm_delta_", "confirmed_")
    names = [str(c) for c in df.columns]
    return ([c for c in names if not c.startswith(derived)]
            + [c for c in names if c.startswith(derived)])


_DIRECTION = re.compile(r"^(?P<name>.+):(?P<direction>[A-Za-z]+)$")


def split_direction(spec: str, option: str, df: pd.DataFrame) -> tuple[str, str]:
    """``METRIC[:asc|:desc]`` → (metric, "asc"/"desc"/""); ``ConfigError`` naming the
    direction when it is the mistake (``pass@1:up``), not "unknown column"."""
    m = _DIRECTION.match(spec.strip())
    if m and m["direction"] in ("asc", "desc"):
        return m["name"], m["direction"]
    if m and ALIASES.get(m["name"].strip(), m["name"].strip()) in df.columns:
        raise ConfigError(option, f"unknown direction {m['direction'][:20]!r} in "
                          f"{spec.strip()[:80]!r}: use {m['name']}:asc or {m['name']}:desc", SRC)
    return spec, ""


def better_mode(metric: str, objectives: Sequence[tuple[str, str]]) -> str | None:
    """``"max"``/``"min"`` when larger/smaller values of ``metric`` are better, else None.
    Objectives decide first; derived columns (``delta_M``, ``rel_delta_M``, CI bounds) follow
    ``M``; everything else is the column catalog's direction (``polychromic.core.columns``)."""
    base = columns.base_metric(metric)
    for name, mode in objectives:
        if name in (metric, base):
            return mode
    if metric.startswith(("mde_", "headroom_", "ceiling_", "floor_")):
        return None  # properties of the study's power and task, not better or worse per se
    return columns.better(metric)


def sort_by(df: pd.DataFrame, spec: str, objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Sort by ``METRIC`` (best first when the metric has a better direction, else ascending)
    or ``METRIC:asc`` / ``METRIC:desc``; ties keep the default order."""
    name, direction = split_direction(spec, "--sort", df)
    col = resolve_column(df, name, "--sort")
    ascending = direction == "asc" if direction else better_mode(col, objectives) != "max"
    return sort_rows(df, [col], [ascending])


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_CONDITION = re.compile(r"^\s*(?P<col>[^\s<>=!]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S+)\s*$")
_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
        "==": np.equal, "!=": np.not_equal}


@dataclass(frozen=True)
class Condition:
    """One parsed ``--filter`` term: ``column op value``."""

    column: str
    op: str
    value: float | str


def parse_filter(text: str) -> list[Condition]:
    """Parse ``'lambda_>0.5,pass@1>=0.3'`` (terms joined by ``,`` = AND).

    Each term is ``column op number`` with op one of ``> >= < <= == !=``; ``==``/``!=`` also
    take a word (``status==finished``, ``pareto==true``). Nothing is evaluated as code."""
    conditions = []
    for term in text.split(","):
        if not term.strip():
            raise ConfigError("--filter", f"empty term in {text!r} (join terms with ',')", SRC)
        m = _CONDITION.match(term)
        if not m:
            raise ConfigError("--filter", f"cannot parse {term.strip()!r}: expected "
                              "'column op number' with op one of > >= < <= == !=", SRC)
        col, op, raw = m["col"], m["op"], m["value"]
        if _NUMBER.match(raw):
            value: float | str = float(raw)
        elif op in ("==", "!=") and re.match(r"^[A-Za-z_][\w\-]*$", raw):
            value = raw
        else:
            raise ConfigError("--filter", f"{term.strip()!r}: {raw!r} is not a number "
                              "(words only with == or !=)", SRC)
        conditions.append(Condition(col, op, value))
    return conditions


def apply_filter(df: pd.DataFrame, text: str | None) -> pd.DataFrame:
    """Rows matching every condition of ``text`` (see :func:`parse_filter`). A missing (NaN)
    value matches no condition, ``!=`` included: unknown is not "different"."""
    if not text:
        return df
    keep = np.ones(len(df), dtype=bool)
    for cond in parse_filter(text):
        col = resolve_column(df, cond.column, "--filter")
        values = df[col]
        if isinstance(cond.value, str):
            word = cond.value.lower()
            if word in ("true", "false") and (values.dtype == bool or col in ("pareto", "is_baseline")
                                              or col.startswith("significant_")):
                target = pd.to_numeric(values, errors="coerce").astype(float)
                hit = np.where(target.isna(), False, _OPS[cond.op](target, float(word == "true")))
            else:
                text_values = values.astype(object)
                missing = text_values.isna().to_numpy()
                hit = np.where(missing, False, _OPS[cond.op](
                    text_values.astype(str).str.lower().to_numpy(), word))
        else:
            numeric = pd.to_numeric(values, errors="coerce").astype(float)
            if numeric.isna().all() and values.notna().any():
                raise ConfigError("--filter", f"column {col!r} is not numeric (use == or != "
                                  "with a word)", SRC)
            hit = np.where(numeric.isna(), False, _OPS[cond.op](numeric.to_numpy(), cond.value))
        keep &= np.asarray(hit, dtype=bool)
    return df[keep].reset_index(drop=True)


def select(study: Study, sort: str | None = None, top: int | None = None,
           filter_text: str | None = None) -> pd.DataFrame:
    """The study's rows after ``--filter``, ``--sort`` and ``--top`` (in that order). The ★
    marker is computed over the whole study first, so filtering never changes it."""
    df = apply_filter(study.frame, filter_text)
    if sort:
        df = sort_by(df, sort, study.objectives)
    if top is not None:
        if top < 1:
            raise ConfigError("--top", f"must be ≥ 1, got {top}", SRC)
        df = df.head(top).reset_index(drop=True)
    return df



# --- the study's metrics, verdicts and knobs ------------------------------------------------


def measured(df: pd.DataFrame, metric: str) -> bool:
    """Some row has a value or a delta for ``metric`` (an older study may lack the value of a
    per-prompt metric while the leaderboard computed its delta from the generations)."""
    return _finite(df, metric) or _finite(df, f"delta_{metric}")


def compared_metrics(df: pd.DataFrame) -> list[str]:
    """Every metric with a value or a delta vs the baseline, in catalog order: pass@k by k,
    quality, per-prompt then corpus diversity, length, then any other compared column."""
    passk = sorted((c for c in df.columns if re.fullmatch(r"pass@\d+", str(c))),
                   key=lambda c: int(c[5:]))
    known = [*passk, *columns.EVAL_METRICS]
    others = [str(c)[6:] for c in df.columns  # (pass@k vs best T: the frontier's own table)
              if str(c).startswith("delta_") and not str(c).endswith(("_ci_low", "_ci_high",
                                                                      "_vs_best_T"))]
    return [m for m in dict.fromkeys([*known, *others]) if measured(df, m)]


def verdicts(df: pd.DataFrame, full: bool = False) -> list[tuple[str, str]]:
    """(trial id, verdict line) of every row with a verdict (the leaderboard's ``verdict``
    column: one line per finished non-baseline trial vs the λ=0 baseline), in row order.
    ``full``: the leaderboard's ``verdict_full`` (the whole ``vs temperature:`` clause: what
    makes no claim, MDEs, own temperatures) instead of the line's claims only, for the views
    that have room (``--wide``, ``--trial``, HTML, Markdown)."""
    col = "verdict_full" if full and "verdict_full" in df else "verdict"
    if col not in df:
        return []
    return [(str(r["trial_id"]), str(r[col]).strip()) for _, r in df.iterrows()
            if isinstance(r[col], str) and r[col].strip()]


def find_trial(study: Study, trial: str) -> pd.Series:
    """The row of trial ``trial`` (an id or a unique prefix of one); ``ConfigError`` naming
    the trials when it is missing or ambiguous."""
    ids = [str(t) for t in study.frame["trial_id"]]
    hits = [t for t in ids if t == trial] or [t for t in ids if t.startswith(trial)]
    if len(hits) != 1 or not trial:
        what = "is ambiguous" if len(hits) > 1 else "does not exist"
        shown = ", ".join(ids[:12]) + (", …" if len(ids) > 12 else "")
        raise ConfigError("--trial", f"trial {trial!r} {what} in study {study.name} "
                          f"(trials: {shown or 'none yet'})", SRC)
    return study.frame[study.frame["trial_id"].astype(str) == hits[0]].iloc[0]


def varying_knobs(df: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Knob columns that differ between trials (λ always shown) and the fixed ones' values."""
    varying, fixed = [], {}
    for knob in KNOBS:
        if knob not in df:
            continue
        values = df[knob].dropna().unique()
        if knob == "lambda_" or len(values) > 1:
            varying.append(knob)
        elif len(values) == 1:
            fixed[knob] = values[0]
    return varying, fixed




def choose_trial(study: Study, trial: str | None = None, by: str | None = None,
                 action: str = "export") -> pd.Series:
    """The row to export or confirm, the one notion of "best" of every recipe (``export
    --best``, ``confirm --best``, the review's ``best:`` caption, the model card): ``trial``
    (an id or a unique prefix of one), or else the best λ>0 trial in the study's order (or by
    ``by``, ``METRIC[:asc|:desc]``), a confirmed gain preferred (:func:`prefer_confirmed`).

    Never the λ=0 baseline unless it is named: "best" answers which diversity-aware trial to
    use, and confirming the baseline against itself means nothing. When the baseline ranks
    above every λ>0 trial, ``chosen_because`` says so in one line, with the chosen trial's
    delta and interval and how to take the baseline instead (``action``: the verb of that
    line: ``export`` or ``confirm``). The best trial must be finished: when the top-ranked λ>0 trial
    is failed, early-stopped or still running, this refuses (``ConfigError``) and says how to
    take it anyway (``--trial``)."""
    df = study.frame
    if df.empty:
        raise ConfigError("study", f"{study.name} has no trials yet", SRC)
    if trial is not None:
        row = find_trial(study, trial).copy()
        row["chosen_because"] = "named with --trial"
        row["baseline_first"] = False
        return row
    corrupt = df[df["status"].astype(str) == "corrupt"]
    if len(corrupt):  # its rank is unknown: never fall back silently to the runner-up
        first = corrupt.iloc[0]
        others = f" (and {len(corrupt) - 1} more)" if len(corrupt) > 1 else ""
        raise ConfigError("--best", f"trial {first['trial_id']}{others} of study {study.name} "
                          f"is corrupt ({str(first.get('error') or '')[:160]}), so the best "
                          "trial is unknown; fix or remove it, or name a trial with --trial",
                          SRC)
    if by:
        name, direction = split_direction(by, "--by", df)
        col = resolve_column(df, name, "--by")
        if not direction and better_mode(col, study.objectives) is None:
            raise ConfigError("--by", f"no better direction known for {col!r}: say "
                              f"{col}:asc or {col}:desc", SRC)
        ranked = sort_by(df, by, study.objectives)
        ranked = ranked[pd.to_numeric(ranked[col], errors="coerce").notna()]
        label, where = f"by {col}", f"on {col}"
    else:
        col = study.objectives[0][0]
        ranked = df[pd.to_numeric(df[col], errors="coerce").notna()]
        label, where = "by the study's objectives", (
            f"on {col}" if len(study.objectives) == 1 else
            f"in the study's order (Pareto rank on {', '.join(m for m, _ in study.objectives)}, "
            f"then {col})")
    baseline = ranked["is_baseline"].fillna(False).astype(bool)
    baseline_first = len(ranked) > 0 and bool(baseline.iloc[0])
    ranked = ranked[~baseline]
    if ranked.empty:
        raise ConfigError("--best", f"no λ>0 trial of study {study.name} has a value to rank "
                          f"{label} yet; name one with --trial", SRC)
    best = ranked.iloc[0]
    if best["status"] != "finished":
        done = ranked[ranked["status"] == "finished"]
        alt = (f", or the best finished one with --trial {done.iloc[0]['trial_id']}"
               if len(done) else "")
        raise ConfigError("--best", f"the best λ>0 trial {label} is {best['trial_id']}, which "
                          f"is {best['status_text']}; name it with --trial "
                          f"{best['trial_id']}{alt}", SRC)
    if by:
        best = best.copy()
        best["chosen_because"] = f"best λ>0 trial {label}"
    else:  # a confirmed gain beats an unconfirmed one
        best = prefer_confirmed(ranked, best, *study.objectives[0])
    best["baseline_first"] = baseline_first
    if baseline_first:
        base = df[df["is_baseline"].fillna(False).astype(bool)].iloc[0]
        take = (f"; pass --trial {base['trial_id']} to export the baseline"
                if action == "export" else "")
        said = f"; {best['chosen_because']}" if best.get("confirm_checked") is True else ""
        best["chosen_because"] = (
            f"no λ>0 trial beat the λ=0 baseline {where}; {action}ing trial "
            f"{best['trial_id']}, the best λ>0 trial ({_delta_text(best, col)}){take}{said}")
    return best


def confirm_intro(row: pd.Series, base_id: str, seeds: int, prompts: int, runs: int) -> str:
    """The first line of ``confirm.py`` after the log's name: which trial is confirmed, why
    (:func:`choose_trial`'s ``chosen_because``, without its own ``confirming trial X, `` when
    the baseline ranked first, so the line names the trial once) and on what."""
    tid = str(row["trial_id"])
    because = str(row.get("chosen_because") or "chosen").replace(f"confirming trial {tid}, ", "")
    return (f"confirming trial {tid} ({because}) against baseline {base_id}: {seeds} seed "
            f"pairs × {prompts} fresh prompts ({runs} runs)")


def _delta_text(row: pd.Series, metric: str) -> str:
    """``Δ semantic_diversity -0.0081 [-0.012, -0.0042]`` or ``no Δ on M`` without one."""
    d, lo, hi = (pd.to_numeric(pd.Series([row.get(f"delta_{metric}{s}")]), errors="coerce").iloc[0]
                 for s in ("", "_ci_low", "_ci_high"))
    if pd.isna(d):
        return f"no Δ on {metric}"
    return f"Δ {metric} {d:+.2g} [{lo:+.2g}, {hi:+.2g}]"


def best_line(study: Study) -> str:
    """The review's ``best:`` caption: the trial ``--best`` takes and why, or why none can be
    taken (the same rule as :func:`choose_trial`), "" for a study without trials."""
    if study.frame.empty:
        return ""
    try:
        row = choose_trial(study)
    except ConfigError as err:
        return f"best λ>0 trial (export/confirm --best): none ({err.message})"
    text = f"best λ>0 trial (export/confirm --best): {row['trial_id']}"
    if row["baseline_first"]:  # "no λ>0 trial beat the λ=0 baseline …; exporting trial X, …"
        text += "; " + str(row["chosen_because"]).split("; exporting ")[0]
        text += f" ({_delta_text(row, study.objectives[0][0])})"
    return text


def prefer_confirmed(ranked: pd.DataFrame, best: pd.Series, metric: str,
                     mode: str | None = None) -> pd.Series:
    """The best-ranked finished trial whose objective gain ``study/confirm.py`` confirmed
    (``confirmed_<metric>``, the confirmation delta in the better direction: a confirmed loss
    is no reason to prefer a trial), else ``best``; ``chosen_because`` says which and why."""
    col = f"confirmed_{metric}"
    best = best.copy()
    best["confirm_checked"] = True
    if col in ranked and f"confirm_delta_{metric}" in ranked:
        sign = -1.0 if (mode or better_mode(metric, [])) == "min" else 1.0
        gain = pd.to_numeric(ranked[f"confirm_delta_{metric}"], errors="coerce") * sign > 0
        ok = ranked[(ranked["status"] == "finished")
                    & ranked[col].map(lambda v: v is True or v == 1.0) & gain]
        if len(ok):
            pick = ok.iloc[0].copy()
            pick["confirm_checked"] = True
            pick["chosen_because"] = (
                f"confirmed on fresh prompts and seeds ({metric}; {pick.get('confirmation')})"
                + ("" if pick["trial_id"] == best["trial_id"] else
                   f"; preferred over the unconfirmed top trial {best['trial_id']}"))
            return pick
    tried = "confirm_seeds" in best and pd.notna(best.get("confirm_seeds"))
    # not tried: the model card and the export add how to confirm it (one command, --trial ID)
    best["confirm_checked"] = bool(tried)
    best["chosen_because"] = (f"best by {metric}; its gain was not confirmed on fresh prompts "
                              "and seeds" if tried else f"best by {metric}")
    return best
