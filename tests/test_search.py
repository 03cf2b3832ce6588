"""ASHA as the study uses it: early stopping works, but never on the λ=0 baseline and never on
a trial that has finished training (it still has to be evaluated)."""

from __future__ import annotations

from ray.tune.schedulers import TrialScheduler

from polychromic.tuning.search import KeepBaselineASHA


class FakeTrial:
    """The two attributes ASHA reads from a Tune trial."""

    def __init__(self, trial_id: str, lambda_: float) -> None:
        self.trial_id = trial_id
        self.config = {"lambda_": lambda_}


def _asha() -> KeepBaselineASHA:
    return KeepBaselineASHA(time_attr="step", metric="poly_score", mode="max", max_t=8,
                            grace_period=2, reduction_factor=2)


def test_weak_trial_is_stopped_at_a_rung() -> None:
    asha = _asha()
    good, weak = FakeTrial("good", 0.5), FakeTrial("weak", 1.0)
    for t in (good, weak):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, good, {"step": 2, "poly_score": 1.0}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, weak, {"step": 2, "poly_score": 0.0}) == TrialScheduler.STOP


def test_baseline_and_finished_training_are_never_stopped() -> None:
    asha = _asha()
    good, base, done = FakeTrial("good", 0.5), FakeTrial("base", 0.0), FakeTrial("done", 2.0)
    for t in (good, base, done):
        asha.on_trial_add(None, t)
    asha.on_trial_result(None, good, {"step": 2, "poly_score": 1.0})
    assert asha.on_trial_result(None, base, {"step": 2, "poly_score": 0.0}) == TrialScheduler.CONTINUE
    # plain ASHA returns STOP at max_t: the trial would lose its evaluation
    assert asha.on_trial_result(None, done, {"step": 8, "poly_score": 0.0}) == TrialScheduler.CONTINUE
