"""The review in a terminal: a table that fits the window, a full ``--wide`` table, and a
transposed view of one trial (``--trial ID``).

The default view is meant to be read at 100 columns: full trial ids, the study's objective(s),
pass@1 and the per-prompt diversity metrics (``columns.HEADLINE_DIVERSITY``) under their short
names, each cell the value with its Δ vs the λ=0 baseline below it as ``+0.025*`` (``*`` = the
verdict's Holm-adjusted gain or loss, ``†`` = this comparison alone: ``polychromic.stats.significance``). CIs, MDEs and headroom are left to ``--wide``, ``--trial``, the machine formats
and the HTML report. When the window is narrower than the table, the least important columns
are left out (and named below the table) rather than truncated: rich would otherwise cut ids
and numbers to ``a7ae…``. Below the table: one verdict line per trial (the leaderboard's
``verdict`` column), failures, then the caption lines (objectives, ★, Δ, cost, warnings).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.core.phases import describe
from polychromic.review.format import (
    _is_true,
    _percent,
    _signed,
    captions,
    compact_metrics,
    delta_parts,
    fmt,
    gpu_cell,
    shown_metrics,
    split_warnings,
)
from polychromic.review.frontier import WIDE as FRONTIER_WIDE
from polychromic.review.frontier import frontier_rows, own_curve_rows, wide_cell, wide_header
from polychromic.review.study import (
    STATUS_TEXT,
    Study,
    better_mode,
    compared_metrics,
    find_trial,
    varying_knobs,
    verdicts,
)
from polychromic.stats import significance
from polychromic.stats.headroom import AT_CEILING, PAST_CEILING, ceiling_state
from polychromic.stats.headroom import LOW_HEADROOM as _LOW_HEADROOM
from polychromic.stats.verdict import as_float as _num
from polychromic.store import layout
from polychromic.store.records import load_json

#: the default view's width when stdout is not a terminal (and COLUMNS is unset)
COMPACT_WIDTH = 100
#: the ``--wide`` view's width when stdout is not a terminal
WIDE_WIDTH = 250
#: a diversity metric whose headroom is below this is shown "at ceiling"
LOW_HEADROOM = _LOW_HEADROOM
_OWN_LINES = ("trial_id", "verdict", "verdict_full", "warnings", "status", "status_text", "error")


def console_for(wide: bool = False, width: int | None = None) -> Any:
    """A rich console: the terminal's width in a terminal, else ``COLUMNS`` or the view's
    default width (so piped output is what a 100-column terminal shows)."""
    from rich.console import Console

    if width is not None:
        return Console(width=width)
    console = Console()
    if console.is_terminal:
        return console
    env = os.environ.get("COLUMNS", "")
    return Console(width=int(env) if env.isdigit() and not wide else
                   WIDE_WIDTH if wide else COMPACT_WIDTH)


def _arrow(metric: str, study: Study) -> str:
    mode = better_mode(metric, study.objectives)
    return {"max": " ↑", "min": " ↓"}.get(mode or "", "")


def _header(metric: str, study: Study) -> str:
    """Short name with its better direction; ``(corpus)`` on a line of its own."""
    name = columns.short(metric)
    if name.endswith(" (corpus)"):
        return name[: -len(" (corpus)")] + _arrow(metric, study) + "\n(corpus)"
    return name + _arrow(metric, study)


def _good(row: pd.Series, metric: str, study: Study) -> bool:
    return (_num(row.get(f"delta_{metric}")) > 0) == (better_mode(metric, study.objectives) != "min")


def _delta_style(row: pd.Series, metric: str, study: Study, mark: str) -> str:
    """Green/red only for the verdict's gain/loss (``*``); a ``†`` is no claim: dim."""
    if mark != significance.HOLM or better_mode(metric, study.objectives) is None:
        return "dim"
    return "bold green" if _good(row, metric, study) else "bold red"


@dataclass
class _Col:
    """One column of a table that may be left out when the window is too narrow."""

    header: str
    cells: list[Any]
    justify: str = "right"
    #: 0 = always shown; larger numbers are left out first (later columns before earlier ones)
    drop: int = 0
    style: str = ""
    header_style: str = "bold"


def _fit(console: Any, cols: list[_Col], build: Callable[[list[_Col]], Any]) -> tuple[Any, list[_Col]]:
    """The table of ``cols`` without the fewest droppable columns that makes it fit the
    console; returns it and the columns left out."""
    from rich.measure import Measurement

    kept = list(cols)
    dropped: list[_Col] = []
    while True:
        table = build(kept)
        wide = console.options.update(width=10_000)
        if Measurement.get(console, wide, table).maximum <= console.width:
            return table, dropped
        candidates = [c for c in kept if c.drop > 0]
        if not candidates:
            return table, dropped
        worst = max(candidates, key=lambda c: (c.drop, kept.index(c)))
        kept.remove(worst)
        dropped.insert(0, worst)


def _build(title: str | None, box: Any) -> Callable[[list[_Col]], Any]:
    from rich.table import Table

    def build(cols: list[_Col]) -> Any:
        table = Table(title=title, title_justify="left", box=box, pad_edge=False,
                      header_style="", title_style="bold")
        for col in cols:
            table.add_column(col.header, justify=col.justify, no_wrap=True, style=col.style,
                             header_style=col.header_style)
        for i in range(len(cols[0].cells) if cols else 0):
            table.add_row(*[c.cells[i] for c in cols])
        return table

    return build


def _title(study: Study, df: pd.DataFrame) -> str:
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    summary = ", ".join(f"{n} {STATUS_TEXT.get(s, 'failed' if s == 'error' else s)}"
                        for s, n in counts.items())
    return (f"study {study.name}: {len(df)} of {len(study.frame)} trials"
            + (f" ({summary})" if summary else ""))


def _status_style(status: str) -> str:
    return {"finished": "green", "early_stopped": "yellow", "error": "red",
            "corrupt": "red"}.get(status, "cyan")


def _short_status(row: pd.Series) -> str:
    status = str(row.get("status") or "running")
    return "failed" if status == "error" else STATUS_TEXT.get(status, status)


def _print_notes(console: Any, study: Study, df: pd.DataFrame, compact: bool,
                 dropped: Sequence[str] = (), shown: Sequence[str] | None = None) -> None:
    """Verdicts and failures (trial id, then its line, wrapped under itself), then captions."""
    from rich.table import Table
    from rich.text import Text

    lines = dict(verdicts(df, full=not compact))  # --wide: the whole frontier clause
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    rows = 0
    for _, row in df.iterrows():
        tid = str(row["trial_id"])
        if tid in lines:
            grid.add_row(tid, lines[tid])
            rows += 1
        elif row.get("status") == "error":
            grid.add_row(tid, Text(str(row.get("status_text")), style="red"))
            rows += 1
    if rows:
        base = study.baseline()
        which = f" (trial {base['trial_id']})" if base is not None else ""
        console.print(f"vs the λ=0 baseline{which}:", style="bold", highlight=False)
        console.print(grid, highlight=False)
    extra = ([f"not shown at this width: {', '.join(dropped)} (--wide, --trial ID)"]
             if dropped else [])
    for line in extra + captions(study, df, compact=compact, shown=shown):
        console.print(line, style="dim", highlight=False, markup=False)


def print_table(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None = None,
                console: Any = None, wide: bool = False, stacked: bool | None = None,
                all_warnings: bool = False) -> None:
    """The review in the terminal: the compact default view, or with ``wide`` every headline
    metric with Δ, CI and relative change, mean grad share, GPU-hours and cost: in a terminal
    (or with ``stacked``) as blocks of columns that each fit its width, piped as one wide
    table (for ``less -S``, a file or another program). The default view's caption warns
    only about the metrics it shows unless ``all_warnings``."""
    if console is None:
        console = console_for(wide)
    if wide:
        _print_wide(study, df, metrics, console,
                    console.is_terminal if stacked is None else stacked)
    else:
        _print_compact(study, df, metrics, console, all_warnings)


def _print_compact(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None,
                   console: Any, all_warnings: bool = False) -> None:
    from rich import box
    from rich.text import Text

    shown = compact_metrics(study, metrics)
    knobs, _ = varying_knobs(study.frame)
    objectives = {m for m, _ in study.objectives}
    rows = [r for _, r in df.iterrows()]
    trial = []
    for r in rows:
        cell = Text(str(r["trial_id"]))
        if r.get("is_baseline"):
            cell.append("\nbaseline", style="dim")
        trial.append(cell)
    cols = [
        _Col("★", ["★" if r.get("pareto") else "" for r in rows], "center", style="yellow"),
        _Col("trial", trial, "left"),
        _Col("status", [Text(_short_status(r), style=_status_style(str(r.get("status"))))
                        for r in rows], "left", drop=1),
    ]
    for i, knob in enumerate(knobs):
        cols.append(_Col(columns.short(knob), [fmt(r.get(knob), 3) for r in rows],
                         drop=0 if knob == "lambda_" else 10 + i))
    for i, metric in enumerate(shown):
        cells = []
        for r in rows:
            cell = Text(fmt(_num(r.get(metric)), 3))
            parts = delta_parts(r, metric)
            if parts and not r.get("is_baseline"):
                mark = parts[2]
                cell.append(f"\n{_signed(_num(r.get(f'delta_{metric}')))}" + mark,
                            style=_delta_style(r, metric, study, mark))
            cells.append(cell)
        important = metric in objectives or metric == "pass@1"
        cols.append(_Col(_header(metric, study), cells, drop=2 if important else 3 + i,
                         header_style="bold underline" if metric in objectives else "bold"))
    table, dropped = _fit(console, cols, _build(_title(study, df), box.SIMPLE_HEAD))
    console.print(table)
    names = [c.header.replace("\n", " ") for c in dropped]
    _print_notes(console, study, df, compact=True, dropped=names,
                 shown=None if all_warnings else shown)


def _print_wide(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None,
                console: Any, stacked: bool = False) -> None:
    """Every headline metric with its Δ vs the baseline and CI (the full table). ``stacked``:
    the metric columns are laid out in blocks, each repeating ★, trial, status and the knobs
    and as wide as the console, so that no cell is cut (the failure reasons are below)."""
    from rich import box
    from rich.text import Text

    shown = shown_metrics(study.frame, metrics, study.objectives)
    knobs, _ = varying_knobs(study.frame)
    rows = [row for _, row in df.iterrows()]
    ids = [_Col("★", ["★" if r.get("pareto") else "" for r in rows], "center"),
           _Col("trial", [str(r["trial_id"]) + (" (baseline)" if r.get("is_baseline") else "")
                          for r in rows], "left"),
           _Col("status", [Text(_short_status(r) if stacked else str(r["status_text"]),
                                style=_status_style(str(r.get("status")))) for r in rows],
                "left")]
    ids += [_Col(columns.short(k), [fmt(r.get(k)) for r in rows]) for k in knobs]
    data = []
    for metric in shown:
        cells = []
        for row in rows:
            cell = Text(fmt(row.get(metric)))
            parts = delta_parts(row, metric)
            if parts and not row.get("is_baseline"):
                head, ci, mark = parts
                style = _delta_style(row, metric, study, mark)
                cell.append(f"\nΔ {head}{mark}", style=style)
                if ci:
                    cell.append(f"\n{ci}", style=style)
            cells.append(cell)
        data.append(_Col(metric, cells))
    for col in FRONTIER_WIDE:  # against the baseline's temperature frontier, when measured
        if col in study.frame and pd.to_numeric(study.frame[col], errors="coerce").notna().any():
            data.append(_Col(wide_header(col), [wide_cell(r, col) for r in rows]))
    data += [_Col("mean grad share", [fmt(r.get("mean_diversity_grad_share"), 3) for r in rows]),
             _Col("GPU-h", [gpu_cell(r) for r in rows]),
             _Col("cost $", [fmt(r.get("cost_usd"), 3) for r in rows])]
    build = _build(None, box.SIMPLE_HEAD if stacked else box.HEAVY_HEAD)
    if not stacked:  # one table as wide as it needs: piped to `less -S`, a file, a program
        from rich.measure import Measurement

        table = _titled(build([*ids, *data]), _title(study, df))
        width = console.width
        need = Measurement.get(console, console.options.update(width=10_000), table).maximum
        console.width = max(width, need)
        console.print(table)
        console.width = width
    else:
        blocks = _blocks(console, ids, data, build)
        for n, block in enumerate(blocks, 1):
            title = _title(study, df) + (f" [{n}/{len(blocks)}]" if len(blocks) > 1 else "")
            console.print(_titled(build([*ids, *block]), title))
    _print_notes(console, study, df, compact=False)


def _titled(table: Any, title: str) -> Any:
    table.title = title
    return table


def _blocks(console: Any, ids: list[_Col], data: list[_Col],
            build: Callable[[list[_Col]], Any]) -> list[list[_Col]]:
    """``data`` split into runs of columns that, after the ``ids`` columns, fit the console
    (a column too wide even alone gets a block of its own)."""
    from rich.measure import Measurement

    wide = console.options.update(width=10_000)
    blocks: list[list[_Col]] = []
    block: list[_Col] = []
    for col in data:
        table = build([*ids, *block, col])
        if block and Measurement.get(console, wide, table).maximum > console.width:
            blocks.append(block)
            block = []
        block.append(col)
    return [*blocks, block] if block else blocks


# --- one trial, transposed --------------------------------------------------------------------


def _headroom_cell(value: float, metric: str) -> Any:
    """``37%``; red below LOW_HEADROOM (the metric is at its ceiling)."""
    from rich.text import Text

    if not math.isfinite(value) or not columns.is_diversity(metric):
        return ""
    return Text(f"{100 * value:.0f}%", style="bold red" if value < LOW_HEADROOM else "")


def _is_metric(name: str) -> bool:
    """An evaluation metric (shown in the metrics table when some trial has it)."""
    col = columns.column(name)
    return bool(col and col.stage == "evaluation" and col.family in ("quality", "diversity",
                                                                    "length"))


def _ci(low: float, high: float) -> str:
    """``[-0.16, +0.0053]``: two significant digits per bound, enough to read a CI."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return "[" + ", ".join("0" if v == 0 else f"{v:+.2g}" for v in (low, high)) + "]"


def per_metric(name: str, metrics: Sequence[str]) -> str | None:
    """The metric a per-metric column is about (``delta_M``, ``delta_M_ci_low``,
    ``p_value_M``, ``confirm_delta_M_ci_high``, ``headroom_M``, …), else None."""
    stem = re.sub(r"_ci_(low|high)$", "", name)
    for m in sorted(metrics, key=len, reverse=True):
        if stem != m and stem.endswith("_" + m):
            return m
    return None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (float, np.floating)) and math.isnan(value))


def trial_settings(study: Study, row: pd.Series, metrics: Sequence[str]) -> list[tuple[str, str]]:
    """(column, value) of every column of ``row`` that is not a metric or about one (those
    are the metrics table): status, ★, knobs, training summary, time and cost, checkpoint.
    Columns without a value are left out, knobs excepted."""
    passk = [str(c) for c in row.index if re.fullmatch(r"pass@\d+", str(c))]
    every = [*metrics, *passk, *columns.names(stage="evaluation")]
    out = [("status", str(row.get("status_text") or row.get("status"))),
           ("pareto", ("★ yes" if _is_true(row.get("pareto")) else "no")
            + f" (rank {fmt(row.get('pareto_rank'))})")]
    knobs = [k for k in columns.KNOBS if k in row.index]
    rest = [c for c in row.index if c not in knobs and c not in every
            and c not in _OWN_LINES and c not in ("pareto", "pareto_rank")
            and not _is_metric(str(c)) and per_metric(str(c), every) is None
            and not _empty(row.get(c))]
    for col in [*knobs, *rest]:
        value = row.get(col)
        if col == "gpu_hours":
            text = gpu_cell(row)
        elif isinstance(value, (bool, np.bool_)):
            text = "yes" if value else "no"
        elif isinstance(value, str):
            text = value.strip().splitlines()[-1] if value.strip() else ""
        else:
            text = fmt(value)
        out.append((str(col), text))
    return out


def phase_line(study: Study, trial_id: str) -> str:
    """Where the trial's wall time went (``phase_seconds`` of its result.json, see
    polychromic.core.phases) as one line, or "" when it recorded none."""
    result, _ = load_json(study.trial_dir(trial_id) / layout.RESULT)
    phases = result.get("phase_seconds") if isinstance(result, dict) else None
    if not isinstance(phases, dict):
        return ""
    where = {"worker": " (evaluated in the Train worker)",
             "actors": " (evaluated by Ray Data actors)"}.get(result.get("evaluated_in"), "")
    return describe(phases) + where



def _print_labelled(console: Any, rows: list[tuple[str, str]], style: str) -> None:
    """Label-and-text lines (the label in ``style``, never wrapped; the text folded to the
    width); nothing for no rows."""
    from rich.table import Table

    if not rows:
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style=style)
    grid.add_column(overflow="fold")
    for label, text in rows:
        grid.add_row(label, text)
    console.print(grid, highlight=False)

def print_trial(study: Study, trial: str, console: Any = None) -> None:
    """Every column of one trial (an id or a unique prefix), transposed: its settings, then
    one row per metric with the value, the baseline's, Δ, relative change, 95% CI, MDE and
    (diversity metrics) headroom, then its verdict and warnings."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    row = find_trial(study, trial)
    if console is None:
        console = console_for()
    base = study.baseline()
    tid = str(row["trial_id"])
    is_base = _is_true(row.get("is_baseline"))
    metrics = compared_metrics(study.frame)
    console.print(f"trial {tid} of study {study.name}"
                  + (" (the λ=0 baseline)" if is_base else ""), style="bold", highlight=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    for name, value in trial_settings(study, row, metrics):
        grid.add_row(name, value)
    phases = phase_line(study, tid)
    if phases:
        grid.add_row("phase_seconds", phases)
    console.print(grid, highlight=False)

    rows = []
    for m in metrics:
        value, base_value = _num(row.get(m)), _num(base.get(m)) if base is not None else math.nan
        low, high = _num(row.get(f"delta_{m}_ci_low")), _num(row.get(f"delta_{m}_ci_high"))
        delta = _num(row.get(f"delta_{m}"))
        mark = significance.mark(row, m)
        d = Text("")
        if math.isfinite(delta):
            d = Text(_signed(delta) + mark, style=_delta_style(row, m, study, mark))
        rel = _num(row.get(f"rel_delta_{m}"))
        mde = _num(row.get(f"mde_{m}"))
        p_value = _num(row.get(f"p_value_{m}"))
        confirm = _num(row.get(f"confirm_delta_{m}"))
        rows.append([columns.short(m) + _arrow(m, study), fmt(value, 3),
                     fmt(base_value, 3) if not is_base else "", d,
                     _percent(rel) if math.isfinite(rel) else "", _ci(low, high),
                     f"±{mde:.2g}" if math.isfinite(mde) else "",
                     _headroom_cell(_num(row.get(f"headroom_{m}")), m),
                     f"{p_value:.2g}" if math.isfinite(p_value) else "",
                     (_signed(confirm) + (" ✓" if _is_true(row.get(f"confirmed_{m}")) else "")
                      if math.isfinite(confirm) else ""), m])
    heads = [("metric", "left", 0), ("value", "right", 0), ("baseline", "right", 1),
             ("Δ", "right", 0), ("rel", "right", 3), ("95% CI", "right", 1),
             ("MDE", "right", 2), ("headroom", "right", 2), ("p", "right", 3),
             ("confirm Δ", "right", 3), ("column", "left", 4)]
    cols = [_Col(h, [r[i] for r in rows], justify, drop)
            for i, (h, justify, drop) in enumerate(heads)
            if i in (0, 1) or any(str(r[i]) for r in rows)]  # no empty Δ/CI/MDE columns
    if rows:
        table, dropped = _fit(console, cols, _build(None, box.SIMPLE_HEAD))
        console.print(table)
        if dropped:
            console.print("not shown at this width: " + ", ".join(c.header for c in dropped),
                          style="dim", highlight=False)
    else:
        console.print("no metrics yet", style="dim")
    states = {m: ceiling_state(_num(row.get(f"headroom_{m}"))) for m in metrics
              if columns.is_diversity(m)}
    ceiling = [columns.short(m) for m, s in states.items() if s == AT_CEILING]
    past = [columns.short(m) for m, s in states.items() if s == PAST_CEILING]
    if ceiling:
        console.print(f"at ceiling (headroom < {100 * LOW_HEADROOM:.0f}%: no gain can be shown): "
                      + ", ".join(ceiling), style="bold", highlight=False)
    if past:
        console.print("past ceiling (negative headroom: beyond unrelated texts, a gain would not "
                      "mean more diverse replies): " + ", ".join(past), style="bold",
                      highlight=False)
    frontier = frontier_rows(row, confirmation=True)
    if frontier:
        console.print(f"vs the λ=0 baseline's temperature frontier (T = "
                      f"{row.get('frontier_temperatures')}; Y at equal X: Y − the frontier at the "
                      "trial's X)", style="bold", highlight=False)
        heads = [("against the frontier", "left", 0), ("gain", "right", 0),
                 ("95% CI", "right", 1), ("MDE", "right", 2), ("confirm", "right", 3)]
        table, _ = _fit(console, [_Col(h, [r[i] for r in frontier], j, d)
                                  for i, (h, j, d) in enumerate(heads)
                                  if i < 4 or any(r[i] for r in frontier)],
                        _build(None, box.SIMPLE_HEAD))
        console.print(table)
        _print_labelled(console, [(what, note) for what, *_, note in frontier if note], "dim")
        own = own_curve_rows(row)
        if own:
            console.print("the trial sampled at the same temperatures (Y at equal X against the "
                          "baseline's frontier; * = significant after Holm over these "
                          "temperatures)", style="bold", highlight=False)
            _print_labelled(console, own, "dim")
    elif str(row.get("frontier_temperatures")) == "not measured":
        console.print("frontier: not measured", style="dim", highlight=False)
    notes = []
    line = row.get("verdict_full", row.get("verdict"))
    if isinstance(line, str) and line.strip():
        notes.append(("verdict", line.strip()))
    notes += [("warning", w) for w in split_warnings(row.get("warnings"))]
    _print_labelled(console, notes, "bold")
    console.print(f"Δ = trial − baseline (λ=0); {significance.LEGEND}; MDE = the "
                  "smallest change this study detects with 80% power; headroom = room left "
                  "between the value and the ceiling (unrelated texts), 100% at the floor "
                  "(identical samples)", style="dim", highlight=False)
