"""CorpusDiversity fed batch by batch equals the one-shot functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polychromic.core.errors import MetricError
from polychromic.metrics import (
    CorpusDiversity,
    distinct_n,
    distinct_n_per_prompt,
    self_bleu,
    self_bleu_per_prompt,
    semantic_diversity,
    semantic_diversity_per_prompt,
)

WORDS = ["a", "b", "the", "cat", ":)", "don't", "!", "42"]
text = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)


def same(a: float, b: float, tol: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def nanmean(values: np.ndarray) -> float:
    v = values[~np.isnan(values)]
    return float(v.mean()) if v.size else float("nan")


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.tuples(text, st.integers(0, 3)), max_size=14),
    st.lists(st.integers(1, 5), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_streaming_equals_one_shot(rows, cuts, seed) -> None:
    texts = [t for t, _ in rows]
    prompts = [p for _, p in rows]
    emb = np.random.default_rng(seed).normal(size=(len(texts), 6)) + 0.1
    acc = CorpusDiversity(max_n=4)
    start = 0
    for size in cuts * 20:
        if start >= len(texts):
            break
        stop = start + size
        acc.add(texts[start:stop], emb[start:stop], prompts[start:stop])
        start = stop
    if start < len(texts) or not texts:
        acc.add(texts[start:], emb[start:], prompts[start:])
    got = acc.result()
    assert got["n_texts"] == len(texts)
    assert same(got["distinct_1"], distinct_n(texts, 1), 1e-15)
    assert same(got["distinct_2"], distinct_n(texts, 2), 1e-15)
    assert same(got["self_bleu"], self_bleu(texts, 4), 1e-12)
    assert same(got["semantic_diversity"], semantic_diversity(emb), 1e-9)
    order = list(dict.fromkeys(prompts))
    groups = [[t for t, p in rows if p == q] for q in order]
    gemb = [emb[[i for i, p in enumerate(prompts) if p == q]] for q in order]
    assert same(got["distinct_1_per_prompt"], nanmean(distinct_n_per_prompt(groups, 1)), 1e-12)
    assert same(got["distinct_2_per_prompt"], nanmean(distinct_n_per_prompt(groups, 2)), 1e-12)
    assert same(got["self_bleu_per_prompt"], nanmean(self_bleu_per_prompt(groups, 4)), 1e-12)
    assert same(
        got["semantic_diversity_per_prompt"], nanmean(semantic_diversity_per_prompt(gemb)), 1e-9
    )


def test_without_embeddings_semantic_is_nan_with_reason() -> None:
    acc = CorpusDiversity()
    acc.add(["a b", "c d"])
    out = acc.result()
    assert math.isnan(out["semantic_diversity"])
    assert acc.missing and "without embeddings" in acc.missing
    assert out["distinct_1"] == 1.0


def test_bad_batches_raise() -> None:
    acc = CorpusDiversity()
    with pytest.raises(MetricError):
        acc.add(["a", "b"], np.ones((3, 4)))
    acc.add(["a"], np.ones((1, 4)))
    with pytest.raises(MetricError):
        acc.add(["b"], np.ones((1, 4)), prompt_ids=["p"])
