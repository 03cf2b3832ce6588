"""Effective diversity: diversity that counts only samples that pass the checker.

Raw diversity counts failures: a model that rambles is "diverse". Three metrics, each within
one prompt's n samples (one value per prompt; the study reports the mean over prompts):

- ``effective_distinct_classes`` (Shypula et al. 2025, "Evaluating the Diversity and Quality
  of LLM Generated Content", arXiv 2504.12522): the number of equivalence classes among the
  samples that pass, divided by n. Classes are those of ``distinct_classes`` (embedding cosine
  ≥ ``class_threshold`` joins two samples, connected components over *all* n samples, so a
  failing sample can link two passing ones exactly as it does in ``distinct_classes``); failed
  samples stay in the denominator and add no class. Range [0, 1].
- ``effective_semantic_diversity`` (the continuous analogue, reported as
  ``effective_semantic_diversity_per_prompt``): the mean over all n(n−1) ordered pairs of
  (1 − cosine), where a pair with a failing sample counts 0. With m passing samples whose unit
  embeddings sum to s: (m(m−1) − (‖s‖² − m)) / (n(n−1)). n < 2 → NaN.
- ``utility_k`` (NoveltyBench, arXiv 2504.05228, ``src/score.py``): with the samples in their
  sampling order i = 1..k (k = n), utility_k = (1−p)/(1−pᵏ) · Σᵢ pⁱ⁻¹ · 𝟙[i opens a new class]
  · uᵢ, patience p = 0.8. uᵢ is the sample's checker score clipped to [0, 1] (NoveltyBench uses
  a reward bucketed into 1..10: divide theirs by 10 to compare scales, and their classes come
  from a DeBERTa classifier, ours from the embedding threshold). Range [0, 1].

A NaN checker score (scoring failed) makes the prompt's value NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polychromic.metrics.semantic import DEFAULT_CLASS_THRESHOLD, class_labels, cosine_matrix

#: NoveltyBench's patience: the weight of the i-th sample is p^(i−1)
PATIENCE = 0.8


def _unit(embeddings: np.ndarray) -> np.ndarray:
    arr = np.asarray(embeddings, dtype=np.float64)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def effective_semantic_diversity(embeddings: np.ndarray, passed: Sequence[bool]) -> float:
    """Mean (1 − cos) over the n(n−1) ordered pairs, a pair with a failing sample counting 0."""
    ok = np.asarray(passed, dtype=bool)
    n = len(ok)
    if n < 2:
        return float("nan")
    m = int(ok.sum())
    if m < 2:
        return 0.0
    s = _unit(np.asarray(embeddings)[ok]).sum(axis=0)
    cross = float(s @ s) - m  # Σ_{i≠j passing} cos
    return (m * (m - 1) - cross) / (n * (n - 1))


def effective_distinct_classes(embeddings: np.ndarray, passed: Sequence[bool],
                               threshold: float = DEFAULT_CLASS_THRESHOLD) -> float:
    """Classes that hold a passing sample, divided by n (Shypula et al.'s effective semantic
    diversity with embedding classes)."""
    ok = np.asarray(passed, dtype=bool)
    n = len(ok)
    if n == 0:
        return float("nan")
    labels = class_labels(cosine_matrix(np.asarray(embeddings)), threshold)
    return len(set(labels[ok].tolist())) / n


def utility_k(embeddings: np.ndarray, quality: Sequence[float],
              threshold: float = DEFAULT_CLASS_THRESHOLD, patience: float = PATIENCE) -> float:
    """NoveltyBench's utility over the samples in order (module docstring)."""
    u = np.asarray(quality, dtype=float)
    k = len(u)
    if k == 0 or not np.isfinite(u).all():
        return float("nan")
    labels = class_labels(cosine_matrix(np.asarray(embeddings)), threshold)
    new = labels == np.arange(k)  # labelled with its smallest index: the first of its class
    weights = patience ** np.arange(k)
    return float((1 - patience) / (1 - patience**k) * np.sum(weights * new * np.clip(u, 0, 1)))


def per_prompt(groups_of_embeddings: Sequence[np.ndarray], passed: Sequence[Sequence[bool]],
               quality: Sequence[Sequence[float]],
               threshold: float = DEFAULT_CLASS_THRESHOLD) -> dict[str, np.ndarray]:
    """The three metrics for each prompt (one array each, NaN where undefined), samples of a
    prompt in sampling order: ``effective_distinct_classes``, ``effective_semantic_diversity``,
    ``utility_k``."""
    out = {name: np.full(len(groups_of_embeddings), np.nan)
           for name in ("effective_distinct_classes", "effective_semantic_diversity",
                        "utility_k")}
    for g, (emb, ok, q) in enumerate(zip(groups_of_embeddings, passed, quality)):
        if len(emb) == 0:
            continue
        if not np.isfinite(np.asarray(q, dtype=float)).all():
            continue  # scoring failed for a sample: NaN, never 0
        out["effective_distinct_classes"][g] = effective_distinct_classes(emb, ok, threshold)
        out["effective_semantic_diversity"][g] = effective_semantic_diversity(emb, ok)
        out["utility_k"][g] = utility_k(emb, q, threshold)
    return out
