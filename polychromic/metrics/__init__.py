"""Diversity and quality metrics: exact, linear-time, streaming, never a silent zero.

Every text metric uses one tokenization, :func:`tokenize` (NLTK ``TweetTokenizer``, tokens
lowercased). Undefined values (too few texts or n-grams) are NaN; failures raise
:class:`polychromic.core.errors.MetricError`. Exact definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

from polychromic.metrics.distinct import distinct_n, distinct_n_per_prompt
from polychromic.metrics.pass_at_k import pass_at_k, pass_at_k_curve
from polychromic.metrics.self_bleu import (
    self_bleu,
    self_bleu_nltk,
    self_bleu_per_prompt,
    self_bleu_scores,
)
from polychromic.metrics.semantic import (
    EmbeddingSum,
    class_labels,
    cosine_matrix,
    count_classes,
    distinct_classes_per_prompt,
    mean_pairwise_cosine,
    semantic_diversity,
    semantic_diversity_per_prompt,
)
from polychromic.metrics.streaming import CorpusDiversity
from polychromic.metrics.tokenize import clear_token_cache, tokenize, tokenize_many

__all__ = [
    "CorpusDiversity",
    "EmbeddingSum",
    "class_labels",
    "clear_token_cache",
    "cosine_matrix",
    "count_classes",
    "distinct_classes_per_prompt",
    "distinct_n",
    "distinct_n_per_prompt",
    "mean_pairwise_cosine",
    "pass_at_k",
    "pass_at_k_curve",
    "self_bleu",
    "self_bleu_nltk",
    "self_bleu_per_prompt",
    "self_bleu_scores",
    "semantic_diversity",
    "semantic_diversity_per_prompt",
    "tokenize",
    "tokenize_many",
]
