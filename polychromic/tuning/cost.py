"""What a study will cost, from measured seconds per step and per evaluated sample (pure).

    trial seconds  = n_div · t_div + (steps − n_div) · t_sft + samples · t_sample
    n_div          = ⌈steps / compute_every_n_steps⌉ (diversity steps 0, k, 2k, …)
    study seconds  = Σ over trials, the searched trials at ASHA's expected fraction of steps
    wall seconds   = study seconds / trials run at once
    GPU-hours      = study seconds × GPUs per trial / 3600;  $ = GPU-hours × price

ASHA's expected fraction is that of idealised successive halving: rungs at ``grace_period ·
η^i`` below ``max_t``; a fraction η^−i of the trials passes rung i. The λ=0 baseline and the
space's points always run to the end (ASHA never stops them here). Real ASHA is asynchronous
and stops fewer trials early in small studies (BENCHMARKS.md measured 38% of trial-steps saved
on 8 trials where this formula gives more), so this is the optimistic end; the estimate without
ASHA is printed beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def asha_fraction(max_t: int, grace_period: int, reduction_factor: float) -> float:
    """Expected fraction of ``max_t`` steps a searched trial trains under idealised ASHA."""
    if max_t <= 0 or grace_period <= 0 or reduction_factor <= 1 or grace_period >= max_t:
        return 1.0
    rungs, r = [], float(grace_period)
    while r < max_t:
        rungs.append(r)
        r *= reduction_factor
    steps, prev = 0.0, 0.0
    for i, rung in enumerate([*rungs, float(max_t)]):
        steps += (rung - prev) * reduction_factor ** (-i)
        prev = rung
    return steps / max_t


@dataclass(frozen=True)
class Estimate:
    """A study's cost estimate (seconds are trial-seconds unless named wall)."""

    trial_seconds: float
    study_seconds: float
    study_seconds_no_asha: float
    wall_seconds: float
    gpu_hours: float
    cost_usd: float
    concurrency: int
    asha_fraction: float


def estimate(*, steps: int, compute_every_n_steps: int, sft_seconds: float,
             diversity_seconds: float, eval_samples: int, sample_seconds: float,
             num_trials: int, full_trials: int, asha: float, concurrency: int,
             gpus_per_trial: float, price: float) -> Estimate:
    """The study's cost (see the module docstring); ``full_trials`` (baseline + points) run
    every step, the other ``num_trials − full_trials`` the fraction ``asha`` of them."""
    n_div = math.ceil(steps / compute_every_n_steps)
    train = n_div * diversity_seconds + (steps - n_div) * sft_seconds
    evaluation = eval_samples * sample_seconds
    trial = train + evaluation
    searched = max(0, num_trials - full_trials)
    full = min(num_trials, full_trials)
    study = full * trial + searched * (asha * train + evaluation)
    no_asha = num_trials * trial
    conc = max(1, concurrency)
    gpu_hours = study * gpus_per_trial / 3600.0
    return Estimate(trial, study, no_asha, study / conc, gpu_hours, gpu_hours * price, conc, asha)
