"""pass_at_k equals the direct binomial formula; bad inputs raise ValueError."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polychromic.metrics import pass_at_k, pass_at_k_curve


def direct(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


@st.composite
def problems(draw):
    n = draw(st.integers(1, 300))
    c = draw(st.integers(0, n))
    k = draw(st.integers(1, n))
    return n, c, k


@settings(max_examples=300, deadline=None)
@given(problems())
def test_scalar_equals_binomial_formula(p: tuple[int, int, int]) -> None:
    n, c, k = p
    got = pass_at_k(n, c, k)
    assert isinstance(got, float)
    assert abs(got - direct(n, c, k)) <= 1e-12


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(5, 60), st.integers(0, 60)), min_size=1, max_size=20),
    st.integers(1, 5),
)
def test_vectorized_equals_per_problem(rows: list[tuple[int, int]], k: int) -> None:
    n = np.array([r[0] for r in rows])
    c = np.minimum(np.array([r[1] for r in rows]), n)
    got = pass_at_k(n, c, k)
    assert isinstance(got, np.ndarray) and got.shape == n.shape
    expected = [direct(int(a), int(b), k) for a, b in zip(n, c, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_curve_is_mean_over_problems() -> None:
    n, c = np.array([10, 10, 12]), np.array([0, 3, 12])
    curve = pass_at_k_curve(n, c)
    assert curve.shape == (10,)
    for k in range(1, 11):
        assert curve[k - 1] == pytest.approx(
            np.mean([direct(10, 0, k), direct(10, 3, k), direct(12, 12, k)]), abs=1e-12
        )
    assert curve[0] == pytest.approx((0 + 0.3 + 1) / 3)


def test_boundaries_and_errors() -> None:
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 5) == 1.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k
    with pytest.raises(ValueError, match=r"k=6 > n=5"):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError, match="k=3 > n=2"):
        pass_at_k(np.array([5, 2]), np.array([1, 1]), 3)
    with pytest.raises(ValueError, match="c > n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(-1, 0, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, -1, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 0)
