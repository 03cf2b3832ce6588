"""Effective diversity and NoveltyBench utility (``polychromic.metrics.effective``) against
hand-computed values, and their place in the aggregate, the bootstrap and the catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polychromic.core import columns
from polychromic.metrics import effective as E
from polychromic.metrics.aggregate import COMPARED, aggregate
from polychromic.stats.bootstrap import weighted_metrics

# four samples: 0 and 1 identical (one class), 2 and 3 orthogonal to them and to each other
EMB = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])


def test_effective_semantic_diversity_by_hand() -> None:
    # all pass: pairs (0,1) cos 1 → 0; the 5 other unordered pairs cos 0 → 1; 10 of 12 ordered
    assert E.effective_semantic_diversity(EMB, [True] * 4) == pytest.approx(10 / 12)
    # sample 3 fails: only pairs among {0, 1, 2}: (0,2), (1,2) → 4 ordered of 12
    assert E.effective_semantic_diversity(EMB, [True, True, True, False]) == pytest.approx(4 / 12)
    assert E.effective_semantic_diversity(EMB, [True, False, False, False]) == 0.0
    assert np.isnan(E.effective_semantic_diversity(EMB[:1], [True]))
    # unnormalised rows are normalised
    assert E.effective_semantic_diversity(EMB * 3, [True] * 4) == pytest.approx(10 / 12)


def test_effective_distinct_classes_by_hand() -> None:
    assert E.effective_distinct_classes(EMB, [True] * 4) == pytest.approx(3 / 4)
    # a failing sample adds no class but stays in the denominator
    assert E.effective_distinct_classes(EMB, [True, True, False, False]) == pytest.approx(1 / 4)
    assert E.effective_distinct_classes(EMB, [False, True, True, False]) == pytest.approx(2 / 4)
    assert E.effective_distinct_classes(EMB, [False] * 4) == 0.0


def test_utility_k_by_hand() -> None:
    p, k = 0.8, 4
    norm = (1 - p) / (1 - p**k)
    q = [1.0, 1.0, 0.5, 0.0]
    # new classes at positions 1, 3, 4 (sample 2 repeats sample 1)
    expected = norm * (1.0 + p**2 * 0.5 + p**3 * 0.0)
    assert E.utility_k(EMB, q) == pytest.approx(expected)
    # all distinct, all perfect → 1
    assert E.utility_k(np.eye(4), [1.0] * 4) == pytest.approx(1.0)
    assert np.isnan(E.utility_k(EMB, [1.0, np.nan, 1.0, 1.0]))
    assert E.utility_k(EMB, [2.0, 1.0, 1.0, 1.0]) == pytest.approx(
        E.utility_k(EMB, [1.0, 1.0, 1.0, 1.0]))  # scores clipped to [0, 1]


def _gens() -> pd.DataFrame:
    rows = []
    for p, passed in enumerate(([True] * 4, [True, True, True, False])):
        for i in range(4):
            rows.append({"prompt_index": p, "prompt_id": f"p{p}", "sample_index": i,
                         "text": f"reply {p} {i} words", "token_count": 3,
                         "quality_score": 0.9 if passed[i] else 0.1, "passed": passed[i],
                         "embedding": EMB[i].astype(np.float32)})
    return pd.DataFrame(rows)


def test_aggregate_and_bootstrap_carry_the_new_metrics() -> None:
    gens = _gens()
    agg = aggregate(gens, 0.5)
    assert agg["effective_semantic_diversity_per_prompt"] == pytest.approx((10 / 12 + 4 / 12) / 2)
    assert agg["effective_distinct_classes"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    norm = 0.2 / (1 - 0.8**4)
    u0 = norm * 0.9 * (1 + 0.8**2 + 0.8**3)
    u1 = norm * (0.9 + 0.8**2 * 0.9 + 0.8**3 * 0.1)
    assert agg["utility_k"] == pytest.approx((u0 + u1) / 2)
    fns = weighted_metrics(gens, 0.5)
    for m in ("effective_semantic_diversity_per_prompt", "effective_distinct_classes",
              "utility_k"):
        assert fns[m](np.ones((1, 2)))[0] == pytest.approx(agg[m])
        assert fns[m](np.array([[2.0, 0.0]]))[0] != pytest.approx(agg[m])
        assert m in COMPARED and columns.is_diversity(m) and columns.better(m) == "max"
    # without embeddings they are NaN, never 0
    agg = aggregate(gens.drop(columns="embedding"), 0.5)
    assert np.isnan(agg["utility_k"]) and np.isnan(agg["effective_distinct_classes"])
