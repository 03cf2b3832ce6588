"""distinct_n equals a set-based count; undefined cases are NaN, never 0.0."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polychromic.metrics import distinct_n, distinct_n_per_prompt, tokenize

WORDS = ["a", "b", "the", "cat", "Cat", ":)", "don't", "!", "42"]
text = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
texts = st.lists(text, max_size=10)


def set_based(sample: list[str], n: int) -> float:
    grams = [
        tuple(toks[i : i + n]) for toks in map(tokenize, sample) for i in range(len(toks) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else float("nan")


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(1, 5))
def test_equals_set_based_count(sample: list[str], n: int) -> None:
    expected = set_based(sample, n)
    got = distinct_n(sample, n)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.lists(texts, max_size=6), st.integers(1, 3))
def test_per_prompt_is_distinct_of_each_group(groups: list[list[str]], n: int) -> None:
    per = distinct_n_per_prompt(groups, n)
    assert per.shape == (len(groups),)
    expected = np.array([set_based(g, n) for g in groups])
    np.testing.assert_allclose(per, expected, rtol=0, atol=1e-15, equal_nan=True)


def test_denominator_is_ngram_occurrences_not_tokens() -> None:
    # "a b a": bigrams (a,b),(b,a) -> 2 distinct / 2 occurrences (3 tokens)
    assert distinct_n(["a b a"], 2) == 1.0
    assert distinct_n(["a b a"], 1) == pytest.approx(2 / 3)
    # n-grams do not cross text boundaries
    assert math.isnan(distinct_n(["a", "b"], 2))


def test_undefined_is_nan() -> None:
    assert math.isnan(distinct_n([], 1))
    assert math.isnan(distinct_n(["", "  "], 1))
    assert math.isnan(distinct_n(["one"], 2))
    assert np.isnan(distinct_n_per_prompt([[], ["x"]], 2)).all()
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)
    with pytest.raises(TypeError):
        distinct_n("not a list", 1)
