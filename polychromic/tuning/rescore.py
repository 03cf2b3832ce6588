"""Rescore a study from its stored generations, without loading a language model.

Every trial's ``generations.parquet`` holds each sample with its quality score. Rescoring
recomputes the metrics from those rows (optionally with a new pass/fail threshold, or after
re-running the task's quality checker), rewrites each ``result.json`` (and, with a new
threshold or checker, each ``generations.parquet`` and ``frontier.parquet``) and the
leaderboard, so the leaderboard's
numbers are exactly what the stored generations give.

Nothing is lost: :func:`plan_study` computes everything and writes nothing (``--dry-run``
prints :func:`changes`); :func:`apply` moves every file it replaces into the study's rescore
history (``layout.rescore_dir``), and :func:`undo_last` puts the last rescore's files back.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.core.jsonutil import to_jsonable
from polychromic.metrics.aggregate import DEFAULT_CLASS_THRESHOLD, aggregate
from polychromic.review.leaderboard import build_leaderboard, trial_row, write_leaderboard
from polychromic.store import layout
from polychromic.store.generations import (
    examples_of,
    parquet_problem,
    read_generations,
    write_table,
)
from polychromic.store.records import load_json
from polychromic.tasks import get_task
from polychromic.tuning.space import load_space


def recheck(gens: Any, cfg: TrialConfig) -> Any:
    """Re-run the task's checker on every stored sample (sentence encoder, sandbox: no LM)."""

    task = get_task(cfg)
    checks = task.check(examples_of(gens), gens["text"].astype(str).tolist())
    return gens.assign(quality_score=[c.score for c in checks], passed=[c.passed for c in checks],
                       reason=[c.reason for c in checks], score_error="")


@dataclass
class TrialRescore:
    """One trial's rescoring, computed but not written: the new ``result.json`` and, when the
    threshold or the checker changed them, the new generations."""

    tdir: Path
    result: dict[str, Any]
    metrics: dict[str, Any]
    gens: Any = None
    #: the ``result.json`` it replaces
    old: dict[str, Any] = field(default_factory=dict)
    #: the new ``frontier.parquet`` (the same threshold or checker on every temperature's
    #: samples), None when the trial has none or nothing changed it
    frontier: Any = None


def plan_trial(tdir: Path, threshold: float | None = None,
               rerun_checker: bool = False) -> TrialRescore | None:
    """Read one trial and recompute its metrics, writing nothing (None when it has no
    generations). Anything unreadable or unscorable is a ``ConfigError`` naming the file."""
    path = tdir / layout.GENERATIONS
    if not os.path.lexists(path):
        return None
    why = parquet_problem(path)
    if why:
        raise ConfigError("(file)", why, str(path))
    config = _json_object(tdir / layout.CONFIG)
    result = _json_object(tdir / layout.RESULT)
    old = dict(result)
    changed = threshold is not None or rerun_checker
    front_path = tdir / layout.FRONTIER
    has_front = changed and os.path.lexists(front_path)
    if has_front and (why := parquet_problem(front_path)):
        raise ConfigError("(file)", why, str(front_path))

    def rescored(gens: Any) -> Any:
        if rerun_checker:
            gens = recheck(gens, TrialConfig.from_dict(config, source=str(tdir / layout.CONFIG)))
        if threshold is not None:
            gens["passed"] = (gens["quality_score"] >= threshold).fillna(False).astype(bool)
            gens["quality_threshold"] = float(threshold)
        return gens

    try:
        gens = rescored(read_generations(path))
        front = rescored(read_generations(front_path)) if has_front else None
        # the trial's own class threshold
        metrics = aggregate(gens, class_threshold=float(config.get("class_threshold",
                                                                   DEFAULT_CLASS_THRESHOLD)))
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 — a malformed table must be one line, not a traceback
        text = str(err).splitlines()[0][:200] if str(err) else ""
        raise ConfigError("(file)", f"cannot rescore: {type(err).__name__}: {text}",
                          str(path)) from None
    for k in [k for k in result if k.startswith("pass@")]:
        result.pop(k)
    result.update(metrics)
    result["rescored"] = {"threshold": threshold, "rerun_checker": rerun_checker}
    return TrialRescore(tdir, result, metrics, gens if changed else None, old, front)


def _json_object(path: Path) -> dict[str, Any]:
    """A trial's JSON record as a dict ({} when absent); ``ConfigError`` when corrupt."""
    value, problem = load_json(path)
    if problem:
        raise ConfigError("(file)", problem, str(path))
    if value is not None and not isinstance(value, dict):
        raise ConfigError("(file)", f"not a JSON object (a {type(value).__name__})", str(path))
    return value or {}


def commit(plans: list[TrialRescore], finish: Callable[[], Path] | None = None,
           keep: tuple[Path, Path] | None = None) -> Path | None:
    """Write every plan all-or-nothing: each new file goes to a temporary name first, then all
    are renamed into place (the originals kept as backups), then ``finish`` runs (the
    leaderboard). Any failure renames the originals back and removes every temporary file, so
    the trial folders are byte for byte what they were; on success the backups are removed,
    or, with ``keep`` = (history folder, study folder), kept in the history folder at their
    paths relative to the study."""
    tag = f".rescore-{os.getpid()}"
    staged: list[tuple[Path, Path]] = []  # (temporary, final)
    swapped: list[tuple[Path, Path | None]] = []  # (final, backup of the original or None)
    try:
        for plan in plans:
            for name, table in ((layout.GENERATIONS, plan.gens),
                                (layout.FRONTIER, plan.frontier)):
                if table is not None:
                    tmp = plan.tdir / f".{name}{tag}.tmp"
                    staged.append((tmp, plan.tdir / name))
                    write_table(table, tmp)
            tmp = plan.tdir / f".{layout.RESULT}{tag}.tmp"
            staged.append((tmp, plan.tdir / layout.RESULT))
            tmp.write_text(json.dumps(to_jsonable(plan.result), indent=1, sort_keys=True))
        for tmp, final in staged:
            backup = None
            if os.path.lexists(final):
                backup = final.with_name(f".{final.name}{tag}.bak")
                if keep is not None:
                    backup = keep[0] / final.relative_to(keep[1])
                    backup.parent.mkdir(parents=True, exist_ok=True)
                os.replace(final, backup)
            swapped.append((final, backup))
            os.replace(tmp, final)
        done = finish() if finish is not None else None
    except BaseException:
        for final, backup in reversed(swapped):
            if backup is not None:
                os.replace(backup, final)
            else:
                final.unlink(missing_ok=True)
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    if keep is None:
        for _, backup in swapped:
            if backup is not None:
                backup.unlink(missing_ok=True)
    return done


def rescore_trial(tdir: Path, threshold: float | None = None,
                  rerun_checker: bool = False) -> dict[str, Any] | None:
    """New metrics for one trial (None when it has no generations); files rewritten."""
    plan = plan_trial(tdir, threshold, rerun_checker)
    if plan is None:
        return None
    commit([plan])
    return plan.metrics


@dataclass
class StudyRescore:
    """A study's rescoring, computed and checked but not written (:func:`plan_study`)."""

    root: Path
    plans: list[TrialRescore]
    space: Any
    threshold: float | None
    rerun_checker: bool


@dataclass
class Rescored:
    """What :func:`apply` rewrote, and where the files it replaced are kept."""

    leaderboard: Path
    history: Path
    results: int
    generations: int


def plan_study(root: Path, threshold: float | None = None,
               rerun_checker: bool = False) -> StudyRescore:
    """Check the arguments, ``study.json``, the search space and every trial's files, and
    recompute every trial in memory; writes nothing. A problem is one ``ConfigError``."""
    root = Path(root)
    if threshold is not None and not (np.isfinite(threshold) and 0 <= threshold <= 1):
        raise ConfigError("--threshold", f"must be in [0, 1], got {threshold}", COMMAND_LINE)
    study_file, trials = layout.study_file(root), layout.trials_dir(root)
    saved, problem = load_json(study_file)
    if problem:
        raise ConfigError("(file)", problem, str(study_file))
    if saved is None or not trials.is_dir():
        raise ConfigError("study", f"no study at {root} (study.json or trials/ missing)",
                          COMMAND_LINE)
    if not isinstance(saved, dict) or not isinstance(saved.get("space"), str):
        raise ConfigError("space", "missing (study.json must name its search space)",
                          str(study_file))
    overrides = saved.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("overrides", "must be a mapping of setting → value",
                          str(study_file))
    tdirs = [t for t in sorted(trials.iterdir()) if t.is_dir()]
    for tdir in tdirs:  # every trial readable before any is rescored (cheap checks first)
        row = trial_row(tdir)
        if row is not None and row["status"] == "corrupt":
            raise ConfigError(f"trial {tdir.name}", f"corrupt: {row['error']} (fix or remove "
                              f"{tdir}; nothing was rescored)", str(root))
    try:
        space = load_space(saved["space"], overrides)  # imports torch and the task: last
    except ConfigError as err:
        if err.source != COMMAND_LINE:  # the space file's own problem names that file
            raise
        raise ConfigError("space", f"{err.field}: {err.message}",
                          str(study_file)) from None
    plans = [plan for tdir in tdirs if (plan := plan_trial(tdir, threshold, rerun_checker))]
    return StudyRescore(root, plans, space, threshold, rerun_checker)


def _number(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(x) else f"{x:.4g}"


def changes(plan: StudyRescore) -> list[str]:
    """One line per trial: old → new pass@k and quality_mean (``trial X: pass@1 0.4 → 0.35,
    quality_mean unchanged 0.5``), then what a real run would rewrite."""
    lines = []
    for p in plan.plans:
        ks = sorted({k for k in (*p.old, *p.metrics) if k.startswith("pass@") and k[5:].isdigit()},
                    key=lambda k: int(k[5:]))
        parts = []
        for k in (*ks, "quality_mean"):
            old, new = _number(p.old.get(k)), _number(p.metrics.get(k))
            parts.append(f"{k} {old}" if old == new else f"{k} {old} → {new}")
        changed = sum("→" in x for x in parts)
        lines.append(f"trial {p.tdir.name}: " + ", ".join(parts)
                     + ("" if changed else " (unchanged)"))
    gens = sum(p.gens is not None for p in plan.plans)
    lines.append(f"would rewrite {len(plan.plans)} result.json"
                 + (f", {gens} generations.parquet" if gens else "")
                 + f" and {layout.LEADERBOARD}; nothing was written (--dry-run)")
    return lines


def _history_dir(root: Path) -> Path:
    """A new, empty history folder named for the current UTC time."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    path, n = layout.rescore_dir(root, stamp), 1
    while os.path.lexists(path):
        n += 1
        path = layout.rescore_dir(root, f"{stamp}-{n}")
    return path


def apply(plan: StudyRescore) -> Rescored:
    """Write ``plan`` all-or-nothing (:func:`commit`), the replaced files (and the previous
    leaderboard) moved into a new rescore history folder with a ``rescore.json`` saying when,
    with which arguments and which files; :func:`undo_last` puts them back."""
    root = plan.root
    history = _history_dir(root)
    had_rescores = layout.rescores_dir(root).exists()
    board = layout.leaderboard_file(root)

    def finish() -> Path:
        if board.is_file():
            shutil.copy2(board, history / layout.LEADERBOARD)
        try:
            path = write_leaderboard(root, build_leaderboard(root, plan.space))
        except (ConfigError, OSError):
            raise
        except Exception as err:  # noqa: BLE001 — rolled back by commit; one line here
            raise ConfigError("leaderboard", f"cannot rebuild it: {type(err).__name__}: "
                              f"{str(err)[:200]} (nothing was changed)", str(root)) from None
        replaced = sorted(str(p.relative_to(history)) for p in history.rglob("*")
                          if p.is_file())
        (history / layout.RESCORE_FILE).write_text(json.dumps({
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "threshold": plan.threshold, "rerun_checker": plan.rerun_checker,
            "replaced": replaced, "created": created}, indent=1))
        return path

    # files this rescore writes where there was none: --undo removes them
    created = [str(f.relative_to(root)) for f in
               [board, *(p.tdir / layout.RESULT for p in plan.plans)] if not f.exists()]
    leaderboard_tmp = board.with_suffix(".parquet.tmp")
    had_tmp = leaderboard_tmp.exists()
    history.mkdir(parents=True)
    try:
        path = commit(plan.plans, finish, keep=(history, root))
    except BaseException:
        if not had_tmp:
            leaderboard_tmp.unlink(missing_ok=True)
        shutil.rmtree(history, ignore_errors=True)
        if not had_rescores:
            shutil.rmtree(layout.rescores_dir(root), ignore_errors=True)
        raise
    assert path is not None
    return Rescored(path, history, len(plan.plans),
                    sum(p.gens is not None for p in plan.plans))


def rescore_study(root: Path, threshold: float | None = None,
                  rerun_checker: bool = False) -> Path:
    """Rescore every trial, then rewrite ``leaderboard.parquet``; returns its path.

    All or nothing: the arguments, ``study.json``, the search space and every trial's files
    are checked first, every trial is recomputed in memory, and only then is anything written
    (:func:`commit`). A failure at any point is one ``ConfigError`` and leaves every file of
    the study exactly as it was. The replaced files are kept (:func:`apply`)."""
    return apply(plan_study(root, threshold, rerun_checker)).leaderboard


def undo_last(root: Path) -> tuple[Path, dict[str, Any]]:
    """Put back the files the last rescore replaced (and remove those it created); returns
    its history folder (then removed) and its ``rescore.json``. ``ConfigError`` when there
    is nothing to undo or the history is incomplete (nothing is changed then)."""
    root = Path(root)
    folder = layout.rescores_dir(root)
    entries = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not entries:
        raise ConfigError("--undo", f"no rescore of {root} to undo (no {layout.RESCORES}/ "
                          "history)", COMMAND_LINE)
    last = entries[-1]
    record, problem = load_json(last / layout.RESCORE_FILE)
    if problem or not isinstance(record, dict):
        raise ConfigError("(file)", problem or "not a JSON object",
                          str(last / layout.RESCORE_FILE))
    replaced = [str(x) for x in record.get("replaced") or []]
    created = [str(x) for x in record.get("created") or []]
    missing = [r for r in replaced if not (last / r).is_file()]
    if missing:
        raise ConfigError("--undo", f"{last} lacks {missing[0]}: cannot undo that rescore",
                          COMMAND_LINE)
    tag = f".undo-{os.getpid()}"
    moved: list[tuple[Path, Path]] = []  # (current file, its backup)
    restored: list[Path] = []
    try:
        for rel in [*replaced, *created]:
            current = root / rel
            if os.path.lexists(current):
                backup = current.with_name(f".{current.name}{tag}.bak")
                os.replace(current, backup)
                moved.append((current, backup))
        for rel in replaced:
            os.replace(last / rel, root / rel)
            restored.append(root / rel)
    except BaseException:
        for path in restored:
            os.replace(path, last / path.relative_to(root))
        for current, backup in reversed(moved):
            os.replace(backup, current)
        raise
    for _, backup in moved:
        backup.unlink(missing_ok=True)
    shutil.rmtree(last)
    if not any(folder.iterdir()):
        folder.rmdir()
    return last, record
