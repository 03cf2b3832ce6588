"""Nothing lost: a killed Train worker resumes from its checkpoint and finishes; a trial whose
loss turns NaN is recorded as an error while the others finish; a scoring failure is NaN plus
its reason, never 0.0. One real tiny study with all three faults injected."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polychromic.evaluate import read_generations
from polychromic.records import read_jsonl
from tests.conftest import ROOT
from tests.test_study_e2e import write_space


@pytest.fixture(scope="module")
def faulty_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("faults")
    space = write_space(tmp / "tiny.yaml")
    faults = [
        {"kind": "kill", "step": 3, "lambda_": 0.5, "marker": str(tmp / "killed")},
        {"kind": "nan", "step": 1, "lambda_": 2.0, "marker": str(tmp / "poisoned")},
        {"kind": "score", "prompt_index": 1},
    ]
    env = {**os.environ, "POLYCHROMIC_FAULT": json.dumps(faults)}
    proc = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", str(space),
                           "--storage-path", str(tmp), "--name", "faulty", "--no-wandb"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp / "killed").exists() and (tmp / "poisoned").exists()
    return tmp / "faulty"


def test_killed_worker_resumes_from_its_checkpoint(faulty_study: Path) -> None:
    df = pd.read_parquet(faulty_study / "leaderboard.parquet").set_index("lambda_")
    row = df.loc[0.5]
    assert row["status"] == "finished" and row["steps"] == 4
    history = read_jsonl(faulty_study / "trials" / row["trial_id"] / "history.jsonl")
    steps = [h["step"] for h in history]
    # reported 2, killed at step 3, restored from the step-2 checkpoint, reported 4: the step
    # count continued instead of starting over at 0
    assert steps == [2, 4], steps
    assert history[-1]["restored_from_step"] == 2
    assert "restored_from_step" not in history[0]


def test_nan_trial_is_an_error_and_the_study_goes_on(faulty_study: Path) -> None:
    df = pd.read_parquet(faulty_study / "leaderboard.parquet").set_index("lambda_")
    bad = df.loc[2.0]
    assert bad["status"] == "error"
    assert "non-finite" in bad["error"]
    assert math.isnan(bad["pass@1"])
    assert df.loc[0.0, "status"] == "finished"


def test_scoring_failure_is_nan_with_reason_and_the_rest_is_kept(faulty_study: Path) -> None:
    df = pd.read_parquet(faulty_study / "leaderboard.parquet").set_index("lambda_")
    base = df.loc[0.0]
    assert math.isnan(base["pass@1"]) and math.isnan(base["quality_mean"])
    assert "injected scoring failure" in base["error"]
    gens = read_generations(faulty_study / "trials" / base["trial_id"] / "generations.parquet")
    failed = gens["score_error"] != ""
    # the failing batch (one generation group, prompts 0-1) is marked; the other group is kept
    assert 1 in set(gens.loc[failed, "prompt_index"])
    assert set(gens.loc[~failed, "prompt_index"]) == {2, 3}
    quality = gens["quality_score"].to_numpy(dtype=float)
    assert np.isnan(quality[failed.to_numpy()]).all()
    assert np.isfinite(quality[~failed.to_numpy()]).all()
    # text metrics need no scorer: they are still computed on every sample
    assert 0 < base["distinct_2"] <= 1
