"""The polychromic set objective and its score-function advantages (pure numpy).

For one prompt x with n sampled completions y_1..y_n (quality r_i ∈ [0,1], unit sentence
embeddings e_i), a set S is scored as in Hamid et al. 2025 ("Polychromic Objectives for
Reinforcement Learning")::

    f(S) = mean_{i∈S} r_i · d(S),   d(S) = clip(1 − mean_{i≠j∈S} e_i·e_j, 0, 1)

with d of a single sample defined as 0 (one sample has no diversity). Reward and diversity
are multiplied: a set scores only if it is both good and diverse.

Decoding and embedding are not differentiable, so f reaches the weights only through a
score-function (REINFORCE) estimator: ∇E[f] = E[Σ_i A_i ∇log π(y_i|x)]. Two advantage forms:

- ``leave_one_out`` (default): A_i = f(S) − f(S∖{i}), the marginal contribution of sample i to
  the whole set. The baseline f(S∖{i}) does not depend on y_i, so the estimator is unbiased
  for ∇E[f(S)]. Works for n = 2 (then f(S∖{i}) = 0 and A_i = f(S)).
- ``subsets``: the paper's set-averaged form: score every size-k subset (all C(n,k) of them);
  A_i = mean f over subsets containing i − mean f over all subsets. Needs n > k for a non-zero
  signal (with n = k every sample gets A_i = 0).

A sample that fails alone can still get a positive advantage when it makes good sets more
diverse; that is the point of the objective.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SetScores:
    """Per-prompt results: ``advantages`` (P, n), ``score`` f(S) (P,), ``diversity`` d(S) (P,)."""

    advantages: np.ndarray
    score: np.ndarray
    diversity: np.ndarray


def set_diversity(emb: np.ndarray) -> np.ndarray:
    """d(S) for sets stacked on the leading axes: ``emb`` (..., m, d) unit rows → (...)."""
    m = emb.shape[-2]
    if m < 2:
        return np.zeros(emb.shape[:-2])
    total = emb.sum(axis=-2)
    mean_cos = (np.einsum("...d,...d->...", total, total) - m) / (m * (m - 1))
    return np.clip(1.0 - mean_cos, 0.0, 1.0)


def set_score(quality: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """f(S) = mean quality × d(S); ``quality`` (..., m), ``emb`` (..., m, d)."""
    return quality.mean(axis=-1) * set_diversity(emb)


def polychromic_advantages(
    quality: np.ndarray, emb: np.ndarray, form: str = "leave_one_out", subset_size: int | None = None
) -> SetScores:
    """Advantages for ``quality`` (P, n) and unit embeddings ``emb`` (P, n, d)."""
    quality = np.asarray(quality, dtype=np.float64)
    emb = np.asarray(emb, dtype=np.float64)
    if quality.ndim != 2 or emb.ndim != 3 or emb.shape[:2] != quality.shape:
        raise ValueError(f"quality {quality.shape} and emb {emb.shape} must be (P, n) and (P, n, d)")
    p, n = quality.shape
    full = set_score(quality, emb)
    if form == "leave_one_out":
        keep = ~np.eye(n, dtype=bool)  # row i: every sample but i
        without = set_score(
            np.broadcast_to(quality[:, None, :], (p, n, n))[:, keep].reshape(p, n, n - 1),
            np.broadcast_to(emb[:, None], (p, n, n, emb.shape[-1]))[:, keep].reshape(
                p, n, n - 1, emb.shape[-1]
            ),
        )
        adv = full[:, None] - without
    elif form == "subsets":
        k = subset_size or max(2, -(-n // 2))
        if not 2 <= k <= n:
            raise ValueError(f"subset_size must be in [2, n={n}], got {k}")
        subsets = np.array(list(itertools.combinations(range(n), k)))  # (M, k)
        scores = set_score(quality[:, subsets], emb[:, subsets])  # (P, M)
        member = np.zeros((len(subsets), n), dtype=bool)
        np.put_along_axis(member, subsets, True, axis=1)
        containing = (scores @ member) / member.sum(axis=0)  # mean over subsets holding i
        adv = containing - scores.mean(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown advantage form {form!r}")
    return SetScores(advantages=adv, score=full, diversity=set_diversity(emb))
