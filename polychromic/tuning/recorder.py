"""The Tune callback that writes into the study folder what only Tune knows.

A trial writes its own config, result and generations (``polychromic.tuning.trial``); training
reports as they arrive, early stops and errors reach only the Tune driver, which records them
here with the helpers of ``polychromic.store.records``, in the paths of ``polychromic.store.layout``. It
lives apart from ``records`` so that reading a study never imports Ray.
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
