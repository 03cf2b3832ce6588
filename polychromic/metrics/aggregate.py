"""Metrics of a trial from its stored generations (pure: a table in, numbers out).

The same function serves the evaluation pipeline and ``study/score.py`` (rescoring stored
generations), so the leaderboard's numbers are exactly what ``generations.parquet`` gives.

Definitions (see docs/metrics.md): ``pass@k`` is the unbiased estimator of Chen et al. 2021
averaged over prompts (k ≤ samples per prompt); ``quality_mean`` the mean checker score over all
samples; ``distinct_n``, ``self_bleu``, ``semantic_diversity`` are corpus-level over all samples
of all prompts, and the ``*_per_prompt`` columns the mean over prompts of the same metric
within one prompt's samples. A metric that cannot be computed is NaN and its reason is listed
in ``metric_errors``; it is never 0.0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from polychromic import metrics as M
from polychromic.core import columns
from polychromic.metrics import effective
from polychromic.metrics.semantic import DEFAULT_CLASS_THRESHOLD

PASS_KS = columns.PASS_KS
#: what the review leads with: quality, then the within-prompt diversity the objective is about
HEADLINE = (*(f"pass@{k}" for k in PASS_KS), "quality_mean", *columns.HEADLINE_DIVERSITY)
#: every evaluation metric compared against the λ=0 baseline (deltas, CIs, MDE)
COMPARED = (*(f"pass@{k}" for k in PASS_KS), *columns.EVAL_METRICS)
PER_PROMPT = columns.names(stage="evaluation", level="per_prompt")
#: per-prompt columns of ``per_prompt`` that need every sample's embedding
EMBEDDED = ("semantic_diversity", "distinct_classes", "effective_distinct_classes",
            "effective_semantic_diversity", "utility_k")


def _embeddings_ok(gens: pd.DataFrame) -> bool:
    """Every sample has an embedding from a successful scoring batch."""
    if "embedding" not in gens or gens["embedding"].isna().any():
        return False
    return not ("score_error" in gens and (gens["score_error"].fillna("") != "").any())


def per_prompt(gens: pd.DataFrame, threshold: float | None = None, *,
               class_threshold: float = DEFAULT_CLASS_THRESHOLD) -> pd.DataFrame:
    """One row per prompt: n, passed count, quality and within-prompt diversity.

    With ``threshold``, ``passed`` is recomputed as ``quality_score ≥ threshold``.
    ``distinct_classes`` is the number of equivalence classes among the prompt's samples
    (embedding cosine ≥ ``class_threshold`` joins two samples; ``TrialConfig.class_threshold``)."""
    gens = gens.sort_values(["prompt_index", "sample_index"])
    passed = gens["quality_score"] >= threshold if threshold is not None else gens["passed"]
    gens = gens.assign(passed=passed & gens["quality_score"].notna())
    groups = [g for _, g in gens.groupby("prompt_index", sort=True)]
    texts = [g["text"].tolist() for g in groups]
    out = pd.DataFrame({
        "prompt_index": [int(g["prompt_index"].iloc[0]) for g in groups],
        "prompt_id": [g["prompt_id"].iloc[0] for g in groups],
        "n": [len(g) for g in groups],
        "c": [int(g["passed"].sum()) for g in groups],
        "quality_mean": [float(g["quality_score"].mean(skipna=False)) for g in groups],
        "distinct_1": M.distinct_n_per_prompt(texts, 1),
        "distinct_2": M.distinct_n_per_prompt(texts, 2),
        "self_bleu": M.self_bleu_per_prompt(texts),
    })
    if _embeddings_ok(gens):
        embs = [np.stack(g["embedding"].to_numpy()) for g in groups]
        out["semantic_diversity"] = M.semantic_diversity_per_prompt(embs)
        out["distinct_classes"] = M.distinct_classes_per_prompt(embs, class_threshold)
        eff = effective.per_prompt(embs, [g["passed"].to_numpy() for g in groups],
                                   [g["quality_score"].to_numpy(dtype=float) for g in groups],
                                   class_threshold)
        for name, values in eff.items():
            out[name] = values
    else:
        for name in EMBEDDED:
            out[name] = np.nan
    return out


def aggregate(gens: pd.DataFrame, threshold: float | None = None, *,
              class_threshold: float = DEFAULT_CLASS_THRESHOLD) -> dict[str, Any]:
    """Headline and per-prompt metrics of one trial's generations (see module docstring);
    ``class_threshold`` is the embedding cosine that joins two samples in ``distinct_classes``
    (``TrialConfig.class_threshold`` where a config is at hand)."""
    errors: list[str] = []
    if "score_error" in gens:
        failed = gens["score_error"].fillna("") != ""
        if failed.any():
            first = gens.loc[failed, "score_error"].iloc[0]
            errors.append(f"scoring failed for {int(failed.sum())} samples: {first}")
    pp = per_prompt(gens, threshold, class_threshold=class_threshold)
    n_min = int(pp["n"].min())
    out: dict[str, Any] = {"eval_prompts": len(pp), "eval_samples": int(pp["n"].sum())}
    scored = not errors
    for k in sorted(set(PASS_KS) | {n_min}):
        if k <= n_min:
            out[f"pass@{k}"] = (
                float(np.mean(M.pass_at_k(pp["n"].to_numpy(), pp["c"].to_numpy(), k)))
                if scored else float("nan")
            )
    out["quality_mean"] = float(gens["quality_score"].mean()) if scored else float("nan")
    texts = gens.sort_values(["prompt_index", "sample_index"])["text"].tolist()
    out["distinct_1"] = M.distinct_n(texts, 1)
    out["distinct_2"] = M.distinct_n(texts, 2)
    out["self_bleu"] = M.self_bleu(texts)
    if _embeddings_ok(gens):
        out["semantic_diversity"] = M.semantic_diversity(np.stack(gens["embedding"].to_numpy()))
        # mean over prompts of the number of equivalence classes (cosine ≥ class_threshold)
        out["distinct_classes"] = float(pp["distinct_classes"].mean())
        # effective diversity and NoveltyBench utility (polychromic.metrics.effective)
        for name in ("effective_distinct_classes", "utility_k"):
            out[name] = (float(np.nanmean(pp[name])) if scored and pp[name].notna().any()
                         else float("nan"))
    else:
        out["semantic_diversity"] = out["distinct_classes"] = float("nan")
        out["effective_distinct_classes"] = out["utility_k"] = float("nan")
        errors.append("semantic_diversity, distinct_classes, effective_*, utility_k: embeddings "
                      "missing for some samples")
    for col in ("distinct_1", "distinct_2", "self_bleu", "semantic_diversity",
                "effective_semantic_diversity"):
        out[f"{col}_per_prompt"] = float(np.nanmean(pp[col])) if pp[col].notna().any() else float("nan")
    out["mean_tokens"] = float(gens["token_count"].mean()) if "token_count" in gens else float("nan")
    out["metric_errors"] = "; ".join(errors)
    return out
