"""Trials that a killed driver started after its last snapshot, and how a resumed study keeps
their work.

Ray Tune snapshots the experiment (trials, searcher, scheduler) every few seconds
(``TUNE_GLOBAL_CHECKPOINT_S``, set by ``polychromic.tuning.runner``). A driver killed between a trial's
start and the next snapshot leaves that trial's folder behind, unknown to the restored
experiment: Tune restarts from a searcher that has not yet suggested it, so the same
configuration comes back under a new trial id. Without this module the old folder would
stay ``running`` forever (a third leaderboard row for two trials) and the new trial would
train from step 0.

On ``--resume``, ``mark_abandoned`` marks each such folder ``abandoned`` before Tune starts.
When a new trial has exactly the configuration of an abandoned one, ``adopt`` claims it (once,
atomically) and hands over its newest complete checkpoint and its training history, so the
new trial continues where the old one stopped. Abandoned folders stay on disk and out of the
leaderboard.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from polychromic.core.errors import Interrupted
from polychromic.core.jsonutil import to_jsonable
from polychromic.store import layout, remote
from polychromic.store.checkpoint import latest_checkpoint
from polychromic.store.records import append_jsonl, read_json, read_jsonl, write_json

log = logging.getLogger(__name__)
ABANDONED = "abandoned"


def snapshot_trial_ids(tune_dir: str | Path) -> set[str] | None:
    """Trial ids in Tune's newest experiment snapshot (a folder or a URI), or None when
    there is none."""
    names = [n for n in remote.list_dir(str(tune_dir)) if n.startswith(layout.TUNE_SNAPSHOT_PREFIX)]
    text = remote.read_text(remote.join(str(tune_dir), names[-1])) if names else None
    if text is None:
        return None
    data = json.loads(text)
    return {json.loads(state)["trial_id"] for state, _ in data.get("trial_data", [])}


def mark_abandoned(study_dir: Path, tune_dir: str | Path, role: str = "search") -> list[str]:
    """Mark every trial folder of ``role`` (the study's own trials, or ``confirm`` runs: each
    has its own Tune experiment) that Tune's snapshot does not know as abandoned (finished or
    not: the restored searcher will suggest its configuration again); returns their ids."""
    known = snapshot_trial_ids(tune_dir)
    trials = layout.trials_dir(study_dir)
    if known is None or not trials.is_dir():
        return []
    marked = []
    for tdir in sorted(trials.iterdir()):
        status = read_json(tdir / layout.STATUS) or {}
        if tdir.name in known or status.get("status") == ABANDONED:
            continue
        if ((read_json(tdir / layout.CONFIG) or {}).get("role") or "search") != role:
            continue
        write_json(tdir / layout.STATUS, {
            "status": ABANDONED, "adopted_by": None, "was": status.get("status"),
            "error": "started after the driver's last snapshot; a trial with the same "
                     "configuration takes over its result or checkpoint"})
        marked.append(tdir.name)
    if marked:
        log.warning("trials started after the last snapshot, marked abandoned: %s", marked)
    return marked


def adopt(study_dir: Path, trial_id: str, config: dict[str, Any],
          train_root: str | None = None) -> tuple[str, str | None] | None:
    """Claim an abandoned trial with this exact configuration for ``trial_id``.

    ``train_root`` is where the trials' Train runs live when that is not the study folder (a
    URI study: ``<uri>/<study>/trials``). Returns ``(abandoned_id, checkpoint or None)`` or
    None when there is none to adopt. The claim is an exclusive file create, so two new
    trials never adopt the same folder. The
    abandoned trial's history is copied so the new trial's curves start where it stopped; a
    result it already had (with its generations) becomes the new trial's, so a finished
    evaluation is never redone."""
    trials = layout.trials_dir(study_dir)
    want = json.loads(json.dumps(to_jsonable(config)))
    for tdir in sorted(trials.iterdir()) if trials.is_dir() else []:
        status = read_json(tdir / layout.STATUS) or {}
        if tdir.name == trial_id or status.get("status") != ABANDONED or status.get("adopted_by"):
            continue
        if read_json(tdir / layout.CONFIG) != want:
            continue
        try:
            fd = os.open(tdir / layout.ADOPTED_BY, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.write(fd, trial_id.encode())
        os.close(fd)
        write_json(tdir / layout.STATUS, {**status, "adopted_by": trial_id})
        new = layout.trial_dir(study_dir, trial_id)
        new.mkdir(parents=True, exist_ok=True)
        found = latest_checkpoint(remote.join(train_root, tdir.name, layout.TRAIN) if train_root
                                  else tdir / layout.TRAIN)
        _carry_history(tdir, found, new / layout.HISTORY)
        result = read_json(tdir / layout.RESULT)
        if result is not None:
            for name in (layout.GENERATIONS, layout.HEADROOM):
                if (tdir / name).is_file():
                    shutil.copyfile(tdir / name, new / name)
            write_json(new / layout.RESULT, {**result, "trial_id": trial_id,
                                             "adopted_from": tdir.name})
        log.warning("trial %s continues abandoned trial %s from %s", trial_id, tdir.name, found)
        return tdir.name, found
    return None


def _carry_history(old: Path, found: str | None, dest: Path) -> None:
    """The abandoned trial's training reports: its history.jsonl, else the history saved in
    its checkpoint (the killed driver may not have written the last reports)."""
    if dest.exists():
        return
    rows = read_jsonl(old / layout.HISTORY)
    text = remote.read_text(remote.join(found, layout.CHECKPOINT_HISTORY)) if found else None
    if text is not None:
        saved = json.loads(text)
        if len(saved) > len(rows):
            rows = saved
    for row in rows:
        append_jsonl(dest, row)


def raise_if_interrupted(grid: Any, expected: int, resume_with: str) -> None:
    """Raise ``Interrupted`` when Tune's ``fit()`` returned ``grid`` (its ``ResultGrid``) with
    fewer than ``expected`` trials terminated or errored: Tune stops on SIGINT/SIGUSR1 and
    returns normally, with the running trials unfinished and the ones not yet suggested absent
    from ``grid``; a command that went on would sweep frontiers for minutes after the user
    pressed Ctrl+C and report an unfinished study as done. ``resume_with``: the command that
    continues it."""
    total = max(int(expected), len(grid))
    unfinished = total - grid.num_terminated - grid.num_errors
    if unfinished > 0:
        raise Interrupted(f"interrupted: {unfinished} of {total} trial(s) did not finish; "
                          f"the state is saved: {resume_with} continues it")
