"""Build and run (or resume) a study: Ray Tune + Optuna (SQLite) + ASHA over a search space."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.errors import ConfigError
from polychromic.review.leaderboard import build_leaderboard, write_leaderboard
from polychromic.review.optuna_dashboard import sync_optuna
from polychromic.store import layout, remote
from polychromic.store.records import read_json, write_json
from polychromic.tuning.feasibility import refuse_infeasible
from polychromic.tuning.frontier import sweep_frontiers
from polychromic.tuning.progress import Tracker, describe_trial, planned_trial_seconds, quiet_run
from polychromic.tuning.resume import mark_abandoned, raise_if_interrupted
from polychromic.tuning.space import Space, load_space

log = logging.getLogger(__name__)
TRIAL_DRIVER_CPU = 0.25  # the Tune trial function itself only waits on its Train run
SNAPSHOT_SECONDS = "2"  # Tune experiment snapshots (trials, searcher) at most this far apart


def concurrency(space: Space, resources: dict[str, float]) -> int:
    """Trials at once: one per GPU worker set on GPU clusters; CPU trials sized to the machine
    (a trial's Train workers + its driver), so trials never wait on each other forever."""
    if space.max_concurrent_trials:
        return space.max_concurrent_trials
    cfg = space.trial_config(space.baseline())
    gpus = resources.get("GPU", 0)
    if gpus and cfg.use_gpu is not False:
        return max(1, int(gpus // cfg.num_workers))
    need = cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU
    return max(1, int(math.floor(resources.get("CPU", 1) / need)))


def wandb_env(root: Path) -> None:
    """Offline unless WANDB_API_KEY is set; set before ``ray.init`` so workers inherit it."""
    os.environ.setdefault("WANDB_MODE", "online" if os.environ.get("WANDB_API_KEY") else "offline")
    os.environ.setdefault("WANDB_DIR", str(root))
    os.environ.setdefault("WANDB_SILENT", "true")


def _wandb_callback(study_name: str, root: Path) -> Any:
    """W&B: one run per trial (config + every reported metric), grouped by study."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    return WandbLoggerCallback(project="polychromic-study", group=study_name,
                               excludes=["embedding"], log_config=True, dir=str(root))


def build_tuner(space: Space, root: Path, study_name: str, use_wandb: bool,
                resume: bool = False, storage_uri: str | None = None) -> Any:
    """The Tuner of a new study, or the restored one of an interrupted study.

    On resume, Tune restores the searcher (Optuna, with its SQLite study), the scheduler and
    every trial's state from ``<study>/tune``; nothing is built anew, so no point is enqueued
    twice and no trial is counted twice. ``storage_uri``: the study's URI when ``--storage-path``
    is one (polychromic.store.remote): Tune and Train write there, and the trial drivers, which write
    the records into the local study folder, are pinned to the head."""
    import ray
    from ray import tune

    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.recorder import StudyRecorder

    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.trial import run_trial

    driver = {"CPU": TRIAL_DRIVER_CPU, **({"node:__internal_head__": 0.001} if storage_uri else {})}
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, study_dir=str(root), storage_uri=storage_uri), driver)
    if resume:
        return tune.Tuner.restore(tune_location(root, storage_uri), trainable=trainable,
                                  resume_unfinished=True, resume_errored=False,
                                  restart_errored=False, param_space=space.settings)
    metrics = [m for m, _ in space.objectives]
    callbacks: list[Any] = [StudyRecorder(root, storage_uri)]
    if use_wandb:
        callbacks.append(_wandb_callback(study_name, root))
    reporter = tune.CLIReporter(
        parameter_columns=["lambda_", "n_generations", "compute_every_n_steps",
                           "max_examples_for_diversity"],
        metric_columns=["step", "quality_loss", "diversity_score", "diversity_grad_share",
                        "poly_score", *metrics, "distinct_2", "semantic_diversity"],
        max_report_frequency=30,
    )
    run_config = tune.RunConfig(
        name=layout.TUNE, storage_path=storage_uri or str(root.resolve()), callbacks=callbacks,
        progress_reporter=reporter,
        failure_config=tune.FailureConfig(max_failures=space.trial_config({}).max_failures),
    )
    return tune.Tuner(
        trainable,
        param_space=dict(space.settings),
        tune_config=tune.TuneConfig(
            search_alg=build_searcher(space, root, study_name),
            scheduler=build_scheduler(space), num_samples=space.num_trials,
            max_concurrent_trials=concurrency(space, ray.cluster_resources()),
        ),
        run_config=run_config,
    )


def build_searcher(space: Space, root: Path, study_name: str) -> Any:
    """Optuna (TPE, or NSGA-II / multi-objective TPE for two objectives) with its study in
    ``<study>/optuna.db``, behind ``BaselineFirst`` so the λ=0 baseline runs first."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.search import BaselineFirst

    metrics = [m for m, _ in space.objectives]
    modes = [m for _, m in space.objectives]
    multi = len(metrics) > 1
    sampler = (optuna.samplers.NSGAIISampler(seed=0) if space.sampler == "nsga2"
               else optuna.samplers.TPESampler(seed=0, multivariate=True))
    searcher = OptunaSearch(
        space=space.optuna_distributions() or None,
        metric=metrics if multi else metrics[0],
        mode=modes if multi else modes[0],
        points_to_evaluate=space.points or None,
        sampler=sampler,
        study_name=study_name,
        storage=optuna.storages.RDBStorage(layout.optuna_url(root)),
    )
    return BaselineFirst(searcher, space.baseline())


def build_scheduler(space: Space) -> Any:
    """ASHA on the space's scalar training metric (never stopping the λ=0 baseline), or
    None when the space disables it."""
    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.search import KeepBaselineASHA

    sched = space.scheduler
    if not sched.get("enabled", True):
        return None
    return KeepBaselineASHA(time_attr="step", metric=sched["metric"], mode=sched["mode"],
                         max_t=space.trial_config(space.baseline()).steps,
                         grace_period=sched["grace_period"],
                         reduction_factor=sched["reduction_factor"])


def tune_location(root: Path, storage_uri: str | None) -> str:
    """Tune's experiment folder: ``<study>/tune`` locally or at the study's URI."""
    return (remote.join(storage_uri, layout.TUNE) if storage_uri
            else str(layout.tune_dir(root).resolve()))


def start_or_resume(space_name: str | None, overrides: dict[str, Any], storage_path: str | Path,
                    name: str | None, resume: str | None, use_wandb: bool,
                    address: str | None = None,
                    local_dir: str | Path = layout.DEFAULT_STORAGE, quiet: bool = False) -> Path:
    """Validate, start Ray, run the study to the end, sweep the trials' temperature frontiers
    (``frontier_for``; polychromic.tuning.frontier), write the leaderboard; returns the local
    study folder. ``quiet``: the terminal shows the trials' progress and everything Ray, Tune,
    Train and W&B print goes to ``<study>/logs/run.log`` (polychromic.tuning.progress)."""
    if remote.is_uri(storage_path):
        remote.reachable(str(storage_path))
    if resume:
        root, storage_uri = remote.study_locations(storage_path, local_dir, resume)
        if storage_uri and not layout.study_file(root).exists():  # a new head: fetch the records
            remote.fetch_records(storage_uri, root)
        saved = read_json(layout.study_file(root))
        if saved is None:

            raise ConfigError("--resume", f"no study at {root} (study.json missing)", COMMAND_LINE)
        space = load_space(saved["space"], saved["overrides"])
        study_name, use_wandb = resume, saved.get("wandb", use_wandb)
    else:
        space = load_space(space_name or "", overrides)
        study_name = name or f"{space.name}"
        root, storage_uri = remote.study_locations(storage_path, local_dir, study_name)
        if remote.exists(tune_location(root, storage_uri)):

            raise ConfigError("--name", f"a study named {study_name!r} already exists in "
                              f"{storage_path} (use --resume {study_name} or another --name)",
                              COMMAND_LINE)
    # a new study's record: written by _run once the cluster can hold its trials, so a
    # refused start leaves no study.json (only its log), and the same --name can start again
    record = None if resume else {"space": space.source, "overrides": overrides,
                                  "name": study_name, "wandb": use_wandb,
                                  "storage": storage_uri or str(root)}
    if not quiet:
        _run(space, root, study_name, use_wandb, resume, storage_uri, address, record=record)
        return root
    tracker = Tracker(f"study {study_name}", space.num_trials, describe_trial,
                      planned_trial_seconds(root))
    with quiet_run(layout.log_file(root, layout.RUN_LOG), tracker):
        _run(space, root, study_name, use_wandb, resume, storage_uri, address, shutdown=True,
             record=record)
    return root


def _run(space: Space, root: Path, study_name: str, use_wandb: bool, resume: str | None,
         storage_uri: str | None, address: str | None, shutdown: bool = False,
         record: dict[str, Any] | None = None) -> None:
    """Start (or join) Ray, refuse trials the cluster can never place, write a new study's
    ``record`` (``study.json``), fit the study's Tuner, write the leaderboard (and mirror it);
    ``shutdown``: stop the Ray this started afterwards, so nothing it prints comes later."""
    if resume:
        mark_abandoned(root, tune_location(root, storage_uri))
    import ray

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    # snapshot the experiment every couple of seconds (Tune's "auto" waits ≥ 10 s): a driver
    # killed in between leaves trials the restored experiment does not know (polychromic.tuning.resume)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", SNAPSHOT_SECONDS)
    if use_wandb:
        wandb_env(root)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=True,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                           if k.startswith(("POLYCHROMIC_", "WANDB_MODE",
                                                            "WANDB_DIR", "WANDB_SILENT"))}})
    # a trial the cluster can never place would wait forever: refuse it in one line instead
    pending = refuse_infeasible(space.trial_config(space.baseline()), TRIAL_DRIVER_CPU,
                                space.source)
    if pending:
        log.info("%s", pending)
    if record is not None:
        write_json(layout.study_file(root), record)
        if storage_uri:
            remote.upload_records(root, storage_uri)  # a new head can --resume from the URI alone
    try:
        tuner = build_tuner(space, root, study_name, use_wandb, resume=bool(resume),
                            storage_uri=storage_uri)
        raise_if_interrupted(tuner.fit(), space.num_trials,
                             f"python study/run.py --resume {study_name} "
                             f"--storage-path {storage_uri or root.resolve().parent}")
        board = build_leaderboard(root, space)
        try:  # frontier_for: the trials' own curves; advisory, the leaderboard comes first
            if sweep_frontiers(root, board, space.objectives):
                board = build_leaderboard(root, space)
        except Exception as err:  # noqa: BLE001 - e.g. an unreadable config: say so, keep going
            log.warning("frontier sweep stopped: %s: %s (a --resume continues it)",
                        type(err).__name__, err)
        write_leaderboard(root, board)
        sync_leaderboard_to_optuna(root, board)  # the same frame: one bootstrap, not two
        if storage_uri:
            remote.upload_records(root, storage_uri)
    finally:
        if shutdown and started:
            ray.shutdown()


def sync_leaderboard_to_optuna(root: Path, frame: Any = None) -> None:
    """The leaderboard's ids, metrics, deltas and verdicts into optuna.db for optuna-dashboard
    (``polychromic.review.optuna_dashboard``); a failure there is logged, never fails the finished study."""

    try:
        n = sync_optuna(root, frame)
        log.info("optuna.db: leaderboard written to %d trials", n)
    except Exception as err:  # the study's own records are complete without it
        log.warning("could not write the leaderboard into %s: %s", layout.optuna_db(root), err)
