"""Streaming corpus diversity: feed (texts, embeddings) batch by batch, read metrics at the end.

:class:`CorpusDiversity` returns exactly what the one-shot functions return on the
concatenation of all batches (same tokenization, same arithmetic):

* distinct-n and self-BLEU keep every text's token ids (int32, one shared vocabulary; self-BLEU
  needs every text as a reference for every other, so no smaller exact state exists) and are
  computed once, vectorized, in :meth:`CorpusDiversity.result`;
* semantic diversity keeps only the running sum of unit embeddings: O(d) memory, so the
  embeddings of a batch can be dropped as soon as :meth:`add` returns.

With ``prompt_ids`` the per-prompt variants (nan-mean over prompts) are returned too.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from polychromic.core.errors import MetricError
from polychromic.metrics.distinct import distinct_n_corpus, distinct_n_groups
from polychromic.metrics.ngrams import TokenCorpus, encode_corpus
from polychromic.metrics.self_bleu import self_bleu_scores
from polychromic.metrics.semantic import EmbeddingSum
from polychromic.metrics.tokenize import as_token_lists

if TYPE_CHECKING:
    from polychromic.metrics.encoder import Encoder


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


class CorpusDiversity:
    """Accumulates texts (and their embeddings) and returns corpus-level diversity metrics.

    ``distinct_orders``: the n of the distinct-n values reported (default 1 and 2).
    ``max_n``: self-BLEU order (default 4). ``encoder``: used to embed a batch passed without
    embeddings; with neither, semantic diversity is NaN and ``missing`` says why.
    """

    def __init__(
        self,
        max_n: int = 4,
        distinct_orders: Sequence[int] = (1, 2),
        encoder: Encoder | None = None,
    ) -> None:
        self.max_n = max_n
        self.distinct_orders = tuple(distinct_orders)
        self.encoder = encoder
        self._vocab: dict[str, int] = {}
        self._parts: list[TokenCorpus] = []
        self._groups: dict[Hashable, int] = {}
        self._grouped: bool | None = None
        self._emb = EmbeddingSum()
        self._emb_by_group: dict[int, EmbeddingSum] = {}
        self._n_texts = 0
        self._n_embedded = 0

    @property
    def n_texts(self) -> int:
        return self._n_texts

    def add(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray | None = None,
        prompt_ids: Sequence[Hashable] | None = None,
    ) -> None:
        """Add one batch. ``embeddings[i]`` must embed ``texts[i]``; ``prompt_ids[i]`` names
        the prompt of ``texts[i]`` (give it for every batch or for none)."""
        tokens = as_token_lists(texts)
        n = len(tokens)
        grouped = prompt_ids is not None
        if self._grouped is None:
            self._grouped = grouped
        elif self._grouped != grouped:
            raise MetricError("prompt_ids must be given for every batch or for none")
        if grouped:
            ids = list(prompt_ids)  # type: ignore[arg-type]
            if len(ids) != n:
                raise MetricError(f"{len(ids)} prompt_ids for {n} texts")
            group = np.fromiter(
                (self._groups.setdefault(p, len(self._groups)) for p in ids),
                dtype=np.int64,
                count=n,
            )
        else:
            group = np.zeros(n, dtype=np.int64)
        if embeddings is None and self.encoder is not None and n:
            embeddings = self.encoder.encode(
                [t if isinstance(t, str) else " ".join(t) for t in texts]
            )
        if embeddings is not None:
            emb = np.asarray(embeddings)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise MetricError(f"embeddings of shape {emb.shape} for {n} texts")
            self._emb.add(emb)
            if grouped:
                for g in np.unique(group):
                    acc = self._emb_by_group.setdefault(int(g), EmbeddingSum())
                    acc.add(emb[group == g])
            self._n_embedded += n
        corpus = encode_corpus(tokens, group=group, vocab=self._vocab)
        self._parts.append(
            TokenCorpus(
                tokens=corpus.tokens.astype(np.int32),
                doc=np.zeros(0, dtype=np.int32),  # rebuilt from lengths in result()
                lengths=corpus.lengths.astype(np.int32),
                group=corpus.group.astype(np.int32),
            )
        )
        self._n_texts += n

    @property
    def missing(self) -> str | None:
        """Why semantic diversity is NaN by construction, or None."""
        if self._n_embedded != self._n_texts:
            return (
                f"semantic_diversity: {self._n_texts - self._n_embedded} of {self._n_texts} "
                "texts were added without embeddings (and no encoder was given)"
            )
        return None

    def corpus(self) -> TokenCorpus:
        """All texts added so far as one :class:`TokenCorpus` (int64 arrays)."""
        if not self._parts:
            return encode_corpus([])
        tokens = np.concatenate([p.tokens for p in self._parts]).astype(np.int64)
        lengths = np.concatenate([p.lengths for p in self._parts]).astype(np.int64)
        group = np.concatenate([p.group for p in self._parts]).astype(np.int64)
        doc = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
        return TokenCorpus(tokens=tokens, doc=doc, lengths=lengths, group=group)

    def result(self) -> dict[str, float]:
        """The metrics of everything added, equal to the one-shot functions:

        ``distinct_<n>`` (= ``distinct_n``), ``self_bleu`` (= ``self_bleu(.., max_n)``),
        ``semantic_diversity`` (= ``semantic_diversity``; NaN if some batch had no
        embeddings, see ``missing``), ``n_texts``; with prompt ids also
        ``distinct_<n>_per_prompt``, ``self_bleu_per_prompt`` and
        ``semantic_diversity_per_prompt`` (nan-means over prompts of the per-prompt values).
        """
        corpus = self.corpus()
        out: dict[str, float] = {"n_texts": float(self._n_texts)}
        for n in self.distinct_orders:
            out[f"distinct_{n}"] = distinct_n_corpus(corpus, n)
        flat = TokenCorpus(corpus.tokens, corpus.doc, corpus.lengths, np.zeros_like(corpus.group))
        out["self_bleu"] = (
            float(np.mean(self_bleu_scores(flat, self.max_n)))
            if corpus.n_docs >= 2
            else float("nan")
        )
        out["semantic_diversity"] = (
            1.0 - self._emb.mean_pairwise_cosine() if self.missing is None else float("nan")
        )
        if self._grouped:
            n_groups = len(self._groups)
            for n in self.distinct_orders:
                vals = distinct_n_groups(corpus, n)
                out[f"distinct_{n}_per_prompt"] = _nanmean(vals)
            scores = self_bleu_scores(corpus, self.max_n)
            gid = corpus.group
            sizes = np.bincount(gid, minlength=n_groups)
            sums = np.bincount(gid, weights=np.nan_to_num(scores, nan=0.0), minlength=n_groups)
            per = np.full(n_groups, np.nan)
            ok = sizes >= 2
            per[ok] = sums[ok] / sizes[ok]
            out["self_bleu_per_prompt"] = _nanmean(per)
            if self.missing is None:
                sem = np.array(
                    [
                        1.0 - self._emb_by_group[g].mean_pairwise_cosine()
                        if g in self._emb_by_group
                        else np.nan
                        for g in range(n_groups)
                    ]
                )
                out["semantic_diversity_per_prompt"] = _nanmean(sem)
            else:
                out["semantic_diversity_per_prompt"] = float("nan")
        return out
