"""The two-level (seeds, then prompts) paired bootstrap covers the true delta."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.stats.bootstrap import _weighted_mean, resample_weights
from polychromic.stats.frontier import MIN_DEFINED, gain_draws
from polychromic.stats.two_level import two_level_delta, two_level_from_draws


def _runs(rng: np.random.Generator, effect: float, seeds: int, prompts: int,
          seed_sd: float, prompt_sd: float, noise: float) -> tuple[list, list]:
    """Per-prompt values of `seeds` trial/baseline pairs on the same prompts: a prompt effect
    shared by all runs, a per-prompt treatment effect around `effect` (prompt-level
    heterogeneity), a per-run training-seed offset and per-sample noise."""
    level = rng.normal(0.6, 0.15, prompts)
    hetero = rng.normal(0.0, prompt_sd, prompts)
    trials, bases = [], []
    for _ in range(seeds):
        bases.append(_weighted_mean(level + rng.normal(0, seed_sd)
                                    + rng.normal(0, noise, prompts)))
        trials.append(_weighted_mean(level + effect + hetero + rng.normal(0, seed_sd)
                                     + rng.normal(0, noise, prompts)))
    return trials, bases


@pytest.mark.parametrize(("seeds", "seed_sd", "prompt_sd"), [
    (3, 0.03, 0.03),  # training seeds dominate
    (2, 0.03, 0.03),
    (5, 0.02, 0.03),
    (3, 0.0, 0.1),    # no seed noise: prompts and sampling only
    (2, 0.01, 0.03),
])
def test_interval_covers_the_true_delta(seeds: int, seed_sd: float, prompt_sd: float) -> None:
    rng = np.random.default_rng(seeds)
    effect, hits = 0.02, []
    for i in range(250):
        t, b = _runs(rng, effect, seeds, prompts=40, seed_sd=seed_sd, prompt_sd=prompt_sd,
                     noise=0.05)
        d = two_level_delta(t, b, 40, n_resamples=300, seed=i)
        hits.append(d.ci_low <= effect <= d.ci_high)
    coverage = float(np.mean(hits))
    assert 0.92 <= coverage <= 0.98, coverage


def test_one_pair_is_the_prompt_bootstrap_and_point_is_the_mean_of_pairs() -> None:
    from polychromic.stats.bootstrap import paired_delta

    rng = np.random.default_rng(0)
    t, b = _runs(rng, 0.05, 1, 30, 0.0, 0.02, 0.05)
    one = two_level_delta(t, b, 30, n_resamples=500, seed=3)
    ref = paired_delta(t[0], b[0], 30, n_resamples=500, seed=3)
    assert one.delta == pytest.approx(ref.delta)
    assert (one.ci_low, one.ci_high) == pytest.approx((ref.ci_low, ref.ci_high))
    t2, b2 = _runs(rng, 0.05, 3, 30, 0.02, 0.02, 0.05)
    ones = np.ones((1, 30))
    assert two_level_delta(t2, b2, 30, 200).delta == pytest.approx(
        np.mean([x(ones)[0] - y(ones)[0] for x, y in zip(t2, b2)]))
    with pytest.raises(ValueError):
        two_level_delta(t2, b2[:2], 30)


def test_from_draws_is_the_two_level_delta_of_plain_differences() -> None:
    """``two_level_from_draws`` on trial − baseline per pair and resample is
    ``two_level_delta`` (which goes through it), every resample defined."""
    rng = np.random.default_rng(7)
    t, b = _runs(rng, 0.03, 3, 30, 0.02, 0.02, 0.05)
    ones, w = np.ones((1, 30)), resample_weights(30, 300, 5)
    points = np.array([x(ones)[0] - y(ones)[0] for x, y in zip(t, b)])
    draws = np.stack([x(w) - y(w) for x, y in zip(t, b)])
    got, defined = two_level_from_draws(points, draws)
    ref = two_level_delta(t, b, 30, n_resamples=300, seed=5)
    assert defined == 1.0
    assert (got.delta, got.ci_low, got.ci_high, got.se) == pytest.approx(
        (ref.delta, ref.ci_low, ref.ci_high, ref.se))
    # an undefined resample in one pair is left out of every pair and the share says so
    draws[1, :30] = np.nan
    _, defined = two_level_from_draws(points, draws)
    assert defined == pytest.approx(1 - 30 / 300)
    # an undefined point (the trial outside one pair's baseline range): no number
    points[2] = np.nan
    nan, _ = two_level_from_draws(points, draws)
    assert np.isnan(nan.delta) and np.isnan(nan.ci_low) and np.isnan(nan.ci_high)
    with pytest.raises(ValueError):
        two_level_from_draws(points, draws[:2])


#: the true baseline frontier of the simulated confirmations (concave, as in test_frontier.py)
BASE_Q = np.array([0.3, 0.4, 0.5, 0.6])
BASE_D = np.array([0.9, 0.85, 0.75, 0.6])


def _confirmation(rng: np.random.Generator, gain: float, seeds: int, prompts: int,
                  seed_sd: float) -> tuple[list, list]:
    """Per seed pair: the trial's metric functions and its baseline's frontier
    ({T: functions}) on the same prompts. Each prompt has a quality and a diversity effect
    shared by every run (what makes the design paired); each pair's trial has a training-seed
    offset on its diversity, each pair's baseline one on its whole curve; every run adds
    sampling noise. The trial's true point is (0.45, frontier(0.45) + gain)."""
    h_q, h_d = rng.normal(0, 0.10, prompts), rng.normal(0, 0.10, prompts)
    trial_q = 0.45
    trial_d = float(np.interp(trial_q, BASE_Q, BASE_D)) + gain
    trials, fronts = [], []
    for _ in range(seeds):
        s_t, s_b = rng.normal(0, seed_sd), rng.normal(0, seed_sd)

        def run(q: float, d: float, offset: float) -> dict:
            return {"pass@1": _weighted_mean(q + h_q + rng.normal(0, 0.05, prompts)),
                    "sem": _weighted_mean(d + offset + h_d + rng.normal(0, 0.05, prompts))}

        trials.append(run(trial_q, trial_d, s_t))
        fronts.append({float(t): run(q, d, s_b)
                       for t, q, d in zip((1.0, 0.85, 0.7, 0.55), BASE_Q, BASE_D)})
    return trials, fronts


@pytest.mark.parametrize(("seeds", "seed_sd"), [(3, 0.03), (2, 0.02), (3, 0.0)])
def test_confirmed_frontier_gain_covers_the_true_gain(seeds: int, seed_sd: float) -> None:
    """Simulated confirmations, each pair's gain taken against its own baseline's frontier
    (``gain_draws``) and the pairs through the two-level bootstrap: the 95% interval covers
    the true gain (+0.04 semantic diversity at equal pass@1) 0.92–0.98 of the time, with
    training seeds dominant, smaller, and absent."""
    rng = np.random.default_rng(seeds * 10 + int(seed_sd * 100))
    hits, defined = [], []
    for i in range(300):
        trials, fronts = _confirmation(rng, 0.04, seeds, 40, seed_sd)
        per = [gain_draws(t, f, [("pass@1", "sem")], 40, n_resamples=200, seed=i)[
            ("pass@1", "sem")] for t, f in zip(trials, fronts)]
        d, share = two_level_from_draws(np.array([p[0][0] for p in per]),
                                        np.stack([p[1][0] for p in per]))
        hits.append(d.ci_low <= 0.04 <= d.ci_high)
        defined.append(share)
    coverage = float(np.mean(hits))
    assert 0.92 <= coverage <= 0.98, coverage
    assert np.mean(defined) >= MIN_DEFINED  # the trial sits well inside every pair's range


def test_check_says_when_the_confirmation_split_is_too_small(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """User data (`task: replies`): the confirmation split is taken the same way (a hash of
    the prompt), and `--check` says when it holds fewer prompts than the study evaluates
    (``study/run.py``'s ``main(argv)`` in this process: ``--check`` starts nothing)."""
    import json

    from polychromic.tasks.base import split_of
    from polychromic.tasks.replies import SPLIT_FRACTIONS
    from tests.conftest import load_cli

    rows, kept = [], {"train": 0, "validation": 0, "test": 0}
    want = {"train": 20, "validation": 2, "test": 6}
    i = 0
    while any(kept[s] < want[s] for s in want):
        prompt = f"message number {i} about the weather"
        split = split_of(prompt, SPLIT_FRACTIONS)
        if kept[split] < want[split]:
            rows.append({"prompt": prompt, "response": f"reply {i} sounds lovely"})
            kept[split] += 1
        i += 1
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    capsys.readouterr()
    code = load_cli("run").main(["--space", "smoke", "--set", "task=replies", "--set",
                                 f"data={data}", "--set", "n_eval_prompts=4", "--check"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note: the confirmation (validation) split has 2 prompts, fewer than " \
           "n_eval_prompts=4" in out
