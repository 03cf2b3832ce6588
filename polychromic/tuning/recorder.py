"""The Tune callback that writes into the study folder what only Tune knows.

A trial writes its own config, result and generations (``polychromic.tuning.trial``); training
reports as they arrive, early stops and errors reach only the Tune driver, which records them
here with the helpers of ``polychromic.store.records``, in the paths of ``polychromic.store.layout``. It
lives apart from ``records`` so that reading a study never imports Ray. The same events feed
the quiet run's progress display, when there is one (``polychromic.tuning.progress``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

from polychromic.store import layout
from polychromic.store.records import append_jsonl, is_final_evaluation, read_json, write_json
from polychromic.store.remote import upload_records
from polychromic.tuning import progress

log = logging.getLogger(__name__)


class StudyRecorder(Callback):
    """Tune callback (runs in the driver) that records what only Tune knows: training
    reports as they arrive, early stops and errors."""

    def __init__(self, study_dir: Path, storage_uri: str | None = None) -> None:
        self.study_dir = Path(study_dir)
        self.storage_uri = storage_uri  # a URI study: mirror the records there as trials end
        self._sent: dict[str, tuple[int, int]] = {}

    def _mirror(self) -> None:
        if self.storage_uri:

            try:
                upload_records(self.study_dir, self.storage_uri, self._sent)
            except OSError as err:  # the bucket is a copy; the study goes on without it
                log.warning("could not mirror records to %s: %s", self.storage_uri, err)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        progress.on_event("restored", [(t.trial_id, str(t.status)) for t in trials])

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # a resumed experiment with nothing left to run ends without a step
        progress.on_event("restored", [(t.trial_id, str(t.status)) for t in trials])

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        progress.on_event("started", trial.trial_id, dict(getattr(trial, "config", {}) or {}))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        progress.on_event("recovering", trial.trial_id, _last_line(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        final = is_final_evaluation(result)
        if not final:  # training report (the evaluation: result.json)
            keep = {k: v for k, v in result.items() if not isinstance(v, dict)}
            append_jsonl(layout.trial_dir(self.study_dir, trial.trial_id) / layout.HISTORY, keep)
        progress.on_event("reported", trial.trial_id, result, final)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tdir = layout.trial_dir(self.study_dir, trial.trial_id)
        result = read_json(tdir / layout.RESULT)
        status = result["status"] if result else "early_stopped"
        error = (result or {}).get("error", "")
        write_json(tdir / layout.STATUS, {"status": status, "error": error})
        self._mirror()
        progress.on_event("ended", trial.trial_id, status, str(error or ""))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        message = _last_line(trial)
        write_json(layout.trial_dir(self.study_dir, trial.trial_id) / layout.STATUS,
                   {"status": "error", "error": message[:1000] or "trial failed"})
        self._mirror()
        progress.on_event("ended", trial.trial_id, "error", message)


def _last_line(trial: Any) -> str:
    """The last line of a failed trial's error file (the exception), or ""."""
    path = getattr(trial, "error_file", None)
    if not path or not os.path.exists(path):
        return ""
    lines = Path(path).read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""
