"""The study folder: every trial's config, training reports, generations and final result are
written as they happen, so nothing is lost when a trial, a node or the driver dies.

    <storage>/<study>/
      study.json            space, overrides and settings the study was started with
      optuna.db             the Optuna study (optuna-dashboard sqlite:///.../optuna.db)
      tune/                 Ray Tune's experiment (resumable with --resume)
      trials/<trial_id>/
        config.json         the trial's full TrialConfig
        train/              Ray Train run: checkpoints (adapter + optimizer + step)
        history.jsonl       every training report, appended as it arrives
        generations.parquet every evaluation sample with its scores
        result.json         final metrics + status (finished / error) when the trial ends
        status.json         what Tune decided (finished / early_stopped / error + reason)
      leaderboard.parquet   one row per trial
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

from polychromic.jsonutil import to_jsonable


def trial_dir(study_dir: Path, trial_id: str) -> Path:
    return Path(study_dir) / "trials" / trial_id


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (numpy types, bools and NaN handled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(to_jsonable(row)) + "\n")


def backfill_history(path: Path, reports: list[dict[str, Any]]) -> int:
    """Add to a trial's ``history.jsonl`` the training reports it lacks (by step and
    ``restored_from_step``), in step order; returns how many were added."""
    have = read_jsonl(path)
    seen = {(h.get("step"), h.get("restored_from_step")) for h in have}
    missing = [r for r in reports if (r.get("step"), r.get("restored_from_step")) not in seen]
    if not missing:
        return 0
    rows = sorted([*have, *missing], key=lambda h: (h.get("step") or 0,
                                                    h.get("restored_from_step") or 0))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(to_jsonable(r)) + "\n" for r in rows))
    tmp.replace(path)
    return len(missing)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    except FileNotFoundError:
        pass
    return rows


class StudyRecorder(Callback):
    """Tune callback (runs in the driver) that records what only Tune knows: training
    reports as they arrive, early stops and errors."""

    def __init__(self, study_dir: Path, remote: str | None = None) -> None:
        self.study_dir = Path(study_dir)
        self.remote = remote  # a URI study: mirror the records there as trials end
        self._sent: dict[str, tuple[int, int]] = {}

    def _mirror(self) -> None:
        if self.remote:
            from polychromic.storage import upload_records

            try:
                upload_records(self.study_dir, self.remote, self._sent)
            except OSError as err:  # the bucket is a copy; the study goes on without it
                import logging

                logging.getLogger(__name__).warning("could not mirror records to %s: %s",
                                                    self.remote, err)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "eval_samples" not in result:  # training report (final evaluation goes to result.json)
            keep = {k: v for k, v in result.items() if not isinstance(v, dict)}
            append_jsonl(trial_dir(self.study_dir, trial.trial_id) / "history.jsonl", keep)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tdir = trial_dir(self.study_dir, trial.trial_id)
        result = read_json(tdir / "result.json")
        status = result["status"] if result else "early_stopped"
        write_json(tdir / "status.json", {"status": status, "error": (result or {}).get("error", "")})
        self._mirror()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        message = ""
        if getattr(trial, "error_file", None) and os.path.exists(trial.error_file):
            lines = Path(trial.error_file).read_text().strip().splitlines()
            message = lines[-1] if lines else ""
        write_json(trial_dir(self.study_dir, trial.trial_id) / "status.json",
                   {"status": "error", "error": message[:1000] or "trial failed"})
        self._mirror()
