"""Shared fixtures: the tiny model (real Llama architecture, SmolLM2 tokenizer), a tiny
search space (``write_space``), and a hand-built study folder (``write_tiny_study``) that the review, export,
terminal and Optuna tests read. Nothing here loads from a model hub."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")

ROOT = Path(__file__).resolve().parent.parent

TINY_SETTINGS = {
    "model": "tiny",
    "task": "chitchat",
    "steps": 4,
    "batch_size": 2,
    "max_length": 48,
    "report_every": 2,
    "n_generations": 3,
    "compute_every_n_steps": 2,
    "max_examples_for_diversity": 2,
    "max_new_tokens": 8,
    "learning_rate": 0.01,
    "n_eval_prompts": 4,
    "n_eval_samples": 10,
    "eval_max_new_tokens": 8,
    "eval_batch_prompts": 2,
    "max_failures": 1,
}


def write_space(path: Path, **extra: object) -> Path:
    """A search space file at ``path`` for the end-to-end studies (test_study_e2e,
    test_resume, test_multinode): TINY_SETTINGS, λ log-uniform in [0.1, 10] with the points
    0.5 and 2.0, two objectives, no scheduler, 3 trials; ``extra`` replaces top-level keys."""
    space = {
        "description": "tiny end-to-end test space",
        "settings": dict(TINY_SETTINGS),
        "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
        "points": [{"lambda_": 0.5}, {"lambda_": 2.0}],
        # two objectives: Optuna's multi-objective mode, Pareto markers in the leaderboard
        "objectives": [{"metric": "semantic_diversity", "mode": "max"},
                       {"metric": "pass@10", "mode": "max"}],
        "scheduler": {"enabled": False},
        "num_trials": 3,
        **extra,
    }
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from polychromic.models.loading import resolve_model_path

    return resolve_model_path("tiny")


# --- a hand-built study folder (test_review, test_export, test_terminal, test_optuna_sync) --------

#: prompts × samples of every finished trial of the tiny study
PROMPTS, SAMPLES = 4, 5
#: trial id → (λ, pass@1, semantic_diversity, self_bleu, status, use_gpu, wall_seconds)
TRIALS: dict[str, tuple[float, float, float, float, str, bool | None, float]] = {
    "base0000": (0.0, 0.40, 0.50, 0.30, "finished", False, 1800.0),
    "aaaa1111": (0.1, 0.45, 0.55, 0.25, "finished", True, 7200.0),
    "bbbb2222": (1.0, 0.30, 0.80, 0.10, "finished", None, 3600.0),
    "cccc3333": (3.0, 0.30, 0.70, 0.12, "finished", True, 3600.0),
    "dddd4444": (10.0, math.nan, math.nan, math.nan, "error", True, 900.0),
    "eeee5555": (0.5, math.nan, math.nan, math.nan, "early_stopped", True, math.nan),
    "ffff6666": (2.0, math.nan, math.nan, math.nan, "running", True, math.nan),
}
DEFAULT_ORDER = ["bbbb2222", "aaaa1111", "cccc3333", "base0000", "dddd4444", "eeee5555",
                 "ffff6666"]
OOM = "Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory"
SPACE = """description: tiny study for tests
settings: {model: tiny, steps: 6, n_eval_prompts: 4, n_eval_samples: 5}
params:
  lambda_: {distribution: log_uniform, low: 0.1, high: 10.0}
objectives:
  - {metric: semantic_diversity, mode: max}
  - {metric: pass@1, mode: max}
num_trials: 7
"""


def write_json_file(path: Path, data: Any) -> None:
    """``data`` as indented JSON at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def tiny_generations(pass1: float, seed: int) -> pd.DataFrame:
    """PROMPTS × SAMPLES samples whose passed flags give exactly ``pass1`` as mean pass@1."""
    rng = np.random.default_rng(seed)
    total = round(pass1 * PROMPTS * SAMPLES)
    counts = [total // PROMPTS + (1 if i < total % PROMPTS else 0) for i in range(PROMPTS)]
    rows = []
    for p, c in enumerate(counts):
        for s in range(SAMPLES):
            emb = rng.normal(size=8)
            rows.append({
                "prompt_index": p, "prompt_id": f"p{p}", "sample_index": s,
                "prompt": f"prompt {p}", "target": "t", "group": f"g{p}", "meta": "{}",
                "text": f"reply {p} {s} " + " ".join(rng.choice(list("abcdefgh"), 5)),
                "token_count": 7, "quality_score": 0.9 if s < c else 0.1, "passed": s < c,
                "reason": "ok", "embedding": (emb / np.linalg.norm(emb)).astype(np.float32),
                "score_error": "",
            })
    return pd.DataFrame(rows)


def write_tiny_study(root: Path, name: str = "tiny", adapters: dict[str, Path] | None = None,
                     trials: dict[str, tuple[float, float, float, float, str, bool | None, float]]
                     | None = None, headroom: bool = False) -> Path:
    """A study folder ``root/name`` with the trials of ``trials`` (default TRIALS), written file
    by file in the layout of ``polychromic.store.layout``; ``adapters`` maps trial ids to peft
    adapter folders copied in as their checkpoint (``train/checkpoint_…/adapter``).

    A finished trial's result.json holds the hand-set values of TRIALS and, for every other
    metric (the per-prompt diversity metrics, mean_tokens, …), what ``polychromic.metrics.aggregate``
    computes from its generations. ``headroom``: the baseline also gets the floor and ceiling
    sample sets (``headroom.parquet``, see ``polychromic.stats.headroom``), the ceiling made of other
    prompts' texts with random unit embeddings, like the baseline's own samples, so its
    semantic diversity is at the ceiling."""
    import shutil

    from polychromic.core.config import TrialConfig
    from polychromic.metrics.aggregate import aggregate

    study = root / name
    space = root / f"{name}_space.yaml"
    space.write_text(SPACE)
    write_json_file(study / "study.json", {"space": str(space), "overrides": {}, "name": name,
                                           "wandb": False})
    for i, (tid, (lam, p1, sd, sb, status, gpu, wall)) in enumerate((trials or TRIALS).items()):
        tdir = study / "trials" / tid
        cfg = TrialConfig.from_dict({"model": "tiny", "lambda_": lam, "steps": 6,
                                     "n_eval_prompts": PROMPTS, "n_eval_samples": SAMPLES,
                                     "use_gpu": gpu, "lora_r": 8})
        write_json_file(tdir / "config.json", cfg.to_dict())
        ckpt = None
        if adapters and tid in adapters:
            ckpt = tdir / "train" / "checkpoint_2026-01-01_00-00-06.000000"
            shutil.copytree(adapters[tid], ckpt / "adapter")
        steps = {"finished": 6, "error": 2, "early_stopped": 2, "running": 4}[status]
        history = []
        for k, step in enumerate(range(2, steps + 1, 2)):
            history.append({
                "step": step, "lambda_": lam,
                # the early-stopped trial has the lowest training loss of all (see test_export)
                "quality_loss": (3.0 if status == "early_stopped" else 4.0 + i / 10) - k * 0.1,
                "diversity_score": 0.5 + 0.05 * k + lam / 100, "poly_score": 0.3,
                "diversity_grad_share": 0.0 if lam == 0 else min(0.9, lam / 5) - 0.01 * k,
                "mean_diversity_score": 0.5 + 0.02 * k,
                "mean_diversity_grad_share": 0.0 if lam == 0 else min(0.9, lam / 5),
                "time_total_s": 600.0 * (k + 1), "trial_id": tid,
                "checkpoint_path": str(ckpt) if ckpt else None,
            })
        (tdir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        if status == "running":  # a report cut in the middle of being written
            with open(tdir / "history.jsonl", "a") as f:
                f.write('{"step": 6, "quality_lo')
            continue
        if status == "finished":
            gens = tiny_generations(p1, i)
            gens.to_parquet(tdir / "generations.parquet", index=False)
            if headroom and lam == 0:
                write_headroom_sets(gens, tdir / "headroom.parquet")
            result = {**history[-1], "status": "finished", "error": "", "pass@1": p1,
                      "pass@5": min(1.0, p1 + 0.3), "quality_mean": p1 + 0.1,
                      "distinct_1": 0.3 + lam / 50, "distinct_2": 0.6 + lam / 50,
                      "self_bleu": sb, "semantic_diversity": sd, "wall_seconds": wall,
                      "train_seconds": wall / 2,
                      "checkpoint_path": str(ckpt) if ckpt else f"/elsewhere/{tid}/ckpt"}
            computed = aggregate(gens)
            result.update({k: v for k, v in computed.items()
                           if k not in result and k != "metric_errors"})
            write_json_file(tdir / "result.json", result)
            write_json_file(tdir / "status.json", {"status": "finished", "error": ""})
        elif status == "error":
            write_json_file(tdir / "result.json", {**history[-1], "status": "error", "error": OOM,
                                                   "pass@1": None, "semantic_diversity": None,
                                                   "wall_seconds": wall})
            write_json_file(tdir / "status.json", {"status": "error", "error": OOM})
        else:
            write_json_file(tdir / "status.json", {"status": "early_stopped", "error": ""})
    return study


def write_headroom_sets(gens: pd.DataFrame, path: Path) -> None:
    """Floor and ceiling sets of ``gens`` (``polychromic.stats.headroom``) with a stand-in encoder
    that returns random unit vectors (seeded), so no sentence encoder is loaded."""
    from polychromic.stats import headroom as H

    class RandomEncoder:
        def encode(self, texts: list[str]) -> np.ndarray:
            vecs = np.random.default_rng(1).normal(size=(len(texts), 8))
            return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    pool = [(f"r{j}", f"h{j}", f"unrelated reference text number {j} with several words")
            for j in range(4 * SAMPLES * PROMPTS)]
    H.write_sets(H.build_sets(gens, pool, RandomEncoder()), path)


def load_cli(name: str) -> Any:
    """``study/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"cli_{name}", ROOT / "study" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line_error(err: str) -> str:
    """The stderr of a refused command: exactly one line, starting with ``error:``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- one local Ray cluster for the whole session -----------------------------------------------
#
# Starting and stopping a local cluster costs seconds each time, so the tests that only need *a*
# cluster (Ray Data evaluation, a Ray Train run) share one: request the ``ray_cluster`` fixture.
# It is started on first use and kept until the session ends (``pytest_sessionfinish``).
#
# Two local clusters on one machine confuse Ray Train's cleanup (trials hang), so a test that
# brings its own cluster (``study/run.py`` as a subprocess, ``ray start`` nodes, ``ray.init`` with
# a different worker environment) must not overlap the shared one: request ``no_shared_ray``
# (or mark the module ``pytestmark = pytest.mark.usefixtures("no_shared_ray")``); it stops the
# shared cluster first, and the next ``ray_cluster`` user starts it again. ``own_ray`` does
# that and starts (then stops) a cluster with the test's own ``ray.init`` arguments.

#: how the shared cluster is started (2 CPUs, as on CI; Train V2 in every worker)
SHARED_RAY = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False,
              "runtime_env": {"env_vars": {"RAY_TRAIN_V2_ENABLED": "1"}}}


def _ray_running() -> bool:
    """Whether this process holds a Ray connection (without importing Ray if nothing did)."""
    import sys

    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.fixture
def ray_cluster() -> Any:
    """The session's shared local Ray cluster (started here on first use); returns ``ray``.
    A test may ``ray.shutdown()`` it to start one of its own: the next user starts it again."""
    import ray

    if not ray.is_initialized():
        ray.init(**SHARED_RAY)
    return ray


def stop_shared_ray() -> None:
    """Stop the shared cluster if it runs (for module- or session-scoped fixtures that start
    their own Ray, e.g. a study run as a subprocess; ``no_shared_ray`` for tests)."""
    if _ray_running():
        import ray

        ray.shutdown()


@pytest.fixture
def no_shared_ray() -> None:
    """Stop the shared cluster (if running) before a test that starts its own Ray."""
    stop_shared_ray()


@pytest.fixture
def own_ray(no_shared_ray: None) -> Any:
    """``start(**ray_init_kwargs)``: a local cluster of this test's own (e.g. with a different
    worker environment), started after the shared one is stopped and shut down when the test
    ends."""
    import ray

    def start(**kwargs: Any) -> Any:
        ray.init(**kwargs)
        return ray

    yield start
    if ray.is_initialized():
        ray.shutdown()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the shared cluster at the end of the session."""
    if _ray_running():
        import ray

        ray.shutdown()


# --- one study killed mid-trial and resumed, shared by test_quantized and test_resume ----------
#
# A study whose driver is SIGKILLed once one trial has finished and another has written a
# checkpoint, then finished with ``--resume``, costs minutes on 2 cores. The 4-bit study of
# tests/test_quantized.py is such a study with Tune snapshotting every 2 s, so it also serves
# the ``in_snapshot`` case of tests/test_resume.py (the resume logic does not depend on the
# quantization; the ``after_snapshot`` case runs its own fp32 study). Session-scoped: built once
# by whichever module asks first, never modified by a test (copy it to change it).

#: settings that turn the temperature frontier off, for studies whose tests do not read it: the
#: baseline's extra temperatures and the Pareto trials' sweep after the study are whole
#: evaluations (tests/test_study_e2e.py and tests/test_frontier_eval.py test the frontier)
NO_FRONTIER = {"frontier_temperatures": []}


class ResumedStudy:
    """What ``kill_then_resume`` leaves: the study folder, the Optuna study name, the trial
    that was interrupted, the result.json of every trial finished before the kill, whether
    a leaderboard existed at the kill (it must not), and what the (quiet) ``--resume``
    printed on stdout and stderr."""

    def __init__(self, study: Path, name: str, interrupted: str,
                 finished_before: dict[str, dict[str, Any]], board_at_kill: bool,
                 resumed_stdout: str, resumed_stderr: str) -> None:
        self.study, self.name, self.interrupted = study, name, interrupted
        self.finished_before, self.board_at_kill = finished_before, board_at_kill
        self.resumed_stdout, self.resumed_stderr = resumed_stdout, resumed_stderr


def kill_then_resume(tmp: Path, name: str, space: Path, snapshot_s: str,
                     held: float) -> ResumedStudy:
    """Run ``study/run.py --space SPACE`` as a subprocess with ``TUNE_GLOBAL_CHECKPOINT_S``
    = ``snapshot_s``; SIGKILL its process group once the λ=0 baseline (run first) has a
    result.json and the λ = ``held`` trial has its step-2 checkpoint; then ``--resume`` it
    (without that variable) to the end.

    The λ = ``held`` trial is held after its step-2 report (a ``kill`` fault of
    polychromic.core.faults before step 3 that waits 600 s, inert on resume: its marker exists),
    so the driver's kill always lands between steps 2 and 3 and the resumed trial restores
    from step 2; without the hold a fast trial may checkpoint step 4 before the kill lands."""
    import signal
    import subprocess
    import sys
    import time

    from polychromic.store.records import read_json

    stop_shared_ray()  # the study starts its own local cluster
    study = tmp / name
    cmd = [sys.executable, str(ROOT / "study" / "run.py"), "--space", str(space),
           "--storage-path", str(tmp), "--name", name, "--no-wandb"]
    marker = tmp / f"{name}-held"
    fault = {"kind": "kill", "step": 2, "lambda_": held, "marker": str(marker), "delay_s": 600}
    env = {**{k: v for k, v in os.environ.items() if k != "TUNE_GLOBAL_CHECKPOINT_S"},
           "POLYCHROMIC_FAULT": json.dumps(fault)}
    first_log = tmp / f"{name}-first.log"
    log = first_log.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**env, "TUNE_GLOBAL_CHECKPOINT_S": snapshot_s})
    deadline = time.time() + 480
    try:
        while time.time() < deadline:
            done = list(study.glob("trials/*/result.json"))
            busy = [t for t in study.glob("trials/*")
                    if any(t.glob("train/checkpoint_*/adapter"))
                    and not (t / "result.json").exists()]
            if done and busy and marker.exists():
                break
            assert proc.poll() is None, first_log.read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError(f"{name}: no trial reached a checkpoint in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
        proc.wait()
        log.close()
    finished_before = {p.parent.name: read_json(p) for p in study.glob("trials/*/result.json")}
    board_at_kill = (study / "leaderboard.parquet").exists()
    resumed = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--resume", name,
                              "--storage-path", str(tmp)], cwd=ROOT, capture_output=True,
                             text=True, timeout=900, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return ResumedStudy(study, name, busy[0].name, finished_before, board_at_kill,
                        resumed.stdout, resumed.stderr)


@pytest.fixture(scope="session")
def nf4_study(tmp_path_factory: pytest.TempPathFactory) -> ResumedStudy:
    """λ = 0 and λ = 2 at ``quantize: 4bit`` (frontier off), Tune snapshotting every 2 s:
    killed after a checkpoint, then resumed (tests/test_quantized.py, tests/test_resume.py).
    Evaluated by Ray Data actors (``eval_placement: actors``): the one study of the suite
    whose trials take that path (the others evaluate in their Train worker), and the path
    that loads a 4-bit base with a saved adapter for inference."""
    tmp = tmp_path_factory.mktemp("nf4")
    space = write_space(tmp / "nf4.yaml", num_trials=2, points=[{"lambda_": 2.0}],
                        settings={**TINY_SETTINGS, **NO_FRONTIER, "quantize": "4bit",
                                  "eval_placement": "actors"})
    return kill_then_resume(tmp, "nf4", space, "2", held=2.0)
