"""Self-BLEU (Zhu et al. 2018, Texygen) in linear time, equal to the NLTK loop.

Definition (exactly what :func:`self_bleu_nltk` computes, to ~1e-15):

    self_bleu(texts, max_n) = mean_i sentence_bleu(
        references=[tokens_j for j != i], hypothesis=tokens_i,
        weights=(1/max_n,) * max_n, smoothing_function=SmoothingFunction().method1)

with tokens from :func:`polychromic.metrics.tokenize.tokenize`. NLTK's sentence BLEU of
hypothesis i is, for orders n = 1..max_n:

* clipped count of n-gram g = min(count_i(g), max_{j != i} count_j(g)); numerator = sum of the
  clipped counts; denominator = max(1, number of n-grams in hypothesis i);
* if the unigram numerator is 0 the score is 0 (this covers an empty hypothesis);
* method1: a zero numerator becomes 0.1 (p_n = 0.1 / denominator);
* brevity penalty with r = the reference length closest to the hypothesis length h (ties to
  the shorter): 1 if h > r, else exp(1 - r/h);
* score = BP * exp(sum_n (1/max_n) * log p_n).

The reference maximum max_{j != i} count_j(g) is the largest count of g if text i does not
hold it, else the second largest (the largest again when two texts share it): the top two
counts per n-gram, found with one sort, give every clipped count. The closest reference
length comes from the sorted distinct lengths with their multiplicities. Total cost is
O(T log T) for T tokens, with no Python loop over texts or n-grams after tokenization.

Undefined cases: fewer than two texts (NLTK raises: there is no reference) → NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polychromic.metrics.ngrams import TokenCorpus, encode_corpus, flatten_groups, ngram_ids
from polychromic.metrics.tokenize import as_token_lists

EPSILON = 0.1  # nltk SmoothingFunction().method1 default


def _check_max_n(max_n: int) -> None:
    if isinstance(max_n, bool) or not isinstance(max_n, (int, np.integer)) or max_n < 1:
        raise ValueError(f"max_n must be an integer >= 1, got {max_n!r}")


def _closest_ref_lengths(lengths: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per document: the length of the closest other document in its group (ties to shorter).

    Returns ``(closest, has_ref)``; ``has_ref`` is False for a document alone in its group.
    """
    n = lengths.shape[0]
    span = int(lengths.max()) + 1 if n else 1
    key = group * span + lengths
    ukeys, counts = np.unique(key, return_counts=True)
    idx = np.searchsorted(ukeys, key)
    ugroup = ukeys // span
    ulen = ukeys % span
    closest = lengths.copy()
    has_ref = counts[idx] >= 2  # another text of the same length: distance 0
    lone = ~has_ref
    if lone.any():
        i = idx[lone]
        g = group[lone]
        h = lengths[lone]
        has_pred = (i > 0) & (ugroup[np.maximum(i - 1, 0)] == g)
        has_succ = (i + 1 < ukeys.shape[0]) & (ugroup[np.minimum(i + 1, ukeys.shape[0] - 1)] == g)
        pred = ulen[np.maximum(i - 1, 0)]
        succ = ulen[np.minimum(i + 1, ukeys.shape[0] - 1)]
        use_pred = has_pred & (~has_succ | (h - pred <= succ - h))
        r = np.where(use_pred, pred, succ)
        closest[lone] = r
        has_ref[lone] = has_pred | has_succ
    return closest, has_ref


def self_bleu_scores(corpus: TokenCorpus, max_n: int = 4) -> np.ndarray:
    """Sentence BLEU of every document against the other documents of its group.

    One float per document, equal to NLTK's ``sentence_bleu`` (method1 smoothing, uniform
    weights 1/max_n); NaN for a document alone in its group.
    """
    _check_max_n(max_n)
    n_docs = corpus.n_docs
    if n_docs == 0:
        return np.zeros(0)
    lengths = corpus.lengths
    weight = 1.0 / max_n
    log_sum = np.zeros(n_docs)
    unigram_matches = np.zeros(n_docs)
    for n, positions, ids in ngram_ids(corpus, max_n, by_group=True):
        denom = np.maximum(1, lengths - n + 1).astype(np.float64)
        if ids.size:
            doc = corpus.doc[positions]
            # count of each (n-gram, document) pair, sorted by n-gram then document
            pair_key = ids * n_docs + doc
            ukeys, cnt = np.unique(pair_key, return_counts=True)
            gram = ukeys // n_docs
            pdoc = ukeys % n_docs
            first = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]])
            seg = np.cumsum(np.r_[False, gram[1:] != gram[:-1]])
            top = np.maximum.reduceat(cnt, first)[seg]
            is_top = cnt == top
            n_top = np.add.reduceat(is_top.astype(np.int64), first)[seg]
            second = np.maximum.reduceat(np.where(is_top, 0, cnt), first)[seg]
            ref_max = np.where(is_top & (n_top == 1), second, top)
            clipped = np.minimum(cnt, ref_max)
            matches = np.bincount(pdoc, weights=clipped, minlength=n_docs)
        else:
            matches = np.zeros(n_docs)
        if n == 1:
            unigram_matches = matches
        p_n = np.where(matches == 0, EPSILON / denom, matches / denom)
        log_sum += weight * np.log(p_n)
    closest, has_ref = _closest_ref_lengths(lengths, corpus.group)
    h = lengths.astype(np.float64)
    safe_h = np.where(h > 0, h, 1.0)
    bp = np.where(lengths > closest, 1.0, np.exp(1.0 - closest / safe_h))
    scores = np.where(unigram_matches == 0, 0.0, bp * np.exp(log_sum))
    scores[~has_ref] = np.nan
    return scores


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float:
    """Corpus-level self-BLEU: mean over texts of NLTK sentence BLEU against all other texts.

    Tokens: :func:`tokenize` (TweetTokenizer, lowercased). Orders 1..``max_n`` with uniform
    weights 1/max_n, smoothing ``SmoothingFunction().method1`` (ε = 0.1 on zero match counts),
    NLTK's brevity penalty (closest reference length, ties to the shorter). Equals
    :func:`self_bleu_nltk` to ~1e-15 on any input in O(T log T). Higher = less diverse.

    Edge cases (same as NLTK): an empty text scores 0 (and counts in the mean); a text whose
    unigrams appear in no other text scores 0; duplicates score 1 against each other when
    longer than max_n - 1 tokens. Fewer than two texts → NaN (no reference; NLTK raises).
    ``texts`` may also be already tokenized (lists of str).
    """
    _check_max_n(max_n)
    tokens = as_token_lists(texts)
    if len(tokens) < 2:
        return float("nan")
    return float(np.mean(self_bleu_scores(encode_corpus(tokens), max_n)))


def self_bleu_per_prompt(groups: Sequence[Sequence[str]], max_n: int = 4) -> np.ndarray:
    """Self-BLEU within each group (one prompt's samples): ``self_bleu(group, max_n)`` each.

    References of a text are the other texts of its own group only. One float per group; a
    group with fewer than two texts gives NaN. Callers report the ``np.nanmean``. All groups
    are computed in one vectorized pass.
    """
    _check_max_n(max_n)
    flat, gid = flatten_groups(groups)
    n_groups = len(groups)
    out = np.full(n_groups, np.nan)
    if not flat:
        return out
    scores = self_bleu_scores(encode_corpus(as_token_lists(flat), group=gid), max_n)
    sizes = np.bincount(gid, minlength=n_groups)
    sums = np.bincount(gid, weights=np.nan_to_num(scores, nan=0.0), minlength=n_groups)
    ok = sizes >= 2
    out[ok] = sums[ok] / sizes[ok]
    return out


def self_bleu_nltk(texts: Sequence[str], max_n: int = 4) -> float:
    """Reference implementation: the O(N²) NLTK loop that :func:`self_bleu` reproduces.

    For tests and benchmarks only. Fewer than two texts → NaN.
    """
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    _check_max_n(max_n)
    tokens = as_token_lists(texts)
    if len(tokens) < 2:
        return float("nan")
    smooth = SmoothingFunction().method1
    weights = tuple([1.0 / max_n] * max_n)
    scores = [
        sentence_bleu(tokens[:i] + tokens[i + 1 :], hyp, weights=weights, smoothing_function=smooth)
        for i, hyp in enumerate(tokens)
    ]
    return float(np.mean(scores))
