"""Ray schedules by what tasks declare: every task or actor that holds a model requests the
memory the estimate gives (polychromic.models.memory): the Train workers and ``--plan``'s
step-timing task (``training_worker``), the evaluation's generation actors (``eval_actor``; a
vLLM engine's weights and KV share on the vLLM path) and its scoring actor (the sentence
encoder: ``scoring_memory``), so Ray Data no longer says "Ray only requests 0.0B per worker"
and a shared node is not overcommitted. The requests must still fit the 2-CPU test cluster
(Ray's memory resource there)."""

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


def test_the_scoring_actor_requests_the_shipped_encoder_and_one_batch() -> None:
    """The encoder's figure is its weight files as shipped (all-MiniLM-L6-v2: 22.7 M fp32
    parameters, 87 MiB), plus one encoding batch's activations and the common overhead."""
    weights = memory.encoder_bytes()
    assert 80 * 2**20 < weights < 100 * 2**20
    request = memory.scoring_memory()
    assert request % 2**20 == 0
    assert weights * 1.1 + 0.5 * memory.GIB < request < 1.5 * memory.GIB


def test_a_vllm_engine_requests_its_own_weights_and_kv_share() -> None:
    """On CPU a vLLM engine holds an fp32 copy of the weights and the KV cache it is given
    (``VLLM_CPU_KV_GIB``); on a GPU both live in the GPU memory it reserves, which Ray's
    (host) ``memory`` does not count."""
    cfg = TrialConfig.from_dict(TINY_SETTINGS).to_dict()
    shape = memory.KNOWN_SHAPES["tiny"]
    engine = shape.parameters() * 4 + memory.VLLM_CPU_KV_GIB * memory.GIB
    cpu = memory.ray_memory(cfg, False, "eval_actor", vllm=True)
    assert cpu == pytest.approx(engine * 1.1 + 0.5 * memory.GIB, abs=2**20)
    assert cpu > memory.ray_memory(cfg, False, "eval_actor")
    assert memory.ray_memory(cfg, True, "eval_actor", vllm=True) == 0.5 * memory.GIB
    # a colocated engine in a CPU Train worker: its copy replaces HF's KV cache
    hf = memory.estimate(shape, cfg, "none", cuda=False)
    colocated = memory.estimate(shape, cfg, "none", cuda=False, vllm=True)
    assert colocated["rollout_kv_cache"] * memory.GIB == pytest.approx(engine)
    assert colocated["training_worker"] > hf["training_worker"]


def test_a_train_worker_with_a_colocated_vllm_engine_requests_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``generation_backend: vllm`` on a CPU worker: the engine's fp32 copy and KV share are
    part of the Train worker's request. (The config refuses ``vllm`` where vLLM is not
    installed; here it is said to be, since only the request is computed.)"""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else real(name, *a))
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "generation_backend": "vllm"})
    assert worker_bundle(cfg, 0.0)["memory"] == memory.ray_memory(
        cfg.to_dict(), False, "training_worker", vllm=True)
    assert worker_bundle(cfg, 0.0)["memory"] > worker_bundle(
        TrialConfig.from_dict(TINY_SETTINGS), 0.0)["memory"] + memory.GIB


def test_the_plan_timing_task_requests_a_train_workers_resources() -> None:
    """``--plan`` times a trial's steps in one Ray task: it asks for what a Train worker does."""
    from polychromic.tuning.plan import timing_options

    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "worker_resources": {"trainer_node": 1}})
    bundle = worker_bundle(cfg, 0.0)
    assert timing_options(cfg, 0.0) == {"num_cpus": bundle["CPU"], "num_gpus": 0.0,
                                        "memory": int(bundle["memory"]),
                                        "resources": {"trainer_node": 1.0}}
    assert timing_options(TrialConfig.from_dict(TINY_SETTINGS), 1.0)["num_gpus"] == 1.0


@pytest.mark.slow
def test_the_requests_are_accepted_by_ray(ray_cluster, tmp_path) -> None:
    """Ray takes each request as the code passes it: the timing task's options run a task,
    and the vLLM engine stage of a real Ray Data LLM processor gets the memory in its
    ``map_batches`` arguments (not in its placement-group bundle, which Ray refuses). The
    processor is only built (no engine starts): a local folder as its model, nothing fetched."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from polychromic.evaluation.pipeline import request_engine_memory
    from polychromic.tuning.plan import timing_options

    opts = timing_options(TrialConfig.from_dict(TINY_SETTINGS), 0.0)
    assert ray_cluster.get(ray_cluster.remote(lambda: 1).options(**opts).remote()) == 1
    config = vLLMEngineProcessorConfig(
        model_source=str(tmp_path), engine_kwargs={}, batch_size=4, concurrency=1,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
        log_engine_metrics=False, placement_group_config={"bundles": [{"CPU": 0.25}]})
    processor = build_processor(config)
    assert request_engine_memory(processor, 3 * 2**30) == ["vLLMEngineStage"]
    kwargs = processor.get_stage_by_name("vLLMEngineStage").get_dataset_map_batches_kwargs(
        batch_size=4, data_column="__data")
    assert kwargs["memory"] == 3 * 2**30 and kwargs["num_cpus"] == 0.25


@pytest.mark.slow
def test_evaluation_actors_request_the_estimate_and_fit_the_test_cluster(ray_cluster) -> None:
    # lazy: pulls Ray Data's pipeline module
    from polychromic.evaluation.pipeline import plan_actors

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    n, res = plan_actors(cfg)
    assert res["memory"] == memory.ray_memory(cfg.to_dict(), False, "eval_actor") > 0
    # the local 2-CPU cluster holds a trial's worker and its actors at once, the scoring
    # actor included
    total = ray_cluster.cluster_resources()["memory"]
    assert n * res["memory"] + memory.scoring_memory() + worker_bundle(cfg, 0.0)["memory"] < total
