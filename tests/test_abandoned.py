"""Trials a killed driver started after its last snapshot (polychromic.tuning.resume): marked
abandoned, adopted once by a new trial with the same configuration, never in the
leaderboard. The end-to-end path is in test_resume.py; these pin the rules on real folders."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import optuna
import pandas as pd

from polychromic.review.leaderboard import build_leaderboard
from polychromic.store.checkpoint import latest_checkpoint
from polychromic.store.records import append_jsonl, read_json, read_jsonl, write_json
from polychromic.tuning.resume import adopt, mark_abandoned
from polychromic.tuning.search import fail_abandoned_optuna_trials

CONFIG = {"lambda_": 0.5, "steps": 4, "model": "tiny", "seed": 0}


def _snapshot(tune_dir: Path, ids: list[str]) -> None:
    tune_dir.mkdir(parents=True, exist_ok=True)
    data = {"trial_data": [[json.dumps({"trial_id": i}), "{}"] for i in ids]}
    (tune_dir / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(data))


def _trial(study: Path, tid: str, config: dict, steps_done: int = 0, result: bool = False) -> Path:
    tdir = study / "trials" / tid
    write_json(tdir / "config.json", config)
    for step in range(2, steps_done + 1, 2):
        ckpt = tdir / "train" / f"checkpoint_2026-01-01_00-00-0{step}.000000"
        (ckpt / "adapter").mkdir(parents=True)
        (ckpt / "adapter" / "adapter_model.safetensors").write_bytes(b"x")
        (ckpt / "state.pt").write_bytes(b"x")
        (ckpt / "history.json").write_text(json.dumps([{"step": s} for s in range(2, step + 1, 2)]))
        append_jsonl(tdir / "history.jsonl", {"step": step})
    if result:
        write_json(tdir / "result.json", {"trial_id": tid, "status": "finished", "pass@1": 0.25,
                                          "wall_seconds": 12.0})
        pd.DataFrame({"text": [tid]}).to_parquet(tdir / "generations.parquet")
    return tdir


def test_unknown_trials_are_marked_and_adopted_once(tmp_path: Path) -> None:
    study = tmp_path / "s"
    _trial(study, "known0", {**CONFIG, "lambda_": 0.0}, 4, result=True)
    _trial(study, "lost_a", CONFIG, 2)
    _trial(study, "lost_b", {**CONFIG, "lambda_": 2.0}, 4, result=True)
    _snapshot(study / "tune", ["known0"])

    assert mark_abandoned(study, study / "tune") == ["lost_a", "lost_b"]
    assert mark_abandoned(study, study / "tune") == []  # idempotent
    assert read_json(study / "trials" / "known0" / "status.json") is None

    # a different configuration adopts nothing
    assert adopt(study, "new_x", {**CONFIG, "lambda_": 0.7}) is None
    assert not (study / "trials" / "new_x").exists()
    # the same configuration takes over the newest checkpoint and the history, once
    got = adopt(study, "new_a", dict(CONFIG))
    assert got is not None and got[0] == "lost_a"
    assert got[1] is not None and got[1].endswith("-02.000000")
    assert [h["step"] for h in read_jsonl(study / "trials" / "new_a" / "history.jsonl")] == [2]
    assert read_json(study / "trials" / "lost_a" / "status.json")["adopted_by"] == "new_a"
    assert adopt(study, "new_a2", dict(CONFIG)) is None
    # a finished abandoned trial hands over its result and generations: nothing is redone
    got = adopt(study, "new_b", {**CONFIG, "lambda_": 2.0})
    assert got is not None and got[0] == "lost_b"
    moved = read_json(study / "trials" / "new_b" / "result.json")
    assert moved["trial_id"] == "new_b" and moved["adopted_from"] == "lost_b"
    assert pd.read_parquet(study / "trials" / "new_b" / "generations.parquet")["text"].tolist() == ["lost_b"]

    (study / "trials" / "known0" / "generations.parquet").unlink()  # no deltas in this test
    write_json(study / "trials" / "new_a" / "config.json", CONFIG)
    write_json(study / "trials" / "new_b" / "config.json", {**CONFIG, "lambda_": 2.0})
    df = build_leaderboard(study)
    assert sorted(df["trial_id"]) == ["known0", "new_a", "new_b"]


def test_concurrent_adopters_claim_one_folder_each(tmp_path: Path) -> None:
    study = tmp_path / "s"
    _trial(study, "lost", CONFIG, 2)
    _snapshot(study / "tune", [])
    mark_abandoned(study, study / "tune")
    got: dict[str, object] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, adopt(study, f"n{i}", CONFIG)))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(v is not None for v in got.values()) == 1


def test_latest_checkpoint_skips_one_cut_short(tmp_path: Path) -> None:
    tdir = _trial(tmp_path, "t", CONFIG, 4)
    cut = tdir / "train" / "checkpoint_2026-01-01_00-00-09.000000"
    (cut / "adapter").mkdir(parents=True)  # the copy was killed before its files arrived
    assert str(latest_checkpoint(tdir / "train")).endswith("-04.000000")
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_no_snapshot_marks_nothing(tmp_path: Path) -> None:
    _trial(tmp_path / "s", "t", CONFIG, 2)
    assert mark_abandoned(tmp_path / "s", tmp_path / "s" / "tune") == []


def test_optuna_trials_asked_after_the_snapshot_fail_and_come_back(tmp_path: Path) -> None:
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    searcher = OptunaSearch(space={"lambda_": optuna.distributions.FloatDistribution(0.01, 10, log=True)},
                            metric="m", mode="max", study_name="s", storage=storage,
                            sampler=optuna.samplers.TPESampler(seed=0))
    kept = searcher.suggest("t1")
    lost = searcher.suggest("t2")
    searcher._ot_trials.pop("t2")  # what a searcher restored from before "t2" knows
    assert fail_abandoned_optuna_trials(searcher) == [1]
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert trials[0].state == optuna.trial.TrialState.RUNNING and kept is not None
    assert trials[1].state == optuna.trial.TrialState.FAIL and "abandoned" in trials[1].user_attrs
    # the same configuration is asked next
    assert searcher.suggest("t3") == lost


def test_history_gaps_are_filled_from_the_checkpoint(tmp_path: Path) -> None:
    """A driver killed before it recorded a report: the final checkpoint's history fills the
    gap, in step order, without duplicating what history.jsonl has."""
    from polychromic.store.records import backfill_history

    path = tmp_path / "history.jsonl"
    append_jsonl(path, {"step": 4, "restored_from_step": 2, "trial_id": "t"})
    saved = [{"step": 2, "quality_loss": 1.0}, {"step": 4, "restored_from_step": 2}]
    assert backfill_history(path, saved) == 1
    rows = read_jsonl(path)
    assert [(r["step"], r.get("restored_from_step")) for r in rows] == [(2, None), (4, 2)]
    assert rows[1]["trial_id"] == "t"  # the row the driver wrote is kept as it was
    assert backfill_history(path, saved) == 0


def test_only_training_reports_go_to_history(tmp_path: Path) -> None:
    """The final evaluation (marked, or, in studies written before the marker, carrying
    ``eval_samples``) goes to result.json, never to history.jsonl."""
    from types import SimpleNamespace

    from polychromic.store.records import FINAL_EVALUATION
    from polychromic.tuning.recorder import StudyRecorder

    recorder, trial = StudyRecorder(tmp_path), SimpleNamespace(trial_id="t")
    for report in ({"step": 2, "quality_loss": 1.0}, {"step": 2, FINAL_EVALUATION: True},
                   {"step": 2, "eval_samples": 10}):
        recorder.on_trial_result(0, [], trial, report)
    assert read_jsonl(tmp_path / "trials" / "t" / "history.jsonl") == [
        {"step": 2, "quality_loss": 1.0}]
