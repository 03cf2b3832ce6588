"""The baseline's temperature frontier: hull, interpolation, gains and their bootstrap
(``polychromic.stats.frontier``), against hand-computed cases and simulated studies."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.stats.bootstrap import _weighted_mean
from polychromic.stats.frontier import (
    best_temperature,
    delta_vs_best,
    frontier_at,
    frontier_gains,
    gains_from_points,
    hull_vertices,
    matched_temperature,
    range_note,
)

# the issue's probe: the λ=0 baseline at five temperatures, (pass@1, semantic_diversity_per_prompt)
TEMPS = [0.4, 0.55, 0.7, 0.85, 1.0]
PASS1 = [0.413, 0.421, 0.363, 0.263, 0.192]
SEMDIV = [0.674, 0.732, 0.806, 0.846, 0.880]


def test_straight_line_interpolation_and_range() -> None:
    xs, ys = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    assert frontier_at(xs, ys, np.array(0.5)) == pytest.approx(0.5)
    assert frontier_at(xs, ys, np.array(0.0)) == pytest.approx(1.0)
    assert frontier_at(xs, ys, np.array(1.0)) == pytest.approx(0.0)
    # never extrapolated
    assert np.isnan(frontier_at(xs, ys, np.array(1.2)))
    assert np.isnan(frontier_at(xs, ys, np.array(-0.1)))
    assert np.isnan(frontier_at(xs, np.array([1.0, np.nan]), np.array(0.5)))


def test_point_below_the_chord_is_not_a_vertex() -> None:
    xs, ys = [0.0, 0.5, 1.0], [1.0, 0.3, 0.0]
    assert hull_vertices(xs, ys) == [0, 2]
    assert frontier_at(np.array(xs), np.array(ys), np.array(0.5)) == pytest.approx(0.5)
    # a point above the chord is a vertex and the frontier passes through it
    ys2 = [1.0, 0.8, 0.0]
    assert hull_vertices(xs, ys2) == [0, 1, 2]
    assert frontier_at(np.array(xs), np.array(ys2), np.array(0.25)) == pytest.approx(0.9)
    assert frontier_at(np.array(xs), np.array(ys2), np.array(0.75)) == pytest.approx(0.4)


def test_made_monotone() -> None:
    # the most diverse point is not the least-quality one: at lower quality the frontier is
    # flat at that point's diversity (a better, more diverse point exists)
    xs, ys = np.array([0.0, 0.5, 1.0]), np.array([0.5, 1.0, 0.0])
    assert hull_vertices(list(xs), list(ys)) == [1, 2]
    assert frontier_at(xs, ys, np.array(0.2)) == pytest.approx(1.0)
    assert frontier_at(xs, ys, np.array(0.75)) == pytest.approx(0.5)


def test_batched_frontier_equals_the_hull_vertices() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        xs, ys = rng.uniform(0, 1, 6), rng.uniform(0, 1, 6)
        verts = hull_vertices(list(xs), list(ys))
        vx, vy = xs[verts], ys[verts]
        assert np.all(np.diff(vx) > 0) and np.all(np.diff(vy) < 0)
        q = rng.uniform(vx[0], vx[-1], 20)
        assert np.allclose(frontier_at(np.tile(xs, (20, 1)), np.tile(ys, (20, 1)), q),
                           np.interp(q, vx, vy))


def test_issue_probe_by_hand() -> None:
    """λ=50 at T=0.85 (pass@1 0.396, sem div 0.821): the frontier at pass@1 0.396 lies on the
    segment T=0.7 (0.363, 0.806) – T=0.55 (0.421, 0.732): 0.806 − 0.074 · 0.033/0.058."""
    assert hull_vertices(PASS1, SEMDIV) == [4, 2, 1]
    d_at_q, q_at_d = gains_from_points(np.array([0.396]), np.array([0.821]),
                                       np.array([PASS1]), np.array([SEMDIV]))
    expected = 0.821 - (0.806 - 0.074 * 0.033 / 0.058)
    assert d_at_q[0] == pytest.approx(expected) and expected == pytest.approx(0.057, abs=1e-3)
    # quality at equal diversity: 0.821 lies between T=0.85 (0.263, 0.846) and T=0.7; the
    # T=0.85 point is not a hull vertex, so the chord T=1.0 – T=0.7 gives the frontier
    q_f = 0.192 + (0.363 - 0.192) * (0.880 - 0.821) / (0.880 - 0.806)
    assert q_at_d[0] == pytest.approx(0.396 - q_f)
    # λ=50 at its own T=0.7: pass@1 0.550 lies above every temperature's, at an interior T
    d_at_q, _ = gains_from_points(np.array([0.55]), np.array([0.761]),
                                  np.array([PASS1]), np.array([SEMDIV]))
    assert np.isnan(d_at_q[0])
    note = range_note("pass@1", 0.55, PASS1, TEMPS)
    assert note.startswith("outside the baseline's range (T ∈ [0.4, 1])")
    assert "peaks at T=0.55" in note
    assert "a temperature above 1 would extend it" in range_note("pass@1", 0.1, PASS1, TEMPS)
    assert range_note("pass@1", 0.3, PASS1, TEMPS) == ""
    assert matched_temperature(0.396, PASS1, TEMPS) == pytest.approx(
        0.7 - 0.15 * (0.396 - 0.363) / (0.421 - 0.363))
    assert best_temperature(dict(zip(TEMPS, PASS1))) == (0.55, 0.421)


def test_min_metric_is_oriented() -> None:
    """Self-BLEU: lower is more diverse. A baseline whose Self-BLEU rises with quality; a trial
    with lower Self-BLEU than the frontier at its quality is above it (negative raw gain)."""
    q, sb = np.array([[0.0, 1.0]]), np.array([[0.1, 0.5]])
    d_at_q, q_at_d = gains_from_points(np.array([0.5]), np.array([0.2]), q, sb,
                                       better_d="min")
    assert d_at_q[0] == pytest.approx(0.2 - 0.3)
    assert q_at_d[0] == pytest.approx(0.5 - 0.25)


# --- the bootstrap on synthetic studies ------------------------------------------------------

BASE_Q = np.array([0.3, 0.4, 0.5, 0.6])  # true baseline points, a concave frontier
BASE_D = np.array([0.9, 0.85, 0.75, 0.6])


def _true_gain(q: float, d: float) -> float:
    return d - float(np.interp(q, BASE_Q, BASE_D))


def _prompts(rng: np.random.Generator, shape: tuple[int, ...], q: np.ndarray,
             d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt values (..., P, K) around true means q, d (K,): a prompt effect shared by
    every temperature and the trial (what makes the design paired), plus sampling noise."""
    prompt_q = rng.normal(0, 0.10, (*shape, 1))
    prompt_d = rng.normal(0, 0.10, (*shape, 1))
    noise = shape + (len(q),)
    return (q + prompt_q + rng.normal(0, 0.05, noise), d + prompt_d + rng.normal(0, 0.05, noise))


def test_coverage_of_the_bootstrap_interval_on_simulated_studies() -> None:
    """600 simulated studies (60 prompts, 4 baseline temperatures, 300 resamples each — few
    resamples per study to keep it fast; the statistic is the same as ``frontier_gains``': the
    trial's and every temperature's point recomputed per resample, the hull rebuilt,
    interpolated): the 95% interval covers the true gain 0.95 ± 0.03 of the time."""
    rng = np.random.default_rng(0)
    studies, prompts, boots = 600, 60, 300
    trial = (0.45, 0.84)
    true = _true_gain(*trial)
    assert true == pytest.approx(0.04)
    mean_q = np.append(BASE_Q, trial[0])  # the trial is the last column
    mean_d = np.append(BASE_D, trial[1])
    vq, vd = _prompts(rng, (studies, prompts), mean_q, mean_d)  # (S, P, 5)
    w = rng.multinomial(prompts, np.full(prompts, 1 / prompts), size=(studies, boots))
    bq = np.einsum("sbp,spk->sbk", w, vq) / prompts  # (S, B, 5)
    bd = np.einsum("sbp,spk->sbk", w, vd) / prompts
    gain, _ = gains_from_points(bq[..., -1], bd[..., -1], bq[..., :-1], bd[..., :-1])
    lo = np.nanpercentile(gain, 2.5, axis=1)
    hi = np.nanpercentile(gain, 97.5, axis=1)
    covered = float(np.mean((lo <= true) & (true <= hi)))
    print(f"coverage {covered:.3f}")
    assert 0.92 <= covered <= 0.98, covered
    assert np.isfinite(gain).mean() > 0.99  # the trial sits well inside the range


def _study_fns(rng: np.random.Generator, trial: tuple[float, float], prompts: int = 60):
    """One simulated study as ``frontier_gains`` takes it: metric functions of prompt weights."""
    vq, vd = _prompts(rng, (prompts,), np.append(BASE_Q, trial[0]), np.append(BASE_D, trial[1]))
    fns = {k: {"pass@1": _weighted_mean(vq[:, k]), "sem": _weighted_mean(vd[:, k])}
           for k in range(5)}
    return fns[4], {float(t): fns[k] for k, t in enumerate((1.0, 0.85, 0.7, 0.55))}


def test_point_on_a_straight_line_frontier_covers_zero() -> None:
    rng = np.random.default_rng(1)
    covered = []
    for seed in range(40):  # on the segment between 0.4 and 0.5: D = 0.85 − (q − 0.4)
        trial, base = _study_fns(rng, (0.45, 0.80))
        d_at_q, q_at_d = frontier_gains(trial, base, [("pass@1", "sem")], 60,
                                        n_resamples=400, seed=seed)[("pass@1", "sem")]
        covered.append(d_at_q.ci_low <= 0 <= d_at_q.ci_high)
        assert d_at_q.defined > 0.95 and q_at_d.defined > 0.95
    assert np.mean(covered) >= 0.9


def test_point_above_by_three_mde_is_significant() -> None:
    rng = np.random.default_rng(2)
    trial, base = _study_fns(rng, (0.45, 0.80))
    null, _ = frontier_gains(trial, base, [("pass@1", "sem")], 60)[("pass@1", "sem")]
    assert np.isfinite(null.mde) and null.mde > 0
    hits = []
    for seed in range(20):
        trial, base = _study_fns(rng, (0.45, 0.80 + 3 * null.mde))
        g, _ = frontier_gains(trial, base, [("pass@1", "sem")], 60, n_resamples=500,
                              seed=seed)[("pass@1", "sem")]
        hits.append(g.ci_low > 0)
        assert g.oriented[0] == pytest.approx(g.gain)
    assert all(hits)


def test_outside_the_range_gets_no_number() -> None:
    rng = np.random.default_rng(4)
    trial, base = _study_fns(rng, (0.75, 0.5))  # better quality than any temperature
    g, _ = frontier_gains(trial, base, [("pass@1", "sem")], 60, n_resamples=300)[
        ("pass@1", "sem")]
    assert np.isnan(g.gain) and np.isnan(g.ci_low)
    assert g.range_note.startswith("outside the baseline's range (T ∈ [0.55, 1])")
    assert "a temperature below 0.55 would extend it" in g.range_note
    assert g.defined < 0.05


def test_near_the_edge_reports_the_defined_share() -> None:
    """A trial just inside the best-quality end: its point has a gain, but many resamples move
    it outside; the share is reported and the gain is flagged near the edge."""
    rng = np.random.default_rng(5)
    seen = near = 0
    for seed in range(40):
        trial, base = _study_fns(rng, (0.595, 0.62))
        g, _ = frontier_gains(trial, base, [("pass@1", "sem")], 60, n_resamples=400,
                              seed=seed)[("pass@1", "sem")]
        if np.isfinite(g.gain):
            seen += 1
            near += g.near_edge
            assert g.near_edge == (g.defined < 0.95)
            assert g.range_note.startswith("near the edge") == g.near_edge
            if g.near_edge:
                assert "a temperature below 0.55 would extend it" in g.range_note
        else:
            assert g.range_note and not g.near_edge
    assert seen >= 5 and near >= 3, (seen, near)


def test_delta_vs_best_temperature() -> None:
    rng = np.random.default_rng(6)
    prompts = 80
    base = {t: _weighted_mean(rng.binomial(1, p, prompts).astype(float))
            for t, p in ((0.4, 0.40), (0.55, 0.42), (0.7, 0.36))}
    trial = _weighted_mean(rng.binomial(1, 0.7, prompts).astype(float))
    out = delta_vs_best(trial, base, prompts, n_resamples=500)
    values = {t: float(f(np.ones((1, prompts)))[0]) for t, f in base.items()}
    assert out.value == max(values.values())
    assert values[out.temperature] == out.value
    assert out.delta == pytest.approx(float(trial(np.ones((1, prompts)))[0]) - out.value)
    assert out.ci_low < out.delta < out.ci_high and out.significant
    # the maximum is re-taken per resample: never above the delta against any one temperature
    one = delta_vs_best(trial, {out.temperature: base[out.temperature]}, prompts,
                        n_resamples=500)
    assert out.ci_low <= one.ci_low + 1e-12
