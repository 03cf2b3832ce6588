"""The evaluation: neither sharding across Ray Data actors nor evaluating in the Train worker
changes the samples or the metrics."""

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


def _train_and_evaluate_in_process(cfg: TrialConfig, out: Path) -> Path:
    """Train ``cfg`` without Ray, evaluating in the 'worker' (this process) after the last
    step with the Train worker's own hook (a λ=0 config: the frontier too); returns the
    final checkpoint's copy."""
    import shutil

    import torch

    from polychromic.training.loop import train
    from polychromic.tuning.worker import evaluate_into_checkpoint

    final = out / "checkpoint"

    def report(metrics: dict, folder: Path | None) -> None:
        if folder is not None and metrics.get("step") == cfg.steps:
            shutil.copytree(folder, final)

    def finish(model, tok, folder: Path) -> None:  # the worker's hook, as train_and_evaluate
        assert evaluate_into_checkpoint(cfg, model, tok, folder)

    train(cfg, torch.device("cpu"), report, finish=finish)
    return final


def test_one_actor_two_actors_and_the_train_worker_give_the_same_samples_and_metrics(
        ray_cluster, tmp_path: Path) -> None:
    """Where the samples are drawn does not change them: a trained adapter evaluated in the
    Train worker right after its last step (``eval_placement: worker``: the model as trained,
    no reload), by one Ray Data actor (the saved adapter loaded again) and by two actors
    (the generation groups sharded) gives the same rows, at every frontier temperature, and
    the same metrics. Same items, seeds, sampler and scoring code in all three."""
    from polychromic.evaluation.in_worker import adopt_evaluation
    from polychromic.store import layout

    # 2 steps (a diversity step at 0) suffice to move the adapter off its zero init; 4
    # prompts in 2 generation groups, so 2 actors each sample one
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "lambda_": 0.0, "steps": 2, "n_eval_prompts": 4,
                                 "eval_batch_prompts": 2, "frontier_temperatures": [0.7]})
    final = _train_and_evaluate_in_process(cfg, tmp_path)
    adapter = str(final / layout.ADAPTER)
    # the adapter really trained (LoRA's B starts at zero): an actor that ignored it would
    # sample the base model, and the comparison below would catch it
    from safetensors.torch import load_file

    weights = load_file(str(final / layout.ADAPTER / layout.ADAPTER_WEIGHTS))
    assert any(float(w.abs().max()) > 0 for k, w in weights.items() if "lora_B" in k)
    timings: dict[str, float | None] = {}
    one = evaluate(cfg, adapter, tmp_path / "one", actors=1, timings=timings, frontier=True)
    two = evaluate(cfg, adapter, tmp_path / "two", actors=2)
    worker_timings: dict[str, float | None] = {}
    (tmp_path / "worker").mkdir()
    in_worker = adopt_evaluation(cfg, str(final), tmp_path / "worker", worker_timings)
    assert in_worker is not None
    g1 = read_generations(tmp_path / "one" / "generations.parquet")
    assert len(g1) == 4 * cfg.n_eval_samples
    for other in ("two", "worker"):
        g = read_generations(tmp_path / other / "generations.parquet")
        assert list(g.columns) == list(g1.columns), other
        assert g["text"].tolist() == g1["text"].tolist(), other
        assert np.array_equal(g["quality_score"].to_numpy(float),
                              g1["quality_score"].to_numpy(float)), other
        assert np.allclose(np.stack(g["embedding"]), np.stack(g1["embedding"]), atol=1e-5)
    for metrics in (two, in_worker):
        for key, value in one.items():
            if isinstance(value, float) and np.isfinite(value):
                assert metrics[key] == pytest.approx(value, abs=1e-6), key
    # the frontier's other temperature too: the worker's file is the actor's, row for row
    f1 = read_generations(tmp_path / "one" / layout.FRONTIER)
    fw = read_generations(tmp_path / "worker" / layout.FRONTIER)
    assert sorted(set(f1["eval_temperature"])) == [0.7, cfg.eval_temperature]
    assert fw["text"].tolist() == f1["text"].tolist()
    assert fw["eval_temperature"].tolist() == f1["eval_temperature"].tolist()
    # every sample is on disk with its generation settings
    for col in ("prompt_id", "sample_index", "prompt", "text", "token_count", "quality_score",
                "passed", "eval_temperature", "eval_top_p", "eval_max_new_tokens", "eval_seed"):
        assert col in g1.columns, col
    assert sorted(set(g1["sample_index"])) == list(range(cfg.n_eval_samples))
    # the evaluation's phases (polychromic.core.phases), measured; the actors' clock columns
    # are not samples' data and stay out of the file
    assert set(timings) == set(EVALUATION_PHASES), timings
    assert all(timings[k] > 0 for k in EVALUATION_PHASES), timings
    assert set(worker_timings) == set(EVALUATION_PHASES), worker_timings
    assert worker_timings["generation"] > 0 and worker_timings["scoring"] > 0
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


def test_a_checkpoint_without_an_evaluation_is_left_to_the_actors(tmp_path: Path) -> None:
    from polychromic.evaluation.in_worker import adopt_evaluation

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    (tmp_path / "ckpt").mkdir()
    timings: dict[str, float | None] = {}
    assert adopt_evaluation(cfg, str(tmp_path / "ckpt"), tmp_path, timings) is None
    assert timings == {} and not list(tmp_path.glob("*.parquet"))


def test_a_failed_evaluation_in_the_worker_leaves_nothing_and_the_trial_uses_actors(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The worker's evaluation is a shortcut, never a lost trial: when it fails, the final
    checkpoint holds no (half-written) evaluation, so the trial evaluates by actors."""
    from polychromic.evaluation.in_worker import adopt_evaluation
    from polychromic.store import layout
    from polychromic.tuning.worker import evaluate_into_checkpoint

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    (tmp_path / layout.CHECKPOINT_EVALUATION).mkdir()  # as if a part had been written
    (tmp_path / layout.CHECKPOINT_EVALUATION / layout.FRONTIER).write_bytes(b"half")
    with caplog.at_level("WARNING"):
        assert evaluate_into_checkpoint(cfg, object(), object(), tmp_path) is False
    assert "evaluation in the Train worker failed" in caplog.text
    assert not (tmp_path / layout.CHECKPOINT_EVALUATION).exists()
    assert adopt_evaluation(cfg, str(tmp_path), tmp_path / "trial", {}) is None


def test_an_evaluation_stored_at_a_storage_uri_is_adopted_whole(tmp_path: Path) -> None:
    """A worker on another node stores its evaluation with the checkpoint at the study's URI
    (``file://`` here, read through pyarrow as ``s3://`` would be): the trial copies both
    files and the worker's timings, and the metrics are those of the stored samples."""
    import json

    from polychromic.evaluation.in_worker import adopt_evaluation
    from polychromic.metrics.aggregate import aggregate
    from polychromic.store import layout
    from tests.conftest import tiny_generations

    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "lambda_": 0.0})
    saved = tmp_path / "bucket" / "checkpoint_1" / layout.CHECKPOINT_EVALUATION
    saved.mkdir(parents=True)
    gens = tiny_generations(0.5, 3)
    gens.to_parquet(saved / layout.GENERATIONS, index=False)
    gens.to_parquet(saved / layout.FRONTIER, index=False)
    (saved / layout.EVALUATION_TIMINGS).write_text(json.dumps(
        {"evaluation_startup": 0.0, "generation": 2.0, "scoring": 0.5, "writing": 0.1}))
    trial = tmp_path / "trial"
    trial.mkdir()
    timings: dict[str, float | None] = {}
    import tempfile

    scratch = set(Path(tempfile.gettempdir()).glob("polychromic-eval-*"))
    metrics = adopt_evaluation(cfg, f"file://{tmp_path}/bucket/checkpoint_1", trial, timings)
    # the local copy of the URI's files is gone once adopted
    assert set(Path(tempfile.gettempdir()).glob("polychromic-eval-*")) == scratch
    assert timings["generation"] == 2.0 and set(timings) == set(EVALUATION_PHASES)
    for name in (layout.GENERATIONS, layout.FRONTIER):
        assert read_generations(trial / name)["text"].tolist() == gens["text"].tolist()
    assert metrics is not None and metrics["pass@1"] == pytest.approx(
        aggregate(gens, class_threshold=cfg.class_threshold)["pass@1"])
    assert not list(trial.glob(".*.tmp"))
