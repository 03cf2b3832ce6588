"""The Ray Data evaluation pipeline: sharding does not change the samples or the metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polychromic.core.config import TrialConfig
from polychromic.core.phases import EVALUATION_PHASES
from polychromic.evaluation.pipeline import evaluate
from polychromic.store.generations import read_generations
from tests.conftest import TINY_SETTINGS

pytestmark = pytest.mark.slow  # Ray Data pipelines on the tiny model


def test_two_actors_give_the_same_samples_and_metrics_as_one(ray_cluster, tmp_path: Path) -> None:
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "n_eval_prompts": 6, "eval_batch_prompts": 2})
    timings: dict[str, float | None] = {}
    one = evaluate(cfg, None, tmp_path / "one", actors=1, timings=timings)
    two = evaluate(cfg, None, tmp_path / "two", actors=2)
    g1 = read_generations(tmp_path / "one" / "generations.parquet")
    g2 = read_generations(tmp_path / "two" / "generations.parquet")
    assert len(g1) == 6 * cfg.n_eval_samples
    assert g1["text"].tolist() == g2["text"].tolist()
    assert np.array_equal(g1["quality_score"].to_numpy(float), g2["quality_score"].to_numpy(float))
    for key, value in one.items():
        if isinstance(value, float) and np.isfinite(value):
            assert two[key] == pytest.approx(value, abs=1e-9), key
    # every sample is on disk with its generation settings
    for col in ("prompt_id", "sample_index", "prompt", "text", "token_count", "quality_score",
                "passed", "eval_temperature", "eval_top_p", "eval_max_new_tokens", "eval_seed"):
        assert col in g1.columns, col
    assert sorted(set(g1["sample_index"])) == list(range(cfg.n_eval_samples))
    # the evaluation's phases (polychromic.core.phases), measured; the actors' clock columns
    # are not samples' data and stay out of the file
    assert set(timings) == set(EVALUATION_PHASES), timings
    assert all(timings[k] > 0 for k in EVALUATION_PHASES), timings
    assert not [c for c in g1.columns if c.startswith("_")], list(g1.columns)


def test_a_failing_scoring_batch_is_nan_with_its_reason_and_the_rest_is_kept(
        own_ray, tmp_path: Path) -> None:
    import json

    # the fault hook is read by the actors: a cluster of its own with it in their env
    fault = json.dumps({"kind": "score", "prompt_index": 1})
    own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False,
            runtime_env={"env_vars": {"POLYCHROMIC_FAULT": fault}})
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "n_eval_prompts": 4, "eval_batch_prompts": 2})
    metrics = evaluate(cfg, None, tmp_path / "f", actors=1)
    gens = read_generations(tmp_path / "f" / "generations.parquet")
    failed = (gens["score_error"] != "").to_numpy()
    # the failing batch is one generation group (prompts 0-1); the other group is kept
    assert set(gens.loc[failed, "prompt_index"]) == {0, 1}
    assert set(gens.loc[~failed, "prompt_index"]) == {2, 3}
    quality = gens["quality_score"].to_numpy(dtype=float)
    assert np.isnan(quality[failed]).all() and np.isfinite(quality[~failed]).all()
    assert "injected scoring failure" in metrics["metric_errors"]
    for key in ("pass@1", "pass@10", "quality_mean", "semantic_diversity"):
        assert np.isnan(metrics[key]), key  # never 0.0
    assert 0 < metrics["distinct_2"] <= 1  # text metrics need no scorer: all samples count
