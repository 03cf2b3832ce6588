"""semantic_diversity equals 1 − mean of the explicit pairwise cosine matrix (off-diagonal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from polychromic.core.errors import MetricError
from polychromic.metrics import (
    mean_pairwise_cosine,
    semantic_diversity,
    semantic_diversity_per_prompt,
)


def explicit(emb: np.ndarray) -> float:
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = unit @ unit.T
    n = len(emb)
    return 1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1))


row_values = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
matrices = (
    st.tuples(st.integers(2, 40), st.integers(1, 16))
    .flatmap(lambda s: arrays(np.float64, s, elements=row_values))
    .filter(lambda a: bool((np.linalg.norm(a, axis=1) > 1e-3).all()))
)


@settings(max_examples=200, deadline=None)
@given(matrices)
def test_equals_explicit_pairwise_matrix(emb: np.ndarray) -> None:
    assert abs(semantic_diversity(emb) - explicit(emb)) <= 1e-6
    assert abs(semantic_diversity(emb.astype(np.float32)) - explicit(emb)) <= 1e-5


def test_unit_rows_formula_and_large_n() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(3000, 32)).astype(np.float32) + 0.5
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = unit.astype(np.float64).sum(axis=0)
    n = len(unit)
    assert mean_pairwise_cosine(unit) == pytest.approx((s @ s - n) / (n * (n - 1)), abs=1e-6)
    assert semantic_diversity(emb) == pytest.approx(explicit(emb.astype(np.float64)), abs=1e-6)


def test_undefined_and_failures() -> None:
    assert math.isnan(semantic_diversity(np.ones((1, 4))))
    assert math.isnan(semantic_diversity(np.zeros((0, 4))))
    with pytest.raises(MetricError, match="row 1"):
        semantic_diversity(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(MetricError):
        semantic_diversity(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(MetricError):
        semantic_diversity(np.ones(4))


def test_identical_and_opposite() -> None:
    assert semantic_diversity(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    assert semantic_diversity(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(2.0)


def test_per_prompt() -> None:
    rng = np.random.default_rng(2)
    groups = [rng.normal(size=(n, 8)) for n in (5, 1, 0, 7)]
    per = semantic_diversity_per_prompt(groups)
    assert per.shape == (4,)
    assert per[0] == pytest.approx(explicit(groups[0]), abs=1e-9)
    assert math.isnan(per[1]) and math.isnan(per[2])
    assert per[3] == pytest.approx(explicit(groups[3]), abs=1e-9)
