"""Many trials, one baseline: control the chance of any false "significant" (pure numpy).

A study compares up to dozens of trials with the λ=0 baseline on each metric. At α = 0.05 per
comparison, 16 trials with no real effect give about one "significant" delta by chance. Holm's
step-down procedure (Holm 1979) controls the family-wise error rate at α over the m finished
non-baseline trials of a study, per metric, with no assumption on how the trials depend on
each other: sort the p-values p_(1) ≤ … ≤ p_(m); reject H_(i) while p_(i) ≤ α / (m − i + 1);
stop at the first that is not. Adjusted p-values: p̃_(i) = max_{j≤i} min(1, (m − j + 1) p_(j)).
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.05


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (NaN entries stay NaN and do not count towards m)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def holm_reject(p_values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Which hypotheses Holm rejects at family-wise level ``alpha`` (False for NaN)."""
    adj = holm_adjusted(p_values)
    return np.where(np.isfinite(adj), adj <= alpha, False)
