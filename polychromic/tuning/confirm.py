"""Confirm a study's winner on fresh prompts and new training seeds (``study/confirm.py``).

A study picks the best of many trials on one prompt set with one training seed: the picked
delta is biased upwards (winner's curse) and its interval ignores training-seed noise. A
confirmation re-trains the chosen configuration and the λ=0 baseline with R new seeds
(pair r: both with seed ``seed + 1 + r``, every other knob as in the study) and evaluates all
2R runs on the task's ``validation`` split, disjoint from the training split and from the test
prompts the study selected on (checked). The runs are Ray Tune trials of their own experiment
(``<study>/confirm-<trial>``) in the same study folder, tagged ``role: confirm``. Each λ=0
run samples the baseline's temperature frontier on its fresh prompts in its evaluation pass
(``frontier_temperatures`` as in the study; polychromic.tuning.trial.evaluate_baseline), the
λ>0 runs their eval temperature, so that each pair's frontier gain is taken against that
pair's own frontier (``polychromic.review.confirm_frontier``). The runs are resumable
and fault-tolerant like every other trial (``polychromic.tuning.trial.run_trial``; a driver killed
mid-confirmation re-runs the same command and each run happens exactly once). The leaderboard
then carries the confirmation deltas (``polychromic.review.leaderboard.add_confirmation``).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.evaluation.pipeline import eval_examples
from polychromic.store import layout
from polychromic.store.generations import read_generations
from polychromic.store.records import read_json
from polychromic.tasks import get_task
from polychromic.tuning.progress import Tracker, describe_trial, quiet_run
from polychromic.tuning.resume import mark_abandoned, raise_if_interrupted
from polychromic.tuning.runner import SNAPSHOT_SECONDS, TRIAL_DRIVER_CPU

log = logging.getLogger(__name__)
MIN_SEEDS = 2


def confirmation_configs(study_dir: Path, trial_id: str, baseline_id: str, seeds: int,
                         prompts: int) -> list[dict[str, Any]]:
    """The 2R run configurations: for r in 0..R−1, the chosen trial's and the baseline's
    configuration with seed ``seed + 1 + r``, ``eval_split: validation``, ``n_eval_prompts:
    prompts``, ``role: confirm``, ``confirm_of: trial_id``."""
    chosen = read_json(layout.trial_dir(study_dir, trial_id) / layout.CONFIG) or {}
    base = read_json(layout.trial_dir(study_dir, baseline_id) / layout.CONFIG) or {}
    out = []
    for r in range(seeds):
        for cfg in (chosen, base):
            new = {**cfg, "seed": int(chosen.get("seed", 0)) + 1 + r, "eval_split": "validation",
                   "n_eval_prompts": prompts, "role": "confirm", "confirm_of": trial_id}
            out.append(TrialConfig.from_dict(new, str(layout.trial_dir(study_dir, trial_id))).to_dict())
    return out


def check_split(study_dir: Path, cfg: dict[str, Any], baseline_id: str, prompts: int) -> int:
    """Refuse (``ConfigError``) when the confirmation split has fewer than ``prompts`` prompts
    or overlaps the training split or the selection prompts; returns the split's size."""

    task_cfg = TrialConfig.from_dict({**cfg, "eval_split": "validation", "n_eval_prompts": prompts})
    available = len(get_task(task_cfg).examples("validation"))
    if available < prompts:
        raise ConfigError("--prompts", f"the task's confirmation (validation) split has "
                          f"{available} prompts, fewer than {prompts} asked for", COMMAND_LINE)
    fresh = {ex.id for ex in eval_examples(task_cfg)}
    selection = set(read_generations(layout.trial_dir(study_dir, baseline_id) / layout.GENERATIONS)
                    ["prompt_id"].astype(str))
    train = {ex.id for ex in get_task(task_cfg).examples("train")}
    if fresh & selection or fresh & train:
        raise ConfigError("--prompts", f"confirmation prompts overlap the "
                          f"{'selection' if fresh & selection else 'training'} prompts "
                          f"({len(fresh & (selection | train))} shared): the task's splits "
                          "are not disjoint", COMMAND_LINE)
    return available


def confirmation_note(cfg: TrialConfig) -> str:
    """A line for ``--check`` when the task's confirmation split is smaller than the study's
    evaluation (``study/confirm.py`` evaluates as many fresh prompts by default), else ""."""

    task = get_task(cfg)
    counts = getattr(task, "counts", None)
    fresh = (int(counts.get("validation", 0)) if isinstance(counts, dict)
             else len(task.examples("validation")))
    if fresh >= cfg.n_eval_prompts:
        return ""
    return (f"the confirmation (validation) split has {fresh} prompts, fewer than "
            f"n_eval_prompts={cfg.n_eval_prompts}: study/confirm.py would need --prompts ≤ "
            f"{fresh} (a smaller, noisier confirmation) or more data")


def run(study_dir: Path, trial_id: str, configs: list[dict[str, Any]],
        address: str | None = None, quiet: bool = False, intro: str = "") -> None:
    """Run (or resume) the confirmation's Tune experiment on a local or given Ray cluster.
    ``quiet``: a progress display on the terminal, and what Ray, Tune and Train print in
    ``<study>/logs/confirm-<trial>.log`` (polychromic.tuning.progress), named on the first line
    (``intro`` follows it; without ``quiet`` it is printed here)."""
    if not quiet:
        if intro:
            print(intro, flush=True)
        _fit(study_dir, trial_id, configs, address)
        return

    def describe(config: dict[str, Any]) -> tuple[str, int | None]:
        run_cfg = configs[int(config.get("index", 0))]
        label, steps = describe_trial(run_cfg)
        return f"{label} seed {run_cfg.get('seed')}", steps

    tracker = Tracker(f"confirmation of {trial_id}", len(configs), describe)
    log = layout.log_file(study_dir, layout.confirm_experiment(trial_id))
    with quiet_run(log, tracker, intro):
        _fit(study_dir, trial_id, configs, address, shutdown=True)


def _fit(study_dir: Path, trial_id: str, configs: list[dict[str, Any]], address: str | None,
         shutdown: bool = False) -> None:
    """Start (or join) Ray and fit the confirmation's Tuner; ``shutdown``: stop the Ray this
    started afterwards, so nothing it prints comes later."""
    import ray
    from ray import tune

    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.recorder import StudyRecorder

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", SNAPSHOT_SECONDS)
    os.environ.setdefault("WANDB_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=True, runtime_env={"env_vars": {
            k: v for k, v in os.environ.items() if k.startswith("POLYCHROMIC_")}})
    name = layout.confirm_experiment(trial_id)
    location = str((study_dir / name).resolve())
    trainable = tune.with_resources(
        tune.with_parameters(_run_one, study_dir=str(study_dir), configs=configs),
        {"CPU": TRIAL_DRIVER_CPU})
    if (study_dir / name).is_dir() and tune.Tuner.can_restore(location):
        mark_abandoned(study_dir, location, role="confirm")
        tuner = tune.Tuner.restore(location, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=True)
    else:
        cfg = TrialConfig.from_dict(configs[0])
        need = cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU
        at_once = max(1, int(math.floor(ray.cluster_resources().get("CPU", 1) / need)))
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(list(range(len(configs))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=at_once),
            run_config=tune.RunConfig(
                name=name, storage_path=str(study_dir.resolve()),
                callbacks=[StudyRecorder(study_dir)],
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures)),
        )
    try:
        raise_if_interrupted(tuner.fit(), len(configs), "the same study/confirm.py command")
    finally:
        if shutdown and started:
            ray.shutdown()


def _run_one(config: dict[str, Any], study_dir: str, configs: list[dict[str, Any]]) -> None:
    """Tune function trainable: run confirmation run ``config["index"]`` as a study trial."""
    # lazy: pulls Ray, which reading or checking a study never needs
    from polychromic.tuning.trial import run_trial

    run_trial(configs[int(config["index"])], study_dir)
