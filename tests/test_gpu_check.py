"""The GPU check (``bench/gpu_check.py``) runs where the lent GPU machine's image runs: without
Ray, Optuna, NLTK, W&B or vLLM. Here those modules are made unimportable in a subprocess
(``sys.modules[name] = None``: ``import name`` then raises ImportError) and the check runs its
CPU path, so the first GPU call cannot fail on an import. No Ray cluster is started."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BLOCKED = ("ray", "optuna", "nltk", "wandb", "vllm")
BLOCK = f"import sys\nfor m in {BLOCKED!r}: sys.modules[m] = None\n"


def _python(code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_blocker_blocks() -> None:
    """The block is real: the metrics' tokenizer (NLTK) fails under it; so the tests below
    would fail if the check needed NLTK."""
    run = _python("from polychromic.metrics import tokenize\ntokenize('a b')")
    assert run.returncode != 0
    assert "ModuleNotFoundError" in run.stderr or "ImportError" in run.stderr
    assert "nltk" in run.stderr


def test_the_training_step_imports_without_ray_optuna_nltk_wandb() -> None:
    """Every module the check imports loads with those packages blocked (NLTK is imported on
    the first tokenization, Ray and Optuna only in the tuning/evaluation layers)."""
    run = _python("import polychromic.training.step, polychromic.models.loading, "
                  "polychromic.models.memory, polychromic.metrics.encoder, "
                  "polychromic.models.sampling, polychromic.core.config\n"
                  f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r} "
                  "and sys.modules[m] is not None))")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_without_the_missing_packages(tmp_path: Path) -> None:
    """``--prepare`` writes the carried assets (tokenizer, SmolLM2-135M config, MiniLM without
    weights); ``--quick --device cpu`` then builds the tiny model and a random-weight MiniLM
    from them, trains one QLoRA diversity step at NF4 and times generation, with the packages
    the lent machine lacks blocked. bitsandbytes is this venv's (there: the carried wheel)."""
    carry, out = tmp_path / "carry", tmp_path / "out" / "gpu_check.json"
    prep = _python(f"import runpy\nsys.argv = ['gpu_check.py', '--prepare', {str(carry)!r}]\n"
                   "runpy.run_path('bench/gpu_check.py', run_name='__main__')")
    assert prep.returncode == 0, prep.stderr[-2000:]
    assert not (carry / "minilm" / "model.safetensors").exists()  # weights never travel
    run = _python("import runpy\nsys.argv = ['gpu_check.py', '--quick', '--device', 'cpu', "
                  f"'--assets', {str(carry)!r}, '--out', {str(out)!r}]\n"
                  "runpy.run_path('bench/gpu_check.py', run_name='__main__')", timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ok"] and not result["errors"]
    env = result["environment"]
    assert env["device_type"] == "cpu"
    assert not any(env["importable"].values()), env["importable"]
    (train,) = result["train"]
    assert train["model"] == "tiny" and train["quantization"] == "nf4"
    (step,) = train["steps"]
    assert math.isfinite(step["quality_loss"]) and math.isfinite(step["combined_loss"])
    assert step["diversity_grad_share"] > 0
    assert train["measured"]["peak_rss_gib"] > 0
    assert train["estimate_gib"]["training_worker"] > train["estimate_gib"]["weights"] > 0
    assert train["estimate_over_measured"] > 0
    gen = {row["quantization"]: row for row in result["generate"]}
    assert set(gen) == {"none", "nf4"}
    assert all(row["tokens"] > 0 and row["tokens_per_second"] > 0 for row in gen.values())
