"""A delta over training seeds and prompts: the two-level paired bootstrap (pure numpy).

Confirming a chosen trial retrains it and the λ=0 baseline with R new training seeds, pair r
sharing seed r, and evaluates every run on the same confirmation prompts. The delta of a metric
is δ = mean over pairs of D_r = trial_r − baseline_r on all prompts. Its interval must include
the noise of training (which seeds were drawn) as well as of evaluation (which prompts). Two
levels of resampling give it:

1. prompts: B paired-bootstrap resamples of the P prompts (one multiset shared by every pair,
   as the prompts are) give each pair's difference per[r, b];
2. seed pairs: resampling the R pairs with replacement adds var_r(D_r)/R · (R − 1)/R; that
   level is taken in closed form and bias-corrected to S²/R (S² = var_r(D_r), ddof 1) instead
   of by Monte Carlo, because with 2–5 pairs the Monte Carlo draws are almost all ties.

With a prompt effect h_p shared by all pairs, a seed offset s and per-sample noise e,
Var(δ) = σ_h²/P + (2σ_s² + 2σ_e²/P)/R. S²/R estimates the second term; the prompt bootstrap of
the mean over pairs, V_m, estimates σ_h²/P + 2σ_e²/(PR), and the mean of the per-pair prompt
variances, V̄, estimates (σ_h² + 2σ_e²)/P. So A = V_m − (V̄ − V_m)/(R − 1) estimates σ_h²/P
without counting the sampling noise twice, and SE² = A + S²/R.

S² has only R − 1 degrees of freedom, so a normal interval is far too narrow with few seeds
(3 seeds: 83% coverage in simulation). The interval is δ ± t_{0.975, ν} · SE with
Satterthwaite's ν = (R − 1) · ((A + U) / U)², U = S²/R · (R − 1)/χ²_{0.25, R−1} the seed level's
75% upper confidence value (the prompt level counted as known): ν ≈ R − 1 when the seeds
dominate, large when the prompts do. With the plug-in S²/R in place of U, a seed variance that
came out small by chance made ν large and the interval narrow (90–92% coverage with 2–3 seeds);
with U, 93–97% in every regime simulated. One pair (R = 1) is the plain paired bootstrap
(percentile interval). ``tests/test_confirmation.py`` checks 0.92–0.98 coverage by simulation
with seed noise dominant, prompt noise dominant and in between.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import chi2
from scipy.stats import t as student_t

from polychromic.stats.bootstrap import CHUNK, N_RESAMPLES, SEED, Delta, Weighted, resample_weights


def two_level_delta(trials: Sequence[Weighted], baselines: Sequence[Weighted], n_prompts: int,
                    n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Delta:
    """Mean over seed pairs of trial − baseline, with the two-level bootstrap 95% interval.

    ``trials[r]`` and ``baselines[r]`` are metric functions of prompt weights (see
    ``polychromic.stats.bootstrap``) of pair r's runs, prompts in the same order."""
    r_pairs = len(trials)
    if r_pairs != len(baselines) or r_pairs < 1:
        raise ValueError(f"need as many baselines as trials (≥ 1), got {r_pairs} and "
                         f"{len(baselines)}")
    ones = np.ones((1, n_prompts))
    point_pairs = np.array([float(t(ones)[0] - b(ones)[0]) for t, b in zip(trials, baselines)])
    point_b = float(np.mean([b(ones)[0] for b in baselines]))
    w = resample_weights(n_prompts, n_resamples, seed)
    # per[r, b]: pair r's difference on prompt resample b
    per = np.stack([np.concatenate([t(w[i : i + CHUNK]) - b(w[i : i + CHUNK])
                                    for i in range(0, n_resamples, CHUNK)])
                    for t, b in zip(trials, baselines)])
    d, _ = two_level_from_draws(point_pairs, per)
    rel = 100.0 * d.delta / point_b if math.isfinite(point_b) and point_b != 0 else float("nan")
    return Delta(d.delta, d.ci_low, d.ci_high, rel, d.se, d.p_value)


def two_level_from_draws(points: np.ndarray, draws: np.ndarray) -> tuple[Delta, float]:
    """The two-level interval (module docstring) of any per-pair difference, from its values.

    ``points[r]``: seed pair r's difference on all prompts; ``draws[r, b]``: the same on prompt
    resample b, one resample multiset shared by every pair (``bootstrap.resample_weights``
    with one seed). A difference that is not a plain trial − baseline, e.g. a trial's gain
    against its own pair's temperature frontier (``polychromic.stats.frontier.gain_draws``),
    goes through here. A resample in which some pair's difference is undefined (NaN) is left
    out of every level; the second value is the share of resamples kept (``defined``), to be
    reported beside the interval. The point is NaN when any pair's point is. ``relative`` is
    NaN (there is no baseline value to divide by)."""
    points = np.asarray(points, dtype=float)
    per = np.asarray(draws, dtype=float)
    r_pairs = len(points)
    if r_pairs < 1 or per.ndim != 2 or per.shape[0] != r_pairs:
        raise ValueError(f"need one row of draws per pair (≥ 1), got {r_pairs} points and "
                         f"draws of shape {per.shape}")
    delta = float(np.mean(points))
    keep = np.isfinite(per).all(axis=0)
    defined = float(keep.mean()) if per.shape[1] else float("nan")
    per = per[:, keep]
    if per.shape[1] < 2 or not math.isfinite(delta):
        lo = hi = se = p = float("nan")
    elif r_pairs == 1:  # the plain paired bootstrap over prompts
        lo, hi = (float(x) for x in np.percentile(per[0], [2.5, 97.5]))
        se = float(per[0].std(ddof=1))
        p = min(1.0, 2 * min(float(np.mean(per[0] <= 0)), float(np.mean(per[0] >= 0))))
    else:
        v_mean = float(per.mean(axis=0).var(ddof=1))
        v_pairs = float(per.var(axis=1, ddof=1).mean())
        prompt_level = max(0.0, v_mean - (v_pairs - v_mean) / (r_pairs - 1))
        seed_level = float(points.var(ddof=1)) / r_pairs
        se = math.sqrt(prompt_level + seed_level)
        # ν from the seed level's 75% upper confidence value: a plug-in S² that came out
        # small by chance must not make ν large and the interval narrow (module docstring)
        seed_upper = seed_level * (r_pairs - 1) / float(chi2.ppf(0.25, r_pairs - 1))
        nu = ((r_pairs - 1) * ((prompt_level + seed_upper) / seed_upper) ** 2
              if seed_level > 0 else math.inf)
        q = float(student_t.ppf(0.975, nu)) if math.isfinite(nu) else 1.959964
        lo, hi = delta - q * se, delta + q * se
        p = float(2 * student_t.sf(abs(delta) / se, nu)) if se > 0 else float("nan")
    return Delta(delta, float(lo), float(hi), float("nan"), se, p), defined
