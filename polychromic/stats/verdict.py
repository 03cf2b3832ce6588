"""A verdict per trial against the λ=0 baseline, in the user's terms (pure functions).

Each compared metric M of a trial gets one of six outcomes, decided in this order:

1. ``gain`` / ``loss``: the 95% paired-bootstrap interval of delta_M excludes 0 (with the
   multiplicity-adjusted flag when the leaderboard provides one); gain when the change goes in
   M's better direction (``polychromic.core.columns``), loss otherwise;
2. ``at ceiling``: not significant, and M is a diversity metric whose baseline headroom is
   below 10% (``polychromic.stats.headroom``): the study cannot show a gain on it; the line
   says ``past ceiling`` when that headroom is negative (the baseline is beyond the unrelated
   texts of the ceiling set, not merely near them);
3. ``no variation``: the delta and its whole interval are exactly 0 and the MDE is 0 (or
   unknown): trial and baseline are equal on every prompt, so every bootstrap resample gives
   0. That is no evidence of "no change": with no variation there is nothing to size an MDE
   from (a floor or ceiling of the metric, e.g. pass@1 of 0 or 1 everywhere, or identical
   samples), so the study cannot tell;
4. ``no change``: the whole interval lies inside ±MDE (``polychromic.stats.power``): any effect this
   study could detect is ruled out;
5. ``cannot tell``: the interval reaches past ±MDE on at least one side: the study is too
   small (or too noisy) to say;
6. ``unknown``: no delta (NaN), e.g. the metric could not be computed.

The line summarises quality (pass@1 and quality_mean), the per-prompt diversity metrics the
objective is about, and length (a change of more than 10% whose interval excludes 0, because
distinct-n, Self-BLEU and checkers are all length-sensitive):

    λ=50: quality ↑ pass@1 +0.19 [+0.13, +0.25]; diversity ↓ semantic_diversity_per_prompt
    −0.049 [−0.074, −0.027]; no detectable change: distinct_2_per_prompt (MDE ±0.04);
    replies 16% shorter
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polychromic.core import columns
from polychromic.stats.frontier import MIN_DEFINED, PAIRS, gain_column
from polychromic.stats.headroom import LOW_HEADROOM

GAIN, LOSS, CEILING, NO_CHANGE, CANNOT_TELL, UNKNOWN = (
    "gain", "loss", "at ceiling", "no change", "cannot tell", "unknown")
NO_VARIATION = "no variation"
#: how the line names each outcome that is not a gain or a loss
PAST_CEILING = "past ceiling"
LABELS = {CEILING: "at ceiling", PAST_CEILING: "past ceiling (beyond unrelated texts)", NO_VARIATION: "cannot tell (equal on every prompt, no variation)",
          NO_CHANGE: "no detectable change", CANNOT_TELL: "cannot tell",
          UNKNOWN: "not measured"}
#: relative length change (%) above which a significant change is reported
LENGTH_CHANGE = 10.0
QUALITY = ("pass@1", "quality_mean")


def as_float(value: Any) -> float:
    """``float(value)``, NaN for anything that is not a number (None, text)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def outcome(delta: float, low: float, high: float, mde: float, better: str | None,
            significant: bool | None = None, headroom: float = float("nan")) -> str:
    """The outcome of one metric (rules 1–6 of the module docstring)."""
    if not all(math.isfinite(v) for v in (delta, low, high)):
        return UNKNOWN
    sig = (low > 0 or high < 0) if significant is None else bool(significant)
    if sig:
        up = delta > 0
        return GAIN if (up if better != "min" else not up) else LOSS
    if math.isfinite(headroom) and headroom < LOW_HEADROOM:
        return CEILING
    if delta == low == high == 0 and not (math.isfinite(mde) and mde > 0):
        return NO_VARIATION
    if math.isfinite(mde) and -mde <= low and high <= mde:
        return NO_CHANGE
    return CANNOT_TELL


def _signed(value: float) -> str:
    return "0" if value == 0 else f"{value:+.2g}" if abs(value) < 0.01 else f"{value:+.3g}"


def _interval(row: Mapping[str, Any], m: str) -> str:
    return (f"{_signed(as_float(row.get(f'delta_{m}')))} [{_signed(as_float(row.get(f'delta_{m}_ci_low')))}"
            f", {_signed(as_float(row.get(f'delta_{m}_ci_high')))}]")


def metric_outcome(row: Mapping[str, Any], m: str,
                   baseline_headroom: Mapping[str, float] | None = None) -> str:
    """The outcome of metric ``m`` for a leaderboard row (Holm-adjusted ``significant_M`` when
    present, else the row's own interval)."""
    adj = row.get(f"significant_{m}")
    significant = None if adj is None or (isinstance(adj, float) and math.isnan(adj)) else bool(adj)
    return outcome(as_float(row.get(f"delta_{m}")), as_float(row.get(f"delta_{m}_ci_low")),
                   as_float(row.get(f"delta_{m}_ci_high")), as_float(row.get(f"mde_{m}")),
                   columns.better(m), significant,
                   as_float((baseline_headroom or {}).get(m, float("nan"))))


def _family(row: Mapping[str, Any], metrics: Sequence[str],
            baseline_headroom: Mapping[str, float] | None) -> str:
    """``↑ m +d [lo, hi]; ↓ …; no detectable change: m (MDE ±x); at ceiling: m; …``."""
    by: dict[str, list[str]] = {}
    for m in metrics:
        if f"delta_{m}" not in row:
            continue
        out = metric_outcome(row, m, baseline_headroom)
        if out == CEILING and as_float((baseline_headroom or {}).get(m, 0.0)) < 0:
            out = PAST_CEILING  # beyond the unrelated texts, not merely near them
        if out in (GAIN, LOSS):
            by.setdefault(out, []).append(f"{m} {_interval(row, m)}")
        elif out in (NO_CHANGE, CANNOT_TELL):
            mde = as_float(row.get(f"mde_{m}"))
            by.setdefault(out, []).append(f"{m} (MDE ±{mde:.2g})" if math.isfinite(mde) else m)
        else:
            by.setdefault(out, []).append(m)
    parts = []
    if GAIN in by:
        parts.append("↑ " + ", ".join(by[GAIN]))
    if LOSS in by:
        parts.append("↓ " + ", ".join(by[LOSS]))
    for out in (CEILING, PAST_CEILING, NO_VARIATION, NO_CHANGE, CANNOT_TELL, UNKNOWN):
        if out in by:
            parts.append(f"{LABELS[out]}: {', '.join(by[out])}")
    return "; ".join(parts) if parts else "not measured"


def length_note(row: Mapping[str, Any]) -> str:
    """``replies 16% shorter`` / ``longer`` for a significant change above 10%, else ""."""
    rel = as_float(row.get("rel_delta_mean_tokens"))
    low, high = as_float(row.get("delta_mean_tokens_ci_low")), as_float(row.get("delta_mean_tokens_ci_high"))
    if not (math.isfinite(rel) and abs(rel) > LENGTH_CHANGE and (low > 0 or high < 0)):
        return ""
    return f"replies {abs(rel):.0f}% {'longer' if rel > 0 else 'shorter'}"


def label(row: Mapping[str, Any], knobs: Sequence[str] = ("lambda_",)) -> str:
    """``λ=50`` (plus any other varying knob: ``λ=50, n_gen=8``)."""
    parts = []
    for k in knobs:
        v = row.get(k)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        shown = f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
        parts.append(f"{columns.short(k)}={shown}")
    return ", ".join(parts)


def verdict_line(row: Mapping[str, Any], baseline_headroom: Mapping[str, float] | None = None,
                 knobs: Sequence[str] = ("lambda_",),
                 diversity: Sequence[str] = columns.HEADLINE_DIVERSITY,
                 quality: Sequence[str] = QUALITY, full: bool = False) -> str:
    """One line for a trial vs the baseline (see the module docstring); "" without deltas.
    ``full``: with the whole ``vs temperature:`` clause (``frontier_clause``'s ``full``) for the
    views that have room; the leaderboard keeps both (``verdict``, ``verdict_full``)."""
    if not any(math.isfinite(as_float(row.get(f"delta_{m}"))) for m in (*quality, *diversity)):
        return ""
    text = (f"{label(row, knobs)}: quality {_family(row, quality, baseline_headroom)}"
            f" | diversity {_family(row, diversity, baseline_headroom)}")
    note = length_note(row)
    clause = frontier_clause(row, full=full)
    return text + (f" | {note}" if note else "") + (f" | {clause}" if clause else "")


#: how the frontier clause names each outcome of a gain against the baseline's frontier
FRONTIER_LABELS = {GAIN: "above the frontier", LOSS: "below the frontier",
                   NO_CHANGE: "on the frontier", CANNOT_TELL: "cannot tell against the frontier",
                   NO_VARIATION: "cannot tell against the frontier (no variation)"}


#: the outcome of a frontier gain defined in fewer than ``MIN_DEFINED`` of the resamples: no claim
EDGE = "near the edge"


@dataclass(frozen=True)
class FrontierJudgement:
    """The verdict's reading of one (quality, diversity) pair against the baseline's frontier:
    the gain in ``y`` at equal ``x`` with its interval and MDE, the share of resamples in which
    it is defined (NaN when not recorded), and its ``outcome`` (``outcome``'s rules, oriented by
    ``y``'s better direction; ``EDGE`` when defined in fewer than ``MIN_DEFINED``)."""

    y: str
    x: str
    gain: float
    low: float
    high: float
    mde: float
    defined: float
    outcome: str


def judge_frontier(row: Mapping[str, Any], quality: str,
                   diversity: str) -> FrontierJudgement | None:
    """The one judgement of a pair for every view (the verdict's clause, the plot's colours):
    the gain in ``diversity`` at equal ``quality`` when it has a number, else the gain in
    ``quality`` at equal ``diversity`` (the trial's quality outside the baseline's range);
    None when neither has one."""
    for y, x in ((diversity, quality), (quality, diversity)):
        col = gain_column(y, x)
        gain = as_float(row.get(col))
        if not math.isfinite(gain):
            continue
        low, high = as_float(row.get(f"{col}_ci_low")), as_float(row.get(f"{col}_ci_high"))
        mde = as_float(row.get(f"mde_{col}"))
        defined = as_float(row.get(f"frontier_defined_{y}_at_{x}"))
        out = (EDGE if math.isfinite(defined) and defined < MIN_DEFINED
               else outcome(gain, low, high, mde, columns.better(y), _holm(row, col)))
        return FrontierJudgement(y, x, gain, low, high, mde, defined, out)
    return None


def _frontier_item(row: Mapping[str, Any], j: FrontierJudgement) -> tuple[str, str]:
    """(group, text) of a judged pair in the full clause."""
    what = f"{j.y} at equal {j.x}"
    interval = f"{_signed(j.gain)} [{_signed(j.low)}, {_signed(j.high)}]"
    if j.outcome == EDGE:
        note = str(row.get(f"frontier_range_{j.y}_at_{j.x}") or "near the edge of the baseline's range")
        return note, f"{what} {interval} (defined in {100 * j.defined:.0f}% of resamples)"
    if j.outcome in (GAIN, LOSS):
        return FRONTIER_LABELS[j.outcome], f"{what} {interval}"
    t = as_float(row.get(f"frontier_matched_T_{j.y}_at_{j.x}"))
    like = f"like λ=0 at T≈{t:.2g}; " if j.outcome == NO_CHANGE and math.isfinite(t) else ""
    return FRONTIER_LABELS.get(j.outcome, j.outcome), (
        f"{what} ({like}MDE ±{j.mde:.2g})" if math.isfinite(j.mde) else what)


def _holm(row: Mapping[str, Any], name: str) -> bool | None:
    """``significant_<name>`` of the row (Holm over the study's trials), None when absent
    (a row from before it, or a hand-built one: its own interval decides then)."""
    adj = row.get(f"significant_{name}")
    return None if adj is None or (isinstance(adj, float) and math.isnan(adj)) else bool(adj)


def _best_t(row: Mapping[str, Any]) -> list[tuple[int, float, float, float, float, bool]]:
    """(k, delta, low, high, best T, a claim) of every pass@k against the baseline's best
    temperature; a claim: significant after Holm over the study's trials (or, without that
    column, the interval excludes 0)."""
    out = []
    for k in columns.PASS_KS:
        m = f"pass@{k}_vs_best_T"
        delta = as_float(row.get(f"delta_{m}"))
        if math.isfinite(delta):
            low, high = as_float(row.get(f"delta_{m}_ci_low")), as_float(row.get(f"delta_{m}_ci_high"))
            holm = _holm(row, m)
            out.append((k, delta, low, high, as_float(row.get(f"pass@{k}_best_T_temperature")),
                        (low > 0 or high < 0) if holm is None else holm))
    return out


def _own_claims(row: Mapping[str, Any],
                pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(side, T, what, interval) of each of the trial's own temperatures whose gain survives
    Holm over those temperatures (the ``*`` items of ``frontier_curve_D_at_Q``)."""
    out = []
    for q, d in pairs:
        for item in str(row.get(f"frontier_curve_{d}_at_{q}") or "").split("; "):
            if item.endswith(("above*", "below*")):
                t, rest = item.split(": ", 1)
                out.append((rest[:-1].rsplit(" ", 1)[1], t, f"{d} at equal {q}",
                            rest.rsplit(" ", 1)[0]))
    return out


def frontier_clause(row: Mapping[str, Any],
                    pairs: Sequence[tuple[str, str]] = PAIRS, full: bool = False) -> str:
    """The verdict's ``vs temperature:`` clause; "" when the row has no frontier columns
    (``frontier: not measured`` is the study's note then).

    Default (the verdict line): every claim and nothing else, so the line stays short —
    ``vs temperature: above the frontier (semantic_diversity_per_prompt +0.057 [+0.003, +0.11]
    at equal pass@1); on the frontier (quality_mean at equal self_bleu_per_prompt); pass@1
    +0.13 [+0.05, +0.21] vs best T 0.55 (details: --trial ID)``: the pairs above / below the
    frontier with their intervals, those on it, the trial's own temperatures whose gain
    survives Holm, and pass@k against the baseline's best temperature where it is significant
    after Holm over the study's trials; ``no claim against the frontier`` when no pair is
    above, below or on it. What makes no claim (cannot tell, near the edge, outside the range) and
    the MDEs, matched temperatures and own-temperature lists are in ``full`` (``--trial ID``,
    ``--wide``, the HTML report); the pointer ``(details: --trial ID)`` ends the clause
    whenever ``full`` says more than the intervals shown.

    ``full``: ``vs temperature: above the frontier: semantic_diversity_per_prompt at equal
    pass@1 +0.057 [+0.003, +0.11]; on the frontier: …; outside the baseline's range (T ∈ [0.4,
    1]): … (pairs); vs the baseline's best temperature: pass@1 +0.13 [+0.05, +0.21] (T=0.55);
    own temperatures (Holm over the trial's temperatures): …``.

    Per (quality Q, diversity D) pair: the gain in D at equal Q; when the trial's Q lies
    outside the baseline's range but its D inside, the gain in Q at equal D; when neither has
    a number, the range note (which temperature would extend the range). Outcomes as
    ``outcome`` with the per-comparison interval: above / below the frontier (interval
    excludes 0 and the gain survives Holm over the study's compared trials, ``significant_G``
    beside ``frontier_gain_G``, as every delta's claim does; oriented by D's better direction),
    on the frontier (inside ±MDE), cannot tell;
    fewer than 95% of resamples defined: near the edge of the range, no claim."""
    cols = [gain_column(d, q) for q, d in pairs]
    if not any(c in row for c in cols):
        return ""
    groups: dict[str, list[str]] = {}
    short: dict[str, list[str]] = {}
    for q, d in pairs:
        judged = judge_frontier(row, q, d)
        claim = _frontier_claim(judged) if judged is not None else None
        if claim is not None:
            short.setdefault(claim[0], []).append(claim[1])
        if judged is not None:
            item = _frontier_item(row, judged)
        else:
            note = str(row.get(f"frontier_range_{d}_at_{q}") or "")
            if not note:
                continue
            item = (note, f"{d} at equal {q}")
        groups.setdefault(item[0], []).append(item[1])
    best = _best_t(row)
    own = _own_claims(row, pairs)
    full_text = _full_clause(groups, best, own)
    if full or not full_text:
        return full_text
    parts = [f"{name} ({'; '.join(_merged(short[name]))})"
             for name in FRONTIER_LABELS.values() if name in short]
    mine: dict[tuple[str, str], list[str]] = {}  # one clause per side and temperature
    for side, t, what, interval in own:
        mine.setdefault((side, t), []).append(f"{what} {interval}")
    parts += [f"{side} the frontier at its own {t} ({', '.join(items)}, Holm)"
              for (side, t), items in mine.items()]
    if not parts:
        parts.append("no claim against the frontier")
    shown = [b for b in best if b[5]]  # a claim (Holm over the study's trials)
    if shown:
        parts.append(", ".join(f"pass@{k} {_signed(delta)} [{_signed(low)}, {_signed(high)}]"
                               f" vs best T {t:g}" for k, delta, low, high, t, _ in shown))
    text = "vs temperature: " + "; ".join(parts)
    claims = (FRONTIER_LABELS[GAIN], FRONTIER_LABELS[LOSS])
    more = any(name not in claims for name in groups) or len(shown) < len(best) or any(
        str(row.get(f"frontier_curve_{d}_at_{q}") or "") for q, d in pairs)
    if more:
        tid = str(row.get("trial_id") or "") or "ID"
        text += f" (details: --trial {tid})"
    return text


def _frontier_claim(j: FrontierJudgement) -> tuple[str, str] | None:
    """(label, text) of the short clause when a judged pair makes a claim (above / below / on
    the frontier, defined in at least 95% of resamples), else None."""
    if j.outcome in (GAIN, LOSS):
        return (FRONTIER_LABELS[j.outcome],
                f"{j.y} {_signed(j.gain)} [{_signed(j.low)}, {_signed(j.high)}] at equal {j.x}")
    if j.outcome == NO_CHANGE:
        return FRONTIER_LABELS[j.outcome], f"{j.y} at equal {j.x}"
    return None


def _merged(items: Sequence[str]) -> list[str]:
    """The short clause's items of one outcome, one per metric Y in first-seen order: ``Y +d
    [lo, hi] at equal X1, X2`` when every X gives the same text, else ``Y at equal X1 +d1 [lo1,
    hi1], X2 +d2 [lo2, hi2]`` (each claim keeps its interval; Y is named once)."""
    by: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        head, _, x = item.rpartition(" at equal ")
        y, _, interval = head.partition(" ")
        by.setdefault(y, []).append((interval, x))
    out = []
    for y, pairs in by.items():
        intervals = {interval for interval, _ in pairs}
        if len(intervals) == 1:
            interval = intervals.pop()
            out.append(f"{y}{' ' + interval if interval else ''} at equal "
                       + ", ".join(x for _, x in pairs))
        else:
            out.append(f"{y} at equal " + ", ".join(f"{x} {interval}".strip()
                                                    for interval, x in pairs))
    return out


def _full_clause(groups: Mapping[str, list[str]],
                 best: Sequence[tuple[int, float, float, float, float, bool]],
                 own: Sequence[tuple[str, str, str, str]]) -> str:
    """The ``full`` clause of :func:`frontier_clause` from its parts."""
    parts = []
    order = [*FRONTIER_LABELS.values()]
    for name in sorted(groups, key=lambda g: order.index(g) if g in order else len(order)):
        items = groups[name]
        if name.startswith(("outside", "near the edge")) and name not in order:
            parts.append(f"{name} ({'; '.join(items)})")
        else:
            parts.append(f"{name}: {', '.join(items)}")
    if best:
        parts.append("vs the baseline's best temperature: " + ", ".join(
            f"pass@{k} {_signed(delta)} [{_signed(low)}, {_signed(high)}] (T={t:g})"
            for k, delta, low, high, t, _ in best))
    if own:
        parts.append("own temperatures (Holm over the trial's temperatures): " + "; ".join(
            f"{side} the frontier at {t} ({what} {interval})" for side, t, what, interval in own))
    return "vs temperature: " + "; ".join(parts) if parts else ""
