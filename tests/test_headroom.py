"""Floor, ceiling and headroom of the diversity metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polychromic.metrics.encoder import get_encoder
from polychromic.stats import headroom as H

# two prompts (groups g1, g2) × 3 samples; every text has 5 distinct words, no repeated bigram
SAMPLES = {
    ("p1", "g1"): ["one two three four five six", "a b c d e f", "x y z w v u"],
    ("p2", "g2"): ["red green blue cyan pink gold", "sun moon star sky sea land",
                   "cat dog cow pig hen fox"],
}
# the other group's three references: drawing 3 of 3 without replacement is a permutation,
# and every per-prompt metric is invariant to the order of a prompt's samples
POOL = [("p1", "g1", "alpha beta gamma delta"), ("q1", "g1", "north south east west"),
        ("q2", "g1", "spring summer autumn winter"),
        ("p2", "g2", "apple pear plum fig"), ("q3", "g2", "iron gold tin lead"),
        ("q4", "g2", "oak elm ash yew")]


def _gens() -> pd.DataFrame:
    rows = []
    for pi, ((pid, group), texts) in enumerate(SAMPLES.items()):
        for j, text in enumerate(texts):
            rows.append({"prompt_index": pi, "prompt_id": pid, "group": group, "sample_index": j,
                         "text": text, "token_count": len(text.split())})
    gens = pd.DataFrame(rows)
    emb = get_encoder(device="cpu").encode(gens["text"].tolist())
    gens["embedding"] = list(emb.astype(np.float32))
    return gens


def test_headroom_formula_is_oriented_for_both_directions() -> None:
    assert H.headroom(0.5, 0.0, 1.0) == 0.5
    assert H.headroom(1.0, 0.0, 1.0) == 0.0  # at the ceiling
    assert H.headroom(0.0, 0.0, 1.0) == 1.0  # at the floor
    # Self-BLEU: lower is more diverse; floor 1 (identical), ceiling 0.1 (unrelated texts)
    assert H.headroom(0.1, 1.0, 0.1) == pytest.approx(0.0)
    assert H.headroom(0.55, 1.0, 0.1) == pytest.approx(0.5)
    assert np.isnan(H.headroom(0.5, 0.3, 0.3)) and np.isnan(H.headroom(np.nan, 0, 1))


def test_floor_and_ceiling_against_hand_computed_values() -> None:
    gens = _gens()
    sets = H.build_sets(gens, POOL, get_encoder(device="cpu"))
    ceiling = sets[sets["set"] == H.CEILING]
    # ceiling: each prompt got the other group's three references (cut to ≤ 6 words: intact)
    got = {pid: sorted(g["text"]) for pid, g in ceiling.groupby("prompt_id")}
    assert got == {"p1": ["apple pear plum fig", "iron gold tin lead", "oak elm ash yew"],
                   "p2": ["alpha beta gamma delta", "north south east west",
                          "spring summer autumn winter"]}
    b = H.bounds(sets)
    # floor, analytic: identical samples → semantic 0, Self-BLEU 1, distinct-2 = 5/15 = 1/3,
    # distinct-1 = 6/18, one class per prompt
    assert b[H.FLOOR]["semantic_diversity_per_prompt"] == pytest.approx(0.0, abs=1e-6)
    assert b[H.FLOOR]["self_bleu_per_prompt"] == pytest.approx(1.0)
    assert b[H.FLOOR]["distinct_2_per_prompt"] == pytest.approx(1 / 3)
    assert b[H.FLOOR]["distinct_1_per_prompt"] == pytest.approx(1 / 3)
    # ceiling, by hand: 12 distinct words / 12, 9 distinct bigrams / 9, no shared n-gram → BLEU 0
    assert b[H.CEILING]["distinct_1_per_prompt"] == pytest.approx(1.0)
    assert b[H.CEILING]["distinct_2_per_prompt"] == pytest.approx(1.0)
    assert b[H.CEILING]["self_bleu_per_prompt"] == pytest.approx(0.0)
    enc = get_encoder(device="cpu")
    expected = []
    for refs in got.values():
        e = enc.encode(refs).astype(np.float64)
        cos = e @ e.T
        expected.append(1 - (cos.sum() - np.trace(cos)) / 6)
    assert b[H.CEILING]["semantic_diversity_per_prompt"] == pytest.approx(np.mean(expected),
                                                                         abs=1e-5)
    # the effective metrics: both sets scored as valid (score 1). Floor, by hand: no pair of
    # distinct samples (0), one valid class of 3 samples (1/3), only the first sample opens a
    # class: utility (1 − p)/(1 − p³) with p = 0.8; ceiling: every sample valid, the raw
    # value, 3 classes of 3 and every sample opening one (utility 1)
    assert b[H.FLOOR]["effective_semantic_diversity_per_prompt"] == pytest.approx(0.0, abs=1e-6)
    assert b[H.FLOOR]["effective_distinct_classes"] == pytest.approx(1 / 3)
    assert b[H.FLOOR]["utility_k"] == pytest.approx(0.2 / (1 - 0.8 ** 3))
    assert b[H.CEILING]["effective_semantic_diversity_per_prompt"] == pytest.approx(
        b[H.CEILING]["semantic_diversity_per_prompt"])
    assert b[H.CEILING]["distinct_classes"] == pytest.approx(3.0)  # unrelated: 3 classes
    assert b[H.CEILING]["effective_distinct_classes"] == pytest.approx(1.0)
    assert b[H.CEILING]["utility_k"] == pytest.approx(1.0)
    # every diversity metric has bounds that define a headroom: none is NaN
    for m in b[H.FLOOR]:
        assert np.isfinite(H.headroom((b[H.FLOOR][m] + b[H.CEILING][m]) / 2, b[H.FLOOR][m],
                                      b[H.CEILING][m])), m


def test_ceiling_texts_are_cut_to_the_sample_length_and_seeded() -> None:
    gens = _gens()
    gens.loc[0, "text"] = "hi there"
    one = H.ceiling_set(gens, POOL, seed=3)
    assert len(one.loc[0, "text"].split()) == 2
    assert one["text"].tolist() == H.ceiling_set(gens, POOL, seed=3)["text"].tolist()


def test_too_few_references_is_an_error_not_a_silent_value() -> None:
    with pytest.raises(ValueError, match="only 2 references"):
        H.ceiling_set(_gens(), POOL[:2] + POOL[3:5], seed=0)


def test_low_headroom_warning_wording() -> None:
    text = H.low_headroom_warning("semantic_diversity_per_prompt", 0.88, 0.0, 0.9)
    assert text.startswith("ceiling: baseline semantic_diversity_per_prompt at 98% of unrelated")
    assert H.low_headroom_warning("semantic_diversity_per_prompt", 0.5, 0.0, 0.9) == ""


def test_warning_prints_float_noise_as_zero() -> None:
    """Identical samples have semantic diversity 1 − cos = −4e-16, not 0: the warning says 0."""
    from polychromic.stats.headroom import low_headroom_warning

    text = low_headroom_warning("semantic_diversity_per_prompt", 0.806, -4.35e-16, 0.883)
    assert "(0.806, floor 0, ceiling 0.883)" in text and "e-16" not in text


def test_negative_headroom_is_past_the_ceiling_and_warnings_name_the_level() -> None:
    """A baseline beyond the unrelated texts (the tiny model's distinct-1 at 264% of them) is
    "past ceiling", not "at ceiling"; every headroom warning names the metric's level."""
    past = H.low_headroom_warning("distinct_1", 0.6, 0.1, 0.3)  # headroom (0.3-0.6)/0.2 = -150%
    assert past == ("past ceiling: baseline distinct_1 (corpus) beyond unrelated texts (0.6, "
                    "floor 0.1, ceiling 0.3), headroom -150%: a gain on it would not mean more "
                    "diverse replies")
    assert "at ceiling" not in past and "%" in past
    near = H.low_headroom_warning("distinct_classes", 4.5, 1.0, 4.75)
    assert near.startswith("ceiling: baseline distinct_classes (per prompt) at 93% of unrelated")
    assert H.low_headroom_warning("semantic_diversity_per_prompt", 0.88, 0.0, 0.9).startswith(
        "ceiling: baseline semantic_diversity_per_prompt at")
    assert [H.ceiling_state(h) for h in (-0.5, 0.0, 0.05, 0.1, float("nan"))] == [
        H.PAST_CEILING, H.AT_CEILING, H.AT_CEILING, "", ""]
    from polychromic.stats.verdict import verdict_line

    row = {"lambda_": 1.0, "delta_distinct_2_per_prompt": 0.01,
           "delta_distinct_2_per_prompt_ci_low": -0.01, "delta_distinct_2_per_prompt_ci_high": 0.03,
           "delta_semantic_diversity_per_prompt": 0.01,
           "delta_semantic_diversity_per_prompt_ci_low": -0.01,
           "delta_semantic_diversity_per_prompt_ci_high": 0.03}
    line = verdict_line(row, {"distinct_2_per_prompt": -1.5, "semantic_diversity_per_prompt": 0.05},
                        diversity=("semantic_diversity_per_prompt", "distinct_2_per_prompt"))
    assert "at ceiling: semantic_diversity_per_prompt" in line
    assert "past ceiling (beyond unrelated texts): distinct_2_per_prompt" in line


def test_the_default_caption_says_each_ceiling_once() -> None:
    """Warnings of one kind (at / past ceiling) become one line naming every metric with its
    numbers, where the first was; one of a kind and other warnings stay as they are."""
    from polychromic.stats.headroom import low_headroom_warning, merged_warnings

    at1 = low_headroom_warning("semantic_diversity_per_prompt", 0.838, 0.0, 0.897)
    at2 = low_headroom_warning("distinct_2", 0.955, 0.1, 0.989)
    past = low_headroom_warning("self_bleu_per_prompt", 0.002, 0.891, 0.0418)
    other = "device not recorded"
    assert at1.startswith("ceiling: ") and at2.startswith("ceiling: ")
    assert past.startswith("past ceiling: ")
    assert merged_warnings([other, at1, past, at2]) == [
        other,
        "ceiling: baseline at ≥90% of unrelated texts, no diversity gain can be shown on "
        "semantic_diversity_per_prompt (93%: 0.838, floor 0, ceiling 0.897), distinct_2 (corpus) "
        "(96%: 0.955, floor 0.1, ceiling 0.989)",
        past]
    past2 = low_headroom_warning("distinct_1", 0.97, 0.1, 0.6)
    assert merged_warnings([past, past2])[0].startswith(
        "past ceiling: baseline beyond unrelated texts, a gain would not mean more diverse "
        "replies on self_bleu_per_prompt (0.002, floor 0.891, ceiling 0.0418; headroom ")
    assert merged_warnings([at1]) == [at1]
