"""The training loop of one trial, readable top to bottom.

``train_loop_per_worker`` is the Ray Train entry point (one process per worker); ``train`` is
the loop itself and also runs without Ray (benchmarks, tests). Data parallelism over LoRA
parameters: each worker computes gradients on its shard, then the (small) LoRA gradients are
averaged with one all-reduce; per-worker batch × workers × grad_accum is the effective batch.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polychromic.core import faults
from polychromic.core.config import TrialConfig
from polychromic.metrics.encoder import get_encoder
from polychromic.models.backends import VLLMSampler, resolve_backend
from polychromic.models.loading import device_record, load_for_training
from polychromic.store import checkpoint, layout
from polychromic.tasks import get_task
from polychromic.training.batches import batch_indices
from polychromic.training.set_objective import get_measure
from polychromic.training.step import StepStats, grad_share, step_gradients

Reporter = Callable[[dict[str, Any], "Path | None"], None]
#: called on rank 0 after the last step with (model, tokenizer, final checkpoint folder),
#: before that checkpoint is reported: what it writes there is stored with the checkpoint
#: (an evaluation in the worker, polychromic.tuning.worker)
Finisher = Callable[[Any, Any, Path], None]


def train(
    cfg: TrialConfig,
    device: torch.device,
    report: Reporter,
    resume_from: Path | None = None,
    rank: int = 0,
    world: int = 1,
    finish: Finisher | None = None,
) -> None:
    """Train ``cfg.steps`` optimizer steps, calling ``report(metrics, checkpoint_dir)`` every
    ``report_every`` steps and at the end. Stops early (reporting ``error``) on a non-finite loss.
    ``finish``, when given, runs on rank 0 after the last step, on the model as trained, and
    writes into the final checkpoint before it is reported.

    Every report also carries ``worker_started_at`` (``time.time()`` when this call began) and
    ``model_load_seconds`` (loading the model, encoder and sampler): the trial's
    ``phase_seconds`` (polychromic.core.phases) are computed from them."""
    report = clock = _PhaseClock(report, time.time())
    torch.set_num_threads(cfg.torch_threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)  # LoRA init is identical across trials with the same seed
    model, tokenizer = load_for_training(cfg, device)
    model.train()
    # what this worker really runs on (device, GPUs, quantization loaded), in every report:
    # the trial's result.json records it and the review bills GPU-hours from it
    ran_on = device_record(model, device, world)
    task = get_task(cfg)
    examples = task.examples("train")

    # the sentence encoder is loaded only when d(S) = cfg.diversity_measure reads embeddings
    encoder = (get_encoder(device=str(device) if device.type == "cuda" else "cpu")
               if "emb" in get_measure(cfg.diversity_measure).needs else None)
    sampler = _colocated_sampler(cfg, device)
    clock.load_seconds = time.time() - clock.entered
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    start, history = 0, []
    # Train V2 keeps only checkpointed reports: re-reports carry the restored checkpoint, so
    # a run that adopted it (polychromic.tuning.resume) ends with its metrics and checkpoint
    again = Path(resume_from) if resume_from is not None and rank == 0 else None
    if resume_from is not None and (Path(resume_from) / layout.CHECKPOINT_ERROR).is_file():
        report(json.loads((Path(resume_from) / layout.CHECKPOINT_ERROR).read_text()), again)
        return
    if resume_from is not None:
        start, history = checkpoint.load(resume_from, model, optimizer)
    if start >= cfg.steps and history:  # restored after the last step: report the end again
        report({**history[-1], "restored_from_step": start}, again)
        return
    restored_from = start if resume_from is not None else None
    elapsed_before = history[-1]["train_seconds"] if history else 0.0
    t_start = time.perf_counter()
    window: list[StepStats] = []

    # data parallel: this worker's share of the effective batch and of the diversity prompts
    per_worker = cfg.batch_size * cfg.grad_accum // world
    n_div = len(range(rank, cfg.max_examples_for_diversity, world))
    for step in range(start, cfg.steps):
        if faults.at_training_step(cfg.lambda_, step) == "nan":
            with torch.no_grad():
                params[0].fill_(float("nan"))
        # sampling/dropout: a function of (step, rank), so a resumed trial samples the same
        torch.manual_seed(cfg.seed * 1_000_003 + step + 7_919 * rank)
        idx = batch_indices(len(examples), per_worker, step, cfg.seed, rank, world)
        g_ce, g_div, stats = step_gradients(
            model, tokenizer, task, encoder, [examples[i] for i in idx], cfg, step, params,
            n_diversity=n_div, sampler=sampler,
        )
        if world > 1:  # data parallel: average both parts over workers, then measure the share
            g_ce = _all_reduce_mean(g_ce)
            if g_div is not None:  # weight by prompts scored here: the mean over all prompts
                g_div = _all_reduce_mean([g * (n_div * world / cfg.max_examples_for_diversity)
                                          for g in g_div])
            if stats.diversity_step:
                stats.diversity_grad_share = grad_share(g_ce, g_div)
        for p, gc, gd in zip(params, g_ce, g_div or [None] * len(params)):
            p.grad = gc if gd is None else gc + gd
        if not math.isfinite(stats.quality_loss) or not all(
            torch.isfinite(p.grad).all() for p in params
        ):
            failed = {**_summary(history, window, cfg, elapsed_before + time.perf_counter() - t_start),
                      "step": step + 1, "error": f"non-finite loss or gradient at step {step}",
                      **ran_on}
            # Train V2 keeps the metrics of checkpointed reports: attach a marker checkpoint
            # so the error reaches the trial (and a restart does not train into NaN again).
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / layout.CHECKPOINT_ERROR).write_text(json.dumps(failed))
                report(failed, Path(tmp) if rank == 0 else None)
            return
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(stats)

        done = step + 1
        if done % cfg.report_every == 0 or done == cfg.steps:
            metrics = _summary(history, window, cfg, elapsed_before + time.perf_counter() - t_start)
            metrics["step"] = done
            metrics.update(ran_on)
            if restored_from is not None:
                metrics["restored_from_step"] = restored_from
            history.append(metrics)
            window = []
            if rank == 0:
                with tempfile.TemporaryDirectory() as tmp:
                    checkpoint.save(Path(tmp), model, optimizer, done, history)
                    if finish is not None and done == cfg.steps:
                        finish(model, tokenizer, Path(tmp))
                    report(metrics, Path(tmp))
            else:
                report(metrics, None)


class _PhaseClock:
    """``report`` with ``worker_started_at`` and ``model_load_seconds`` added to every report
    (the load time once known; a report before that, e.g. of a restored error, has NaN)."""

    def __init__(self, report: Reporter, entered: float) -> None:
        self.report, self.entered, self.load_seconds = report, entered, float("nan")

    def __call__(self, metrics: dict[str, Any], folder: Path | None) -> None:
        self.report({**metrics, "worker_started_at": self.entered,
                     "model_load_seconds": self.load_seconds}, folder)


def _colocated_sampler(cfg: TrialConfig, device: torch.device) -> Any:
    """A vLLM engine in this Train worker for the diversity completions when the trial's
    ``generation_backend`` resolves to ``vllm``; None = HF ``generate``. It loads the same
    converted base model; the LoRA weights reach it at each diversity step."""

    if resolve_backend(cfg) != "vllm":
        return None
    return VLLMSampler(cfg, device, colocated=True)


def _summary(history: list[dict], window: list[StepStats], cfg: TrialConfig,
             seconds: float) -> dict[str, Any]:
    """Window means since the last report, plus running means over the whole trial."""
    div = [s for s in window if s.diversity_step]

    def mean(values: list[float | None]) -> float:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else float("nan")

    out = {
        "lambda_": cfg.lambda_,
        "quality_loss": mean([s.quality_loss for s in window]),
        "combined_loss": mean([s.combined_loss for s in window]),
        "diversity_score": mean([s.diversity_score for s in div]),
        "poly_score": mean([s.poly_score for s in div]),
        "sample_quality": mean([s.sample_quality for s in div]),
        "diversity_grad_share": mean([s.diversity_grad_share for s in div]),
        "diversity_steps": len(div),
        "train_seconds": seconds,
    }
    # carry the last known diversity values through windows without a diversity step
    for key in ("diversity_score", "poly_score", "sample_quality", "diversity_grad_share"):
        if math.isnan(out[key]) and history:
            out[key] = history[-1].get(key, float("nan"))
    total_div = sum(h.get("diversity_steps", 0) for h in history) + len(div)

    def running(key: str) -> float:
        pairs = [(h.get(key), h.get("diversity_steps", 0)) for h in history]
        pairs.append((out[key] if div else None, len(div)))
        num = sum(v * w for v, w in pairs if v is not None and w and not math.isnan(v))
        return num / total_div if total_div else float("nan")

    out["mean_diversity_score"] = running("diversity_score")
    out["mean_diversity_grad_share"] = running("diversity_grad_share")
    return out


def _all_reduce_mean(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    import torch.distributed as dist

    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    out, offset = [], 0
    for g in grads:
        out.append(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
    return out


def train_loop_per_worker(config: dict[str, Any], finish: Finisher | None = None) -> None:
    """Ray Train entry point: ``config = {"trial": TrialConfig.to_dict()}``; ``finish`` as
    for ``train`` (a Ray Train entry point of one argument wraps this to pass one)."""
    import ray.train
    import ray.train.torch

    cfg = TrialConfig.from_dict(config["trial"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()

    def report(metrics: dict[str, Any], folder: Path | None) -> None:
        ckpt = ray.train.Checkpoint.from_directory(str(folder)) if folder else None
        ray.train.report(metrics, checkpoint=ckpt)

    restored = ray.train.get_checkpoint()
    if restored is None and config.get("resume_from"):  # adopted from an abandoned trial
        restored = ray.train.Checkpoint(config["resume_from"])  # a folder or a URI
    if restored is not None:
        with restored.as_directory() as folder:
            train(cfg, device, report, Path(folder), rank, world, finish)
    else:
        train(cfg, device, report, None, rank, world, finish)
