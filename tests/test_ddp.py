"""Data parallelism over LoRA parameters (``num_workers`` > 1): two real Ray Train workers
(gloo on CPU) split the effective batch and average their gradients with one all-reduce.

The exact check: with λ = 0, two workers taking half of an effective batch of 4 each must
produce the same adapter as one worker running the same 4 examples as 2 micro-batches of 2
(``grad_accum`` 2): the same examples, the same per-micro-batch means, the same average. With
λ > 0 both workers sample and score their share of the diversity prompts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.training.loop import train, train_loop_per_worker
from tests.conftest import TINY_SETTINGS

BASE = {**TINY_SETTINGS, "steps": 2, "report_every": 2, "lora_dropout": 0.0,
        "compute_every_n_steps": 1, "torch_threads": 1}


def _ray_train(cfg: TrialConfig, storage: Path) -> Any:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        train_loop_per_worker, train_loop_config={"trial": cfg.to_dict()},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=False,
                                     resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="ddp", storage_path=str(storage)),
    )
    return trainer.fit()


def _adapter(folder: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "adapter" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_two_workers_equal_one_worker_with_the_same_effective_batch(
        tmp_path: Path, ray_cluster: Any) -> None:
    two = TrialConfig.from_dict({**BASE, "lambda_": 0.0, "batch_size": 4, "num_workers": 2})
    result = _ray_train(two, tmp_path / "ray")
    assert result.error is None, result.error
    assert result.metrics["step"] == 2 and result.checkpoint is not None
    got = _adapter(result.checkpoint.path)

    one = TrialConfig.from_dict({**BASE, "lambda_": 0.0, "batch_size": 2, "grad_accum": 2})
    saved: list[Path] = []

    def report(metrics: dict, folder: Path | None) -> None:
        if folder is not None:
            dest = tmp_path / f"local_{metrics['step']}"
            shutil.copytree(folder, dest)
            saved.append(dest)

    train(one, torch.device("cpu"), report)
    want = _adapter(saved[-1])
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6)
    # LoRA's B matrices start at zero: non-zero means the two steps really trained
    assert any(float(w.abs().max()) > 0 for k, w in want.items() if "lora_B" in k)


@pytest.mark.slow
def test_two_workers_share_the_diversity_prompts(tmp_path: Path, ray_cluster: Any) -> None:
    cfg = TrialConfig.from_dict({**BASE, "lambda_": 1.0, "batch_size": 2, "num_workers": 2,
                                 "max_examples_for_diversity": 2})
    result = _ray_train(cfg, tmp_path / "ray")
    assert result.error is None, result.error
    m = result.metrics
    assert m["step"] == 2 and m["diversity_steps"] >= 1
    assert 0 < m["mean_diversity_grad_share"] < 1 and 0 <= m["mean_diversity_score"] <= 1


@pytest.mark.parametrize("settings, field", [
    ({"batch_size": 3, "num_workers": 2}, "num_workers"),
    ({"batch_size": 4, "num_workers": 2, "max_examples_for_diversity": 1},
     "max_examples_for_diversity"),
])
def test_worker_counts_that_cannot_split_the_batch_are_refused(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrialConfig.from_dict({**BASE, **settings})
