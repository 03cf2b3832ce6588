"""The polychromic set objective and its advantages against brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polychromic.objective import polychromic_advantages, set_diversity, set_score


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _brute_diversity(e: np.ndarray) -> float:
    m = len(e)
    if m < 2:
        return 0.0
    sims = [e[i] @ e[j] for i in range(m) for j in range(m) if i != j]
    return float(np.clip(1 - np.mean(sims), 0, 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_set_diversity_matches_pairwise(m: int, seed: int) -> None:
    e = _unit(np.random.default_rng(seed), m, 5)
    assert set_diversity(e) == pytest.approx(_brute_diversity(e), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_leave_one_out_is_marginal_contribution(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, e = rng.uniform(size=(1, n)), _unit(rng, 1, n, 4)
    adv = polychromic_advantages(q, e, "leave_one_out").advantages[0]
    full = q[0].mean() * _brute_diversity(e[0])
    for i in range(n):
        rest = [j for j in range(n) if j != i]
        without = q[0, rest].mean() * _brute_diversity(e[0, rest])
        assert adv[i] == pytest.approx(full - without, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 6), st.integers(0, 10_000))
def test_subset_advantages_match_enumeration(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, e = rng.uniform(size=(2, n)), _unit(rng, 2, n, 4)
    k = 2
    adv = polychromic_advantages(q, e, "subsets", subset_size=k).advantages
    for p in range(2):
        subsets = list(itertools.combinations(range(n), k))
        f = {s: q[p, list(s)].mean() * _brute_diversity(e[p, list(s)]) for s in subsets}
        mean_all = np.mean(list(f.values()))
        for i in range(n):
            mine = np.mean([v for s, v in f.items() if i in s])
            assert adv[p, i] == pytest.approx(mine - mean_all, abs=1e-12)


def test_identical_samples_score_zero_and_distinct_good_ones_gain() -> None:
    e = np.tile(_unit(np.random.default_rng(0), 1, 1, 8), (1, 4, 1))  # four identical texts
    q = np.ones((1, 4))
    out = polychromic_advantages(q, e)
    assert out.diversity[0] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(out.advantages, 0.0, atol=1e-9)
    # replace one copy by an orthogonal, good sample: it makes the set diverse → positive advantage
    e2 = e.copy()
    e2[0, 3] = np.eye(8)[0] if abs(e[0, 0, 0]) < 0.9 else np.eye(8)[1]
    e2[0, 3] -= (e2[0, 3] @ e[0, 0]) * e[0, 0]
    e2[0, 3] /= np.linalg.norm(e2[0, 3])
    adv = polychromic_advantages(q, e2).advantages[0]
    assert adv[3] > 0 and adv[3] == adv.max()


def test_a_failing_sample_can_gain_when_it_diversifies_a_good_set() -> None:
    """Reward × diversity: a zero-quality sample still gets credit through the set's diversity."""
    base = _unit(np.random.default_rng(1), 1, 1, 6)[0, 0]
    other = np.linalg.qr(np.stack([base, np.ones(6)], 1))[0][:, 1]
    e = np.stack([base, base, base, other])[None]
    q = np.array([[1.0, 1.0, 1.0, 0.0]])
    adv = polychromic_advantages(q, e).advantages[0]
    assert set_score(q, e)[0] > 0
    assert adv[3] > 0


def test_bad_shapes_and_forms_raise() -> None:
    with pytest.raises(ValueError, match="must be"):
        polychromic_advantages(np.ones((2, 3)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="unknown advantage form"):
        polychromic_advantages(np.ones((1, 3)), _unit(np.random.default_rng(0), 1, 3, 4), "nope")
