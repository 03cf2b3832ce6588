"""Is a trial better than the baseline sampled at another temperature? (pure numpy)

Temperature trades quality for diversity for free: no training, no GPU-hours. The λ=0
baseline's final adapter is evaluated at several temperatures T on the same prompts, sample
counts and per-sample seeds (``frontier.parquet``), which gives one point (Q(T), D(T)) per
temperature for every (quality Q, diversity D) pair. A trial is judged against the curve
those points span, not against the one point at its own temperature.

**The frontier.** Both axes are first oriented so that larger is better (a metric whose better
direction is ``min``, e.g. Self-BLEU, is negated). The frontier is the *monotone upper hull*
of the points: D_f(q) = the largest diversity reachable by the baseline's points, or by a
straight line between two of them, at a quality of at least q. In formula, with points
(Qᵢ, Dᵢ):

    D_f(q) = max( max_{i: Qᵢ ≥ q} Dᵢ ,  max_{i,j: Qᵢ ≤ q ≤ Qⱼ} Dᵢ + (Dⱼ − Dᵢ)(q − Qᵢ)/(Qⱼ − Qᵢ) )

for q in [min Qᵢ, max Qᵢ] and undefined outside (never extrapolated). The two-point form is
the upper concave hull, linearly interpolated between its vertices (in one dimension two
points suffice), and the first term makes it non-increasing in q. Q_f(d) is the same with the
axes swapped. It is computed for a whole batch of bootstrap resamples at once (O(B·T²)).

**The gains.** ``frontier_gain_D_at_Q`` = D(trial) − D_f(Q(trial)) and
``frontier_gain_Q_at_D`` = Q(trial) − Q_f(D(trial)), in the metric's own units (trial minus
frontier, like every ``delta_M``; for a ``min`` metric a negative gain is the better side).
"Above the frontier" means the oriented gain is positive.

**The interval.** Paired bootstrap over prompts: each resample draws one prompt multiset
(``polychromic.stats.bootstrap.resample_weights``) and recomputes the trial's point and every
baseline temperature's point on it, rebuilds the hull and interpolates. A resample can move the
trial's point outside the baseline's range, where the gain is undefined: ``defined`` is the
share of resamples in which it is defined. The 95% percentile interval and the SE (hence the
MDE, ``polychromic.stats.power``) are taken over the defined resamples, and the share is always
reported beside them; below 95% the verdict says "near the edge of the baseline's range" and
claims nothing. A trial whose own point lies outside the range gets no number: "outside the
baseline's range (T ∈ [a, b])" and which temperature would extend it.

**pass@k at the best temperature** (Chen et al. 2021 report a baseline's pass@k at its best
temperature for each k): ``pass@k_best_T`` is the baseline's largest pass@k over the frontier
temperatures (``pass@k_best_T_temperature`` names it), and ``delta_pass@k_vs_best_T`` = the
trial's pass@k − that maximum. In each resample the maximum is taken again (the best
temperature is re-chosen), so the interval accounts for picking the best of several.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polychromic.core import columns
from polychromic.stats.bootstrap import CHUNK, N_RESAMPLES, SEED, Weighted, resample_weights
from polychromic.stats.power import mde

#: below this share of resamples with a defined gain, the trial is "near the edge"
MIN_DEFINED = 0.95
#: the (quality, diversity) pairs judged against the frontier: pass@1 and quality_mean × each
#: headline per-prompt diversity metric
PAIRS = tuple((q, d) for q in ("pass@1", "quality_mean") for d in columns.HEADLINE_DIVERSITY)


def gain_column(y: str, x: str) -> str:
    """``frontier_gain_Y_at_X``: the gain in Y at equal X (the leaderboard column); its
    interval is ``…_ci_low``/``…_ci_high``, its MDE ``mde_frontier_gain_Y_at_X``, the share
    of resamples that define it ``frontier_defined_Y_at_X`` and why there is no number
    ``frontier_range_Y_at_X``."""
    return f"frontier_gain_{y}_at_{x}"


def frontier_at(xs: np.ndarray, ys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The monotone upper hull of the points (xs, ys) at x (module docstring), batched.

    ``xs``, ``ys``: (..., T) points (both axes larger = better); ``x``: (...) where to read
    the frontier. Returns (...): NaN where x lies outside [min xs, max xs] or anything is NaN.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    x = np.asarray(x, dtype=float)[..., None]  # (..., 1)
    # single points with at least the quality asked for
    single = np.where(xs >= x, ys, -np.inf).max(axis=-1)
    xi, xj = xs[..., :, None], xs[..., None, :]  # (..., T, 1), (..., 1, T)
    yi, yj = ys[..., :, None], ys[..., None, :]
    xq = x[..., None]  # (..., 1, 1)
    bracket = (xi <= xq) & (xq <= xj) & (xj > xi)
    with np.errstate(invalid="ignore", divide="ignore"):
        line = yi + (yj - yi) * (xq - xi) / np.where(xj > xi, xj - xi, 1.0)
    pair = np.where(bracket, line, -np.inf).max(axis=(-2, -1))
    best = np.maximum(single, pair)
    x = x[..., 0]
    inside = (x >= xs.min(axis=-1)) & (x <= xs.max(axis=-1))
    ok = inside & np.isfinite(x) & np.isfinite(xs).all(axis=-1) & np.isfinite(ys).all(axis=-1)
    return np.where(ok & np.isfinite(best), best, np.nan)


def hull_vertices(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the points that are vertices of the monotone upper hull, by ascending x
    (from the most diverse point to the best-quality one): what a plot draws as the curve.
    Equal to :func:`frontier_at` between consecutive vertices (tests check both)."""
    if not len(xs):
        return []
    start = max(range(len(xs)), key=lambda i: (ys[i], xs[i]))  # most diverse, best x of ties
    right: dict[float, int] = {}  # one point per x right of the start: the highest
    for i in range(len(xs)):
        if xs[i] > xs[start] and (xs[i] not in right or ys[i] > ys[right[xs[i]]]):
            right[xs[i]] = i
    chain: list[int] = [start]
    for x in sorted(right):
        i = right[x]
        while len(chain) >= 2:  # drop the last vertex while it is not above the chord
            a, b = chain[-2], chain[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross < 0:
                break
            chain.pop()
        chain.append(i)
    return chain


def _oriented(values: np.ndarray, better: str | None) -> np.ndarray:
    return -values if better == "min" else values


def gains_from_points(q: np.ndarray, d: np.ndarray, big_q: np.ndarray, big_d: np.ndarray,
                      better_q: str | None = "max", better_d: str | None = "max",
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(gain_D_at_Q, gain_Q_at_D) of trial points (q, d), shape (B,), against the baseline's
    points (big_q, big_d), shape (B, T); NaN where undefined. In the metrics' own units
    (trial − frontier); ``better_*``: the metrics' better direction (``min`` is negated for the
    hull and the sign restored after)."""
    sq = -1.0 if better_q == "min" else 1.0
    sd = -1.0 if better_d == "min" else 1.0
    oq, od = sq * np.asarray(q, float), sd * np.asarray(d, float)
    oQ, oD = sq * np.asarray(big_q, float), sd * np.asarray(big_d, float)
    d_at_q = sd * (od - frontier_at(oQ, oD, oq))
    q_at_d = sq * (oq - frontier_at(oD, oQ, od))
    return d_at_q, q_at_d


@dataclass(frozen=True)
class FrontierGain:
    """One gain against the baseline's frontier, with its bootstrap summary."""

    gain: float
    """Point estimate on all prompts (trial − frontier, the metric's units); NaN outside the
    baseline's range."""
    ci_low: float
    ci_high: float
    defined: float
    """Share of bootstrap resamples in which the gain is defined (trial inside the range)."""
    se: float
    better: str | None = "max"
    """The better direction of the metric the gain is measured in."""
    range_note: str = ""
    """Set when the trial's point lies outside the baseline's range (``outside the baseline's
    range (T ∈ [a, b]): …``) or near its edge (``near the edge …``), with the temperature
    that would extend it."""
    matched_temperature: float = float("nan")
    """The baseline temperature at the trial's matched value (linear between the two
    temperatures whose points bracket it), for "like λ=0 at T≈0.55"."""
    p_value: float = float("nan")
    """Two-sided bootstrap p-value over the defined resamples (``bootstrap_p``)."""

    @property
    def mde(self) -> float:
        return mde(self.se)

    @property
    def near_edge(self) -> bool:
        return math.isfinite(self.gain) and self.defined < MIN_DEFINED

    @property
    def oriented(self) -> tuple[float, float, float]:
        """(gain, low, high) with larger = above the frontier."""
        if self.better == "min":
            return -self.gain, -self.ci_high, -self.ci_low
        return self.gain, self.ci_low, self.ci_high


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no change" from the finite resampled values:
    2 · min(share ≤ 0, share ≥ 0), capped at 1; NaN with fewer than 2 finite values. For
    Holm over a trial's own temperatures and over the study's trials
    (``polychromic.stats.multiplicity``)."""
    ok = draws[np.isfinite(draws)]
    if ok.size < 2:
        return float("nan")
    return min(1.0, 2 * min(float(np.mean(ok <= 0)), float(np.mean(ok >= 0))))


def _summary(point: float, boot: np.ndarray, better: str | None, note: str,
             matched: float) -> FrontierGain:
    ok = boot[np.isfinite(boot)]
    share = float(ok.size / boot.size) if boot.size else float("nan")
    if not math.isfinite(point) or ok.size < 2:
        return FrontierGain(point, float("nan"), float("nan"), share, float("nan"), better,
                            note, matched)
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return FrontierGain(point, float(lo), float(hi), share, float(ok.std(ddof=1)), better,
                        note, matched, bootstrap_p(ok))


def _hint(axis: str, end: int, vals: np.ndarray, temps: np.ndarray, side: str) -> str:
    t_end = temps[end]
    if t_end == temps.min():
        return f"a temperature below {t_end:g} would extend it"
    if t_end == temps.max():
        return f"a temperature above {t_end:g} would extend it"
    return (f"no temperature of the sweep reaches it: the baseline's {axis} "
            f"{'peaks' if side == 'above' else 'bottoms out'} at T={t_end:g}")


def range_note(axis: str, value: float, values: Sequence[float],
               temperatures: Sequence[float], near: bool = False) -> str:
    """Why no gain is given: ``outside the baseline's range (T ∈ [a, b])`` plus which
    temperature would extend the range to ``value``; "" when ``value`` is inside, unless
    ``near``: then ``near the edge of the baseline's range …`` and the temperature that would
    extend the nearer end."""
    vals = np.asarray(values, float)
    temps = np.asarray(temperatures, float)
    if not (math.isfinite(value) and np.isfinite(vals).all() and len(vals)):
        return ""
    lo_i, hi_i = int(np.argmin(vals)), int(np.argmax(vals))
    span = f"(T ∈ [{temps.min():g}, {temps.max():g}])"
    if vals[lo_i] <= value <= vals[hi_i]:
        if not near:
            return ""
        upper = vals[hi_i] - value <= value - vals[lo_i]
        end = hi_i if upper else lo_i
        return (f"near the edge of the baseline's range {span}: {axis} {value:.3g} is close "
                f"to T={temps[end]:g}'s {vals[end]:.3g}; "
                + _hint(axis, end, vals, temps, "above" if upper else "below"))
    side = "above" if value > vals[hi_i] else "below"
    end = hi_i if side == "above" else lo_i
    return (f"outside the baseline's range {span}: {axis} {value:.3g} is {side} every "
            f"temperature's; " + _hint(axis, end, vals, temps, side))


def matched_temperature(value: float, values: Sequence[float],
                        temperatures: Sequence[float]) -> float:
    """The temperature at which the baseline's metric equals ``value``: linear between the two
    temperatures (adjacent in T) whose values bracket it, the one nearest in value when several
    segments do; NaN when none does."""
    vals = np.asarray(values, float)
    temps = np.asarray(temperatures, float)
    order = np.argsort(temps)
    vals, temps = vals[order], temps[order]
    best, best_dist = float("nan"), math.inf
    for a in range(len(vals) - 1):
        lo, hi = sorted((vals[a], vals[a + 1]))
        if lo <= value <= hi:
            frac = 0.0 if hi == lo else (value - vals[a]) / (vals[a + 1] - vals[a])
            t = float(temps[a] + frac * (temps[a + 1] - temps[a]))
            dist = min(abs(value - vals[a]), abs(value - vals[a + 1]))
            if dist < best_dist:
                best, best_dist = t, dist
    return best


def _values(fns: Sequence[Weighted], n_prompts: int, n_resamples: int,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each metric function on all prompts (point) and on B resamples: (F,), (B, F)."""
    ones = np.ones((1, n_prompts))
    point = np.array([float(f(ones)[0]) for f in fns])
    w = resample_weights(n_prompts, n_resamples, seed)
    boot = np.concatenate([np.stack([f(w[i : i + CHUNK]) for f in fns], axis=1)
                           for i in range(0, n_resamples, CHUNK)], axis=0)
    return point, boot


def _pair_arrays(trial: Mapping[str, Weighted], baseline: Mapping[float, Mapping[str, Weighted]],
                 pairs: Sequence[tuple[str, str]], n_prompts: int,
                 better: Mapping[str, str | None], n_resamples: int, seed: int,
                 ) -> tuple[dict[tuple[str, str], tuple[np.ndarray, np.ndarray, tuple[float, float],
                                                        np.ndarray]], list[float]]:
    """Per pair: (points (2,), draws (2, B), the trial's (Q, D), the baseline's (T, 2) points)
    of (gain D at Q, gain Q at D); {} and [] when nothing can be compared."""
    temps = sorted(baseline)
    names = sorted({m for p in pairs for m in p
                    if m in trial and all(m in baseline[t] for t in temps)})
    if not temps or not names:
        return {}, temps
    col = {m: i for i, m in enumerate(names)}
    t_point, t_boot = _values([trial[m] for m in names], n_prompts, n_resamples, seed)
    b_point = np.empty((len(temps), len(names)))
    b_boot = np.empty((n_resamples, len(temps), len(names)))
    for k, t in enumerate(temps):
        b_point[k], b_boot[:, k] = _values([baseline[t][m] for m in names], n_prompts,
                                           n_resamples, seed)
    out = {}
    for q_name, d_name in pairs:
        if q_name not in col or d_name not in col:
            continue
        qi, di = col[q_name], col[d_name]
        bq, bd = better.get(q_name, "max"), better.get(d_name, "max")
        pt = gains_from_points(t_point[qi:qi + 1], t_point[di:di + 1], b_point[None, :, qi],
                               b_point[None, :, di], bq, bd)
        bs = gains_from_points(t_boot[:, qi], t_boot[:, di], b_boot[:, :, qi],
                               b_boot[:, :, di], bq, bd)
        out[(q_name, d_name)] = (np.array([pt[0][0], pt[1][0]]), np.stack(bs),
                                 (float(t_point[qi]), float(t_point[di])),
                                 b_point[:, [qi, di]])
    return out, temps


def gain_draws(trial: Mapping[str, Weighted], baseline: Mapping[float, Mapping[str, Weighted]],
               pairs: Sequence[tuple[str, str]], n_prompts: int,
               better: Mapping[str, str | None] | None = None,
               n_resamples: int = N_RESAMPLES, seed: int = SEED,
               ) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """For every (quality, diversity) pair: the gains (D at equal Q, Q at equal D) on all
    prompts, shape (2,), and on each prompt resample, shape (2, B) (NaN where undefined), the
    resamples ``bootstrap.resample_weights(n_prompts, n_resamples, seed)``: what
    ``frontier_gains`` summarises, and what the confirmation's two-level bootstrap takes per
    seed pair (``polychromic.stats.two_level.two_level_from_draws``)."""
    arrays, _ = _pair_arrays(trial, baseline, pairs, n_prompts, dict(better or {}),
                             n_resamples, seed)
    return {pair: (pt, bs) for pair, (pt, bs, _, _) in arrays.items()}


def frontier_gains(trial: Mapping[str, Weighted], baseline: Mapping[float, Mapping[str, Weighted]],
                   pairs: Sequence[tuple[str, str]], n_prompts: int,
                   better: Mapping[str, str | None] | None = None,
                   n_resamples: int = N_RESAMPLES, seed: int = SEED,
                   ) -> dict[tuple[str, str], tuple[FrontierGain, FrontierGain]]:
    """For every (quality, diversity) pair: (gain of diversity at equal quality, gain of
    quality at equal diversity) of the trial against the baseline's frontier.

    ``trial``: metric → function of prompt weights (``bootstrap.weighted_metrics``);
    ``baseline``: temperature → the same for the baseline at that temperature, every
    function over the same ``n_prompts`` prompts in the same order. Pairs whose metrics are
    missing on either side are left out. One set of resamples serves every pair."""
    better = dict(better or {})
    arrays, temps = _pair_arrays(trial, baseline, pairs, n_prompts, better, n_resamples, seed)
    out: dict[tuple[str, str], tuple[FrontierGain, FrontierGain]] = {}
    for (q_name, d_name), (pt, bs, (q_val, d_val), b_pts) in arrays.items():
        bq, bd = better.get(q_name, "max"), better.get(d_name, "max")
        gains = []
        for k, (axis, val, col_i, bet) in enumerate(((q_name, q_val, 0, bd),
                                                     (d_name, d_val, 1, bq))):
            near = bool(np.mean(np.isfinite(bs[k])) < MIN_DEFINED)
            gains.append(_summary(float(pt[k]), bs[k], bet,
                                  range_note(axis, val, b_pts[:, col_i], temps, near),
                                  matched_temperature(val, b_pts[:, col_i], temps)))
        out[(q_name, d_name)] = (gains[0], gains[1])
    return out


@dataclass(frozen=True)
class BestTemperature:
    """The baseline's best temperature for one metric, and a trial's delta against it."""

    temperature: float
    value: float
    """The baseline's metric at ``temperature`` (the largest over the frontier)."""
    delta: float
    ci_low: float
    ci_high: float
    se: float
    p_value: float = float("nan")
    """Two-sided bootstrap p-value (``bootstrap_p``), for Holm over the study's trials."""

    @property
    def mde(self) -> float:
        return mde(self.se)

    @property
    def significant(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def best_temperature(baseline_values: Mapping[float, float]) -> tuple[float, float]:
    """(temperature, value) of the largest finite value; ties go to the lower temperature;
    (NaN, NaN) when none is finite."""
    finite = [(v, -t) for t, v in baseline_values.items() if math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    v, neg_t = max(finite)
    return -neg_t, v


def best_draws(trial: Weighted, baseline: Mapping[float, Weighted], n_prompts: int,
               n_resamples: int = N_RESAMPLES, seed: int = SEED,
               ) -> tuple[float, np.ndarray, float, float]:
    """(trial − the baseline's maximum over temperatures on all prompts, the same on each
    prompt resample (B,) with the maximum re-taken (NaN where no temperature is finite), the
    best temperature, its value) of a larger-is-better metric (pass@k)."""
    temps = sorted(baseline)
    t_point, t_boot = _values([trial], n_prompts, n_resamples, seed)
    b_point, b_boot = _values([baseline[t] for t in temps], n_prompts, n_resamples, seed)
    best_t, best_v = best_temperature(dict(zip(temps, b_point.tolist())))
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isfinite(b_boot), b_boot, -np.inf), axis=1)
        diffs = np.where(np.isfinite(top), t_boot[:, 0] - top, np.nan)
    return float(t_point[0] - best_v), diffs, best_t, best_v


def delta_vs_best(trial: Weighted, baseline: Mapping[float, Weighted], n_prompts: int,
                  n_resamples: int = N_RESAMPLES, seed: int = SEED) -> BestTemperature:
    """Trial − the baseline's maximum over temperatures of a larger-is-better metric (pass@k),
    paired bootstrap over prompts with the maximum re-taken in each resample."""
    delta, diffs, best_t, best_v = best_draws(trial, baseline, n_prompts, n_resamples, seed)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < 2 or not math.isfinite(delta):
        return BestTemperature(best_t, best_v, delta, float("nan"), float("nan"), float("nan"))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return BestTemperature(best_t, best_v, delta, float(lo), float(hi), float(diffs.std(ddof=1)),
                           bootstrap_p(diffs))
