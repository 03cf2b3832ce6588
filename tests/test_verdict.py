"""Each verdict rule, and the line a user reads."""

from __future__ import annotations

import math

import pytest

from polychromic.stats import verdict as V


@pytest.mark.parametrize(("delta", "low", "high", "mde", "better", "headroom", "expected"), [
    (0.19, 0.13, 0.25, 0.05, "max", math.nan, V.GAIN),          # CI above 0, higher better
    (-0.05, -0.07, -0.03, 0.02, "max", math.nan, V.LOSS),       # CI below 0
    (0.01, 0.005, 0.02, 0.01, "min", math.nan, V.LOSS),         # Self-BLEU up = less diverse
    (-0.01, -0.02, -0.005, 0.01, "min", math.nan, V.GAIN),      # Self-BLEU down
    (0.001, -0.01, 0.012, 0.05, "max", 0.03, V.CEILING),        # not significant, no room
    (-0.03, -0.05, -0.01, 0.05, "max", 0.03, V.LOSS),           # a loss at ceiling is a loss
    (0.001, -0.02, 0.02, 0.03, "max", 0.5, V.NO_CHANGE),        # CI inside ±MDE
    (0.02, -0.01, 0.05, 0.03, "max", 0.5, V.CANNOT_TELL),       # CI past +MDE
    (-0.02, -0.05, 0.01, 0.03, "max", math.nan, V.CANNOT_TELL),  # CI past −MDE
    (0.0, -0.01, 0.01, math.nan, "max", 0.5, V.CANNOT_TELL),    # MDE unknown
    (math.nan, math.nan, math.nan, 0.03, "max", 0.5, V.UNKNOWN),
])
def test_rules(delta: float, low: float, high: float, mde: float, better: str,
               headroom: float, expected: str) -> None:
    assert V.outcome(delta, low, high, mde, better, None, headroom) == expected


def test_adjusted_significance_overrides_the_raw_interval() -> None:
    assert V.outcome(0.05, 0.01, 0.09, 0.05, "max", significant=False) == V.CANNOT_TELL
    assert V.outcome(0.05, 0.01, 0.09, 0.2, "max", significant=True) == V.GAIN


def _row(**metrics: tuple[float, float, float, float]) -> dict:
    row: dict = {"lambda_": 50.0, "is_baseline": False}
    for m, (d, lo, hi, mde) in metrics.items():
        m = m.replace("pass1", "pass@1")
        row.update({f"delta_{m}": d, f"delta_{m}_ci_low": lo, f"delta_{m}_ci_high": hi,
                    f"mde_{m}": mde})
    return row


def test_the_line_a_user_reads() -> None:
    row = _row(pass1=(0.19, 0.13, 0.25, 0.06), quality_mean=(0.1, 0.05, 0.15, 0.04),
               semantic_diversity_per_prompt=(-0.049, -0.074, -0.027, 0.03),
               distinct_2_per_prompt=(0.001, -0.01, 0.01, 0.04),
               self_bleu_per_prompt=(0.0, -0.01, 0.01, 0.02),
               mean_tokens=(-2.1, -3.0, -1.2, 1.0))
    row["rel_delta_mean_tokens"] = -16.2
    line = V.verdict_line(row, {"self_bleu_per_prompt": 0.02})
    assert line.startswith("λ=50: quality ↑ pass@1 +0.19 [+0.13, +0.25], quality_mean ")
    assert "diversity ↓ semantic_diversity_per_prompt -0.049 [-0.074, -0.027]" in line
    assert "at ceiling: self_bleu_per_prompt" in line
    assert "no detectable change: distinct_2_per_prompt (MDE ±0.04)" in line
    assert line.endswith("| replies 16% shorter")


def test_small_length_change_is_not_reported_and_no_deltas_no_line() -> None:
    row = _row(pass1=(0.0, -0.1, 0.1, 0.05), mean_tokens=(-0.5, -0.9, -0.1, 1.0))
    row["rel_delta_mean_tokens"] = -4.0
    assert "shorter" not in V.verdict_line(row)
    assert V.verdict_line({"lambda_": 1.0}) == ""


def test_a_delta_of_exactly_zero_with_no_variation_is_not_no_change() -> None:
    """Trial and baseline equal on every prompt: Δ 0, CI [0, 0], SE and MDE 0. No MDE can be
    sized from that, so it is "cannot tell", never "no detectable change (MDE ±0)"."""
    assert V.outcome(0.0, 0.0, 0.0, 0.0, "max") == V.NO_VARIATION
    assert V.outcome(0.0, 0.0, 0.0, math.nan, "min") == V.NO_VARIATION
    assert V.outcome(0.0, 0.0, 0.0, 0.0, "max", None, 0.03) == V.CEILING  # ceiling says more
    assert V.outcome(0.0, 0.0, 0.0, 0.02, "max") == V.NO_CHANGE  # a real MDE: [0, 0] is inside
    assert V.outcome(0.0, -0.01, 0.01, 0.0, "max") == V.CANNOT_TELL
    row = _row(pass1=(0.0, 0.0, 0.0, 0.0), quality_mean=(0.0, -0.01, 0.01, 0.03))
    line = V.verdict_line(row)
    assert "quality cannot tell (equal on every prompt, no variation): pass@1; no detectable " \
           "change: quality_mean (MDE ±0.03)" in line
    assert "MDE ±0)" not in line
