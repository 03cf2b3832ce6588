"""The polychromic set objective and its advantages against brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polychromic import metrics as M
from polychromic.training.set_objective import polychromic_advantages, set_diversity, set_score


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _brute_diversity(e: np.ndarray) -> float:
    m = len(e)
    if m < 2:
        return 0.0
    sims = [e[i] @ e[j] for i in range(m) for j in range(m) if i != j]
    return float(np.clip(1 - np.mean(sims), 0, 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_set_diversity_matches_pairwise(m: int, seed: int) -> None:
    e = _unit(np.random.default_rng(seed), m, 5)
    assert set_diversity(e) == pytest.approx(_brute_diversity(e), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_leave_one_out_is_marginal_contribution(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, e = rng.uniform(size=(1, n)), _unit(rng, 1, n, 4)
    adv = polychromic_advantages(q, e, "leave_one_out").advantages[0]
    full = q[0].mean() * _brute_diversity(e[0])
    for i in range(n):
        rest = [j for j in range(n) if j != i]
        without = q[0, rest].mean() * _brute_diversity(e[0, rest])
        assert adv[i] == pytest.approx(full - without, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 6), st.integers(0, 10_000))
def test_subset_advantages_match_enumeration(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, e = rng.uniform(size=(2, n)), _unit(rng, 2, n, 4)
    k = 2
    adv = polychromic_advantages(q, e, "subsets", subset_size=k).advantages
    for p in range(2):
        subsets = list(itertools.combinations(range(n), k))
        f = {s: q[p, list(s)].mean() * _brute_diversity(e[p, list(s)]) for s in subsets}
        mean_all = np.mean(list(f.values()))
        for i in range(n):
            mine = np.mean([v for s, v in f.items() if i in s])
            assert adv[p, i] == pytest.approx(mine - mean_all, abs=1e-12)


def test_identical_samples_score_zero_and_distinct_good_ones_gain() -> None:
    e = np.tile(_unit(np.random.default_rng(0), 1, 1, 8), (1, 4, 1))  # four identical texts
    q = np.ones((1, 4))
    out = polychromic_advantages(q, e)
    assert out.diversity[0] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(out.advantages, 0.0, atol=1e-9)
    # replace one copy by an orthogonal, good sample: it makes the set diverse → positive advantage
    e2 = e.copy()
    e2[0, 3] = np.eye(8)[0] if abs(e[0, 0, 0]) < 0.9 else np.eye(8)[1]
    e2[0, 3] -= (e2[0, 3] @ e[0, 0]) * e[0, 0]
    e2[0, 3] /= np.linalg.norm(e2[0, 3])
    adv = polychromic_advantages(q, e2).advantages[0]
    assert adv[3] > 0 and adv[3] == adv.max()


def test_a_failing_sample_can_gain_when_it_diversifies_a_good_set() -> None:
    """Reward × diversity: a zero-quality sample still gets credit through the set's diversity."""
    base = _unit(np.random.default_rng(1), 1, 1, 6)[0, 0]
    other = np.linalg.qr(np.stack([base, np.ones(6)], 1))[0][:, 1]
    e = np.stack([base, base, base, other])[None]
    q = np.array([[1.0, 1.0, 1.0, 0.0]])
    adv = polychromic_advantages(q, e).advantages[0]
    assert set_score(q, e)[0] > 0
    assert adv[3] > 0


def test_bad_shapes_and_forms_raise() -> None:
    with pytest.raises(ValueError, match="must be"):
        polychromic_advantages(np.ones((2, 3)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="unknown advantage form"):
        polychromic_advantages(np.ones((1, 3)), _unit(np.random.default_rng(0), 1, 3, 4), "nope")


# --- diversity_measure: which d(S) the objective rewards ---------------------------------------

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "hat", "big", "red", "fast"]


def _reference_advantages(quality: np.ndarray, emb: np.ndarray, form: str = "leave_one_out",
                          subset_size: int | None = None) -> tuple[np.ndarray, ...]:
    """polychromic_advantages as it was before diversity_measure existed (frozen copy)."""
    quality, emb = np.asarray(quality, dtype=np.float64), np.asarray(emb, dtype=np.float64)
    p, n = quality.shape
    full = set_score(quality, emb)
    if form == "leave_one_out":
        keep = ~np.eye(n, dtype=bool)
        without = set_score(
            np.broadcast_to(quality[:, None, :], (p, n, n))[:, keep].reshape(p, n, n - 1),
            np.broadcast_to(emb[:, None], (p, n, n, emb.shape[-1]))[:, keep].reshape(
                p, n, n - 1, emb.shape[-1]),
        )
        adv = full[:, None] - without
    else:
        k = subset_size or max(2, -(-n // 2))
        subsets = np.array(list(itertools.combinations(range(n), k)))
        scores = set_score(quality[:, subsets], emb[:, subsets])
        member = np.zeros((len(subsets), n), dtype=bool)
        np.put_along_axis(member, subsets, True, axis=1)
        adv = (scores @ member) / member.sum(axis=0) - scores.mean(axis=1, keepdims=True)
    return adv, full, set_diversity(emb)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(2, 7), st.integers(1, 40), st.integers(0, 10_000),
       st.sampled_from(["leave_one_out", "subsets"]))
def test_semantic_default_is_bit_identical_to_before(p: int, n: int, dim: int, seed: int,
                                                     form: str) -> None:
    rng = np.random.default_rng(seed)
    q, e = rng.uniform(size=(p, n)), _unit(rng, p, n, dim).astype(np.float32)
    adv, score, div = _reference_advantages(q, e, form)
    for out in (polychromic_advantages(q, e, form),
                polychromic_advantages(q, e, form, measure="semantic", texts=None)):
        assert np.array_equal(out.advantages, adv)
        assert np.array_equal(out.score, score) and np.array_equal(out.diversity, div)


def _brute_classes(e: np.ndarray, threshold: float) -> int:
    """Union-find over every pair with cosine ≥ threshold: the number of classes."""
    parent = list(range(len(e)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(e)):
        for j in range(i + 1, len(e)):
            cos = e[i] @ e[j] / (np.linalg.norm(e[i]) * np.linalg.norm(e[j]))
            if cos >= threshold:
                parent[find(i)] = find(j)
    return len({find(i) for i in range(len(e))})


def _brute_d(measure: str, e: np.ndarray, texts: list[str], threshold: float) -> float:
    """d(S) of one set straight from its definition (the metric functions, pair loops)."""
    if len(texts) < 2:
        return 0.0
    if measure == "semantic":
        return _brute_diversity(e)
    if measure == "semantic_classes":
        return (_brute_classes(e, threshold) - 1) / (len(e) - 1)
    if measure == "distinct_2":
        value = M.distinct_n(texts, 2)
        return 0.0 if np.isnan(value) else value
    assert measure == "self_bleu"
    return 1.0 - M.self_bleu_nltk(texts)


def _random_prompts(rng: np.random.Generator, p: int, n: int) -> tuple[np.ndarray, ...]:
    """Quality, embeddings with near-duplicates (so classes merge), texts with repeats."""
    q = rng.uniform(size=(p, n))
    e = _unit(rng, p, n, 4)
    texts = [[" ".join(rng.choice(WORDS[:6], size=rng.integers(0, 7))) for _ in range(n)]
             for _ in range(p)]
    for row in range(p):  # some copies: equal texts, almost equal embeddings
        i, j = rng.choice(n, size=2, replace=False)
        texts[row][j] = texts[row][i]
        e[row, j] = e[row, i] + rng.normal(0, 0.05, size=4)
        e[row, j] /= np.linalg.norm(e[row, j])
    return q, e, texts


MEASURE_NAMES = ["semantic", "semantic_classes", "distinct_2", "self_bleu"]


@pytest.mark.parametrize("measure", MEASURE_NAMES)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 6), seed=st.integers(0, 10_000),
       threshold=st.sampled_from([0.3, 0.8, 0.95, 1.0]))
def test_every_measure_leave_one_out_matches_brute_force(measure: str, n: int, seed: int,
                                                         threshold: float) -> None:
    rng = np.random.default_rng(seed)
    q, e, texts = _random_prompts(rng, 2, n)
    out = polychromic_advantages(q, e, "leave_one_out", measure=measure, texts=texts,
                                 class_threshold=threshold)
    for p in range(2):
        def f(s: list[int], p: int = p) -> float:
            return q[p, s].mean() * _brute_d(measure, e[p, s], [texts[p][i] for i in s],
                                             threshold)

        everyone = list(range(n))
        assert out.diversity[p] == pytest.approx(
            _brute_d(measure, e[p], texts[p], threshold), abs=1e-12)
        assert out.score[p] == pytest.approx(f(everyone), abs=1e-12)
        for i in range(n):
            rest = [j for j in everyone if j != i]
            assert out.advantages[p, i] == pytest.approx(f(everyone) - f(rest), abs=1e-12)


@pytest.mark.parametrize("measure", MEASURE_NAMES)
@settings(max_examples=10, deadline=None)
@given(n=st.integers(3, 6), k=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_every_measure_subset_advantages_match_enumeration(measure: str, n: int, k: int,
                                                           seed: int) -> None:
    k = min(k, n)
    rng = np.random.default_rng(seed)
    q, e, texts = _random_prompts(rng, 2, n)
    adv = polychromic_advantages(q, e, "subsets", k, measure=measure, texts=texts).advantages
    for p in range(2):
        f = {s: q[p, list(s)].mean() * _brute_d(measure, e[p, list(s)],
                                                 [texts[p][i] for i in s], 0.8)
             for s in itertools.combinations(range(n), k)}
        mean_all = np.mean(list(f.values()))
        for i in range(n):
            mine = np.mean([v for s, v in f.items() if i in s])
            assert adv[p, i] == pytest.approx(mine - mean_all, abs=1e-12)


@pytest.mark.parametrize("form", ["leave_one_out", "subsets"])
@pytest.mark.parametrize("measure", MEASURE_NAMES)
def test_a_duplicate_gets_less_advantage_than_a_distinct_sample(measure: str, form: str) -> None:
    """Four good samples, two of them the same reply: under every d(S) the copy is worth less
    to the set than a sample that says something new."""
    texts = [["the cat sat on the mat today", "the cat sat on the mat today",
              "dogs run fast across green fields", "my red hat blew far away"]]
    basis = np.eye(8)
    e = np.stack([basis[0], basis[0], basis[1], basis[2]])[None]
    q = np.ones((1, 4))
    out = polychromic_advantages(q, e, form, 3 if form == "subsets" else None, measure=measure,
                                 texts=texts)
    adv = out.advantages[0]
    assert adv[1] < adv[2] and adv[1] < adv[3], (measure, form, adv)
    assert adv[0] == pytest.approx(adv[1]) and adv[2] == pytest.approx(adv[3])
    assert 0 < out.diversity[0] < 1


def test_semantic_classes_counts_classes_and_respects_the_threshold() -> None:
    e = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)], [0.0, 1.0]])[None]  # cos(0,1) = 0.9
    q = np.ones((1, 3))
    joined = polychromic_advantages(q, e, measure="semantic_classes", class_threshold=0.85)
    split = polychromic_advantages(q, e, measure="semantic_classes", class_threshold=0.95)
    assert joined.diversity[0] == pytest.approx(0.5)  # 2 classes among 3 samples
    assert split.diversity[0] == pytest.approx(1.0)  # 3 classes among 3


def test_the_measures_are_the_config_choices_and_bad_inputs_raise() -> None:
    from polychromic.core.config import DIVERSITY_MEASURES
    from polychromic.training.set_objective import MEASURES, get_measure

    assert tuple(MEASURES) == DIVERSITY_MEASURES == tuple(MEASURE_NAMES)
    for name in MEASURE_NAMES:
        assert get_measure(name).name == name
    q, e = np.ones((1, 3)), _unit(np.random.default_rng(0), 1, 3, 4)
    with pytest.raises(ValueError, match="unknown diversity measure 'nope'"):
        polychromic_advantages(q, e, measure="nope")
    with pytest.raises(ValueError, match="needs the samples' texts"):
        polychromic_advantages(q, e, measure="distinct_2")
    with pytest.raises(ValueError, match="needs embeddings"):
        polychromic_advantages(q, None, measure="semantic_classes")
    with pytest.raises(ValueError, match="P=1 lists of n=3"):
        polychromic_advantages(q, None, measure="self_bleu", texts=[["a", "b"]])
    # text measures need no embeddings at all
    out = polychromic_advantages(q, None, measure="distinct_2", texts=[["a b", "a b", "c d"]])
    assert out.diversity[0] == pytest.approx(2 / 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 10_000), st.floats(-0.5, 1.0))
def test_class_labels_are_the_union_find_components(m: int, seed: int, threshold: float) -> None:
    e = _unit(np.random.default_rng(seed), m, 3)
    labels = M.class_labels(M.cosine_matrix(e), threshold)
    assert int(M.count_classes(M.cosine_matrix(e), threshold)) == _brute_classes(e, threshold)
    for i in range(m):  # every sample is labelled with the smallest index of its class
        assert labels[i] <= i and labels[labels[i]] == labels[i]


def test_classes_chain_through_similar_neighbours() -> None:
    """A→B→C each 30° apart: with cos 30° ≥ threshold > cos 60°, A and C are not similar but
    are one class (connected components), and dropping B splits them."""
    angles = np.radians([0, 30, 60])
    e = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    sim = M.cosine_matrix(e)
    assert M.count_classes(sim, 0.8) == 1
    assert M.count_classes(sim[np.ix_([0, 2], [0, 2])], 0.8) == 2
    assert list(M.class_labels(sim, 0.8)) == [0, 0, 0]
