"""Holm–Bonferroni on hand-made p-values, and the bootstrap p-value it is fed."""

from __future__ import annotations

import numpy as np
import pytest

from polychromic.stats.bootstrap import _weighted_mean, paired_delta
from polychromic.stats.multiplicity import holm_adjusted, holm_reject


def test_holm_by_hand() -> None:
    # m = 4: thresholds 0.0125, 0.0167, 0.025, 0.05 in order of the sorted p-values
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005 (×4 = 0.02), 0.01 (×3 = 0.03), 0.03 (×2 = 0.06), 0.04 (×1, max → 0.06)
    assert holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_reject(p).tolist() == [True, False, False, True]
    # step-down stops at the first non-rejection even if a later raw p is small enough
    assert holm_reject(np.array([0.02, 0.02, 0.02])).tolist() == [False, False, False]
    assert holm_reject(np.array([0.001, 0.02, 0.04])).tolist() == [True, True, True]


def test_nan_is_not_counted_and_never_rejected() -> None:
    p = np.array([0.02, np.nan, 0.02])
    assert holm_adjusted(p)[[0, 2]] == pytest.approx([0.04, 0.04])
    assert holm_reject(p).tolist() == [True, False, True]
    assert holm_reject(np.array([np.nan])).tolist() == [False]


def test_bootstrap_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(1)
    for effect in (0.0, 0.01, 0.03, 0.1):
        base = rng.normal(0.5, 0.1, 50)
        trial = base + effect + rng.normal(0, 0.05, 50)
        d = paired_delta(_weighted_mean(trial), _weighted_mean(base), 50)
        assert (d.p_value < 0.05) == d.significant or abs(d.p_value - 0.05) < 0.01
