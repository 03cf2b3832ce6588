"""Paired bootstrap over prompts: exact per-resample metrics and honest coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polychromic import metrics as M
from polychromic.metrics.aggregate import aggregate
from polychromic.stats.bootstrap import compare, paired_delta, resample_weights, weighted_metrics

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "hat", "big", "small", "red", "blue", "fast", "slow", "home"]


def synthetic_gens(n_prompts: int, n_samples: int, quality: np.ndarray, seed: int,
                   dim: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        for j in range(n_samples):
            text = " ".join(rng.choice(WORDS, size=rng.integers(1, 7)))
            e = rng.normal(size=dim) + (p % 3)
            q = float(quality[p, j])
            rows.append({"prompt_index": p, "prompt_id": f"p{p:03d}", "sample_index": j,
                         "text": text, "quality_score": q, "passed": q >= 0.5,
                         "embedding": (e / np.linalg.norm(e)).astype(np.float32),
                         "token_count": 3})
    return pd.DataFrame(rows)


def test_point_estimates_equal_the_aggregate() -> None:
    rng = np.random.default_rng(0)
    gens = synthetic_gens(6, 5, rng.uniform(size=(6, 5)), seed=1)
    agg = aggregate(gens)
    for name, fn in weighted_metrics(gens).items():
        if name in agg:
            assert fn(np.ones((1, 6)))[0] == pytest.approx(agg[name], abs=1e-6), name


def test_a_resample_equals_the_metric_of_the_duplicated_corpus() -> None:
    rng = np.random.default_rng(2)
    gens = synthetic_gens(5, 4, rng.uniform(size=(5, 4)), seed=3)
    w = np.array([[2.0, 0.0, 1.0, 0.0, 2.0]])
    fns = weighted_metrics(gens)
    dup = pd.concat([gens[gens["prompt_index"] == p] for p in range(5) for _ in range(int(w[0, p]))])
    texts = dup["text"].tolist()
    emb = np.stack(dup["embedding"].to_numpy())
    assert fns["distinct_1"](w)[0] == pytest.approx(M.distinct_n(texts, 1), abs=1e-12)
    assert fns["distinct_2"](w)[0] == pytest.approx(M.distinct_n(texts, 2), abs=1e-12)
    assert fns["semantic_diversity"](w)[0] == pytest.approx(M.semantic_diversity(emb), abs=1e-6)
    assert fns["quality_mean"](w)[0] == pytest.approx(dup["quality_score"].mean(), abs=1e-12)


def test_resample_weights_draw_p_prompts() -> None:
    w = resample_weights(7, 50, seed=0)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    assert np.array_equal(w, resample_weights(7, 50, seed=0))


def test_identical_trials_have_zero_delta_and_are_not_significant() -> None:
    rng = np.random.default_rng(4)
    gens = synthetic_gens(10, 4, rng.uniform(size=(10, 4)), seed=5)
    for name, d in compare(gens, gens, n_resamples=200).items():
        assert d.delta == 0.0 and d.ci_low == 0.0 and d.ci_high == 0.0, name
        assert not d.significant


def test_confidence_intervals_cover_a_known_effect_about_95_percent() -> None:
    """Seeded simulation: prompts differ in difficulty (shared by both models), the trial adds
    a true effect of +0.05 to every sample's quality. Over 300 simulated studies the 95%
    interval must cover +0.05 about 95% of the time and detect it most of the time."""
    effect, n_prompts, n_samples, sims = 0.05, 40, 5, 300
    covered = detected = 0
    rng = np.random.default_rng(12345)
    for s in range(sims):
        difficulty = rng.uniform(0.2, 0.8, size=(n_prompts, 1))
        base_q = difficulty + rng.normal(0, 0.15, size=(n_prompts, n_samples))
        trial_q = difficulty + effect + rng.normal(0, 0.15, size=(n_prompts, n_samples))
        pid = np.arange(n_prompts)
        base = {"quality": base_q.mean(axis=1)}
        trial = {"quality": trial_q.mean(axis=1)}
        d = paired_delta(lambda w, v=trial["quality"]: w @ v / w.sum(axis=1),
                         lambda w, v=base["quality"]: w @ v / w.sum(axis=1),
                         len(pid), n_resamples=400, seed=s)
        covered += d.ci_low <= effect <= d.ci_high
        detected += d.significant and d.delta > 0
    rate = covered / sims
    assert 0.91 <= rate <= 0.985, rate
    assert detected / sims > 0.8


def _union_find_classes(emb: np.ndarray, threshold: float) -> int:
    """Brute-force reference: union-find over every pair with cosine ≥ threshold."""
    parent = list(range(len(emb)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            if float(unit[i] @ unit[j]) >= threshold:
                parent[find(i)] = find(j)
    return len({find(i) for i in range(len(emb))})


@pytest.mark.parametrize("threshold", [0.3, 0.8, 0.95])
def test_distinct_classes_is_the_mean_class_count_and_resamples_exactly(threshold: float) -> None:
    rng = np.random.default_rng(6)
    gens = synthetic_gens(7, 6, rng.uniform(size=(7, 6)), seed=7)
    counts = [_union_find_classes(np.stack(g["embedding"].to_numpy()), threshold)
              for _, g in gens.groupby("prompt_id", sort=True)]
    agg = aggregate(gens, class_threshold=threshold)
    assert agg["distinct_classes"] == pytest.approx(np.mean(counts), abs=1e-12)
    fn = weighted_metrics(gens, class_threshold=threshold)["distinct_classes"]
    assert fn(np.ones((1, 7)))[0] == pytest.approx(agg["distinct_classes"], abs=1e-12)
    w = resample_weights(7, 50, seed=1)
    # a resample = the duplicated corpus: the mean class count over the drawn prompts
    expected = [np.mean([c for c, k in zip(counts, row) for _ in range(int(k))]) for row in w]
    assert np.allclose(fn(w), expected, atol=1e-12, rtol=0)


def test_distinct_classes_default_threshold_and_monotone() -> None:
    rng = np.random.default_rng(8)
    gens = synthetic_gens(5, 6, rng.uniform(size=(5, 6)), seed=9)
    assert aggregate(gens)["distinct_classes"] == aggregate(gens, class_threshold=0.8)[
        "distinct_classes"]
    loose = aggregate(gens, class_threshold=0.2)["distinct_classes"]
    strict = aggregate(gens, class_threshold=1.0)["distinct_classes"]
    assert 1.0 <= loose <= strict <= 6.0
    assert "distinct_classes" in compare(gens, gens, n_resamples=50)


def test_distinct_classes_is_nan_with_a_reason_without_embeddings() -> None:
    rng = np.random.default_rng(10)
    gens = synthetic_gens(4, 3, rng.uniform(size=(4, 3)), seed=11)
    gens["embedding"] = None
    agg = aggregate(gens)
    assert np.isnan(agg["distinct_classes"])
    assert "distinct_classes" in agg["metric_errors"]
    assert "distinct_classes" not in weighted_metrics(gens)
