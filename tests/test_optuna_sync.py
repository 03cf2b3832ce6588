"""polychromic.review.optuna_dashboard: the leaderboard written into a real Optuna SQLite study whose trials
match the tiny study of conftest.py, read back with ``optuna.load_study`` (no Ray cluster)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from conftest import write_tiny_study

from polychromic.metrics.aggregate import HEADLINE
from polychromic.review.optuna_dashboard import sync_optuna
from polychromic.review.study import load_study

LAMBDA = optuna.distributions.FloatDistribution(0.01, 10.0, log=True)
State = optuna.trial.TrialState


def make_optuna_study(study_dir: Path) -> optuna.Study:
    """What the searcher leaves: one Optuna trial per non-baseline Tune trial, some with the
    recorded Tune id (``BaselineFirst.suggest``), some without (older studies: matched by λ)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / 'optuna.db'}")
    study = optuna.create_study(study_name=study_dir.name, storage=storage,
                                directions=["maximize", "maximize"])
    for tid, lam, state, values, recorded in (
        ("aaaa1111", 0.1, State.COMPLETE, [0.55, 0.45], True),
        ("bbbb2222", 1.0, State.COMPLETE, [0.80, 0.30], False),
        ("cccc3333", 3.0, State.COMPLETE, [0.70, 0.30], True),
        ("dddd4444", 10.0, State.FAIL, None, False),
        ("eeee5555", 0.5, State.PRUNED, None, True),
    ):
        study.add_trial(optuna.trial.create_trial(
            params={"lambda_": lam}, distributions={"lambda_": LAMBDA}, values=values,
            state=state, user_attrs={"trial_id": tid} if recorded else {}))
    # an Optuna trial of a killed driver (polychromic.tuning.search.fail_abandoned_optuna_trials)
    study.add_trial(optuna.trial.create_trial(
        params={"lambda_": 2.0}, distributions={"lambda_": LAMBDA}, state=State.FAIL,
        user_attrs={"abandoned": "asked after the driver's last snapshot"}))
    storage.engine.dispose()
    return study


def test_sync_writes_ids_metrics_deltas_and_verdicts(tmp_path: Path) -> None:
    study_dir = write_tiny_study(tmp_path)
    make_optuna_study(study_dir)
    frame = load_study(str(study_dir)).frame.set_index("trial_id")
    assert sync_optuna(study_dir) == 5
    assert sync_optuna(study_dir) == 5  # idempotent: attributes replaced, not duplicated

    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / 'optuna.db'}")
    loaded = optuna.load_study(study_name="tiny", storage=storage)
    by_id = {t.user_attrs.get("trial_id"): t for t in loaded.trials}
    assert set(by_id) == {"aaaa1111", "bbbb2222", "cccc3333", "dddd4444", "eeee5555", None}
    assert by_id["bbbb2222"].params["lambda_"] == 1.0  # matched by its parameters
    for tid in ("aaaa1111", "bbbb2222", "cccc3333"):  # every finished trial
        attrs, row = by_id[tid].user_attrs, frame.loc[tid]
        assert attrs["status"] == "finished"
        assert attrs["verdict"] == row["verdict"] and attrs["verdict"].startswith("λ=")
        for m in HEADLINE:
            if math.isfinite(float(row[m])):
                assert attrs[m] == pytest.approx(float(row[m]))
        for key in ("delta_pass@1", "delta_pass@1_ci_low", "delta_pass@1_ci_high",
                    "delta_semantic_diversity_per_prompt_ci_high", "semantic_diversity"):
            assert attrs[key] == pytest.approx(float(row[key])), key
        assert isinstance(attrs["significant_pass@1"], bool)
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in attrs.values())
    assert by_id["dddd4444"].user_attrs["status"].startswith("failed: ")
    assert "pass@1" not in by_id["dddd4444"].user_attrs  # no value: left out, not NaN
    assert by_id["eeee5555"].user_attrs["status"] == "early-stopped"
    assert "abandoned" in by_id[None].user_attrs and "status" not in by_id[None].user_attrs
    # the baseline is not an Optuna trial: its metrics are on the study
    assert loaded.user_attrs["baseline_trial_id"] == "base0000"
    assert loaded.user_attrs["baseline_pass@1"] == pytest.approx(0.40)
    assert loaded.user_attrs["baseline_semantic_diversity"] == pytest.approx(0.50)
    assert by_id["aaaa1111"].values == [0.55, 0.45]  # the search's own record is untouched
    storage.engine.dispose()


def test_sync_without_optuna_db_changes_nothing(tmp_path: Path) -> None:
    study_dir = write_tiny_study(tmp_path)
    assert sync_optuna(study_dir) == 0
    assert not (study_dir / "optuna.db").exists()
    assert sync_optuna(tmp_path / "missing") == 0


def test_suggest_records_the_tune_trial_id(tmp_path: Path) -> None:
    from ray.tune.search.optuna import OptunaSearch

    from polychromic.tuning.search import BaselineFirst

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    inner = OptunaSearch(space={"lambda_": LAMBDA}, metric="pass@1", mode="max",
                         sampler=optuna.samplers.TPESampler(seed=0), study_name="s",
                         storage=storage)
    searcher = BaselineFirst(inner, {"lambda_": 0.0})
    assert searcher.suggest("t0") == {"lambda_": 0.0}  # the baseline: not an Optuna trial
    assert "lambda_" in searcher.suggest("t1")
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.user_attrs.get("trial_id") for t in trials] == ["t1"]
