"""The polychromic set objective and its score-function advantages (pure numpy).

For one prompt x with n sampled completions y_1..y_n (quality r_i ∈ [0,1]), a set S is scored
as in Hamid et al. 2025 ("Polychromic Objectives for Reinforcement Learning")::

    f(S) = mean_{i∈S} r_i · d(S)

Reward and diversity are multiplied: a set scores only if it is both good and diverse. The set
diversity d(S) ∈ [0, 1] is a knob, ``TrialConfig.diversity_measure``:

- ``semantic`` (default): d(S) = clip(1 − mean_{i≠j∈S} e_i·e_j, 0, 1) on unit sentence
  embeddings e_i; vectorized through ‖Σe‖² (no pair loop).
- ``semantic_classes``: the samples of S are grouped into equivalence classes, two samples
  being joined when their embedding cosine is ≥ ``class_threshold`` (connected components,
  :func:`polychromic.metrics.class_labels`); d(S) = (classes − 1)/(|S| − 1): 0 when every
  sample says the same thing, 1 when no two do (NoveltyBench / DARLING's idea, with a cosine
  threshold in place of a learned equivalence classifier).
- ``distinct_2``: distinct bigrams / bigram occurrences among the texts of S (the metrics'
  tokenization, :func:`polychromic.metrics.tokenize`); a set without any bigram has d = 0.
- ``self_bleu``: 1 − Self-BLEU-4 of the texts of S (each text against the other texts of S;
  :func:`polychromic.metrics.self_bleu`, exact NLTK definition).

Under every measure a set of fewer than two samples has d = 0 (one sample has no diversity).

A measure is a :class:`SetMeasure`: given the :class:`Samples` of P prompts (embeddings and/or
tokens of their n samples each) and index subsets (M, k) shared by all prompts, it returns
d of every (prompt, subset) pair, (P, M). The advantage code only ever asks a measure for
index subsets, so a new measure is one class.

Decoding, embedding and tokenizing are not differentiable, so f reaches the weights only
through a score-function (REINFORCE) estimator: ∇E[f] = E[Σ_i A_i ∇log π(y_i|x)]. Two forms:

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from polychromic.core.config import DIVERSITY_MEASURES
from polychromic.metrics.ngrams import encode_corpus, ngrams_of_order
from polychromic.metrics.self_bleu import self_bleu_per_prompt
from polychromic.metrics.semantic import DEFAULT_CLASS_THRESHOLD, cosine_matrix, count_classes
from polychromic.metrics.tokenize import as_token_lists


@dataclass(frozen=True)
class SetScores:
    """Per-prompt results: ``advantages`` (P, n), ``score`` f(S) (P,), ``diversity`` d(S) (P,)."""

    advantages: np.ndarray
    score: np.ndarray
    diversity: np.ndarray


@dataclass(frozen=True)
class Samples:
    """What a set measure may read about P prompts' n samples each.

    ``emb``: (P, n, d) float64 unit sentence embeddings, or None when the measure does not use
    them. ``tokens``: P lists of n token lists (the metrics' tokenization), or None.
    """

    emb: np.ndarray | None = None
    tokens: Sequence[Sequence[list[str]]] | None = None


class SetMeasure(Protocol):
    """A set diversity d(S) ∈ [0, 1], evaluated on many index subsets at once."""

    name: str
    needs: tuple[str, ...]
    """Which fields of :class:`Samples` it reads: ``"emb"`` and/or ``"tokens"``."""

    def __call__(self, samples: Samples, subsets: np.ndarray) -> np.ndarray:
        """d of every set ``{samples of prompt p at subsets[m]}``: ``subsets`` (M, k) int
        indices into the n samples, shared by all P prompts → (P, M) float64. Sets with
        k < 2 have d = 0."""
        ...


def set_diversity(emb: np.ndarray) -> np.ndarray:
    """Semantic d(S) for sets stacked on the leading axes: ``emb`` (..., m, d) unit rows → (...)."""
    m = emb.shape[-2]
    if m < 2:
        return np.zeros(emb.shape[:-2])
    total = emb.sum(axis=-2)
    mean_cos = (np.einsum("...d,...d->...", total, total) - m) / (m * (m - 1))
    return np.clip(1.0 - mean_cos, 0.0, 1.0)


def set_score(quality: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """f(S) = mean quality × semantic d(S); ``quality`` (..., m), ``emb`` (..., m, d)."""
    return quality.mean(axis=-1) * set_diversity(emb)


def _is_everything(subsets: np.ndarray, n: int) -> bool:
    return subsets.shape[0] == 1 and subsets.shape[1] == n and bool(
        (subsets[0] == np.arange(n)).all())


@dataclass(frozen=True)
class Semantic:
    """d(S) = clip(1 − mean pairwise cosine, 0, 1): :func:`set_diversity`, vectorized."""

    name: ClassVar[str] = "semantic"
    needs: ClassVar[tuple[str, ...]] = ("emb",)

    def __call__(self, samples: Samples, subsets: np.ndarray) -> np.ndarray:
        emb = samples.emb
        assert emb is not None
        if _is_everything(subsets, emb.shape[1]):  # the whole set: exactly today's arithmetic
            return set_diversity(emb)[:, None]
        return set_diversity(emb[:, subsets])


@dataclass(frozen=True)
class SemanticClasses:
    """d(S) = (classes − 1)/(|S| − 1), classes = connected components of "cosine ≥
    ``threshold``" among the samples of S (the subgraph S induces, so two samples linked only
    through a third one outside S are two classes)."""

    threshold: float = DEFAULT_CLASS_THRESHOLD
    name: ClassVar[str] = "semantic_classes"
    needs: ClassVar[tuple[str, ...]] = ("emb",)

    def __call__(self, samples: Samples, subsets: np.ndarray) -> np.ndarray:
        assert samples.emb is not None
        p, (m, k) = samples.emb.shape[0], subsets.shape
        if k < 2:
            return np.zeros((p, m))
        sim = cosine_matrix(samples.emb)  # (P, n, n), once per prompt
        sub = sim[:, subsets[:, :, None], subsets[:, None, :]]  # (P, M, k, k)
        return (count_classes(sub, self.threshold) - 1) / (k - 1)


@dataclass(frozen=True)
class Distinct2:
    """d(S) = distinct bigrams / bigram occurrences among the texts of S (0 without bigrams):
    ``polychromic.metrics.distinct_n(texts of S, 2)``, from one bigram-presence matrix per
    prompt."""

    name: ClassVar[str] = "distinct_2"
    needs: ClassVar[tuple[str, ...]] = ("tokens",)

    def __call__(self, samples: Samples, subsets: np.ndarray) -> np.ndarray:
        assert samples.tokens is not None
        m, k = subsets.shape
        out = np.zeros((len(samples.tokens), m))
        if k < 2:
            return out
        for p, toks in enumerate(samples.tokens):
            corpus = encode_corpus(toks)
            positions, ids = ngrams_of_order(corpus, 2)
            if ids.size == 0:
                continue
            doc = corpus.doc[positions]
            present = np.zeros((len(toks), int(ids.max()) + 1), dtype=bool)
            present[doc, ids] = True  # present[i, g]: sample i holds bigram g
            occurrences = np.bincount(doc, minlength=len(toks))
            distinct = present[subsets].any(axis=1).sum(axis=1)
            total = occurrences[subsets].sum(axis=1)
            out[p] = np.where(total > 0, distinct / np.maximum(total, 1), 0.0)
        return out


@dataclass(frozen=True)
class SelfBleu:
    """d(S) = 1 − Self-BLEU-4 of the texts of S: every (prompt, subset) is one group of
    :func:`polychromic.metrics.self_bleu_per_prompt` (references from the same set only), all
    computed in one vectorized pass."""

    name: ClassVar[str] = "self_bleu"
    needs: ClassVar[tuple[str, ...]] = ("tokens",)

    def __call__(self, samples: Samples, subsets: np.ndarray) -> np.ndarray:
        assert samples.tokens is not None
        p, (m, k) = len(samples.tokens), subsets.shape
        if k < 2:
            return np.zeros((p, m))
        groups = [[toks[i] for i in subset] for toks in samples.tokens for subset in subsets]
        return 1.0 - self_bleu_per_prompt(groups).reshape(p, m)


#: name → constructor taking the class threshold (only ``semantic_classes`` uses it)
MEASURES: dict[str, Callable[[float], SetMeasure]] = {
    "semantic": lambda threshold: Semantic(),
    "semantic_classes": SemanticClasses,
    "distinct_2": lambda threshold: Distinct2(),
    "self_bleu": lambda threshold: SelfBleu(),
}
assert tuple(MEASURES) == DIVERSITY_MEASURES, "polychromic.core.config.DIVERSITY_MEASURES is stale"


def get_measure(name: str, class_threshold: float = DEFAULT_CLASS_THRESHOLD) -> SetMeasure:
    """The :class:`SetMeasure` called ``name`` (``TrialConfig.diversity_measure``)."""
    if name not in MEASURES:
        raise ValueError(f"unknown diversity measure {name!r} (known: {', '.join(MEASURES)})")
    return MEASURES[name](class_threshold)


def _samples(measure: SetMeasure, emb: np.ndarray | None,
             texts: Sequence[Sequence[str] | Sequence[Sequence[str]]] | None,
             p: int, n: int) -> Samples:
    """Check and convert what ``measure`` needs: embeddings (P, n, d), texts P × n."""
    arr = tokens = None
    if "emb" in measure.needs:
        if emb is None:
            raise ValueError(f"diversity measure {measure.name!r} needs embeddings")
        arr = np.asarray(emb, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[:2] != (p, n):
            raise ValueError(f"quality {(p, n)} and emb {arr.shape} must be (P, n) and (P, n, d)")
    if "tokens" in measure.needs:
        if texts is None:
            raise ValueError(f"diversity measure {measure.name!r} needs the samples' texts")
        if len(texts) != p or any(len(t) != n for t in texts):
            raise ValueError(f"texts must be P={p} lists of n={n} texts (or token lists)")
        tokens = [as_token_lists(t) for t in texts]
    return Samples(emb=arr, tokens=tokens)


def polychromic_advantages(
    quality: np.ndarray, emb: np.ndarray | None, form: str = "leave_one_out",
    subset_size: int | None = None, *, measure: str | SetMeasure = "semantic",
    texts: Sequence[Sequence[str] | Sequence[Sequence[str]]] | None = None,
    class_threshold: float = DEFAULT_CLASS_THRESHOLD,
) -> SetScores:
    """Advantages for ``quality`` (P, n) under the set diversity ``measure`` (a name of
    ``DIVERSITY_MEASURES`` or a :class:`SetMeasure`). Embedding measures read unit embeddings
    ``emb`` (P, n, d); text measures read ``texts``: P lists of n texts (or token lists).
    ``class_threshold`` is used by ``semantic_classes`` when ``measure`` is a name."""
    quality = np.asarray(quality, dtype=np.float64)
    d = get_measure(measure, class_threshold) if isinstance(measure, str) else measure
    if quality.ndim != 2:
        raise ValueError(f"quality {quality.shape} must be (P, n)")
    if emb is not None and (np.ndim(emb) != 3 or np.shape(emb)[:2] != quality.shape):
        raise ValueError(f"quality {quality.shape} and emb {np.shape(emb)} must be (P, n) "
                         "and (P, n, d)")
    p, n = quality.shape
    samples = _samples(d, emb, texts, p, n)
    diversity = d(samples, np.arange(n)[None])[:, 0]
    full = quality.mean(axis=-1) * diversity
    if form == "leave_one_out":
        rest = np.nonzero(~np.eye(n, dtype=bool))[1].reshape(n, n - 1)  # row i: all but i
        without = quality[:, rest].mean(axis=-1) * d(samples, rest)  # (P, n)
        adv = full[:, None] - without
    elif form == "subsets":
        k = subset_size or max(2, -(-n // 2))
        if not 2 <= k <= n:
            raise ValueError(f"subset_size must be in [2, n={n}], got {k}")
        subsets = np.array(list(itertools.combinations(range(n), k)))  # (M, k)
        scores = quality[:, subsets].mean(axis=-1) * d(samples, subsets)  # (P, M)
        member = np.zeros((len(subsets), n), dtype=bool)
        np.put_along_axis(member, subsets, True, axis=1)
        containing = (scores @ member) / member.sum(axis=0)  # mean over subsets holding i
        adv = containing - scores.mean(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown advantage form {form!r}")
    return SetScores(advantages=adv, score=full, diversity=diversity)
