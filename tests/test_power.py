"""The minimum detectable effect against simulation: at the reported MDE, 80% power."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.stats import power
from polychromic.stats.bootstrap import _weighted_mean, paired_delta


def test_z_factor_and_normal_power() -> None:
    assert power.z_factor() == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert power.power_at(power.mde(0.1), 0.1) == pytest.approx(0.8, abs=1e-3)
    assert np.isnan(power.mde(float("nan"))) and np.isnan(power.mde(-1.0))


def _study(rng: np.random.Generator, effect: float, prompts: int = 60,
           noise: float = 0.05) -> tuple:
    """One synthetic paired study: per-prompt values of baseline and trial on the same prompts
    (a shared prompt effect, independent sampling noise, a constant true effect)."""
    prompt = rng.normal(0.6, 0.15, prompts)
    base = prompt + rng.normal(0, noise, prompts)
    trial = prompt + effect + rng.normal(0, noise, prompts)
    return _weighted_mean(trial), _weighted_mean(base), prompts


def test_simulated_power_at_the_reported_mde_is_80_percent() -> None:
    rng = np.random.default_rng(0)
    # the MDE a study of this size reports (median over null studies: it varies a little)
    reported = float(np.median([paired_delta(*_study(rng, 0.0), n_resamples=1000,
                                             seed=i).mde for i in range(100)]))
    hits = [paired_delta(*_study(rng, reported), n_resamples=1000, seed=i).significant
            for i in range(600)]
    assert 0.77 <= float(np.mean(hits)) <= 0.83, float(np.mean(hits))
    # and with no effect the interval excludes 0 about 5% of the time
    false = [paired_delta(*_study(rng, 0.0), n_resamples=1000, seed=i).significant
             for i in range(600)]
    assert float(np.mean(false)) <= 0.08
