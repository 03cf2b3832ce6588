"""Reading and writing a study's records (the folder is drawn in ``polychromic.layout``):
atomic JSON files, append-only JSONL histories, and bounded readers that never fail on a
corrupt or hostile file. Every record is written as it happens, so nothing is lost when a
trial, a node or the driver dies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

from polychromic import layout
from polychromic.jsonutil import to_jsonable


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (numpy types, bools and NaN handled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1, sort_keys=True))
    tmp.replace(path)


def load_json(path: Path) -> tuple[Any, str | None]:
    """``(value, None)`` for a JSON file; ``(None, None)`` when there is no file; ``(None,
    why)`` when there is one but it is not a readable JSON document: not a regular file (a
    folder, FIFO or device is never opened), over ``MAX_RECORD_BYTES``, not UTF-8, or invalid
    or too deeply nested JSON. Reading is bounded, so a hostile study folder cannot hang it."""
    from polychromic.errors import ConfigError
    from polychromic.inputs import MAX_RECORD_BYTES, read_text

    path = Path(path)
    try:
        if not os.path.lexists(path):
            return None, None
        text = read_text(path, path.name, str(path), MAX_RECORD_BYTES)
    except ConfigError as err:
        return None, err.message
    except (OSError, ValueError) as err:  # a parent that is a file, an over-long name
        return None, f"cannot read: {getattr(err, 'strerror', None) or err}"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at line {err.lineno})"
    except (ValueError, RecursionError):
        return None, "invalid JSON (nested too deeply)"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON value in ``path``, or None when it is missing or unreadable (see
    :func:`load_json` for a reader that says why)."""
    return load_json(path)[0]


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
    """The JSON objects of a JSONL file, one per line; a line cut by a crash, a non-UTF-8 or
    too deeply nested line and a line that is not an object are skipped. A missing,
    unreadable or over-large (``MAX_HISTORY_BYTES``) file gives ``[]``."""
    from polychromic.errors import ConfigError
    from polychromic.inputs import read_bytes

    path = Path(path)
    try:
        if not os.path.lexists(path):
            return []
        data = read_bytes(path, path.name, str(path), MAX_HISTORY_BYTES)
    except (ConfigError, OSError, ValueError):
        return []
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            continue  # a line cut by a crash, or garbage
        if isinstance(row, dict):
            rows.append(row)
    return rows


#: the largest ``history.jsonl`` read (about a million training reports)
MAX_HISTORY_BYTES = 1 << 30

#: key (value ``True``) of the trial's final report, its evaluation (also its result.json);
#: every other report a trial sends to Tune is a training report
FINAL_EVALUATION = "final_evaluation"


def is_final_evaluation(report: dict[str, Any]) -> bool:
    """Whether a Tune report is the trial's final evaluation rather than a training report.
    Reports of studies written before the marker are recognised by the evaluation's
    ``eval_samples``."""
    return report.get(FINAL_EVALUATION) is True or "eval_samples" in report


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
        if not is_final_evaluation(result):  # training report (the evaluation: result.json)
            keep = {k: v for k, v in result.items() if not isinstance(v, dict)}
            append_jsonl(layout.trial_dir(self.study_dir, trial.trial_id) / layout.HISTORY, keep)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tdir = layout.trial_dir(self.study_dir, trial.trial_id)
        result = read_json(tdir / layout.RESULT)
        status = result["status"] if result else "early_stopped"
        write_json(tdir / layout.STATUS, {"status": status, "error": (result or {}).get("error", "")})
        self._mirror()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        message = ""
        if getattr(trial, "error_file", None) and os.path.exists(trial.error_file):
            lines = Path(trial.error_file).read_text().strip().splitlines()
            message = lines[-1] if lines else ""
        write_json(layout.trial_dir(self.study_dir, trial.trial_id) / layout.STATUS,
                   {"status": "error", "error": message[:1000] or "trial failed"})
        self._mirror()
