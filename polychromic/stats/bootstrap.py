"""Is the gain real? Paired bootstrap over prompts of each headline metric vs the baseline.

A trial and the λ=0 baseline are evaluated on the same held-out prompts. One bootstrap
resample draws P prompts with replacement (multiplicities ``w``, shape (P,)); both trials are
scored on the *same* resample, and the difference is kept. ``B`` resamples (default 2,000,
seed 0) give the 95% percentile interval of the difference; ``significant`` means the interval
excludes 0.

Every metric is recomputed on the resampled multiset of prompts, exactly, in vectorized form
(a resample is a weight vector, so B resamples are one matrix product):

- ``pass@k``: mean over prompts of the per-prompt unbiased pass@k → ``W @ a / W.sum``.
- ``quality_mean``: mean score over samples → ``W @ q_sum / W @ n``; ``mean_tokens`` the same
  with token counts.
- ``distinct_n``: distinct n-grams present in any drawn prompt / total n-gram occurrences
  (a prompt drawn twice adds occurrences, not new n-grams — exactly the corpus definition).
- ``semantic_diversity``: from per-prompt embedding sums, since for unit vectors the sum of
  pairwise cosines over distinct positions is ‖Σe‖² − N; copies of a prompt count as
  different positions, exactly as the corpus metric would.
- ``self_bleu`` (the one approximation): each sample keeps its BLEU against the full corpus
  (references are not re-drawn); the resample averages those per-sample scores.
- ``*_per_prompt``: weighted mean of the per-prompt values (NaN prompts skipped).
- ``distinct_classes``: the same, on each prompt's number of equivalence classes (a class
  count belongs to one prompt's samples, so a resample's value is exactly its weighted mean);
  likewise ``effective_distinct_classes`` and ``utility_k`` (``polychromic.metrics.effective``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from polychromic import metrics as M
from polychromic.metrics.aggregate import _embeddings_ok, per_prompt
from polychromic.metrics.ngrams import encode_corpus, ngrams_of_order
from polychromic.metrics.semantic import DEFAULT_CLASS_THRESHOLD
from polychromic.metrics.tokenize import as_token_lists
from polychromic.stats.power import mde

N_RESAMPLES = 2000
SEED = 0
CHUNK = 128  # resamples per vectorized block (bounds memory for distinct-n)

#: a metric as a function of prompt weights: (B, P) multiplicities → (B,) values
Weighted = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Delta:
    """Trial − baseline for one metric, with its paired-bootstrap 95% interval."""

    delta: float
    ci_low: float
    ci_high: float
    relative: float  # 100 · delta / baseline (NaN when the baseline is 0 or NaN)
    se: float = float("nan")  # standard deviation of the bootstrap differences
    p_value: float = float("nan")
    """Two-sided bootstrap p-value: 2 · min(share of differences ≤ 0, share ≥ 0), capped at 1
    (the test whose 95% level matches the percentile interval excluding 0)."""

    @property
    def significant(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def mde(self) -> float:
        """Minimum detectable effect (see ``polychromic.stats.power.mde``) from this delta's SE."""

        return mde(self.se)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _weighted_mean(values: np.ndarray) -> Weighted:
    ok = np.isfinite(values)
    v = np.where(ok, values, 0.0)
    return lambda w: _ratio(w @ v, w @ ok.astype(float))


def _distinct(texts_by_prompt: list[list[str]], n: int) -> Weighted:
    flat = [t for ts in texts_by_prompt for t in ts]
    prompt_of_doc = np.repeat(np.arange(len(texts_by_prompt)), [len(ts) for ts in texts_by_prompt])
    corpus = encode_corpus(as_token_lists(flat))
    positions, ids = ngrams_of_order(corpus, n)
    p = len(texts_by_prompt)
    if ids.size == 0:
        return lambda w: np.full(w.shape[0], np.nan)
    prompt = prompt_of_doc[corpus.doc[positions]]
    totals = np.bincount(prompt, minlength=p).astype(float)
    # presence[p, g]: prompt p holds n-gram g (dense boolean, P × G, built once)
    presence = np.zeros((p, int(ids.max()) + 1), dtype=np.float32)
    presence[prompt, ids] = 1.0

    def value(w: np.ndarray) -> np.ndarray:
        drawn = (w > 0).astype(np.float32)
        distinct = ((drawn @ presence) > 0).sum(axis=1)
        return _ratio(distinct.astype(float), w @ totals)

    return value


def _semantic(emb_by_prompt: list[np.ndarray]) -> Weighted:
    sums = np.stack([e.astype(np.float64).sum(axis=0) for e in emb_by_prompt])
    counts = np.array([len(e) for e in emb_by_prompt], dtype=float)
    sq = np.array([float((e.astype(np.float64) ** 2).sum()) for e in emb_by_prompt])

    def value(w: np.ndarray) -> np.ndarray:
        s = w @ sums
        n = w @ counts
        pair_sum = (s**2).sum(axis=1) - w @ sq  # ‖Σe‖² − Σ‖e‖² (= N for unit rows)
        return 1.0 - _ratio(pair_sum, n * (n - 1))

    return value


def weighted_metrics(gens: pd.DataFrame, threshold: float | None = None, *,
                     class_threshold: float = DEFAULT_CLASS_THRESHOLD) -> dict[str, Weighted]:
    """Every headline metric of one trial as a function of prompt weights, prompts ordered
    by ``prompt_id`` (so two trials line up prompt by prompt). ``class_threshold``: the
    cosine joining two samples in ``distinct_classes`` (``TrialConfig.class_threshold``)."""

    gens = gens.sort_values(["prompt_id", "sample_index"], kind="stable")
    pp = per_prompt(gens, threshold, class_threshold=class_threshold)
    pp = pp.sort_values("prompt_id", kind="stable")
    groups = [g for _, g in gens.groupby("prompt_id", sort=True)]
    texts = [g["text"].astype(str).tolist() for g in groups]
    n = pp["n"].to_numpy()
    c = pp["c"].to_numpy()
    out: dict[str, Weighted] = {}
    for k in range(1, int(n.min()) + 1):
        out[f"pass@{k}"] = _weighted_mean(np.asarray(M.pass_at_k(n, c, k), dtype=float))
    q_sum = np.array([g["quality_score"].sum(min_count=1) for g in groups], dtype=float)
    out["quality_mean"] = lambda w: _ratio(w @ np.nan_to_num(q_sum), w @ n.astype(float))
    if "token_count" in gens:
        t_sum = np.array([g["token_count"].sum() for g in groups], dtype=float)
        out["mean_tokens"] = lambda w: _ratio(w @ t_sum, w @ n.astype(float))
    out["distinct_1"] = _distinct(texts, 1)
    out["distinct_2"] = _distinct(texts, 2)
    doc_bleu = M.self_bleu_scores(encode_corpus(as_token_lists([t for ts in texts for t in ts])))
    bounds = np.cumsum([0] + [len(ts) for ts in texts])
    bleu_sum = np.array([np.nansum(doc_bleu[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    bleu_n = np.array([np.isfinite(doc_bleu[a:b]).sum() for a, b in zip(bounds[:-1], bounds[1:])])
    out["self_bleu"] = lambda w: _ratio(w @ bleu_sum, w @ bleu_n.astype(float))
    if _embeddings_ok(gens):
        out["semantic_diversity"] = _semantic([np.stack(g["embedding"].to_numpy()) for g in groups])
        out["distinct_classes"] = _weighted_mean(pp["distinct_classes"].to_numpy(dtype=float))
        for col in ("effective_distinct_classes", "utility_k"):
            out[col] = _weighted_mean(pp[col].to_numpy(dtype=float))
    for col in ("distinct_1", "distinct_2", "self_bleu", "semantic_diversity",
                "effective_semantic_diversity"):
        if col in pp:
            out[f"{col}_per_prompt"] = _weighted_mean(pp[col].to_numpy(dtype=float))
    return out


def resample_weights(n_prompts: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, P) multiplicities of P prompts drawn with replacement, B times."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_prompts, size=(n_resamples, n_prompts))
    w = np.zeros((n_resamples, n_prompts))
    np.add.at(w, (np.arange(n_resamples)[:, None], draws), 1.0)
    return w


def paired_delta(trial: Weighted, baseline: Weighted, n_prompts: int,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Delta:
    """Trial − baseline on all prompts, with the paired bootstrap 95% percentile interval."""
    ones = np.ones((1, n_prompts))
    point_t, point_b = float(trial(ones)[0]), float(baseline(ones)[0])
    w = resample_weights(n_prompts, n_resamples, seed)
    diffs = np.concatenate([trial(w[i : i + CHUNK]) - baseline(w[i : i + CHUNK])
                            for i in range(0, n_resamples, CHUNK)])
    diffs = diffs[np.isfinite(diffs)]
    lo, hi = (np.percentile(diffs, [2.5, 97.5]) if diffs.size else (np.nan, np.nan))
    se = float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan")
    p = (min(1.0, 2 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))))
         if diffs.size else float("nan"))
    delta = point_t - point_b
    rel = 100.0 * delta / point_b if np.isfinite(point_b) and point_b != 0 else float("nan")
    return Delta(delta, float(lo), float(hi), rel, se, p)


def compare(trial_gens: pd.DataFrame, baseline_gens: pd.DataFrame,
            threshold: float | None = None, n_resamples: int = N_RESAMPLES,
            seed: int = SEED, *,
            class_threshold: float = DEFAULT_CLASS_THRESHOLD) -> dict[str, Delta]:
    """Deltas of every metric the two trials share, over the prompts they share."""
    common = sorted(set(trial_gens["prompt_id"]) & set(baseline_gens["prompt_id"]))
    if not common:
        return {}
    t = weighted_metrics(trial_gens[trial_gens["prompt_id"].isin(common)], threshold,
                         class_threshold=class_threshold)
    b = weighted_metrics(baseline_gens[baseline_gens["prompt_id"].isin(common)], threshold,
                         class_threshold=class_threshold)
    return {name: paired_delta(t[name], b[name], len(common), n_resamples, seed)
            for name in t if name in b}
