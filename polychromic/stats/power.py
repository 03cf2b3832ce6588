"""How large a change a study can detect: the minimum detectable effect (MDE).

For a trial − baseline difference whose estimate is approximately normal with standard error
SE (here: the standard deviation of the paired-bootstrap differences over prompts, see
``polychromic.stats.bootstrap``), a two-sided test at level α detects a true difference δ with
probability ≈ Φ(|δ|/SE − z_{1−α/2}). Setting that to the wanted power 1 − β gives

    MDE = (z_{1−α/2} + z_{1−β}) · SE        (α = 0.05, 1 − β = 0.8: MDE ≈ 2.80 · SE)

A true effect of ±MDE is found significant in 80% of repeated studies of the same size
(``tests/test_power.py`` checks this by simulation). A 95% interval lying inside ±MDE therefore
means "no change this study could have seen"; an interval reaching past it means "cannot
tell".

Before a study (``study/run.py --plan``) there is no trial to pair with, so the SE of a future
delta is estimated from the base model's own sampling noise: each prompt's samples are split
into two halves (even / odd sample index), the halves are compared like two trials on the same
prompts (paired bootstrap), and the SE of that null difference at n/2 samples per prompt is
scaled to n samples by 1/√2. This counts sampling noise only: a real effect that differs from
prompt to prompt, and training-seed noise, add to it, so the planned MDE is optimistic; the
MDE reported after the study comes from the observed paired differences.
"""

from __future__ import annotations

import math
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8


def z_factor(alpha: float = ALPHA, power: float = POWER) -> float:
    """z_{1−α/2} + z_{power} (≈ 2.8016 for the defaults)."""
    nd = NormalDist()
    return nd.inv_cdf(1 - alpha / 2) + nd.inv_cdf(power)


def mde(se: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable effect (absolute, in the metric's units) for a delta with SE ``se``;
    NaN when the SE is unknown."""
    if not (isinstance(se, (int, float)) and math.isfinite(se)) or se < 0:
        return float("nan")
    return z_factor(alpha, power) * float(se)


def power_at(effect: float, se: float, alpha: float = ALPHA) -> float:
    """Probability that a two-sided level-α test finds a true ``effect`` significant (normal
    approximation, both tails)."""
    if not se > 0:
        return float("nan")
    nd = NormalDist()
    z = nd.inv_cdf(1 - alpha / 2)
    shift = abs(effect) / se
    return (1 - nd.cdf(z - shift)) + nd.cdf(-z - shift)
