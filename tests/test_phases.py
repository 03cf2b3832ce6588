"""``phase_seconds`` (polychromic.core.phases): a trial's wall time split into the phases it
went through, from clock readings; the phases add up to the wall time."""

from __future__ import annotations

import math
import os

import pytest

from polychromic.core.phases import EVALUATION_PHASES, PHASES, describe, trial_phases

EVALUATION = {"evaluation_startup": 9.0, "generation": 6.0, "scoring": 2.5, "writing": 0.5}


def test_phases_split_the_wall_time_and_add_up() -> None:
    # started at 100: worker in the loop at 112, 3 s to load, Train run back at 140,
    # evaluation 18 s, headroom 4 s, wall 64 s
    out = trial_phases(64.0, 100.0, 112.0, 3.0, 140.0, EVALUATION, 4.0)
    assert list(out) == list(PHASES)
    assert out["worker_start"] == 12.0 and out["model_load"] == 3.0 and out["training"] == 25.0
    assert {k: out[k] for k in EVALUATION_PHASES} == EVALUATION
    assert out["headroom"] == 4.0
    assert out["other"] == pytest.approx(64.0 - 40.0 - 18.0 - 4.0)
    assert sum(out.values()) == pytest.approx(64.0)


def test_an_evaluation_in_the_train_worker_is_taken_out_of_training() -> None:
    # the same clocks, but the 18 s of evaluation ran inside the Train run (eval_placement:
    # worker): training is the 25 s less those 18, and the phases still add up
    out = trial_phases(46.0, 100.0, 112.0, 3.0, 140.0, EVALUATION, 4.0, evaluated_in_fit=True)
    assert out["training"] == pytest.approx(7.0)
    assert {k: out[k] for k in EVALUATION_PHASES} == EVALUATION
    assert out["other"] == pytest.approx(46.0 - 22.0 - 18.0 - 4.0)
    assert sum(out.values()) == pytest.approx(46.0)
    # an evaluation longer than the Train run's remainder (clocks of two nodes) stops at 0
    long = {**EVALUATION, "generation": 60.0}
    assert trial_phases(90.0, 100.0, 112.0, 3.0, 140.0, long, evaluated_in_fit=True)[
        "training"] == 0.0


def test_a_worker_clock_ahead_or_behind_never_makes_a_phase_negative() -> None:
    behind = trial_phases(50.0, 100.0, 95.0, 3.0, 130.0)  # worker clock 5 s behind
    assert behind["worker_start"] == 0.0 and behind["training"] == 27.0
    ahead = trial_phases(50.0, 100.0, 150.0, 3.0, 130.0)  # "entered" after the run ended
    assert ahead["worker_start"] == 30.0 and ahead["model_load"] == 0.0
    assert ahead["training"] == 0.0
    for out in (behind, ahead):
        assert all(out[k] >= 0 for k in PHASES if k != "other" and out[k] is not None)
        assert sum(v for v in out.values() if v is not None) == pytest.approx(50.0)


def test_without_a_worker_report_the_train_run_is_one_phase_and_unknowns_are_none() -> None:
    out = trial_phases(40.0, 100.0, None, None, 130.0, {"generation": None, "scoring": 2.0})
    assert out["worker_start"] is None and out["model_load"] is None
    assert out["training"] == 30.0
    assert out["generation"] is None and out["evaluation_startup"] is None
    assert out["scoring"] == 2.0
    assert out["other"] == pytest.approx(8.0)
    # a NaN load time (a report before loading finished) is unknown, not a number
    assert trial_phases(40.0, 100.0, 110.0, math.nan, 130.0)["model_load"] is None


def test_describe_names_every_known_phase_in_order() -> None:
    line = describe(trial_phases(64.0, 100.0, 112.0, 3.0, 140.0, EVALUATION, 4.0))
    assert line.startswith("worker start 12.0 s · model load 3.0 s · training 25.0 s · "
                           "evaluation start-up 9.0 s · generation 6.0 s")
    assert line.endswith("headroom 4.0 s · other 2.0 s")
    assert describe({"worker_start": None, "training": 1.25, "bogus": 3}) == "training 1.2 s"


def test_the_train_controller_polls_its_workers_often_unless_the_user_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Train run's wait after a trial's last report is up to one controller poll
    (BENCHMARKS): the trial shortens Ray's 2 s default under the name Ray Train V2 reads and
    propagates to its controller (a renamed variable in a Ray upgrade fails here)."""
    from ray.train.v2._internal.constants import (
        DEFAULT_HEALTH_CHECK_INTERVAL_S,
        get_env_vars_to_propagate,
    )

    from polychromic.tuning.trial import TRAIN_POLL_ENV, TRAIN_POLL_SECONDS, set_train_poll

    assert 0 < float(TRAIN_POLL_SECONDS) < DEFAULT_HEALTH_CHECK_INTERVAL_S
    monkeypatch.setenv(TRAIN_POLL_ENV, "1")  # so that the test's change is undone after it
    monkeypatch.delenv(TRAIN_POLL_ENV)
    set_train_poll(os.environ)
    assert get_env_vars_to_propagate()[TRAIN_POLL_ENV] == TRAIN_POLL_SECONDS
    mine = {TRAIN_POLL_ENV: "5"}
    set_train_poll(mine)
    assert mine == {TRAIN_POLL_ENV: "5"}


def test_the_baselines_encoder_is_loaded_beside_its_training_and_reused_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The headroom sets after the baseline's evaluation take the encoder the trial's process
    loaded in the background while it trained (BENCHMARKS, "Where a trial's time goes")."""
    from polychromic.metrics import encoder
    from polychromic.tuning.trial import prewarm_encoder

    monkeypatch.setattr(encoder, "_CACHE", {})  # none loaded yet in this process
    thread = prewarm_encoder()
    thread.join(timeout=300)
    assert not thread.is_alive()
    loaded = list(encoder._CACHE.values())
    assert loaded and encoder.get_encoder() in loaded  # the same object: no second load
