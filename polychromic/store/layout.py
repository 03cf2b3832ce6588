"""The study folder: every name and path in it, spelled here and nowhere else.

Trials, the review, rescoring, export, confirmation, resume and the URI mirror all find a
study's files through this module, so a file moves or is renamed in one place. Stdlib only: a
reader of a study imports nothing heavier for its paths.

    <storage>/<study>/                  study_dir(storage, name)
      study.json                        STUDY_FILE: space, overrides and settings it started with
      optuna.db                         OPTUNA_DB: the Optuna study (optuna_url; optuna-dashboard)
      tune/                             TUNE: Ray Tune's experiment (resumable with --resume)
        experiment_state-<time>.json    TUNE_SNAPSHOT_PREFIX: Tune's snapshots of the experiment
      confirm-<trial>/                  confirm_experiment(trial): study/confirm.py's Tune experiment
      leaderboard.parquet               LEADERBOARD: one row per trial
      rescores/                         RESCORES: study/score.py's history (rescore_dir)
        <UTC time>/                     the files one rescore replaced, at their own relative
          rescore.json                  paths (RESCORE_FILE: when, with which arguments, which
          trials/<id>/result.json …     files), so that `study/score.py --undo` puts them back
      logs/                             LOGS: what Ray, Tune, Train and W&B printed
        run.log                         log_file(study, "run"): every study/run.py (appended)
        confirm-<trial>.log             log_file(study, confirm_experiment(trial))
      plan/                             PLAN: `study/run.py --plan` (base model, no training)
        generations.parquet             the base model's evaluation samples
        frontier.parquet                FRONTIER: the base model's samples at every frontier
                                        temperature (settings.frontier_temperatures)
        headroom.parquet                their floor and ceiling sample sets
        plan.json                       PLAN_FILE: headroom, MDE, cost estimate
      trials/                           TRIALS
        <trial_id>/                     trial_dir(study, trial_id)
          config.json                   CONFIG: the trial's full TrialConfig
          adopted.json                  ADOPTED: the abandoned trial it continues (resume)
          adopted_by                    ADOPTED_BY: an abandoned trial's claim (resume)
          history.jsonl                 HISTORY: every training report, appended as it arrives
          generations.parquet           GENERATIONS: every evaluation sample with its scores
          headroom.parquet              HEADROOM: (λ=0 baseline) floor and ceiling sample sets
          frontier.parquet              FRONTIER: the final adapter's samples at every frontier
                                        temperature (the λ=0 baseline; with frontier_for, the
                                        Pareto-optimal or all trials): the GENERATIONS schema,
                                        the temperature in its eval_temperature column
          result.json                   RESULT: final metrics + status (finished / error)
          status.json                   STATUS: what Tune decided (finished / early_stopped /
                                        error / abandoned + reason)
          train/                        TRAIN: the trial's Ray Train run
            checkpoint_<time>/          CHECKPOINT_PREFIX: one checkpoint (polychromic.store.checkpoint)
              adapter/                  ADAPTER: the LoRA adapter (peft; ADAPTER_WEIGHTS)
              state.pt                  CHECKPOINT_STATE: optimizer, step, RNG
              history.json              CHECKPOINT_HISTORY: every training report so far
              error.json                CHECKPOINT_ERROR: alone, marks a non-finite loss
              evaluation/               CHECKPOINT_EVALUATION: the final checkpoint of a trial
                                        evaluated in its Train worker (eval_placement): its
                                        GENERATIONS (+ FRONTIER) and EVALUATION_TIMINGS, which
                                        the trial copies into its folder

With a URI ``--storage-path`` (``polychromic.store.remote``) Ray's own files, ``tune/`` and
``trials/<id>/train/``, live at ``<uri>/<study>``; everything else is the record kept on the
head in ``<local_dir>/<study>`` and mirrored there (``is_record``). URI paths are built from
the same names with ``polychromic.store.remote.join``.
"""

from __future__ import annotations

from pathlib import Path

#: where studies live unless ``--storage-path`` says otherwise
DEFAULT_STORAGE = "studies"

# --- the study folder ---------------------------------------------------------------------------
STUDY_FILE = "study.json"
OPTUNA_DB = "optuna.db"
TUNE = "tune"
TUNE_SNAPSHOT_PREFIX = "experiment_state-"
LEADERBOARD = "leaderboard.parquet"
RESCORES = "rescores"
RESCORE_FILE = "rescore.json"
PLAN = "plan"
PLAN_FILE = "plan.json"
TRIALS = "trials"
CONFIRM_PREFIX = "confirm-"
LOGS = "logs"
RUN_LOG = "run"
PLAN_LOG = "plan"
LOG_SUFFIX = ".log"

# --- a trial's folder (the plan folder holds GENERATIONS, HEADROOM and FRONTIER too) ---------------------
CONFIG = "config.json"
ADOPTED = "adopted.json"
ADOPTED_BY = "adopted_by"
HISTORY = "history.jsonl"
GENERATIONS = "generations.parquet"
FRONTIER = "frontier.parquet"
HEADROOM = "headroom.parquet"
RESULT = "result.json"
STATUS = "status.json"
TRAIN = "train"

# --- a checkpoint folder (Ray Train names it checkpoint_<time>) ---------------------------------
CHECKPOINT_PREFIX = "checkpoint_"
ADAPTER = "adapter"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKPOINT_STATE = "state.pt"
CHECKPOINT_HISTORY = "history.json"
CHECKPOINT_ERROR = "error.json"
CHECKPOINT_EVALUATION = "evaluation"
EVALUATION_TIMINGS = "timings.json"


def study_dir(storage: str | Path, name: str) -> Path:
    """The folder of the study ``name`` under the local folder ``storage`` (``~`` expanded,
    absolute): where a study is started, resumed and planned (``polychromic.store.remote.
    study_locations``) and where a recipe finds it by name (``polychromic.review.study.
    resolve_study``)."""
    return Path(storage).expanduser().resolve() / name


def study_file(study: Path) -> Path:
    return Path(study) / STUDY_FILE


def trials_dir(study: Path) -> Path:
    return Path(study) / TRIALS


def trial_dir(study: Path, trial_id: str) -> Path:
    return Path(study) / TRIALS / str(trial_id)


def tune_dir(study: Path) -> Path:
    return Path(study) / TUNE


def optuna_db(study: Path) -> Path:
    return Path(study) / OPTUNA_DB


def optuna_url(study: Path) -> str:
    """The study's Optuna storage URL (what ``optuna-dashboard`` takes)."""
    return f"sqlite:///{optuna_db(study).resolve()}"


def leaderboard_file(study: Path) -> Path:
    return Path(study) / LEADERBOARD


def rescores_dir(study: Path) -> Path:
    return Path(study) / RESCORES


def rescore_dir(study: Path, stamp: str) -> Path:
    """The folder keeping the files one rescore (started at UTC time ``stamp``) replaced."""
    return rescores_dir(study) / stamp


def plan_dir(study: Path) -> Path:
    return Path(study) / PLAN


def logs_dir(study: Path) -> Path:
    """Where a quiet run sends Ray's, Tune's, Train's and W&B's output (``polychromic.tuning.
    progress``): the terminal shows only the progress and the leaderboard."""
    return Path(study) / LOGS


def log_file(study: Path, command: str) -> Path:
    """The log of one command of the study (``RUN_LOG``, ``PLAN_LOG`` or a
    ``confirm_experiment`` name);
    every invocation appends to it."""
    return logs_dir(study) / f"{command}{LOG_SUFFIX}"


def confirm_experiment(trial_id: str) -> str:
    """The name of the Tune experiment (a folder of the study) confirming ``trial_id``."""
    return f"{CONFIRM_PREFIX}{trial_id}"


def looks_like_study(folder: Path) -> bool:
    """``folder`` has a ``study.json`` file or a ``trials/`` folder."""
    return (Path(folder) / STUDY_FILE).is_file() or (Path(folder) / TRIALS).is_dir()


def is_record(parts: tuple[str, ...] | list[str]) -> bool:
    """A study record (path parts relative to the study folder), as opposed to Ray's own
    files, which a URI study keeps at the URI (``tune/``, ``trials/<id>/train/``), or a
    half-written temp file of an atomic write (``.name.pid.tmp``)."""
    return (parts[0] != TUNE and not parts[-1].startswith(".")
            and not (len(parts) > 2 and parts[0] == TRIALS and parts[2] == TRAIN))
