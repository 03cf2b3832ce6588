"""Ray schedules by what tasks declare: the Train workers and the evaluation's generation
actors request the memory the estimate gives (polychromic.models.memory.ray_memory), so Ray
Data no longer says "Ray only requests 0.0B per worker" and a shared node is not overcommitted.
The requests must still fit the 2-CPU test cluster (Ray's memory resource there)."""

from __future__ import annotations

import pytest

from polychromic.core.config import TrialConfig
from polychromic.models import memory
from polychromic.tuning.feasibility import worker_bundle
from tests.conftest import TINY_SETTINGS


def test_the_train_worker_requests_the_estimate() -> None:
    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    bundle = worker_bundle(cfg, 0.0)
    est = memory.estimate(memory.KNOWN_SHAPES["tiny"], cfg.to_dict(), "none", cuda=False)
    assert bundle["memory"] == memory.ray_memory(cfg.to_dict(), False, "training_worker")
    assert bundle["memory"] == pytest.approx(est["training_worker"] * memory.GIB, abs=2**20)
    gpu = worker_bundle(TrialConfig.from_dict({**TINY_SETTINGS, "use_gpu": True}), 0.0)
    assert gpu["GPU"] == 1.0
    assert gpu["memory"] == memory.ray_memory(cfg.to_dict(), True, "training_worker")


def test_an_unknown_model_requests_no_memory(tmp_path) -> None:
    """No shape (a hub id not in the cache): no estimate, so no request (Ray's default)."""
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "model": "nobody/not-cached-model"})
    assert memory.shape_of(cfg.model) is None
    assert "memory" not in worker_bundle(cfg, 0.0)


def test_the_embedded_shapes_match_their_config_files() -> None:
    """The embedded models' shapes are known without building them, and equal what their
    config.json says (the tiny model is built here when missing: seconds)."""
    # lazy: torch, only for this check
    from polychromic.models.loading import resolve_model_path

    assert memory.read_shape(resolve_model_path("tiny")) == memory.KNOWN_SHAPES["tiny"]


@pytest.mark.slow
def test_evaluation_actors_request_the_estimate_and_fit_the_test_cluster(ray_cluster) -> None:
    # lazy: pulls Ray Data's pipeline module
    from polychromic.evaluation.pipeline import plan_actors

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    n, res = plan_actors(cfg)
    assert res["memory"] == memory.ray_memory(cfg.to_dict(), False, "eval_actor") > 0
    # the local 2-CPU cluster holds a trial's worker and its actors at once
    total = ray_cluster.cluster_resources()["memory"]
    assert n * res["memory"] + worker_bundle(cfg, 0.0)["memory"] < total
