"""Reading and writing a study's records (the folder is drawn in ``polychromic.store.layout``):
atomic JSON files, append-only JSONL histories, and bounded readers that never fail on a
corrupt or hostile file. Every record is written as it happens, so nothing is lost when a
trial, a node or the driver dies.

Plain JSON and files only: reading a study (the leaderboard, the review, the HTML report)
imports no Ray. What only Tune knows is recorded by ``polychromic.tuning.recorder``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from polychromic.core.errors import ConfigError
from polychromic.core.inputs import MAX_RECORD_BYTES, read_bytes, read_text
from polychromic.core.jsonutil import to_jsonable


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

