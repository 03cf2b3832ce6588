"""How a study is shown: table cells, Δ text, the caption lines under a table, which metrics
a view shows, and the ``--format`` serializations (csv, json, parquet, markdown).

The facts shown (the loaded study, its order, filters, verdicts) are the study model's
(``polychromic.review.study``); the terminal views are in ``polychromic.review.terminal``, the HTML
report in ``polychromic.review.html_report``.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.core.errors import ConfigError
from polychromic.metrics.aggregate import HEADLINE
from polychromic.review.study import (
    SRC,
    Study,
    best_line,
    measured,
    resolve_column,
    varying_knobs,
    verdicts,
)
from polychromic.stats import significance
from polychromic.stats.headroom import merged_warnings
from polychromic.stats.verdict import as_float as _num

FORMATS = ("table", "csv", "json", "parquet", "markdown")


def shown_metrics(df: pd.DataFrame, wanted: Sequence[str] | None = None,
                  objectives: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Metrics of the full views (``--wide``, markdown, HTML): ``wanted`` (validated), or the
    study's objectives that are not headline metrics (e.g. a corpus-level objective) followed
    by every headline metric (``aggregate.HEADLINE``), each if some row has it."""
    if wanted:
        return [resolve_column(df, m, "--metrics") for m in wanted]
    extra = [m for m, _ in objectives if m not in HEADLINE]
    shown = [m for m in dict.fromkeys([*extra, *HEADLINE]) if measured(df, m)]
    return shown or list(HEADLINE[:1])


def compact_metrics(study: Study, wanted: Sequence[str] | None = None) -> list[str]:
    """Metrics of the default terminal view: ``wanted`` (validated), or the study's
    objective(s), then pass@1 and the per-prompt headline diversity metrics
    (``columns.HEADLINE_DIVERSITY``), each if some trial has it."""
    if wanted:
        return [resolve_column(study.frame, m, "--metrics") for m in wanted]
    order = [*(m for m, _ in study.objectives), "pass@1", *columns.HEADLINE_DIVERSITY]
    shown = [m for m in dict.fromkeys(order) if measured(study.frame, m)]
    return shown or ["pass@1"]


def fmt(value: Any, digits: int = 4) -> str:
    """A compact cell: NaN/None → "—", floats with ``digits`` significant digits."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}"
    return str(value)


def delta_parts(row: pd.Series, metric: str) -> tuple[str, str, str] | None:
    """(``"+0.05 (+13%)"``, ``"[+0.01, +0.09]"``, mark) for ``metric``'s delta vs the
    baseline, or None when the row has none. Any part the leaderboard lacks is left out; the
    mark is ``*``/``†``/"" (``polychromic.stats.significance.mark``: ``*`` = the verdict's
    gain or loss)."""
    delta = _num(row.get(f"delta_{metric}"))
    if math.isnan(delta):
        return None
    low, high = _num(row.get(f"delta_{metric}_ci_low")), _num(row.get(f"delta_{metric}_ci_high"))
    rel = _num(row.get(f"rel_delta_{metric}"))
    head = f"{_signed(delta)}" + ("" if math.isnan(rel) else f" ({_percent(rel)})")
    ci = "" if math.isnan(low) or math.isnan(high) else f"[{_signed(low)}, {_signed(high)}]"
    return head, ci, significance.mark(row, metric)


def _percent(value: float) -> str:
    """A relative change with the digits that matter: +21%, +2.5%, -0.058%, 0%."""
    if value == 0:
        return "0%"
    size = abs(value)
    return f"{value:+.0f}%" if size >= 10 else f"{value:+.1f}%" if size >= 1 else f"{value:+.2g}%"


def _signed(value: float) -> str:
    return "0" if value == 0 else f"{value:+.3g}"


def fmt_delta(row: pd.Series, metric: str) -> str:
    """``+0.05 [+0.01, +0.09] (+13%)*`` (``*``/``†``: ``significance.LEGEND``), or "" when
    there is no delta."""
    parts = delta_parts(row, metric)
    if parts is None:
        return ""
    head, ci, mark = parts
    value, _, rel = head.partition(" ")
    text = " ".join(filter(None, [value, ci, rel]))
    return text + mark


def _is_true(value: Any) -> bool:
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def gpu_cell(row: pd.Series) -> str:
    """GPU-hours, with the reason when it is 0 because the trial ran on CPU."""
    if row.get("device") in ("cpu", "cpu?"):
        return "0 (cpu)"
    return fmt(row.get("gpu_hours"), 3)


def captions(study: Study, df: pd.DataFrame, compact: bool = False,
             shown: Sequence[str] | None = None) -> list[str]:
    """The lines explaining a table: ordering, ★, Δ, cost, fixed knobs, warnings, notes.
    ``compact``: for the default terminal view, which shows Δ without its CI and no cost
    column (the totals are in the cost line). ``shown``: the metrics the table shows; a
    warning about the headroom of a diversity metric it does not show is left out (one line
    counts them and says how to see them), so the caption is about the table above it; there
    the warnings that metrics are at (or past) the ceiling are one line each
    (``polychromic.stats.headroom.merged_warnings``)."""
    objs = ", ".join(f"{m} ({mode})" for m, mode in study.objectives)
    (qm, qmode), (dm, dmode) = study.axes
    _, fixed = varying_knobs(study.frame)
    # CPU trials, said once: those without a recorded device are in a note of their own
    # (study.notes) when load_study wrote one
    said = any("device" in n for n in study.notes)
    cpu = int(study.frame["device"].isin(["cpu"] if said else ["cpu", "cpu?"]).sum()
              if len(study.frame) else 0)
    if compact:
        delta = (f"Δ = trial − baseline (λ=0); {significance.LEGEND}; ↑/↓ = higher/lower is "
                 "better; CIs and MDEs: --wide, --trial ID, --format, --html")
        hours = pd.to_numeric(df.get("gpu_hours", pd.Series(dtype=float)), errors="coerce")
        cost = pd.to_numeric(df.get("cost_usd", pd.Series(dtype=float)), errors="coerce")
        total = (f"GPU-hours of these {len(df)} trials: {fmt(float(hours.sum()), 3)}, cost "
                 f"${float(cost.sum()):.2f}; ")
    else:
        delta = ("Δ = trial − baseline (λ=0) with [CI] and (relative change %); "
                 f"{significance.LEGEND}")
        total = ""
    cost_line = (f"{total}GPU-hours = elapsed × GPUs / 3600; cost = GPU-hours × "
                 f"${study.price:.2f}/GPU-hour (--gpu-hour-price)"
                 + (f"; {cpu} trial(s) on CPU: 0 GPU-hours" if cpu else ""))
    if compact and cpu and cpu == len(study.frame):  # nothing to price: say it in one line
        cost_line = (f"GPU-hours 0, cost $0.00: all {cpu} trials ran on CPU (GPU-hours = "
                     "elapsed × GPUs / 3600)")
    lines = [
        f"objectives: {objs}; ★ = Pareto-optimal on {qm} ({qmode}) vs {dm} ({dmode}) over all "
        f"{len(study.frame)} trials",
        *([best] if (best := best_line(study)) else []),
        # how the CIs and the * were computed: where CIs are shown (the compact view has none)
        delta + ("" if compact else (f"; CI: {study.ci_method}" if study.ci_method else "")
                 + (f"; {study.multiplicity}" if study.multiplicity else "")),
        cost_line,
    ]
    if fixed:
        lines.append("fixed: " + ", ".join(f"{k}={fmt(v)}" for k, v in fixed.items()))
    texts = df.get("warnings", pd.Series(dtype=object)).fillna("").astype(str)
    warnings = list(dict.fromkeys(w for text in texts for w in split_warnings(text)))
    hidden = [w for w in warnings if shown is not None and _about_hidden(w, shown)]
    kept = [w for w in warnings if w not in hidden]
    # the default view says metrics at (or past) the ceiling once, with each one's numbers
    lines += [f"warning: {w}" for w in (merged_warnings(kept) if compact else kept)]
    if hidden:
        lines.append(f"{len(hidden)} more warning(s) on metrics not shown here: --all-warnings "
                     "or --wide")
    return lines + [f"note: {n}" for n in study.notes]


_HEADROOM_WARNING = re.compile(r"^(past )?ceiling: baseline (?P<metric>[\w@]+)")


def _about_hidden(warning: str, shown: Sequence[str]) -> bool:
    """``warning`` is a ceiling warning of a diversity metric not in ``shown``."""
    m = _HEADROOM_WARNING.match(warning)
    return bool(m and columns.is_diversity(m["metric"]) and m["metric"] not in shown)


#: where one warning of a ``warnings`` cell ends: "; " before the next "word: " (a warning
#: itself may hold "; ", e.g. "(0.98; floor 0, ceiling 1)")
_NEXT_WARNING = re.compile(r";\s+(?=[a-z][\w' -]*: )")


def split_warnings(text: Any) -> list[str]:
    """The separate warnings of a leaderboard ``warnings`` cell (joined with "; ")."""
    if not isinstance(text, str):
        return []
    return [w.strip() for w in _NEXT_WARNING.split(text) if w.strip()]


def machine_frame(df: pd.DataFrame) -> pd.DataFrame:
    """All columns, the review's own first: what csv/json/parquet write."""
    first = ["trial_id", "pareto", "pareto_rank", "status", "status_text", "error", "is_baseline"]
    first = [c for c in first if c in df]
    return df[first + [c for c in df.columns if c not in first]]


def markdown_table(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None = None) -> str:
    """A GitHub/pandoc pipe table for papers: the wide terminal table's columns, Δ with its CI
    in its own column, then the caption lines and each trial's verdict as a list."""
    shown = shown_metrics(study.frame, metrics, study.objectives)
    knobs, _ = varying_knobs(study.frame)
    header = ["★", "trial_id", "status", *knobs]
    for metric in shown:
        header += [metric, f"Δ {metric}"]
    header += ["mean_diversity_grad_share", "gpu_hours", "cost_usd"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(
        ":-:" if h == "★" else ("---" if h in ("trial_id", "status") else "--:") for h in header) + "|"]
    for _, row in df.iterrows():
        cells = ["★" if row.get("pareto") else "", str(row["trial_id"]), str(row["status_text"]),
                 *[fmt(row.get(k)) for k in knobs]]
        for metric in shown:
            cells += [fmt(row.get(metric)), fmt_delta(row, metric)]
        cells += [fmt(row.get("mean_diversity_grad_share"), 3), fmt(row.get("gpu_hours"), 3),
                  fmt(row.get("cost_usd"), 3)]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    notes = captions(study, df) + [f"verdict {tid}: {line}" for tid, line in verdicts(df, full=True)]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {c}" for c in notes) + "\n"


def render(study: Study, df: pd.DataFrame, fmt_name: str,
           metrics: Sequence[str] | None = None) -> str | bytes:
    """``df`` serialized as ``csv`` / ``json`` (list of records, NaN → null) / ``parquet``
    (bytes) / ``markdown``."""
    if fmt_name == "csv":
        return machine_frame(df).to_csv(index=False)
    if fmt_name == "json":
        return machine_frame(df).to_json(orient="records", indent=1) + "\n"
    if fmt_name == "parquet":
        buf = io.BytesIO()
        machine_frame(df).to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt_name == "markdown":
        return markdown_table(study, df, metrics)
    raise ConfigError("--format", f"unknown format {fmt_name!r} (known: {', '.join(FORMATS)})", SRC)
