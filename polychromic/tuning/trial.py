"""One Tune trial: a Ray Train run (training, checkpointed), then a Ray Data evaluation.

Ray ≥ 2.50 runs Train V2: a ``TorchTrainer`` is started from inside this Tune function
trainable (passing a trainer to ``Tuner`` fails) and its reports reach Tune through
``TuneReportCallback``. The Train run's storage is the trial's own folder with a fixed name,
so a restarted trial (worker death, lost node, resumed driver) re-attaches to the same run and
continues from its latest checkpoint instead of starting over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from ray import tune

from polychromic.core.config import TrialConfig
from polychromic.core.phases import trial_phases
from polychromic.evaluation.in_worker import adopt_evaluation
from polychromic.evaluation.pipeline import eval_placement, evaluate
from polychromic.metrics.aggregate import COMPARED
from polychromic.metrics.encoder import get_encoder
from polychromic.stats import headroom
from polychromic.store import layout
from polychromic.store.generations import read_generations
from polychromic.store.records import FINAL_EVALUATION, backfill_history, read_json, write_json
from polychromic.store.remote import join, read_text, with_scheme
from polychromic.tasks import get_task
from polychromic.tuning.feasibility import worker_bundle
from polychromic.tuning.resume import adopt
from polychromic.tuning.worker import measures_frontier, train_and_evaluate

log = logging.getLogger(__name__)

#: objective keys a failed trial reports as NaN, so searchers see a failure, not a value
NAN_KEYS = COMPARED
#: seconds between the Train V2 controller's polls of its workers (Ray's default: 2 s). The
#: controller learns that the loop ended, and that the workers started, only when it polls; a
#: poll is one small actor call per worker, so a shorter interval cuts the wait after a trial's
#: last report for almost nothing (BENCHMARKS, "phase_seconds"). Set by the user: theirs wins.
TRAIN_POLL_SECONDS = "0.2"
#: Ray Train V2's name for that interval (ray.train.v2._internal.constants)
TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


def set_train_poll(environ: MutableMapping[str, str]) -> None:
    """Give ``environ`` the Train controller's poll interval unless the user set one; a Train
    run started from this process propagates it to its controller."""
    environ.setdefault(TRAIN_POLL_ENV, TRAIN_POLL_SECONDS)


def write_headroom_sets(cfg: TrialConfig, tdir: Path) -> None:
    """Store the floor and ceiling sample sets of the trial's generations; a failure is
    logged and leaves the headroom columns NaN (never a failed trial)."""

    try:
        gens = read_generations(tdir / layout.GENERATIONS)
        sets = headroom.build_sets(gens, headroom.reference_pool(get_task(cfg)), get_encoder())
        headroom.write_sets(sets, tdir / layout.HEADROOM)
    except Exception as err:  # noqa: BLE001 - headroom is advisory; the trial's result stands
        log.warning("headroom sets not written for %s: %s: %s", tdir.name,
                    type(err).__name__, err)


def prewarm_encoder() -> threading.Thread:
    """Load this process's sentence encoder in a background thread and return it: the
    baseline's headroom sets need it after the evaluation, and the trial's process only waits
    while its Train run trains, so the load (≈ 4 s: the import and the weights) is off the
    trial's critical path. ``get_encoder`` is locked and cached: the later call takes the
    loaded encoder, or waits for the load to finish. A failure is left to that call."""

    def load() -> None:
        # a failure is write_headroom_sets' to report, when it loads the encoder again
        with contextlib.suppress(Exception):
            get_encoder()

    thread = threading.Thread(target=load, name="prewarm-encoder", daemon=True)
    thread.start()
    return thread


def evaluate_baseline(cfg: TrialConfig, adapter: str, tdir: Path,
                      timings: dict[str, float | None] | None = None) -> dict[str, Any]:
    """A λ=0 run's evaluation (the study's baseline, or a confirmation's baseline on the fresh
    prompts of each seed) with its temperature frontier in the same pipeline pass
    (``frontier.parquet``; ``generations.parquet`` and the metrics are the eval temperature's,
    as for every trial). The frontier is advisory: when that pass fails, the plain evaluation
    runs and the study's post-study sweep (polychromic.tuning.frontier) tries it again.

    Resumable: ``result.json`` is written after both files, each written whole, so a driver
    killed before it re-runs this evaluation and replaces them; never a half or doubled file."""
    if not measures_frontier(cfg):
        return evaluate(cfg, adapter, tdir, timings=timings)
    try:
        return evaluate(cfg, adapter, tdir, timings=timings, frontier=True)
    except Exception as err:  # noqa: BLE001 - the trial's own evaluation must still happen
        log.warning("frontier of %s not measured in its evaluation pass: %s: %s", tdir.name,
                    type(err).__name__, err)
        return evaluate(cfg, adapter, tdir, timings=timings)


def run_trial(config: dict[str, Any], study_dir: str, storage_uri: str | None = None) -> None:
    """Tune function trainable. ``config`` is a full ``TrialConfig`` dict; ``storage_uri`` is
    the study's URI when Ray's files live there (polychromic.store.remote), else None."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.training.loop import train_loop_per_worker

    cfg = TrialConfig.from_dict(config)
    trial_id = tune.get_context().get_trial_id()
    tdir = layout.trial_dir(Path(study_dir), trial_id)
    # a trial started after the last snapshot of a killed driver: continue its work
    adopted = read_json(tdir / layout.ADOPTED)
    if adopted is None and not (tdir / layout.CONFIG).exists():
        found = adopt(Path(study_dir), trial_id, cfg.to_dict(),
                      train_root=join(storage_uri, layout.TRIALS) if storage_uri else None)
        if found is not None:
            adopted = {"adopted_from": found[0], "checkpoint": str(found[1]) if found[1] else None}
            write_json(tdir / layout.ADOPTED, adopted)
    write_json(tdir / layout.CONFIG, cfg.to_dict())

    done = read_json(tdir / layout.RESULT)
    if done is not None:  # finished before the driver died: report it again, do not redo it
        tune.report(done)
        return

    import ray

    set_train_poll(os.environ)
    if cfg.lambda_ == 0 and cfg.role == "search":  # the headroom sets after its evaluation
        prewarm_encoder()
    gpus = ray.cluster_resources().get("GPU", 0)
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else gpus > 0
    # decided before the Train run takes its share: what the evaluation would get after it
    in_worker = eval_placement(cfg) == "worker"
    t0 = time.time()
    trainer = TorchTrainer(
        train_and_evaluate if in_worker else train_loop_per_worker,
        train_loop_config={"trial": cfg.to_dict(),
                           "resume_from": (adopted or {}).get("checkpoint")},
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=use_gpu,
            # CPU, GPU, the memory the estimate gives, and worker_resources (e.g.
            # {"trainer_node": 1}: pins training to the nodes that advertise it)
            resources_per_worker=worker_bundle(cfg, gpus),
        ),
        run_config=RunConfig(
            name=layout.TRAIN,
            storage_path=join(storage_uri, layout.TRIALS, trial_id) if storage_uri else str(tdir),
            callbacks=[TuneReportCallback()],
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    fit_end = time.time()
    last = dict(result.metrics or {})
    last.pop("checkpoint_path", None)
    # the worker's clock readings become phase_seconds (polychromic.core.phases)
    worker_started_at = last.pop("worker_started_at", None)
    model_load = last.pop("model_load_seconds", None)

    def phases(wall: float, evaluation: dict[str, Any] | None = None,
               headroom_s: float = 0.0, in_fit: bool = False) -> dict[str, float | None]:
        return trial_phases(wall, t0, worker_started_at, model_load, fit_end, evaluation,
                            headroom_s, evaluated_in_fit=in_fit)

    final: dict[str, Any] = {**last, "trial_id": trial_id, "wall_seconds": time.time() - t0}
    if adopted:
        final["adopted_from"] = adopted["adopted_from"]
    if last.get("error") or result.checkpoint is None or not math.isfinite(
        float(last.get("quality_loss", float("nan")))
    ):
        final.update({k: float("nan") for k in NAN_KEYS})
        final["status"] = "error"
        final["error"] = last.get("error") or "training produced no finite result"
        final["wall_seconds"] = time.time() - t0
        final["phase_seconds"] = phases(final["wall_seconds"])
        write_json(tdir / layout.RESULT, final)
        tune.report(final)
        return

    final["checkpoint_path"] = with_scheme(storage_uri, result.checkpoint.path)
    # the final checkpoint holds every training report; a driver killed before it recorded
    # some of them (reports reach it by polling) left gaps in history.jsonl
    saved = read_text(join(final["checkpoint_path"], layout.CHECKPOINT_HISTORY))
    if saved is not None:
        backfill_history(tdir / layout.HISTORY, json.loads(saved))
    timings: dict[str, float | None] = {}
    adapter = join(final["checkpoint_path"], layout.ADAPTER)
    # evaluated in the worker: its files are in the final checkpoint (none when that
    # evaluation failed, or the checkpoint was restored after the last step: actors then)
    metrics = (adopt_evaluation(cfg, final["checkpoint_path"], tdir, timings) if in_worker
               else None)
    final["evaluated_in"] = "actors" if metrics is None else "worker"
    # a λ=0 run, the study's baseline or a confirmation's (fresh prompts, new seed), is
    # evaluated with its temperature frontier
    baseline = cfg.lambda_ == 0
    if metrics is None:
        metrics = (evaluate_baseline(cfg, adapter, tdir, timings) if baseline
                   else evaluate(cfg, adapter, tdir, timings=timings))
    headroom_s = 0.0
    if baseline and cfg.role == "search":  # the baseline's floor and ceiling sets
        t_headroom = time.time()
        write_headroom_sets(cfg, tdir)
        headroom_s = time.time() - t_headroom
    final.update(metrics)
    final["status"] = "finished"
    final[FINAL_EVALUATION] = True
    final["error"] = metrics.get("metric_errors", "")
    final["wall_seconds"] = time.time() - t0
    final["phase_seconds"] = phases(final["wall_seconds"], timings, headroom_s,
                                    in_fit=final["evaluated_in"] == "worker")
    write_json(tdir / layout.RESULT, final)
    tune.report(final)
