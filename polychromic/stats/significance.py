"""One notion of "significant" for every output (pure: a leaderboard row in, a mark out).

A study compares many trials with one baseline, so a delta whose 95% interval excludes 0 for
that comparison alone is "significant" by chance about once in 20 null trials. The verdict
therefore calls a change a gain or a loss only when it survives Holm's adjustment over the
study's trials (``significant_M``, ``polychromic.stats.multiplicity``). Every output (terminal,
HTML, model card, csv/json columns, Optuna attributes) marks a delta with :func:`mark`:

* ``*``: significant after the adjustment: exactly the deltas the verdict calls gain or loss;
* ``†``: significant for this comparison alone (``significant_unadjusted_M``: its 95% CI
  excludes 0) but not after the adjustment: not a claim of the study;
* nothing otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from polychromic.stats.verdict import GAIN, LOSS, metric_outcome

HOLM, ALONE = "*", "†"
#: the legend every output prints beside its marks
LEGEND = ("* = significant after Holm's adjustment over the trials (the verdict's gain/loss); "
          "† = 95% CI excludes 0 for this comparison alone (no claim)")


def _true(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    try:
        return bool(value)
    except (TypeError, ValueError):
        return False


def mark(row: Mapping[str, Any], metric: str) -> str:
    """``*``, ``†`` or "" for ``metric``'s delta in ``row`` (see the module docstring)."""
    if metric_outcome(row, metric) in (GAIN, LOSS):
        return HOLM
    return ALONE if _true(row.get(f"significant_unadjusted_{metric}")) else ""
