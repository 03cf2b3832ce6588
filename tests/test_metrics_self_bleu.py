"""self_bleu equals the NLTK sentence_bleu loop (method1, uniform weights) on any input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from polychromic.metrics import self_bleu, self_bleu_nltk, self_bleu_per_prompt, tokenize

WORDS = ["a", "b", "the", "cat", "Cat", ":)", "don't", "!", "...", "#tag", "@bob", "42", "é"]
text = st.lists(st.sampled_from(WORDS), max_size=9).map(" ".join)
texts = st.lists(text, max_size=8)
token_lists = st.lists(st.lists(st.sampled_from("abc"), max_size=10), max_size=9)
orders = st.integers(1, 4)
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nltk_loop(tokens: list[list[str]], max_n: int) -> float:
    """The definition, written out independently of polychromic.metrics.self_bleu_nltk."""
    smooth = SmoothingFunction().method1
    weights = tuple([1 / max_n] * max_n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NLTK must not warn on any of these inputs
        scores = [
            sentence_bleu(
                [t for j, t in enumerate(tokens) if j != i],
                hyp,
                weights=weights,
                smoothing_function=smooth,
            )
            for i, hyp in enumerate(tokens)
        ]
    return sum(scores) / len(scores)


@FAST
@given(texts, orders)
def test_equals_nltk_loop_on_texts(sample: list[str], max_n: int) -> None:
    ours = self_bleu(sample, max_n)
    if len(sample) < 2:
        assert math.isnan(ours)
        return
    ref = nltk_loop([tokenize(t) for t in sample], max_n)
    assert abs(ours - ref) <= 1e-9


@FAST
@given(token_lists, orders)
def test_equals_nltk_loop_on_tokens(tokens: list[list[str]], max_n: int) -> None:
    """Tiny alphabet: many repeated n-grams, ties in top counts, duplicates, empty texts."""
    ours = self_bleu(tokens, max_n)
    if len(tokens) < 2:
        assert math.isnan(ours)
        return
    assert abs(ours - nltk_loop(tokens, max_n)) <= 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=25), min_size=2, max_size=6), orders)
def test_equals_nltk_loop_on_arbitrary_unicode(sample: list[str], max_n: int) -> None:
    assert abs(self_bleu(sample, max_n) - self_bleu_nltk(sample, max_n)) <= 1e-9


@settings(max_examples=80, deadline=None)
@given(st.lists(texts, max_size=5), orders)
def test_per_prompt_is_self_bleu_of_each_group(groups: list[list[str]], max_n: int) -> None:
    per = self_bleu_per_prompt(groups, max_n)
    assert per.shape == (len(groups),)
    for value, group in zip(per, groups, strict=True):
        expected = self_bleu(group, max_n)
        if math.isnan(expected):
            assert math.isnan(value)
        else:
            assert abs(value - expected) <= 1e-12


def test_edge_cases_are_defined() -> None:
    assert math.isnan(self_bleu([]))
    assert math.isnan(self_bleu(["only one text"]))  # no reference: NLTK raises
    assert self_bleu(["", ""]) == 0.0  # empty hypothesis: NLTK returns 0
    assert self_bleu(["same words here ok", "same words here ok"]) == pytest.approx(1.0)
    assert self_bleu(["hello", "world"]) == 0.0  # no unigram match: 0, not an error
    # single-token duplicates: p_2..p_4 are smoothed to 0.1/1
    assert self_bleu(["hi", "hi"]) == pytest.approx(0.1 ** (3 / 4))
    with pytest.raises(ValueError, match="max_n"):
        self_bleu(["a", "b"], 0)


def test_nltk_raises_for_one_text_which_we_define_as_nan() -> None:
    with pytest.raises((ValueError, KeyError)):
        sentence_bleu([], ["a"], smoothing_function=SmoothingFunction().method1)


def test_large_random_corpus_matches_nltk() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)]
    sample = [" ".join(rng.choice(vocab, size=int(rng.integers(0, 15)))) for _ in range(150)]
    for max_n in (1, 3, 4):
        assert abs(self_bleu(sample, max_n) - self_bleu_nltk(sample, max_n)) <= 1e-9
