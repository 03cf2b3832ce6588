"""Selection vs confirmation: the numbers the HTML report and the model card put side by side.

A study's selection delta of the chosen trial comes from one prompt set and one training seed,
and the trial was picked as the best of N, so it is biased upwards (winner's curse).
``study/confirm.py`` re-trains that configuration and the λ=0 baseline with R new seeds and
evaluates them on P fresh prompts (``polychromic.review.leaderboard.add_confirmation``). For each
confirmed trial and headline metric this module gathers, from the leaderboard row alone:

* the selection delta with its 95% paired-bootstrap CI (``delta_M``, ``_ci_low``, ``_ci_high``);
* the confirmation delta with its two-level CI (``confirm_delta_M`` …, R seed pairs × P prompts);
* the shrinkage, confirmation − selection, and the share of the selection delta that was kept;
* ``confirmed_M``: the confirmation interval excludes 0 on the side of the selection delta;
* the same for the gains against the λ=0 baseline's temperature frontier (``SHOWN`` of
  ``polychromic.review.confirm_frontier``: the study's against its baseline's frontier, the
  confirmation's against each seed pair's own baseline frontier on the fresh prompts), or
  ``frontier: not measured`` when there is none.

Pure functions of a ``study_model.Study`` (no file is read here beyond what the study loaded,
plus a trial's ``config.json`` for its prompt count); names, definitions and better directions
come from the column catalog (``polychromic.core.columns``).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.review import confirm_frontier as CF
from polychromic.review.study import varying_knobs
from polychromic.stats.verdict import QUALITY, as_float, label
from polychromic.store import layout
from polychromic.store.records import read_json

#: the rule of ``confirmed_M`` (polychromic.review.leaderboard.add_confirmation), in plain words
RULE = ("confirmed = the confirmation's 95% interval lies entirely on the same side of 0 as "
        "the selection delta (the change reproduced with new training seeds on fresh prompts); "
        "not confirmed = it reaches 0 or the other side, so the selection delta may have been "
        "luck of the prompts, the seed or the pick")
CONFIRMED, NOT_CONFIRMED, NOT_JUDGED = "confirmed", "not confirmed", "not judged"


def confirm_command(study: Any, trial: str | None = None, seeds: int = 3) -> str:
    """The command that confirms ``trial`` (or the best one) of ``study``."""
    which = f"--trial {shlex.quote(str(trial))}" if trial else "--best"
    return f"python study/confirm.py {shlex.quote(str(study.path))} {which} --seeds {seeds}"


@dataclass
class MetricComparison:
    """One metric of one confirmed trial: selection and confirmation side by side."""

    metric: str
    short: str
    definition: str
    better: str | None
    selection: float
    selection_low: float
    selection_high: float
    confirmation: float
    confirmation_low: float
    confirmation_high: float
    #: ``confirmed`` / ``not confirmed`` / ``not judged`` (no selection or confirmation delta)
    state: str
    #: why a frontier gain is not judged (outside / near the edge of the baseline's range)
    note: str = ""

    @property
    def shrinkage(self) -> float:
        """Confirmation − selection (NaN when either is missing)."""
        return self.confirmation - self.selection

    @property
    def kept(self) -> float:
        """Confirmation / selection: the share of the selection delta that reproduced (1 =
        all of it, < 0 = reversed); NaN when the selection delta is 0 or missing."""
        if not (math.isfinite(self.selection) and self.selection != 0):
            return float("nan")
        return self.confirmation / self.selection

    @property
    def direction(self) -> str:
        """``gain`` / ``loss`` of a confirmed change by the metric's better direction, else ""."""
        if self.state != CONFIRMED or self.better is None:
            return ""
        up = self.confirmation > 0
        return "gain" if up == (self.better == "max") else "loss"


@dataclass
class TrialComparison:
    """A trial that ``study/confirm.py`` re-trained, with its metrics side by side."""

    trial_id: str
    label: str
    seeds: int
    prompts: int
    runs: int
    started: int
    selection_prompts: int
    #: finished non-baseline trials the selection picked from
    best_of: int
    #: this trial's place among them in the study's order (1 = the best), 0 when unranked
    rank: int
    summary: str
    metrics: list[MetricComparison] = field(default_factory=list)
    #: the confirmation's temperature frontiers (``confirm_frontier``): the temperatures per
    #: seed pair, or ``not measured (…)``
    frontier: str = ""

    @property
    def unfinished(self) -> int:
        return max(0, self.started - self.runs)


def _int(value: Any) -> int:
    v = as_float(value)
    return int(v) if math.isfinite(v) else 0


def headline_metrics(study: Any) -> list[str]:
    """The compared metrics shown side by side: the study's objectives, pass@1 and
    quality_mean, the per-prompt headline diversity metrics, then the gains against the
    baseline's temperature frontier (``confirm_frontier.SHOWN``; shown where measured)."""
    return list(dict.fromkeys([*(m for m, _ in study.objectives), *QUALITY,
                               *columns.HEADLINE_DIVERSITY, *CF.SHOWN]))


def confirmed_state(value: Any) -> str:
    """``confirmed_M`` (True, False, 1.0, 0.0 or NaN) as a state."""
    if isinstance(value, (bool, np.bool_)):
        return CONFIRMED if value else NOT_CONFIRMED
    v = as_float(value)
    return CONFIRMED if v == 1.0 else NOT_CONFIRMED if v == 0.0 else NOT_JUDGED


def trial_comparison(study: Any, row: pd.Series,
                     metrics: Sequence[str] | None = None) -> TrialComparison:
    """Selection vs confirmation of one leaderboard row that has confirmation runs."""

    tid = str(row["trial_id"])
    config = read_json(study.trial_dir(tid) / layout.CONFIG)
    n_sel = _int(config.get("n_eval_prompts")) if isinstance(config, dict) else 0
    frame = study.frame
    finished = frame[frame["status"].eq("finished")
                     & ~frame["is_baseline"].fillna(False).astype(bool)]
    ids = [str(t) for t in finished["trial_id"]]
    best_of, rank = len(ids), ids.index(tid) + 1 if tid in ids else 0
    knobs, _ = varying_knobs(frame)
    out = TrialComparison(tid, label(row, knobs), _int(row.get("confirm_seeds")),
                          _int(row.get("confirm_prompts")), _int(row.get("confirm_runs")),
                          _int(row.get("confirm_started")), n_sel, best_of, rank,
                          str(row.get("confirmation") or ""),
                          frontier=_text(row.get("confirm_frontier")))
    for m in metrics or headline_metrics(study):
        sel_c, con_c = CF.selection_column(m), CF.confirm_column(m)
        sel = [as_float(row.get(f"{sel_c}{s}")) for s in ("", "_ci_low", "_ci_high")]
        con = [as_float(row.get(f"{con_c}{s}")) for s in ("", "_ci_low", "_ci_high")]
        note = (_text(row.get(f"confirm_frontier_range_{m[len('frontier_gain_'):]}"))
                if m.startswith("frontier_gain_") else "")
        if (CF.is_frontier_metric(m) and not note and math.isfinite(con[0])
                and not math.isfinite(sel[0])
                and str(row.get("frontier_temperatures")) == "not measured"):
            note = "the study's frontier: not measured"
        if not math.isfinite(con[0]) and not note:  # nothing confirmed (yet) to set beside
            continue
        col = columns.column(m)
        out.metrics.append(MetricComparison(
            m, columns.short(m), col.definition if col else "", columns.better(m), *sel, *con,
            confirmed_state(row.get(f"confirmed_{m}")), note))
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def comparisons(study: Any, metrics: Sequence[str] | None = None) -> list[TrialComparison]:
    """Every trial of the study with confirmation runs (``confirm_started`` > 0), in the
    study's order."""
    df = study.frame
    if "confirm_started" not in df:
        return []
    started = pd.to_numeric(df["confirm_started"], errors="coerce").fillna(0) > 0
    return [trial_comparison(study, row, metrics) for _, row in df[started].iterrows()]


# --- text -----------------------------------------------------------------------------------------


def signed(value: float) -> str:
    """``+0.025``, ``-0.1``, ``0``; ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    return "0" if value == 0 else f"{value:+.3g}"


def interval(delta: float, low: float, high: float) -> str:
    """``-0.1 [-0.2, 0]``; the CI left out when it is unknown."""
    if not math.isfinite(delta):
        return "—"
    ci = f" [{signed(low)}, {signed(high)}]" if math.isfinite(low) and math.isfinite(high) else ""
    return signed(delta) + ci


def kept_text(m: MetricComparison) -> str:
    """``kept 83%`` of the selection delta, ``reversed`` when the sign flipped, ``grew ×26``
    when it is more than twice as large (a selection delta near 0), else ""."""
    k = m.kept
    if not math.isfinite(k):
        return ""
    return "reversed" if k < 0 else f"grew ×{k:.2g}" if k > 2 else f"kept {100 * k:.0f}%"


def shrinkage_text(m: MetricComparison) -> str:
    """``+0.017 (kept 83%)``."""
    s = m.shrinkage
    if not math.isfinite(s):
        return "—"
    extra = kept_text(m)
    return signed(s) + (f" ({extra})" if extra else "")


def state_text(m: MetricComparison) -> str:
    """``confirmed (gain)``, ``confirmed (loss)``, ``not confirmed`` or ``not judged`` (with
    why, for a frontier gain outside or near the edge of the baseline's range)."""
    if m.direction:
        return f"{m.state} ({m.direction})"
    return f"{m.state} ({m.note})" if m.state == NOT_JUDGED and m.note else m.state


def selection_note(t: TrialComparison) -> str:
    """Where the selection delta comes from, in words."""
    prompts = f"{t.selection_prompts} test prompts" if t.selection_prompts else "the test prompts"
    picked = (f"this trial picked as the best of {t.best_of} finished trials" if t.rank == 1
              else f"this trial ranked {t.rank} of {t.best_of} finished trials" if t.rank
              else f"one of {t.best_of} finished trials")
    return f"one training seed on {prompts}, {picked}"


def confirmation_note(t: TrialComparison) -> str:
    """Where the confirmation delta comes from, in words."""
    text = (f"{t.seeds} new seed pair(s) × {t.prompts} fresh prompts (validation split), "
            "two-level 95% CI over seeds and prompts")
    if t.seeds == 1:
        text += "; with one pair the CI counts prompts only, not training-seed noise"
    if t.unfinished:
        text += f"; {t.unfinished} of {t.started} run(s) not finished"
    if t.frontier.startswith("not measured"):
        text += f"; frontier: {t.frontier}"
    elif t.frontier:
        text += (f"; vs T: against each seed pair's own λ=0 temperature frontier on the fresh "
                 f"prompts ({t.frontier})")
    return text


def frontier_footnote(trials: Sequence[TrialComparison]) -> str:
    """What a ``vs T`` row's Δ is, when any trial shows one, else ""."""
    if not any(CF.is_frontier_metric(m.metric) for t in trials for m in t.metrics):
        return ""
    return ("rows vs T: Δ = the gain against the λ=0 baseline's temperature frontier (the "
            "study's: its baseline's; the confirmation's: each seed pair's own baseline "
            "frontier on the fresh prompts, two-level CI); pass@1 vs best T: against the "
            "baseline's best temperature; a gain outside or near the edge of the baseline's "
            "range is not judged")


def markdown(study: Any, trials: Sequence[TrialComparison] | None = None,
             trial: str | None = None) -> str:
    """The comparison as markdown (the model card): one table per confirmed trial, the rule
    below; a line on how to confirm when there is nothing to compare (``trial``: the card's
    trial, so that the card names one confirm command, ``--trial ID``, everywhere)."""
    trials = comparisons(study) if trials is None else trials
    if not trials:
        return ("Not confirmed: the deltas above come from one prompt set and one training "
                "seed, and the best of many trials overstates its gain (winner's curse). "
                f"Confirm it on fresh prompts and new seeds with "
                f"`{confirm_command(study, trial)}`.")
    parts = []
    for t in trials:
        head = f"Trial `{t.trial_id}` ({t.label})" if t.label else f"Trial `{t.trial_id}`"
        if not t.metrics:
            parts.append(f"{head}: confirmation started, {t.runs} of {t.started} run(s) "
                         f"finished, {t.seeds} complete seed pair(s) so far; re-run "
                         f"`{confirm_command(study, t.trial_id)}` to finish it.")
            continue
        rows = [f"| {m.metric} | {'↑' if m.better == 'max' else '↓' if m.better == 'min' else ''}"
                f" | {interval(m.selection, m.selection_low, m.selection_high)} | "
                f"{interval(m.confirmation, m.confirmation_low, m.confirmation_high)} | "
                f"{shrinkage_text(m)} | {state_text(m)} |" for m in t.metrics]
        parts.append(
            f"{head}. Selection: {selection_note(t)}. Confirmation: {confirmation_note(t)}.\n\n"
            "| metric | better | selection Δ [95% CI] | confirmation Δ [95% CI] | "
            "shrinkage (confirmation − selection) | |\n|---|:-:|--:|--:|--:|---|\n"
            + "\n".join(rows))
    foot = frontier_footnote(trials)
    return ("\n\n".join(parts) + f"\n\nΔ = trial − λ=0 baseline; {RULE}."
            + (f" {foot[0].upper() + foot[1:]}." if foot else ""))
