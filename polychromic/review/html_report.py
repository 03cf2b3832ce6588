"""A study as one self-contained HTML file: the leaderboard table and inline SVG plots.

No JavaScript, no external CSS, fonts or images: the file opens offline in any browser and can
be mailed or attached to a paper's supplement. Plots are drawn here as plain SVG (no plotting
dependency).

Above the plots: one verdict line per trial against the λ=0 baseline (the leaderboard's
``verdict``), the leaderboard (objectives and the headline metrics, each delta with its CI and
minimum detectable effect), and the headroom of every diversity metric (the baseline's value
between the floor of identical samples and the ceiling of unrelated texts; below 10% the study
cannot show a gain on it). The plots:

* quality vs diversity (the study's two axes, see ``Study.axes``), Pareto front and baseline;
* each headline metric vs λ (log axis), the baseline as a dashed line; the bars are the CI of
  the trial's difference to the baseline drawn around its value, so a bar that crosses the
  baseline line is a difference that is not significant for that comparison alone (the
  verdict's ``*`` also survives Holm's adjustment over the study's trials);
* pass@k for k = 1..n (from ``generations.parquet``) of the best trials and the baseline;
* training curves (quality loss, diversity score, diversity grad share) of every trial.

Every trial is drawn in one colour across all plots (the baseline in black), and every mark
has a tooltip (``<title>``) naming its trial.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.metrics import pass_at_k_curve
from polychromic.review import confirmation as cv
from polychromic.review.format import captions, delta_parts, fmt, fmt_delta, shown_metrics
from polychromic.review.frontier import baseline_points, position, trial_points
from polychromic.review.study import STATUS_TEXT, Study, better_mode, varying_knobs, verdicts
from polychromic.stats import significance
from polychromic.stats.headroom import LOW_HEADROOM, PAST_CEILING, ceiling_state, headroom
from polychromic.store import layout
from polychromic.store.generations import read_generations
from polychromic.store.records import read_jsonl

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
BASELINE_COLOR = "#111111"
TRAINING_CURVES = (("quality_loss", "quality loss"), ("diversity_score", "diversity score"),
                   ("diversity_grad_share", "diversity grad share"))
BEST_FOR_PASS_AT_K = 4
_ids = itertools.count()


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


# --- a minimal SVG chart ----------------------------------------------------------------------


@dataclass
class Axis:
    """Data → pixel mapping of one axis (linear or log10) with readable tick marks."""

    lo: float
    hi: float
    px0: float
    px1: float
    log: bool = False
    integer: bool = False  # ticks on whole numbers only (k, steps)

    @classmethod
    def fit(cls, values: Sequence[float], px0: float, px1: float, log: bool = False) -> Axis:
        vals = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if not vals:
            # log axes hold log10 values: -1..1 is 0.1..10
            return cls(-1.0, 1.0, px0, px1, log) if log else cls(0.0, 1.0, px0, px1, log)
        lo, hi = min(vals), max(vals)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
            pad = max((hi - lo) * 0.08, 0.15)
            return cls(lo - pad, hi + pad, px0, px1, True)
        pad = (hi - lo) * 0.08 if hi > lo else (abs(lo) * 0.1 or 0.5)
        return cls(lo - pad, hi + pad, px0, px1, False)

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.px0 + (v - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            out = []
            for exp in range(math.floor(self.lo), math.ceil(self.hi) + 1):
                span = self.hi - self.lo
                mults = (1, 1.5, 2, 3, 4, 5, 7) if span < 1 else (1, 2, 5) if span < 2.5 else (1,)
                for m in mults:
                    v = m * 10.0 ** exp
                    if self.lo <= math.log10(v) <= self.hi:
                        out.append((v, f"{v:g}"))
            return out
        span = self.hi - self.lo
        raw = span / (6 if self.integer else 5)
        mag = 10 ** math.floor(math.log10(raw))
        mults = (1, 2, 5, 10) if self.integer else (1, 2, 2.5, 5, 10)
        if self.integer:
            mag = max(mag, 1)
        step = next(m * mag for m in mults if m * mag >= raw)
        first = math.ceil(self.lo / step) * step
        count = int(math.floor((self.hi - first) / step + 1e-9)) + 1
        values = [first + i * step for i in range(count)]
        decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if step / mag == 2.5 else 0)
        if decimals <= 6:
            return [(v, f"{v:.{decimals}f}") for v in values]
        top = max(abs(self.lo), abs(self.hi))  # tiny values: enough significant digits, e-notation
        digits = max(2, math.ceil(math.log10(top / step)) + 2)
        return [(v, f"{v:.{digits}g}") for v in values]


@dataclass
class Chart:
    """One SVG plot: axes, grid, then lines/points/bars added by the caller, clipped to the
    plotting area."""

    title: str
    xlabel: str
    ylabel: str
    xs: Sequence[float]
    ys: Sequence[float]
    xlog: bool = False
    xint: bool = False
    width: int = 430
    height: int = 290
    parts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        self.left, self.right, self.top, self.bottom = 74, 14, 30, 46
        self.x = Axis.fit(list(self.xs), self.left, self.width - self.right, self.xlog)
        self.x.integer = self.xint
        self.y = Axis.fit(list(self.ys), self.height - self.bottom, self.top)
        self.clip = f"clip{next(_ids)}"

    def line(self, xs: Sequence[float], ys: Sequence[float], color: str, title: str = "",
             dash: str = "", width: float = 1.8) -> None:
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if _ok(x, self.xlog) and math.isfinite(y)]
        if len(pts) < 2:
            return
        d = " ".join(f"{self.x(x):.1f},{self.y(y):.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" '
                          f'stroke-width="{width}"{dash_attr}><title>{esc(title)}</title></polyline>')

    def point(self, x: float, y: float, color: str, title: str, shape: str = "circle",
              size: float = 4.5, label: str = "") -> None:
        if not (_ok(x, self.xlog) and math.isfinite(y)):
            return
        px, py = self.x(x), self.y(y)
        tip = f"<title>{esc(title)}</title>"
        if shape == "square":
            s = size * 1.7
            self.parts.append(f'<rect x="{px - s / 2:.1f}" y="{py - s / 2:.1f}" width="{s:.1f}" '
                              f'height="{s:.1f}" fill="{color}" stroke="white">{tip}</rect>')
        elif shape == "star":
            self.parts.append(f'<path d="{_star(px, py, size * 1.9)}" fill="{color}" '
                              f'stroke="white" stroke-width="0.8">{tip}</path>')
        else:
            self.parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{size}" fill="{color}" '
                              f'stroke="white" stroke-width="0.8">{tip}</circle>')
        if label:
            right = px > self.left + 0.7 * (self.width - self.left - self.right)
            self.labels.append(f'<text x="{px - 7 if right else px + 7:.1f}" y="{py - 7:.1f}" '
                               f'class="lbl" text-anchor="{"end" if right else "start"}">'
                               f"{esc(label)}</text>")

    def errorbar(self, x: float, low: float, high: float, color: str, title: str) -> None:
        if not (_ok(x, self.xlog) and math.isfinite(low) and math.isfinite(high)):
            return
        px, y0, y1 = self.x(x), self.y(low), self.y(high)
        self.parts.append(
            f'<g stroke="{color}" stroke-width="1.3"><title>{esc(title)}</title>'
            f'<line x1="{px:.1f}" y1="{y0:.1f}" x2="{px:.1f}" y2="{y1:.1f}"/>'
            f'<line x1="{px - 4:.1f}" y1="{y0:.1f}" x2="{px + 4:.1f}" y2="{y0:.1f}"/>'
            f'<line x1="{px - 4:.1f}" y1="{y1:.1f}" x2="{px + 4:.1f}" y2="{y1:.1f}"/></g>')

    def hbar(self, y: float, low: float, high: float, color: str, title: str) -> None:
        """A horizontal error bar (the x-interval of a point: with ``errorbar``, a cross)."""
        if not (math.isfinite(y) and _ok(low, self.xlog) and _ok(high, self.xlog)):
            return
        py, x0, x1 = self.y(y), self.x(low), self.x(high)
        self.parts.append(
            f'<g stroke="{color}" stroke-width="1.1"><title>{esc(title)}</title>'
            f'<line x1="{x0:.1f}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}"/>'
            f'<line x1="{x0:.1f}" y1="{py - 4:.1f}" x2="{x0:.1f}" y2="{py + 4:.1f}"/>'
            f'<line x1="{x1:.1f}" y1="{py - 4:.1f}" x2="{x1:.1f}" y2="{py + 4:.1f}"/></g>')

    def hline(self, y: float, color: str, title: str, label: str = "") -> None:
        if not math.isfinite(y):
            return
        py = self.y(y)
        self.parts.append(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{py:.1f}" '
                          f'y2="{py:.1f}" stroke="{color}" stroke-dasharray="5,4" '
                          f'stroke-width="1.2"><title>{esc(title)}</title></line>')
        if label:
            self.labels.append(f'<text x="{self.width - self.right - 4}" y="{py - 4:.1f}" '
                               f'class="lbl" text-anchor="end">{esc(label)}</text>')

    def svg(self) -> str:
        w, h, lft, r, t, b = self.width, self.height, self.left, self.right, self.top, self.bottom
        out = [f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">',
               f'<title>{esc(self.title)}</title>',
               f'<clipPath id="{self.clip}"><rect x="{lft}" y="{t}" width="{w - lft - r}" '
               f'height="{h - t - b}"/></clipPath>',
               f'<text x="{w / 2}" y="18" class="ttl" text-anchor="middle">{esc(self.title)}</text>',
               f'<rect x="{lft}" y="{t}" width="{w - lft - r}" height="{h - t - b}" class="frame"/>']
        for v, label in self.x.ticks():
            px = self.x(v)
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{t}" y2="{h - b}" class="grid"/>'
                       f'<text x="{px:.1f}" y="{h - b + 15}" class="tick" '
                       f'text-anchor="middle">{esc(label)}</text>')
        for v, label in self.y.ticks():
            py = self.y(v)
            out.append(f'<line x1="{lft}" x2="{w - r}" y1="{py:.1f}" y2="{py:.1f}" class="grid"/>'
                       f'<text x="{lft - 5}" y="{py + 4:.1f}" class="tick" '
                       f'text-anchor="end">{esc(label)}</text>')
        out.append(f'<text x="{(lft + w - r) / 2}" y="{h - 8}" class="axl" '
                   f'text-anchor="middle">{esc(self.xlabel)}</text>')
        out.append(f'<text x="14" y="{(t + h - b) / 2}" class="axl" text-anchor="middle" '
                   f'transform="rotate(-90 14 {(t + h - b) / 2})">{esc(self.ylabel)}</text>')
        out.append(f'<g clip-path="url(#{self.clip})">' + "".join(self.parts) + "</g>")
        out.extend(self.labels)
        if not self.parts:
            out.append(f'<text x="{(lft + w - r) / 2}" y="{(t + h - b) / 2}" class="axl" '
                       f'text-anchor="middle">{esc(self.note or "no data yet")}</text>')
        out.append("</svg>")
        return "".join(out)


def _ok(x: float, log: bool) -> bool:
    return math.isfinite(x) and (x > 0 or not log)


def _star(cx: float, cy: float, r: float) -> str:
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else r * 0.45
        a = math.pi / 2 + i * math.pi / 5
        pts.append(f"{cx + rad * math.cos(a):.1f},{cy - rad * math.sin(a):.1f}")
    return "M" + " L".join(pts) + " Z"


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


# --- data for the plots -----------------------------------------------------------------------


def trial_colors(df: pd.DataFrame) -> dict[str, str]:
    """One colour per trial, in table order; the baseline black."""
    colors, palette = {}, itertools.cycle(PALETTE)
    for _, row in df.iterrows():
        colors[str(row["trial_id"])] = BASELINE_COLOR if row.get("is_baseline") else next(palette)
    return colors


def pass_at_k_curve_of(study: Study, trial_id: str) -> np.ndarray | None:
    """pass@k for k = 1..n from a trial's stored generations, or None when there are none (yet)."""

    path = study.trial_dir(trial_id) / layout.GENERATIONS
    try:
        gens = read_generations(path, columns=["prompt_index", "passed", "quality_score"])
    except Exception:  # missing, being written, or from an older layout: no curve
        return None
    if gens.empty:
        return None
    passed = gens["passed"].fillna(False).astype(bool) & gens["quality_score"].notna()
    per = passed.groupby(gens["prompt_index"]).agg(["size", "sum"])
    return pass_at_k_curve(per["size"].to_numpy(dtype=np.int64), per["sum"].to_numpy(dtype=np.int64))


def history_of(study: Study, trial_id: str) -> list[dict[str, Any]]:
    return [h for h in read_jsonl(study.trial_dir(trial_id) / layout.HISTORY) if isinstance(h, dict)]


def label_of(row: pd.Series) -> str:
    lam = _f(row.get("lambda_"))
    base = " baseline" if row.get("is_baseline") else ""
    return f"{row['trial_id']} (λ={fmt(lam, 3)}{base})"


# --- plots ------------------------------------------------------------------------------------


#: trial colours in the quality-vs-diversity plot when the baseline's frontier was measured
FRONTIER_COLORS = {"above": "#1a9850", "on": "#777777", "below": "#d73027", "": "#b8b8b8"}


def scatter_plot(study: Study, df: pd.DataFrame, colors: dict[str, str]) -> str:
    """Quality (y) vs diversity (x), every trial with values; ★ on the Pareto front (computed
    over the whole study), the front as a step line, the baseline as a black square. When the
    baseline's temperature frontier was measured (``frontier.parquet``): its points labelled
    with T joined in order of T, each trial with its CI cross (the intervals of its deltas,
    around its values) and coloured by where it lies against the frontier (above / on /
    below / cannot tell, ``polychromic.review.frontier.position``)."""
    (qm, qmode), (dm, dmode) = study.axes
    rows = [r for _, r in df.iterrows() if math.isfinite(_f(r.get(qm))) and math.isfinite(_f(r.get(dm)))]
    curve = [(t, v) for t, v in baseline_points(study.path, study.frame, (qm, dm))
             if math.isfinite(v[qm]) and math.isfinite(v[dm])]
    owns = {str(r["trial_id"]): [(t, v) for t, v in trial_points(study.path, str(r["trial_id"]),
                                                                 (qm, dm))
                                 if math.isfinite(v[qm]) and math.isfinite(v[dm])]
            for r in rows if curve and not r.get("is_baseline")}
    extra = curve + [p for own in owns.values() for p in own]
    chart = Chart(f"{qm} vs {dm}", f"{dm} ({'higher' if dmode == 'max' else 'lower'} is better)",
                  f"{qm} ({'higher' if qmode == 'max' else 'lower'} is better)",
                  [_f(r[dm]) for r in rows] + [v[dm] for _, v in extra],
                  [_f(r[qm]) for r in rows] + [v[qm] for _, v in extra], width=560, height=380)
    front = sorted((r for r in rows if r.get("pareto")), key=lambda r: _f(r[dm]))
    chart.line([_f(r[dm]) for r in front], [_f(r[qm]) for r in front], "#999999",
               "Pareto front", dash="4,3", width=1.4)
    if curve:
        chart.line([v[dm] for _, v in curve], [v[qm] for _, v in curve], BASELINE_COLOR,
                   "the λ=0 baseline at each frontier temperature", dash="2,3", width=1.2)
    base_t = ""  # the curve's point that is the baseline's own (its eval temperature)
    for r in rows:
        if r.get("is_baseline"):
            base_t = next((f", T={t:g}" for t, v in curve if math.isclose(v[dm], _f(r[dm]))
                           and math.isclose(v[qm], _f(r[qm]))), "")
    for t, v in curve:
        own_point = base_t == f", T={t:g}"  # labelled once, by the baseline's square
        chart.point(v[dm], v[qm], BASELINE_COLOR, f"λ=0 baseline at T={t:g}: {qm}="
                    f"{fmt(v[qm])}, {dm}={fmt(v[dm])}", size=2.8,
                    label="" if own_point else f"T={t:g}")
    for r in rows:
        tid = str(r["trial_id"])
        tip = f"{label_of(r)}: {qm}={fmt(_f(r[qm]))}, {dm}={fmt(_f(r[dm]))}"
        if r.get("is_baseline"):
            chart.point(_f(r[dm]), _f(r[qm]), BASELINE_COLOR, tip, "square",
                        label=f"baseline{base_t}")
            continue
        color = colors[tid]
        own = owns.get(tid, [])
        if own:  # the trial's own temperature curve (frontier_for: pareto | all)
            chart.line([v[dm] for _, v in own], [v[qm] for _, v in own], colors[tid],
                       f"{label_of(r)} at each of its own temperatures", dash="2,3", width=1.2)
            for t, v in own:
                chart.point(v[dm], v[qm], colors[tid], f"{label_of(r)} at T={t:g}: {qm}="
                            f"{fmt(v[qm])}, {dm}={fmt(v[dm])}", size=2.4)
        if curve:
            where = position(r, qm, dm)
            color = FRONTIER_COLORS[where]
            judged = f"frontier_gain_{dm}_at_{qm}" in r  # PAIRS: headline axes only
            tip += (f" ({where or 'cannot tell'} against the baseline's frontier)" if judged
                    else " (not judged against the baseline's frontier on these axes)")
            for m, bar in ((qm, chart.errorbar), (dm, None)):
                d = _f(r.get(f"delta_{m}"))
                lo, hi = _f(r.get(f"delta_{m}_ci_low")), _f(r.get(f"delta_{m}_ci_high"))
                if not all(math.isfinite(v) for v in (d, lo, hi)):
                    continue
                value = _f(r[m])
                if bar is not None:
                    bar(_f(r[dm]), value + lo - d, value + hi - d, color, f"{m} 95% CI")
                else:
                    chart.hbar(_f(r[qm]), value + lo - d, value + hi - d, color, f"{m} 95% CI")
        chart.point(_f(r[dm]), _f(r[qm]), color, tip,
                    "star" if r.get("pareto") else "circle",
                    label=tid if r.get("pareto") else "")
    return chart.svg()


def metric_vs_lambda(study: Study, df: pd.DataFrame, metric: str, colors: dict[str, str]) -> str:
    """One metric against λ (log axis): trials as points with CI bars, baseline dashed."""
    base = study.baseline()
    base_value = _f(base.get(metric)) if base is not None else float("nan")
    rows = [r for _, r in df.iterrows()
            if not r.get("is_baseline") and _f(r.get("lambda_")) > 0 and math.isfinite(_f(r.get(metric)))]
    ys = [base_value]
    bars = []
    for r in rows:
        value, delta = _f(r[metric]), _f(r.get(f"delta_{metric}"))
        low = value + _f(r.get(f"delta_{metric}_ci_low")) - delta
        high = value + _f(r.get(f"delta_{metric}_ci_high")) - delta
        ys += [value, low, high]
        bars.append((r, value, low, high))
    mode = better_mode(metric, study.objectives)
    better = {"max": " (higher is better)", "min": " (lower is better)"}.get(mode or "", "")
    chart = Chart(metric + better, "λ (log scale)", metric, [_f(r["lambda_"]) for r in rows], ys,
                  xlog=True, note="no trial with λ > 0 has this metric yet")
    if math.isfinite(base_value):
        chart.hline(base_value, BASELINE_COLOR, f"baseline {metric}={fmt(base_value)}", "baseline")
    for r, value, low, high in bars:
        tid = str(r["trial_id"])
        tip = f"{label_of(r)}: {metric}={fmt(value)}"
        delta = fmt_delta(r, metric)
        if delta:
            tip += f", Δ vs baseline {delta}"
        chart.errorbar(_f(r["lambda_"]), low, high, colors[tid], tip)
        chart.point(_f(r["lambda_"]), value, colors[tid], tip,
                    "star" if r.get("pareto") else "circle")
    return chart.svg()


def pass_at_k_plot(study: Study, df: pd.DataFrame, colors: dict[str, str]) -> tuple[str, list[str]]:
    """pass@k curves of the best (first in table order) finished trials and the baseline."""
    best = [r for _, r in df.iterrows() if r.get("status") == "finished" and not r.get("is_baseline")]
    chosen = best[:BEST_FOR_PASS_AT_K]
    base = study.baseline()
    if base is not None:
        chosen.append(base)
    curves = [(r, c) for r in chosen if (c := pass_at_k_curve_of(study, str(r["trial_id"]))) is not None
              and len(c)]
    xs = [k for _, c in curves for k in range(1, len(c) + 1)]
    ys = [float(v) for _, c in curves for v in c]
    chart = Chart("pass@k, k = 1..n", "k (samples per prompt)", "pass@k", xs, ys, xint=True,
                  width=560, height=380, note="no generations.parquet yet")
    # the best trial drawn last among the trials, the (dashed) baseline over everything
    for r, curve in sorted(reversed(curves), key=lambda rc: bool(rc[0].get("is_baseline"))):
        tid = str(r["trial_id"])
        color = BASELINE_COLOR if r.get("is_baseline") else colors.get(tid, PALETTE[0])
        ks = list(range(1, len(curve) + 1))
        chart.line(ks, list(curve), color, label_of(r), dash="5,3" if r.get("is_baseline") else "")
        for k, v in zip(ks, curve, strict=True):
            chart.point(k, float(v), color, f"{label_of(r)}: pass@{k}={v:.4f}", size=3)
    return chart.svg(), [str(r["trial_id"]) for r, _ in curves]


def training_plots(study: Study, df: pd.DataFrame, colors: dict[str, str]) -> list[str]:
    """Quality loss, diversity score and diversity grad share vs step, one line per trial."""
    histories = {str(t): history_of(study, str(t)) for t in df["trial_id"]}
    rows = {str(r["trial_id"]): r for _, r in df.iterrows()}
    out = []
    for key, title in TRAINING_CURVES:
        series = {}
        for tid, hist in histories.items():
            pts = [(_f(h.get("step")), _f(h.get(key))) for h in hist]
            pts = [(s, v) for s, v in pts if math.isfinite(s) and math.isfinite(v)]
            if pts:
                series[tid] = pts
        chart = Chart(title, "step", key, [s for p in series.values() for s, _ in p],
                      [v for p in series.values() for _, v in p], xint=True,
                      note="no training reports yet")
        # the dashed baseline last, so it stays visible over the trials
        for tid, pts in sorted(series.items(), key=lambda kv: bool(rows[kv[0]].get("is_baseline"))):
            r = rows[tid]
            chart.line([s for s, _ in pts], [v for _, v in pts], colors[tid], label_of(r),
                       dash="5,3" if r.get("is_baseline") else "")
            for s, v in pts:
                chart.point(s, v, colors[tid], f"{label_of(r)} step {s:g}: {key}={v:.4g}", size=2.5)
        out.append(chart.svg())
    return out


# --- the page ---------------------------------------------------------------------------------


CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;
color:#1a1a1a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 5px;text-align:right;vertical-align:top;
white-space:nowrap}th{background:#f4f4f6;position:sticky;top:0;white-space:normal;
vertical-align:bottom}
td.l,th.l{text-align:left}tr.baseline td{background:#f7f7f0}td.star{color:#c58a00;font-size:15px}
.st-finished{color:#1e7d32}.st-early_stopped{color:#a66300}.st-error{color:#c62828;
white-space:normal;min-width:130px;max-width:220px}.st-running{color:#1565c0}
.d{display:block;font-size:11px;color:#777}.d.good{color:#1e7d32;font-weight:600}
.d.bad{color:#c62828;font-weight:600}
.wrap{overflow-x:auto;max-width:100%}.grid{stroke:#eee}.frame{fill:none;stroke:#bbb}
.chart text{font-family:inherit}.tick{font-size:10.5px;fill:#555}.axl{font-size:12px;fill:#333}
.ttl{font-size:13px;font-weight:600;fill:#222}.lbl{font-size:10.5px;fill:#333}
.plots{display:flex;flex-wrap:wrap;gap:10px}.legend{display:flex;flex-wrap:wrap;gap:4px 16px;
margin:6px 0 10px;font-size:12.5px}.sw{display:inline-block;width:12px;height:12px;
border-radius:2px;margin-right:5px;vertical-align:-1px}
ul.cap{color:#444;font-size:12.5px;margin:8px 0;padding-left:18px}
ul.verdict{font-size:13.5px;margin:6px 0 4px;padding-left:18px;max-width:1100px}
ul.verdict li{margin:3px 0}td.low{color:#c62828;font-weight:600}
p.help{color:#555;font-size:12.5px;max-width:1100px;margin:4px 0 10px}
h3{font-size:14.5px;margin:16px 0 6px}table.confirm th{max-width:230px}
table.confirm th .d{font-weight:normal;white-space:normal}
table.confirm td{vertical-align:middle}td.gain{color:#1e7d32;font-weight:600}
td.loss{color:#c62828;font-weight:600}td.ok{color:#1565c0;font-weight:600}
td.no{color:#a66300;font-weight:600}svg.ci{display:block}
"""


def table_html(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None) -> str:
    """The leaderboard as an HTML table (one ``<tr id="trial-ID">`` per trial); under each
    value its Δ vs the baseline, the CI and the minimum detectable effect."""
    shown = shown_metrics(study.frame, metrics, study.objectives)
    knobs, _ = varying_knobs(study.frame)
    head = ['<th title="Pareto-optimal">★</th>', '<th class="l">trial</th>',
            '<th class="l">status</th>']
    head += [f"<th>{esc('λ' if k == 'lambda_' else k)}</th>" for k in knobs]
    head += [f"<th>{_wrap(m)}</th>" for m in shown]
    head += ["<th>mean diversity<br>grad share</th>", "<th>steps</th>", "<th>GPU-hours</th>",
             "<th>cost $</th>"]
    body = []
    for _, row in df.iterrows():
        tid = str(row["trial_id"])
        cls = ' class="baseline"' if row.get("is_baseline") else ""
        cells = [f'<td class="star">{"★" if row.get("pareto") else ""}</td>',
                 f'<td class="l">{esc(tid)}{" <b>baseline</b>" if row.get("is_baseline") else ""}</td>',
                 f'<td class="l st-{esc(row.get("status"))}">{esc(row.get("status_text"))}</td>']
        cells += [f"<td>{esc(fmt(row.get(k)))}</td>" for k in knobs]
        for metric in shown:
            parts = delta_parts(row, metric) if not row.get("is_baseline") else None
            extra = ""
            if parts:
                change, ci, mark = parts
                good = (_f(row.get(f"delta_{metric}")) > 0) == (
                    better_mode(metric, study.objectives) != "min")
                kind = (" good" if good else " bad") if mark == significance.HOLM else ""
                mde = _f(row.get(f"mde_{metric}"))
                extra = (f'<span class="d{kind}">Δ {esc(change)}{esc(mark)}</span>'
                         + (f'<span class="d{kind}">{esc(ci)}</span>' if ci else "")
                         + (f'<span class="d" title="minimum detectable effect (80% power)">'
                            f"MDE ±{mde:.2g}</span>" if math.isfinite(mde) else ""))
            cells.append(f"<td>{esc(fmt(row.get(metric)))}{extra}</td>")
        gpu = "0 (cpu)" if row.get("device") in ("cpu", "cpu?") else fmt(row.get("gpu_hours"), 3)
        cells += [f"<td>{esc(fmt(row.get('mean_diversity_grad_share'), 3))}</td>",
                  f"<td>{esc(fmt(row.get('steps')))}</td>", f"<td>{esc(gpu)}</td>",
                  f"<td>{esc(fmt(row.get('cost_usd'), 3))}</td>"]
        body.append(f'<tr id="trial-{esc(tid)}"{cls}>' + "".join(cells) + "</tr>")
    return ('<div class="wrap"><table><thead><tr>' + "".join(head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>")


def verdict_html(study: Study, df: pd.DataFrame) -> str:
    """One line per trial against the baseline (the leaderboard's ``verdict``), linked to its
    row of the table; failed trials with their reason."""
    lines = dict(verdicts(df, full=True))
    items = []
    for _, row in df.iterrows():
        tid = str(row["trial_id"])
        if tid in lines:
            items.append(f'<li><a href="#trial-{esc(tid)}">{esc(tid)}</a> {esc(lines[tid])}</li>')
        elif row.get("status") == "error":
            items.append(f'<li><a href="#trial-{esc(tid)}">{esc(tid)}</a> '
                         f'<span class="st-error">{esc(row.get("status_text"))}</span></li>')
    if not items:
        return ('<p class="help">No verdict yet: it needs the finished λ=0 baseline and a '
                "finished trial to compare with it.</p>")
    base = study.baseline()
    which = f" (trial {esc(base['trial_id'])})" if base is not None else ""
    return (f'<p class="help">Each trial against the λ=0 baseline{which}: ↑/↓ a significant '
            "gain/loss (after Holm's adjustment over the study's trials) with its 95% CI; <i>no detectable change</i>: the CI lies within ± the "
            "minimum detectable effect (MDE); <i>cannot tell</i>: the study is too small to "
            "say (<i>equal on every prompt, no variation</i>: Δ and CI exactly 0, nothing to "
            "size an MDE from); <i>at ceiling</i>: the baseline has under "
            f"{100 * LOW_HEADROOM:.0f}% headroom on that metric (<i>past ceiling</i>: negative "
            "headroom, beyond unrelated texts).</p>"
            '<ul class="verdict">' + "".join(items) + "</ul>")


_STATE_COLOR = {"gain": "#1e7d32", "loss": "#c62828", "ok": "#1565c0", "no": "#d17a00",
                "": "#d17a00"}


def _state_class(m: cv.MetricComparison) -> str:
    """CSS class of a comparison's state: a confirmed gain, loss or change of a metric with no
    better direction (``ok``), not confirmed (``no``), not judged ("")."""
    if m.state == cv.CONFIRMED:
        return m.direction or "ok"
    return "no" if m.state == cv.NOT_CONFIRMED else ""


def _interval_svg(m: cv.MetricComparison) -> str:
    """Both intervals of one metric on one axis with 0 marked: selection (grey, above) and
    confirmation (below: green a confirmed gain, red a confirmed loss, orange not confirmed)."""
    w, h, pad = 180, 30, 8
    values = [v for v in (0.0, m.selection, m.selection_low, m.selection_high, m.confirmation,
                          m.confirmation_low, m.confirmation_high) if math.isfinite(v)]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0

    def x(v: float) -> float:
        return pad + (v - lo) / (hi - lo) * (w - 2 * pad)

    out = [f'<svg class="ci" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">',
           f"<title>{esc(m.metric)}: selection {esc(cv.interval(m.selection, m.selection_low, m.selection_high))}"
           f"; confirmation {esc(cv.interval(m.confirmation, m.confirmation_low, m.confirmation_high))}</title>",
           f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="2" y2="{h - 2}" stroke="#999" '
           'stroke-dasharray="3,2"/>']
    color = _STATE_COLOR[_state_class(m)]
    for y, (d, low, high), col, what in (
            (10, (m.selection, m.selection_low, m.selection_high), "#888888", "selection"),
            (21, (m.confirmation, m.confirmation_low, m.confirmation_high), color, "confirmation")):
        if math.isfinite(low) and math.isfinite(high):
            out.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" '
                       f'stroke="{col}" stroke-width="2.2"><title>{what} 95% CI '
                       f"[{esc(cv.signed(low))}, {esc(cv.signed(high))}]</title></line>")
        if math.isfinite(d):
            out.append(f'<circle cx="{x(d):.1f}" cy="{y}" r="3.2" fill="{col}">'
                       f"<title>{what} Δ {esc(cv.signed(d))}</title></circle>")
    out.append("</svg>")
    return "".join(out)


def confirmation_html(study: Study) -> str:
    """Selection vs confirmation (``polychromic.review.confirmation``): per confirmed trial and
    headline metric the selection delta, the confirmation delta, the shrinkage and whether it
    was confirmed; one line on how to confirm when the study has no confirmation yet."""
    trials = cv.comparisons(study)
    if not trials:
        return ('<p class="help">No confirmation yet: the deltas above come from one prompt set '
                "and one training seed, and the best of many trials overstates its gain (the "
                "winner's curse). To re-train the best trial and the baseline with new seeds on "
                f"fresh prompts: <code>{esc(cv.confirm_command(study))}</code></p>")
    parts = ['<p class="help">The study picked its winner as the best of its trials on one '
             "prompt set with one training seed, so the selection delta is biased upwards (the "
             "winner's curse) and its interval ignores training-seed noise. "
             "<code>study/confirm.py</code> re-trained the trial and the λ=0 baseline with new "
             "seeds and evaluated both on fresh prompts. <b>Shrinkage</b> = confirmation − "
             "selection, with the share of the selection delta that was kept.</p>"]
    for t in trials:
        tid = esc(t.trial_id)
        title = f'trial <a href="#trial-{tid}">{tid}</a>' + (f" ({esc(t.label)})" if t.label else "")
        if not t.metrics:
            parts.append(f'<h3 id="confirm-{tid}">{title}</h3><p class="help">Confirmation '
                         f"started: {t.runs} of {t.started} run(s) finished, {t.seeds} complete "
                         "seed pair(s) so far, nothing to compare yet. Re-run "
                         f"<code>{esc(cv.confirm_command(study, t.trial_id))}</code> to finish "
                         "it (each run happens once).</p>")
            continue
        rows = []
        for m in t.metrics:
            arrow = {"max": " ↑", "min": " ↓"}.get(m.better or "", "")
            direction = {"max": "higher is better", "min": "lower is better"}.get(m.better or "", "")
            tip = "; ".join(filter(None, [m.metric, m.definition, direction]))
            cls = _state_class(m)
            rows.append(
                f'<tr><td class="l" title="{esc(tip)}">{esc(m.short)}{esc(arrow)}'
                f'<span class="d">{esc(m.metric)}</span></td>'
                f"<td>{esc(cv.interval(m.selection, m.selection_low, m.selection_high))}</td>"
                f"<td>{esc(cv.interval(m.confirmation, m.confirmation_low, m.confirmation_high))}</td>"
                f"<td>{esc(cv.shrinkage_text(m))}</td>"
                f'<td class="l">{_interval_svg(m)}</td>'
                f'<td class="l {cls}">{esc(cv.state_text(m))}</td></tr>')
        parts.append(
            f'<h3 id="confirm-{tid}">{title}</h3>'
            '<table class="confirm"><thead><tr><th class="l">metric</th>'
            f'<th>selection Δ [95% CI]<span class="d">{esc(cv.selection_note(t))}</span></th>'
            f'<th>confirmation Δ [95% CI]<span class="d">{esc(cv.confirmation_note(t))}</span></th>'
            "<th>shrinkage<span class=\"d\">confirmation − selection</span></th>"
            '<th class="l">95% CIs<span class="d">grey: selection; below it the '
            "confirmation (green: confirmed gain, red: confirmed loss, orange: not confirmed); "
            "dashed: 0</span></th>"
            '<th class="l">confirmed?</th></tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>")
    foot = cv.frontier_footnote(trials)
    parts.append(f'<p class="help">Δ = trial − λ=0 baseline. {esc(cv.RULE[0].upper() + cv.RULE[1:])}'
                 ". A confirmed change in a metric's worse direction is a confirmed loss."
                 + (f" {esc(foot[0].upper() + foot[1:])}." if foot else "") + "</p>")
    return "".join(parts)


def headroom_html(study: Study) -> str:
    """Per diversity metric: the baseline's value, floor (identical samples), ceiling
    (unrelated texts) and headroom, with a plain sentence where it is below 10%."""
    base = study.baseline()
    rows = []
    for m in columns.DIVERSITY:
        if base is None:
            break
        value, floor, ceiling = (_f(base.get(m)), _f(base.get(f"floor_{m}")),
                                 _f(base.get(f"ceiling_{m}")))
        room = _f(base.get(f"headroom_{m}"))
        if not math.isfinite(room):
            room = headroom(value, floor, ceiling)
        if not (math.isfinite(floor) or math.isfinite(ceiling)):
            continue
        note = ""
        if ceiling_state(room) == PAST_CEILING:
            note = ("past ceiling: the baseline is beyond unrelated texts on this metric "
                    "(negative headroom), so a gain on it would not mean more diverse replies")
        elif ceiling_state(room):
            note = ("at ceiling: the baseline is already about as diverse as unrelated texts on "
                    "this metric, so no gain on it can be shown")
        lower = " (lower = more diverse)" if columns.better(m) == "min" else ""
        low = ' class="low"' if note else ""
        room_text = f"{100 * room:.0f}%" if math.isfinite(room) else "—"
        rows.append(f'<tr><td class="l" title="{esc(m)}">{esc(columns.short(m))}{lower}</td>'
                    f"<td>{esc(fmt(value))}</td><td>{esc(fmt(floor))}</td>"
                    f"<td>{esc(fmt(ceiling))}</td><td{low}>{esc(room_text)}</td>"
                    f'<td class="l">{esc(note)}</td></tr>')
    if not rows:
        return ('<p class="help">No floor and ceiling for this study (the baseline has no '
                "<code>headroom.parquet</code>), so the headroom is unknown.</p>")
    return ('<p class="help">Headroom = (ceiling − baseline) / (ceiling − floor): 100% at the '
            "floor (every sample of a prompt identical), 0% at the ceiling (unrelated texts of "
            "the task, same lengths).</p>"
            '<table class="headroom"><thead><tr><th class="l">metric</th><th>baseline</th>'
            '<th>floor</th><th>ceiling</th><th>headroom</th><th class="l"></th></tr></thead>'
            "<tbody>" + "".join(rows) + "</tbody></table>")


def _wrap(name: str) -> str:
    """A column name that may break after its underscores in a narrow header."""
    return "_<wbr>".join(esc(part) for part in name.split("_"))


def legend_html(df: pd.DataFrame, colors: dict[str, str]) -> str:
    items = [f'<span><span class="sw" style="background:{colors[str(r["trial_id"])]}"></span>'
             f"{esc(label_of(r))}</span>" for _, r in df.iterrows()]
    return '<div class="legend">' + "".join(items) + "</div>"


def render_report(study: Study, df: pd.DataFrame, metrics: Sequence[str] | None = None) -> str:
    """The whole page as a string (see the module docstring for its contents)."""
    colors = trial_colors(df)
    shown = shown_metrics(study.frame, metrics, study.objectives)
    counts = ", ".join(f"{n} {STATUS_TEXT.get(s, 'failed' if s == 'error' else s)}"
                       for s, n in df["status"].value_counts().items())
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (qm, _), (dm, _) = study.axes
    pk_svg, pk_trials = pass_at_k_plot(study, df, colors)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>study {esc(study.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Study {esc(study.name)}</h1>",
        f'<p class="meta">{len(df)} of {len(study.frame)} trials ({esc(counts or "none yet")}) · '
        f"model {esc(study.model or '?')} · folder <code>{esc(study.path)}</code> · "
        f"report written {esc(when)}</p>",
        "<h2>Verdict</h2>", verdict_html(study, df),
        "<h2>Selection vs confirmation</h2>", confirmation_html(study),
        "<h2>Leaderboard</h2>", table_html(study, df, metrics),
        '<ul class="cap">' + "".join(f"<li>{esc(c)}</li>" for c in captions(study, df)) + "</ul>",
        "<h2>Headroom</h2>", headroom_html(study),
        "<h2>Quality vs diversity</h2>",
        f'<p class="help">Each trial with both metrics; ★ = Pareto-optimal on {esc(qm)} vs '
        f"{esc(dm)} (dashed line: the front); black square = the λ=0 baseline. Where the "
        "baseline was also sampled at other temperatures (its frontier), small black points "
        "labelled T=… are the baseline at each temperature (dotted, in order of T); each trial "
        "then carries the 95% CIs of its two deltas as a cross and is coloured green above the "
        "frontier, grey on it, red below it, light grey when the study cannot tell or the "
        "axes are not a headline pair (docs/decide.md); a trial also sampled at other "
        "temperatures has its own dotted curve in its colour.</p>",
        '<div class="plots">' + scatter_plot(study, df, colors) + "</div>",
        "<h2>Metrics vs λ</h2>",
        '<p class="help">Dashed line: the baseline (λ=0). Bars: the confidence interval of the '
        "trial's difference to the baseline, drawn around the trial's value; a bar that crosses "
        "the dashed line is not a significant difference even for that comparison alone (a "
        "gain or loss of the verdict must also survive Holm's adjustment over the trials). No "
        "bar: no CI recorded.</p>",
        legend_html(df, colors),
        '<div class="plots">' + "".join(metric_vs_lambda(study, df, m, colors) for m in shown)
        + "</div>",
        "<h2>pass@k</h2>",
        f'<p class="help">Unbiased pass@k (Chen et al. 2021) for k = 1..n from each trial\'s '
        f"stored generations: the best {BEST_FOR_PASS_AT_K} finished trials in table order and "
        f"the baseline (dashed). Shown: {esc(', '.join(pk_trials) or 'none')}.</p>",
        '<div class="plots">' + pk_svg + "</div>",
        "<h2>Training curves</h2>",
        '<p class="help">Every training report of every trial (baseline dashed); a line that '
        "stops early is an early-stopped, failed or still running trial.</p>",
        legend_html(df, colors),
        '<div class="plots">' + "".join(training_plots(study, df, colors)) + "</div>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(study: Study, df: pd.DataFrame, out: Path,
                 metrics: Sequence[str] | None = None) -> Path:
    """Write :func:`render_report` to ``out`` atomically (a reader never sees half a page).
    An ``OSError`` names ``out``, the user's path, never the temporary file beside it."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    page = render_report(study, df, metrics)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(out)) from None
    finally:  # a failed write or rename (e.g. out is a folder) leaves no temporary file
        with contextlib.suppress(OSError):  # its folder may not even exist
            tmp.unlink(missing_ok=True)
    return out
