"""Searcher that always runs the λ=0 baseline first, then lets Optuna search.

The baseline (λ = 0) usually lies outside the searched distribution (λ is log-uniform over
(0.01, 10]), so it cannot be an Optuna ``points_to_evaluate`` entry without corrupting TPE's
log-space model. This wrapper issues it itself and keeps its result away from Optuna. Optuna
sees only final results (ASHA does the early stopping), so intermediate reports need not carry
the objective.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher


class BaselineFirst(Searcher):
    def __init__(self, inner: Searcher, baseline: dict[str, Any]) -> None:
        super().__init__(metric=None, mode=None)
        self.inner = inner
        self.baseline = dict(baseline)
        self.baseline_trial: str | None = None

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # the inner searcher was built with its own space, metric and mode

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.baseline_trial is None:
            self.baseline_trial = trial_id
            return dict(self.baseline)
        config = self.inner.suggest(trial_id)
        record_trial_id(self.inner, trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate results go to ASHA, not to Optuna."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Forward to Optuna, telling it a trial without every objective (stopped early by
        ASHA → PRUNED; failed, or NaN metrics → FAIL) instead of a value it would reject."""
        if trial_id == self.baseline_trial:
            return
        metrics = self.inner.metric if isinstance(self.inner.metric, list) else [self.inner.metric]
        values = [(result or {}).get(m) for m in metrics]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            error = error or (result or {}).get("status") == "error"
            result = None
        self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"baseline_trial": self.baseline_trial, "baseline": self.baseline,
                         "inner": self.inner.__dict__.copy()}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.baseline_trial = state["baseline_trial"]
        self.baseline = state["baseline"]
        self.inner.__dict__.update(state["inner"])
        fail_abandoned_optuna_trials(self.inner)


def record_trial_id(searcher: Any, trial_id: str) -> None:
    """Write Tune's trial id on the Optuna trial just asked for it (user attribute
    ``trial_id``), so optuna.db names the trial folder each Optuna trial is
    (``polychromic.review.optuna_dashboard`` adds the leaderboard to it at the end of a study)."""
    trial = getattr(searcher, "_ot_trials", {}).get(trial_id)
    if trial is None:
        return
    try:
        trial.set_user_attr("trial_id", trial_id)
    except Exception as err:  # a bookkeeping attribute must never stop the search
        import logging

        logging.getLogger(__name__).warning("could not record trial id %s in optuna.db: %s",
                                            trial_id, err)


def fail_abandoned_optuna_trials(searcher: Any) -> list[int]:
    """Mark FAIL the Optuna trials a killed driver asked for after its last snapshot.

    The restored searcher does not know them, so they would stay RUNNING in optuna.db forever;
    the configuration they held is suggested again (and continues from the abandoned trial's
    checkpoint, see ``polychromic.tuning.resume``): its parameters are enqueued again, so the next ask
    returns exactly that configuration. Returns their Optuna trial numbers."""
    import optuna

    study = getattr(searcher, "_ot_study", None)
    if study is None:
        return []
    known = {t._trial_id for t in getattr(searcher, "_ot_trials", {}).values()}
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t._trial_id in known:
            continue
        study._storage.set_trial_user_attr(t._trial_id, "abandoned",
                                           "asked after the driver's last snapshot")
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"continues": t.number})
        failed.append(t.number)
    return failed


class KeepBaselineASHA(ASHAScheduler):
    """ASHA that never stops the λ=0 baseline (every delta in the leaderboard needs it) and
    never stops a trial that has finished training (plain ASHA stops every trial at ``max_t``,
    which here is the last training report: the trial would never be evaluated)."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if float(trial.config.get("lambda_", 1.0)) == 0.0:
            return TrialScheduler.CONTINUE
        if result.get(self._time_attr, 0) >= self._max_t:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)
