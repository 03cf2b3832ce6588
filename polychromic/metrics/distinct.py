"""Distinct-n (Li et al. 2016), corpus-level and per prompt.

Definition used here: distinct-n = (number of distinct n-grams) / (number of n-gram
occurrences), over texts tokenized by :func:`polychromic.metrics.tokenize.tokenize`. The
denominator counts n-gram occurrences (a text of L tokens has max(0, L-n+1) n-grams), not
tokens; n-grams never cross text boundaries. With no n-gram at all the ratio is undefined and
the result is NaN, never 0.0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polychromic.metrics.ngrams import (
    TokenCorpus,
    encode_corpus,
    flatten_groups,
    ngrams_of_order,
)
from polychromic.metrics.tokenize import as_token_lists


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


def distinct_n_corpus(corpus: TokenCorpus, n: int) -> float:
    """Corpus-level distinct-n of an already encoded :class:`TokenCorpus` (groups ignored)."""
    _check_n(n)
    _, ids = ngrams_of_order(corpus, n)
    if ids.size == 0:
        return float("nan")
    return int(np.count_nonzero(np.bincount(ids))) / int(ids.size)


def distinct_n_groups(corpus: TokenCorpus, n: int) -> np.ndarray:
    """Distinct-n within each group of an encoded corpus; NaN for a group without n-grams."""
    _check_n(n)
    n_groups = corpus.n_groups
    positions, ids = ngrams_of_order(corpus, n, by_group=True)
    out = np.full(n_groups, np.nan)
    if ids.size == 0:
        return out
    occ_group = corpus.group[corpus.doc[positions]]
    occurrences = np.bincount(occ_group, minlength=n_groups)
    group_of_id = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    group_of_id[ids] = occ_group  # an id belongs to exactly one group
    distinct = np.bincount(group_of_id, minlength=n_groups)
    ok = occurrences > 0
    out[ok] = distinct[ok] / occurrences[ok]
    return out


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Corpus-level distinct-n of ``texts``.

    = |{distinct n-grams over all texts}| / (total n-gram occurrences over all texts), with
    :func:`tokenize` tokens, n-grams inside each text only. Duplicated texts add occurrences
    but no new n-grams. No n-gram in the corpus (empty list, or every text shorter than n
    tokens) → NaN. ``texts`` may also be already tokenized (lists of str). Linear-time
    (one sort per order).
    """
    _check_n(n)
    return distinct_n_corpus(encode_corpus(as_token_lists(texts)), n)


def distinct_n_per_prompt(groups: Sequence[Sequence[str]], n: int) -> np.ndarray:
    """Distinct-n computed within each group (one prompt's samples): one float per group.

    Each value is ``distinct_n(group, n)``: n-grams counted only inside that group. A group
    with no n-gram (empty group, or all its texts shorter than n) gives NaN. Callers report
    ``np.nanmean`` of the result as ``distinct_<n>_per_prompt``.
    """
    _check_n(n)
    flat, gid = flatten_groups(groups)
    n_groups = len(groups)
    corpus = encode_corpus(as_token_lists(flat), group=gid)
    out = distinct_n_groups(corpus, n)
    if out.shape[0] < n_groups:  # trailing empty groups
        out = np.concatenate([out, np.full(n_groups - out.shape[0], np.nan)])
    return out
