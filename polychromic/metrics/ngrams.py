"""Integer n-gram ids for a tokenized corpus: the vectorized core of distinct-n and self-BLEU.

Tokens become dense integer ids; an n-gram id is the dense id of the pair
(id of its (n-1)-gram prefix, id of its last token), found with ``np.unique``. Each order costs
one sort of the n-gram occurrences, so building orders 1..max_n is O(T log T) for T tokens with
no Python loop over n-grams. When documents carry a group (prompt) id, the group is folded into
the unigram id, so equal n-grams in different groups get different ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenCorpus:
    """A tokenized corpus as flat arrays.

    ``tokens``: int64 token id per token position, documents concatenated.
    ``doc``: int64 document index per token position.
    ``lengths``: int64 token count per document.
    ``group``: int64 group (prompt) index per document (all 0 for a single corpus).
    """

    tokens: np.ndarray
    doc: np.ndarray
    lengths: np.ndarray
    group: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.group.size else 0


def flatten_groups(groups: Sequence[Sequence]) -> tuple[list, np.ndarray]:
    """Texts of all groups in order, and the group index of each (int64)."""
    if isinstance(groups, str):
        raise TypeError("groups must be a sequence of sequences of texts")
    flat: list = []
    group_ids: list[int] = []
    for g, texts in enumerate(groups):
        if isinstance(texts, str):
            raise TypeError(f"group {g} is a str; expected a sequence of texts")
        items = list(texts)
        flat.extend(items)
        group_ids.extend([g] * len(items))
    return flat, np.asarray(group_ids, dtype=np.int64)


def encode_corpus(
    token_lists: Sequence[Sequence[str]],
    group: Sequence[int] | np.ndarray | None = None,
    vocab: dict[str, int] | None = None,
) -> TokenCorpus:
    """Map token lists to a :class:`TokenCorpus` (``vocab`` is extended in place if given)."""
    if vocab is None:
        vocab = {}
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    total = int(lengths.sum())
    get = vocab.setdefault
    tokens = np.fromiter(
        (get(w, len(vocab)) for toks in token_lists for w in toks), dtype=np.int64, count=total
    )
    n = len(token_lists)
    doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
    if group is None:
        grp = np.zeros(n, dtype=np.int64)
    else:
        grp = np.asarray(group, dtype=np.int64)
        if grp.shape != (n,):
            raise ValueError(f"group has shape {grp.shape}, expected ({n},)")
    return TokenCorpus(tokens=tokens, doc=doc, lengths=lengths, group=grp)


def ngram_ids(
    corpus: TokenCorpus, max_n: int, by_group: bool = False
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(n, positions, ids)`` for n = 1..max_n.

    ``positions`` are the token positions where an n-gram starts (it lies inside its document);
    ``ids[k]`` is the dense n-gram id of the n-gram starting at ``positions[k]``, in
    ``0..(number of distinct n-grams - 1)``. With ``by_group`` the id also encodes the group.
    """
    if max_n < 1:
        raise ValueError(f"n-gram order must be >= 1, got {max_n}")
    tokens = corpus.tokens
    total = tokens.shape[0]
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        for n in range(1, max_n + 1):
            yield n, empty, empty
        return
    vsize = int(tokens.max()) + 1
    if by_group:
        key = corpus.group[corpus.doc] * vsize + tokens
        _, cur = np.unique(key, return_inverse=True)
        cur = cur.astype(np.int64, copy=False).reshape(-1)
    else:
        cur = tokens
    positions = np.arange(total, dtype=np.int64)
    yield 1, positions, cur
    # tokens remaining in the document from each position, this one included
    starts = np.cumsum(corpus.lengths) - corpus.lengths
    remaining = corpus.lengths[corpus.doc] - (positions - starts[corpus.doc])
    for n in range(2, max_n + 1):
        keep = remaining[positions] >= n
        positions = positions[keep]
        prev = cur[keep]
        if positions.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            for m in range(n, max_n + 1):
                yield m, empty, empty
            return
        nprev = int(prev.max()) + 1
        key = prev * vsize + tokens[positions + (n - 1)] if nprev * vsize < 2**62 else None
        if key is None:  # pragma: no cover - needs > 2**31 distinct n-grams
            pair = np.stack([prev, tokens[positions + (n - 1)]], axis=1)
            _, cur = np.unique(pair, axis=0, return_inverse=True)
        else:
            _, cur = np.unique(key, return_inverse=True)
        cur = cur.astype(np.int64, copy=False).reshape(-1)
        yield n, positions, cur


def ngrams_of_order(
    corpus: TokenCorpus, n: int, by_group: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, ids)`` of the n-grams of order ``n`` (see :func:`ngram_ids`)."""
    result = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    for order, positions, ids in ngram_ids(corpus, n, by_group=by_group):
        if order == n:
            result = (positions, ids)
    return result
