"""Rescore a study from its stored generations, without loading a language model.

Every trial's ``generations.parquet`` holds each sample with its quality score. Rescoring
recomputes the metrics from those rows (optionally with a new pass/fail threshold, or after
re-running the task's quality checker), rewrites each ``result.json`` and the leaderboard, so
the leaderboard's numbers are exactly what the stored generations give.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from polychromic.aggregate import aggregate
from polychromic.config import TrialConfig
from polychromic.errors import ConfigError
from polychromic.evaluate import read_generations, write_generations
from polychromic.records import read_json, write_json
from polychromic.tasks.base import Example


def recheck(gens: Any, cfg: TrialConfig) -> Any:
    """Re-run the task's checker on every stored sample (sentence encoder, sandbox: no LM)."""
    from polychromic.tasks import get_task

    task = get_task(cfg)
    examples = [Example(str(r.prompt_id), str(r.prompt), str(r.target), str(r.group),
                        json.loads(r.meta)) for r in gens.itertuples()]
    checks = task.check(examples, gens["text"].astype(str).tolist())
    return gens.assign(quality_score=[c.score for c in checks], passed=[c.passed for c in checks],
                       reason=[c.reason for c in checks], score_error="")


def rescore_trial(tdir: Path, threshold: float | None = None,
                  rerun_checker: bool = False) -> dict[str, Any] | None:
    """New metrics for one trial (None when it has no generations); files rewritten."""
    path = tdir / "generations.parquet"
    if not path.is_file():
        return None
    gens = read_generations(path)
    if rerun_checker:
        cfg = TrialConfig.from_dict(read_json(tdir / "config.json") or {}, source=str(tdir))
        gens = recheck(gens, cfg)
    if threshold is not None:
        gens["passed"] = (gens["quality_score"] >= threshold).fillna(False).astype(bool)
        gens["quality_threshold"] = float(threshold)
    if threshold is not None or rerun_checker:
        write_generations(gens, path)
    metrics = aggregate(gens)
    result = read_json(tdir / "result.json") or {}
    stale = [k for k in result if k.startswith("pass@")]
    for k in stale:
        result.pop(k)
    result.update(metrics)
    result["rescored"] = {"threshold": threshold, "rerun_checker": rerun_checker}
    write_json(tdir / "result.json", result)
    return metrics


def rescore_study(root: Path, threshold: float | None = None,
                  rerun_checker: bool = False) -> Path:
    """Rescore every trial, then rewrite ``leaderboard.parquet``; returns its path."""
    from polychromic.leaderboard import build_leaderboard, write_leaderboard
    from polychromic.space import load_space

    root = Path(root)
    saved = read_json(root / "study.json")
    if saved is None or not (root / "trials").is_dir():
        raise ConfigError("study", f"no study at {root} (study.json or trials/ missing)",
                          "command line")
    if threshold is not None and not (np.isfinite(threshold) and 0 <= threshold <= 1):
        raise ConfigError("--threshold", f"must be in [0, 1], got {threshold}", "command line")
    for tdir in sorted((root / "trials").iterdir()):
        if tdir.is_dir():
            rescore_trial(tdir, threshold, rerun_checker)
    space = load_space(saved["space"], saved.get("overrides") or {})
    return write_leaderboard(root, build_leaderboard(root, space))
