"""The two-level (seeds, then prompts) paired bootstrap covers the true delta."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.stats.bootstrap import _weighted_mean
from polychromic.stats.two_level import two_level_delta


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
