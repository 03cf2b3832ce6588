"""Show the leaderboard in optuna-dashboard: write it into the study's ``optuna.db``.

Optuna only sees each trial's parameters and objective values. After a study (and after a
``--resume``), ``sync_optuna`` copies what the review knows onto the Optuna trials as user
attributes, so ``optuna-dashboard sqlite:///<study>/optuna.db`` shows, per trial: the Tune
trial id (``trial_id``), its status, every headline metric (``aggregate.HEADLINE``) and the
study's objectives, each metric's delta vs the λ=0 baseline with its CI bounds and
significance (``delta_M``, ``delta_M_ci_low``, ``delta_M_ci_high``, ``significant_M``), and the
``verdict`` line. The baseline is kept out of Optuna's model (``polychromic.tuning.search``), so its
id and metrics go on the study instead (``baseline_trial_id``, ``baseline_M``).

Which Optuna trial is which Tune trial: the ``trial_id`` user attribute that
``BaselineFirst.suggest`` writes when Optuna is asked; for studies from before that, trials
are matched on their parameters (the Tune trial's config.json), in order (Tune numbers its
trials as Optuna does). A finished Optuna trial cannot be changed through Optuna's API, so the
attributes are written into the SQLite tables directly (one transaction), in Optuna's own
JSON encoding. NaN values are left out (optuna-dashboard cannot read NaN from JSON).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core.errors import ConfigError
from polychromic.core.jsonutil import to_jsonable
from polychromic.metrics.aggregate import HEADLINE
from polychromic.review.frontier import frontier_columns
from polychromic.review.study import load_study
from polychromic.store import layout
from polychromic.store.records import read_json

log = logging.getLogger(__name__)
TRIAL_ID_ATTR = "trial_id"
_DELTA_PARTS = (("delta_", ""), ("delta_", "_ci_low"), ("delta_", "_ci_high"),
                ("significant_", ""), ("significant_unadjusted_", ""))


_SCALARS = (str, bool, int, float, np.bool_, np.integer, np.floating)


def _jsonable(value: Any) -> Any:
    """A JSON scalar Optuna (and the dashboard) can read (``jsonutil.to_jsonable``), or None to
    leave it out: empty text, NaN / infinite numbers and anything that is not a scalar."""
    out = to_jsonable(value) if isinstance(value, _SCALARS) else None
    return None if out == "" else out


def trial_attrs(row: pd.Series, metrics: list[str]) -> dict[str, Any]:
    """The user attributes of one leaderboard row (NaN / empty ones left out)."""
    attrs: dict[str, Any] = {TRIAL_ID_ATTR: str(row["trial_id"]),
                             "status": row.get("status_text") or row.get("status"),
                             "verdict": row.get("verdict")}
    for m in metrics:
        attrs[m] = row.get(m)
        for prefix, suffix in _DELTA_PARTS:
            attrs[f"{prefix}{m}{suffix}"] = row.get(f"{prefix}{m}{suffix}")
    for col in frontier_columns(list(row.index)):  # vs the baseline's temperature frontier
        attrs[col] = row.get(col)
    if not row.get("is_baseline"):
        attrs["pareto"] = row.get("pareto")
    return {k: v for k, v in ((k, _jsonable(v)) for k, v in attrs.items()) if v is not None}


def _params_match(params: dict[str, Any], config: dict[str, Any]) -> bool:
    """Every Optuna parameter equals the trial's config value (floats to 1e-12 relative)."""
    for name, value in params.items():
        if name not in config:
            return False
        mine = config[name]
        if isinstance(value, float) or isinstance(mine, float):
            try:
                if not math.isclose(float(value), float(mine), rel_tol=1e-12, abs_tol=0.0):
                    return False
            except (TypeError, ValueError):
                return False
        elif value != mine:
            return False
    return True


def match_trials(optuna_trials: list[Any], frame: pd.DataFrame,
                 configs: dict[str, dict[str, Any]]) -> dict[int, str]:
    """Optuna trial number → Tune trial id: the recorded ``trial_id`` attribute, else the
    first unmatched non-baseline trial (in trial id order) with the same parameters."""
    known = set(frame["trial_id"].astype(str))
    out: dict[int, str] = {}
    for t in optuna_trials:
        tid = t.user_attrs.get(TRIAL_ID_ATTR)
        if isinstance(tid, str) and tid in known:
            out[t.number] = tid
    taken = set(out.values())
    candidates = sorted(str(r["trial_id"]) for _, r in frame.iterrows()
                        if not r.get("is_baseline") and str(r["trial_id"]) not in taken)
    for t in sorted(optuna_trials, key=lambda t: t.number):
        if t.number in out or "abandoned" in t.user_attrs or not t.params:
            continue
        for tid in candidates:
            if _params_match(t.params, configs.get(tid) or {}):
                out[t.number] = tid
                candidates.remove(tid)
                break
    return out


def _study_name(study_dir: Path, storage: Any) -> str | None:
    """The Optuna study of this folder: the study's name (its folder name; ``study.json``
    may say otherwise), else the only study in the file."""
    import optuna


    meta = read_json(layout.study_file(study_dir)) or {}
    names = optuna.study.get_all_study_names(storage)
    for name in (study_dir.name, meta.get("name") if isinstance(meta, dict) else None):
        if name in names:
            return str(name)
    return names[0] if len(names) == 1 else None


def _upsert(con: sqlite3.Connection, table: str, owner: str, owner_id: int,
            attrs: dict[str, Any]) -> None:
    """Insert or replace user attributes (Optuna's tables: unique per owner and key)."""
    for key, value in attrs.items():
        blob = json.dumps(value)
        updated = con.execute(f"UPDATE {table} SET value_json = ? WHERE {owner} = ? AND key = ?",
                              (blob, owner_id, key)).rowcount
        if not updated:
            con.execute(f"INSERT INTO {table} ({owner}, key, value_json) VALUES (?, ?, ?)",
                        (owner_id, key, blob))


def sync_optuna(study_dir: str | Path, frame: pd.DataFrame | None = None) -> int:
    """Write the leaderboard into ``<study_dir>/optuna.db`` (see the module docstring);
    returns how many Optuna trials were updated. A missing ``optuna.db``, a file without
    this study or a study that cannot be reviewed changes nothing and returns 0."""
    import optuna


    study_dir = Path(study_dir)
    db = layout.optuna_db(study_dir)
    if not db.is_file():
        return 0
    try:
        study = load_study(str(study_dir), frame=frame)
    except ConfigError as err:
        log.warning("optuna.db not updated: %s", err)
        return 0
    frame = study.frame
    storage = optuna.storages.RDBStorage(layout.optuna_url(study_dir))
    try:
        name = _study_name(study_dir, storage)
        if name is None:
            log.warning("optuna.db not updated: no Optuna study named %s in %s", study_dir.name, db)
            return 0
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()
    configs = {str(t): read_json(layout.trial_dir(study_dir, t) / layout.CONFIG) or {}
               for t in frame["trial_id"]}
    numbers = match_trials(trials, frame, configs)
    metrics = list(dict.fromkeys([*(m for m, _ in study.objectives), *HEADLINE]))
    rows = {str(r["trial_id"]): r for _, r in frame.iterrows()}
    base = study.baseline()
    study_attrs: dict[str, Any] = {}
    if base is not None:
        study_attrs = {"baseline_trial_id": str(base["trial_id"]),
                       "baseline_status": base.get("status_text") or base.get("status"),
                       **{f"baseline_{m}": base.get(m) for m in metrics}}
        study_attrs = {k: v for k, v in ((k, _jsonable(v)) for k, v in study_attrs.items())
                       if v is not None}
    with sqlite3.connect(db, timeout=60) as con:
        (study_id,) = con.execute("SELECT study_id FROM studies WHERE study_name = ?",
                                  (name,)).fetchone()
        ids = dict(con.execute("SELECT number, trial_id FROM trials WHERE study_id = ?",
                               (study_id,)).fetchall())
        for number, tid in numbers.items():
            _upsert(con, "trial_user_attributes", "trial_id", ids[number],
                    trial_attrs(rows[tid], metrics))
        _upsert(con, "study_user_attributes", "study_id", study_id, study_attrs)
    con.close()
    return len(numbers)
