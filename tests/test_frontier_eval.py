"""The baseline's temperature frontier (issue 20) sampled in ONE Ray Data pass, on the tiny
model through a real local Ray cluster: the temperature is a column of the pipeline's items,
each generation actor loads the model once (counted in the actor processes themselves), every
temperature gets the same prompts, sample counts and per-sample seeds, and all samples land in
``frontier.parquet`` (the generations.parquet schema), while ``generations.parquet`` and the
metrics stay exactly those of a plain evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from polychromic.core.config import TrialConfig
from polychromic.evaluation.pipeline import evaluate, evaluate_frontier
from polychromic.store import layout
from polychromic.store.generations import read_generations
from tests.conftest import ROOT, TINY_SETTINGS

#: the file each Ray worker appends its pid to whenever it loads a model for inference
LOADS_ENV = "POLYCHROMIC_TEST_LOAD_LOG"


def count_loads() -> None:
    """Ray ``worker_process_setup_hook``: wraps the real ``load_for_inference`` of every worker
    process so each call appends a line to the file named by ``LOADS_ENV``."""
    from polychromic.models import loading

    real = loading.load_for_inference

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        with open(os.environ[LOADS_ENV], "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    loading.load_for_inference = counted


@pytest.fixture
def load_log(own_ray, tmp_path: Path) -> Path:
    """A local cluster of this test's own whose workers count their model loads in the
    returned file (the shared cluster's workers do not run the hook)."""
    log = tmp_path / "loads.txt"
    own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False,
            runtime_env={"worker_process_setup_hook": f"tests.{Path(__file__).stem}.count_loads",
                         "env_vars": {LOADS_ENV: str(log), "RAY_TRAIN_V2_ENABLED": "1",
                                      # the hook is this module: workers import it from the
                                      # checkout (no PYTHONPATH is set in CI)
                                      "PYTHONPATH": str(ROOT)}})
    return log


def loads(log: Path) -> int:
    """Model loads recorded since the log was last cleared (and clear it)."""
    n = len(log.read_text().splitlines()) if log.exists() else 0
    log.unlink(missing_ok=True)
    return n


@pytest.mark.slow  # Ray Data pipelines on the tiny model
def test_one_pass_samples_every_temperature_with_the_same_prompts_and_seeds(
        load_log: Path, tmp_path: Path) -> None:
    # 4 prompts × 5 samples per temperature: two generation groups, enough to compare
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "n_eval_prompts": 4, "n_eval_samples": 5,
                                 "eval_batch_prompts": 2,
                                 "eval_temperature": 0.7, "frontier_temperatures": [1.2, 0.5]})
    assert cfg.frontier_grid() == [0.5, 0.7, 1.2]
    loads(load_log)
    metrics = evaluate(cfg, None, tmp_path / "a", actors=1, frontier=True)
    # 3 temperatures × 2 generation groups = 6 items, one actor: the model loaded once
    assert loads(load_log) == 1
    front = read_generations(tmp_path / "a" / layout.FRONTIER)
    gens = read_generations(tmp_path / "a" / layout.GENERATIONS)
    n = cfg.n_eval_samples * cfg.n_eval_prompts
    assert len(front) == 3 * n and len(gens) == n
    assert list(front.columns) == list(gens.columns)  # the generations schema, same order
    by_t = {t: g.reset_index(drop=True) for t, g in front.groupby("eval_temperature")}
    assert sorted(by_t) == [0.5, 0.7, 1.2]
    keys = ["prompt_id", "sample_index", "eval_seed", "eval_top_p", "eval_max_new_tokens",
            "n_eval_samples"]
    for t, g in by_t.items():  # the same prompts, sample counts and seeds at every T
        assert len(g) == n, t
        assert g[keys].equals(by_t[0.7][keys]), t
        assert np.isfinite(g["quality_score"].to_numpy(float)).all(), t
        assert (g["score_error"] == "").all(), t
    # the temperature was applied: the samples differ between temperatures
    assert (by_t[0.5]["text"] != by_t[1.2]["text"]).sum() > n // 4
    # generations.parquet is the eval temperature's part of the frontier
    assert gens["text"].tolist() == by_t[0.7]["text"].tolist()

    # a plain evaluation draws exactly the same eval-temperature samples and metrics
    plain = evaluate(cfg, None, tmp_path / "b", actors=1)
    assert loads(load_log) == 1
    assert not (tmp_path / "b" / layout.FRONTIER).exists()
    assert read_generations(tmp_path / "b" / layout.GENERATIONS)["text"].tolist() == \
        gens["text"].tolist()
    for key, value in metrics.items():
        if isinstance(value, float) and np.isfinite(value):
            assert plain[key] == pytest.approx(value, abs=1e-12), key

    # the frontier of an already evaluated adapter: only the other temperatures are sampled
    # (one pass, one load), the stored eval-temperature rows complete the same table
    table = evaluate_frontier(cfg, None, tmp_path / "b", actors=1)
    assert loads(load_log) == 1
    again = read_generations(tmp_path / "b" / layout.FRONTIER)
    assert table is not None and len(again) == 3 * n
    assert again["text"].tolist() == front["text"].tolist()
    assert again["eval_temperature"].tolist() == front["eval_temperature"].tolist()
    assert not list((tmp_path / "b").glob("*.tmp"))  # written whole, no leftovers

    # frontier off: nothing sampled, nothing written
    off = TrialConfig.from_dict({**cfg.to_dict(), "frontier_temperatures": []})
    assert evaluate_frontier(off, None, tmp_path / "c", actors=1) is None
    assert loads(load_log) == 0 and not (tmp_path / "c").exists()


def test_which_trials_get_a_frontier_sweep() -> None:
    """``frontier_for``: the baseline always; ``pareto`` adds the finished Pareto-optimal
    trials on the review's ★ axes; ``all`` every finished trial; never a failed trial or
    one without a checkpoint, never a trial twice, the baseline first."""
    import pandas as pd

    from polychromic.tuning.frontier import frontier_trials

    board = pd.DataFrame({
        "trial_id": ["b", "x", "y", "z", "f", "n"],
        "status": ["finished", "finished", "finished", "finished", "error", "finished"],
        "is_baseline": [True, False, False, False, False, False],
        "checkpoint_path": ["/c/b", "/c/x", "/c/y", "/c/z", None, None],
        "pass@1": [0.40, 0.55, 0.30, 0.35, float("nan"), 0.99],
        "semantic_diversity": [0.80, 0.70, 0.90, 0.85, float("nan"), 0.99],
    })
    objectives = [("pass@1", "max"), ("semantic_diversity", "max")]
    assert frontier_trials(board, objectives, "baseline") == ["b"]
    # n would dominate everything but has no checkpoint (not a candidate); among the rest
    # b, x, y, z trade pass@1 against diversity: all four are optimal
    assert frontier_trials(board, objectives, "pareto") == ["b", "x", "y", "z"]
    dominated = board.assign(**{"pass@1": [0.40, 0.55, 0.30, 0.29, float("nan"), 0.99]})
    assert frontier_trials(dominated, objectives, "pareto") == ["b", "x", "y"]
    assert frontier_trials(dominated, objectives, "all") == ["b", "x", "y", "z"]
    assert frontier_trials(board.iloc[0:0], objectives, "all") == []
    # one diversity objective (the demo's): the ★'s axes pair it with pass@1, so the trial that
    # bought pass@1 at a diversity cost (x, the one a temperature could imitate) is swept too,
    # as the ★ marks it; without the pairing only the most diverse trial (y) would be
    one = [("semantic_diversity", "max")]
    assert frontier_trials(board, one, "pareto") == ["b", "x", "y", "z"]
    assert frontier_trials(dominated, one, "pareto") == ["b", "x", "y"]
