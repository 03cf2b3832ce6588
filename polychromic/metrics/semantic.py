"""Semantic diversity: 1 − mean pairwise cosine similarity of sentence embeddings.

For unit vectors e_1..e_N, sum_{i != j} e_i·e_j = ||sum_i e_i||² − sum_i ||e_i||², so the mean
over the N(N−1) ordered pairs of distinct texts needs only the running sum of the rows: O(N·d)
time and O(d) extra memory, never an N×N matrix. Rows are normalized in float64 chunks and the
exact sum of squared norms is used in place of N, so rounding does not bias the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from polychromic.core.errors import MetricError
from polychromic.metrics.encoder import get_encoder

if TYPE_CHECKING:
    from polychromic.metrics.encoder import Encoder

_CHUNK_ROWS = 4096
#: embedding cosine at or above which two samples are one equivalence class, when no
#: ``TrialConfig.class_threshold`` is at hand (its default)
DEFAULT_CLASS_THRESHOLD = 0.8


class EmbeddingSum:
    """Running ``(sum of unit rows, sum of their squared norms, count)``: O(d) state.

    ``add(emb)`` normalizes each row (float64) and accumulates; zero or non-finite rows raise
    ``MetricError``. ``mean_pairwise_cosine()`` gives the mean cosine over distinct pairs.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self.total: np.ndarray | None = None if dim is None else np.zeros(dim)
        self.sq_norms = 0.0
        self.count = 0

    def add(self, embeddings: np.ndarray) -> None:
        arr = np.asarray(embeddings)
        if arr.ndim != 2:
            raise MetricError(f"embeddings must be a 2-D (N, d) array, got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise MetricError(f"embeddings must be numeric, got dtype {arr.dtype}")
        if self.total is None:
            self.dim = int(arr.shape[1])
            self.total = np.zeros(self.dim)
        if arr.shape[1] != self.dim:
            raise MetricError(f"embedding dimension {arr.shape[1]} != {self.dim} seen before")
        for start in range(0, arr.shape[0], _CHUNK_ROWS):
            chunk = np.asarray(arr[start : start + _CHUNK_ROWS], dtype=np.float64)
            norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
            bad = ~np.isfinite(norms) | (norms == 0)
            if bad.any():
                i = start + int(np.flatnonzero(bad)[0])
                raise MetricError(
                    f"embedding row {i} has norm {norms[bad][0]}: zero or non-finite, "
                    "its direction (and cosine) is undefined"
                )
            unit = chunk / norms[:, None]
            self.total += unit.sum(axis=0)
            self.sq_norms += float(np.einsum("ij,ij->", unit, unit))
            self.count += chunk.shape[0]

    def mean_pairwise_cosine(self) -> float:
        """Mean of e_i·e_j over ordered pairs i != j; NaN when fewer than two rows."""
        if self.count < 2 or self.total is None:
            return float("nan")
        n = self.count
        cross = float(self.total @ self.total) - self.sq_norms
        return cross / (n * (n - 1))


def mean_pairwise_cosine(embeddings: np.ndarray) -> float:
    """Mean cosine similarity over distinct pairs (i != j) of the rows of ``embeddings``.

    = (||Σ_i ê_i||² − Σ_i ||ê_i||²) / (N(N−1)) with ê_i = e_i/||e_i|| (rows are normalized
    here, so unit rows are not required; for unit rows this is (||Σe||² − N)/(N(N−1))).
    O(N·d) time, O(d) extra memory. N < 2 → NaN; a zero or non-finite row → MetricError.
    """
    acc = EmbeddingSum()
    acc.add(embeddings)
    return acc.mean_pairwise_cosine()


def _embed(texts_or_embeddings, encoder: Encoder | None) -> np.ndarray:
    if isinstance(texts_or_embeddings, np.ndarray):
        return texts_or_embeddings
    if isinstance(texts_or_embeddings, str):
        raise TypeError("expected a sequence of texts or an (N, d) array, got a single str")
    items = list(texts_or_embeddings)
    if items and not all(isinstance(t, str) for t in items):
        return np.asarray(items)
    if encoder is None:

        encoder = get_encoder()
    return encoder.encode(items)


def semantic_diversity(
    texts_or_embeddings: Sequence[str] | np.ndarray, encoder: Encoder | None = None
) -> float:
    """Corpus-level semantic diversity = 1 − mean pairwise cosine over distinct pairs.

    Accepts texts (embedded with ``encoder``, default :func:`get_encoder`: all-MiniLM-L6-v2)
    or an ``(N, d)`` array (rows normalized here; a zero row raises ``MetricError``). Range
    [0, 2]; higher = more diverse. N < 2 → NaN. O(N·d); no N×N matrix.
    """
    return 1.0 - mean_pairwise_cosine(_embed(texts_or_embeddings, encoder))


def semantic_diversity_per_prompt(groups_of_embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """``semantic_diversity`` within each group (one prompt's samples' embeddings).

    One float per group; a group with fewer than two rows gives NaN. Callers report the
    ``np.nanmean``. Each group may also be a list of texts (encoded with the default encoder).
    """
    if isinstance(groups_of_embeddings, np.ndarray) and groups_of_embeddings.ndim == 2:
        raise TypeError("pass a sequence of (n_i, d) arrays, one per prompt, not one 2-D array")
    out = np.full(len(groups_of_embeddings), np.nan)
    for g, emb in enumerate(groups_of_embeddings):
        arr = _embed(emb, None)
        if len(arr) == 0:
            continue
        out[g] = semantic_diversity(arr)
    return out


def cosine_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``embeddings`` (..., m, d) → (..., m, m).

    Rows are normalized in float64 here (unit rows are not required); a zero or non-finite row
    raises ``MetricError``, as in :func:`mean_pairwise_cosine`.
    """
    arr = np.asarray(embeddings, dtype=np.float64)
    if arr.ndim < 2:
        raise MetricError(f"embeddings must be (..., m, d), got shape {arr.shape}")
    norms = np.sqrt(np.einsum("...d,...d->...", arr, arr))
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise MetricError(f"an embedding row has norm {norms[bad].flat[0]}: zero or non-finite, "
                          "its direction (and cosine) is undefined")
    unit = arr / norms[..., None]
    return unit @ np.swapaxes(unit, -1, -2)


def class_labels(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Equivalence classes of samples: connected components of the graph that joins samples i
    and j when their cosine similarity is ≥ ``threshold`` (in either direction of the matrix,
    so rounding cannot make the relation asymmetric).

    ``similarity``: (..., m, m), e.g. from :func:`cosine_matrix`; batches on the leading axes.
    Returns (..., m) int64 labels, each sample labelled with the smallest index of its class,
    so the result is deterministic and independent of any visiting order. A sample is always
    in its own class. The NoveltyBench idea of "equivalence classes" of generations, with an
    embedding-similarity threshold in place of a learned classifier.

    Computed as the transitive closure of the adjacency by repeated boolean squaring
    (⌈log₂ m⌉ matrix products at most): vectorized over the batch, O(m³ log m) per set, which
    is small for the few samples per prompt this is used on.
    """
    sim = np.asarray(similarity)
    if sim.ndim < 2 or sim.shape[-1] != sim.shape[-2]:
        raise ValueError(f"similarity must be (..., m, m), got shape {sim.shape}")
    m = sim.shape[-1]
    if m == 0:
        return np.zeros(sim.shape[:-1], dtype=np.int64)
    linked = sim >= threshold
    reach = linked | np.swapaxes(linked, -1, -2) | np.eye(m, dtype=bool)
    for _ in range(max(1, int(np.ceil(np.log2(m))))):  # paths of length ≤ 2^t after t rounds
        step = reach.astype(np.float32)
        nxt = (step @ step) > 0
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    return np.argmax(reach, axis=-1).astype(np.int64)  # first True: smallest index of the class


def count_classes(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Number of equivalence classes (see :func:`class_labels`) per set: (..., m, m) → (...)."""
    labels = class_labels(similarity, threshold)
    return (labels == np.arange(labels.shape[-1])).sum(axis=-1)


def distinct_classes_per_prompt(groups_of_embeddings: Sequence[np.ndarray],
                                threshold: float = DEFAULT_CLASS_THRESHOLD) -> np.ndarray:
    """Number of equivalence classes among each group's samples (one prompt's embeddings):
    samples are grouped by :func:`class_labels` with embedding cosine ≥ ``threshold``.

    One float per group; an empty group gives NaN. Callers report the mean over prompts as
    ``distinct_classes``. A zero or non-finite embedding raises ``MetricError``.
    """
    if isinstance(groups_of_embeddings, np.ndarray) and groups_of_embeddings.ndim == 2:
        raise TypeError("pass a sequence of (n_i, d) arrays, one per prompt, not one 2-D array")
    out = np.full(len(groups_of_embeddings), np.nan)
    for g, emb in enumerate(groups_of_embeddings):
        arr = np.asarray(emb)
        if len(arr) == 0:
            continue
        out[g] = float(count_classes(cosine_matrix(arr), threshold))
    return out
