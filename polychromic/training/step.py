"""One optimizer step's gradients: SFT cross-entropy, plus on diversity steps the
score-function surrogate of the polychromic objective.

    loss = CE − λ · term,   term = mean_i stopgrad(A_i) · mean_token_logprob(y_i)

(the mean runs over every sampled completion of the step). The two parts are differentiated
separately (two backward passes over two different graphs, so nothing is computed twice) so
that ``diversity_grad_share = ‖∇(λ·term)‖ / (‖∇CE‖ + ‖∇(λ·term)‖)`` is measured, not guessed.
On non-diversity steps, and for λ = 0, the gradient is exactly the SFT gradient.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from polychromic.core.config import TrialConfig
from polychromic.models.sampling import completion_logprob, sample
from polychromic.tasks.base import Example, Task
from polychromic.training.batches import sft_batch
from polychromic.training.set_objective import get_measure, polychromic_advantages


@dataclass
class StepStats:
    """What a step logs. Diversity fields are None on non-diversity steps."""

    quality_loss: float
    combined_loss: float
    diversity_step: bool = False
    diversity_term: float | None = None
    diversity_score: float | None = None
    poly_score: float | None = None
    sample_quality: float | None = None
    diversity_grad_share: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def is_diversity_step(step: int, cfg: TrialConfig) -> bool:
    """Diversity is computed on steps 0, k, 2k, … with k = ``compute_every_n_steps``."""
    return step % cfg.compute_every_n_steps == 0


def grad_share(g_ce: Sequence[torch.Tensor], g_div: Sequence[torch.Tensor] | None) -> float:
    """‖g_div‖ / (‖g_ce‖ + ‖g_div‖) over all trainable parameters; 0.0 when g_div is None."""
    if g_div is None:
        return 0.0
    n_ce = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in g_ce]))
    n_div = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in g_div]))
    total = float(n_ce + n_div)
    return float(n_div) / total if total > 0 else 0.0


def _grads(loss: torch.Tensor, params: Sequence[torch.nn.Parameter]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def diversity_term(
    model: Any, tokenizer: Any, task: Task, encoder: Any, examples: Sequence[Example],
    cfg: TrialConfig, sampler: Any = None,
) -> tuple[torch.Tensor, StepStats]:
    """Sample ``n_generations`` per prompt, score the sets with d(S) = ``cfg.diversity_measure``,
    return the surrogate (with grad). ``encoder`` is only used (and may be None) when the
    measure reads embeddings; ``diversity_score`` is the mean d(S) under that measure.
    ``sampler``: a colocated ``polychromic.models.backends.VLLMSampler`` that samples instead of HF
    ``generate`` (given the model's current LoRA weights first); the log-probabilities of the
    surrogate are computed by ``model`` either way."""
    t0 = time.perf_counter()
    prompts = [task.format_prompt(tokenizer, ex) for ex in examples]
    if sampler is None:
        samples = sample(model, tokenizer, prompts, cfg.n_generations, cfg.max_new_tokens,
                         cfg.temperature, cfg.top_p)
    else:  # the engine samples from the current weights: sync them first (TRL colocate)
        samples = sampler.sample(tokenizer, prompts, cfg.n_generations, cfg.max_new_tokens,
                                 cfg.temperature, cfg.top_p, lora=sampler.sync_weights(model))
        device = next(model.parameters()).device
        samples.sequences, samples.attention_mask, samples.completion_mask = (
            t.to(device) for t in (samples.sequences, samples.attention_mask,
                                   samples.completion_mask))
    t1 = time.perf_counter()
    n = cfg.n_generations
    repeated = [ex for ex in examples for _ in range(n)]
    checks = task.check(repeated, samples.texts)
    quality = np.array([c.score for c in checks], dtype=np.float64).reshape(len(examples), n)
    measure = get_measure(cfg.diversity_measure, cfg.class_threshold)
    emb = (encoder.encode(samples.texts).reshape(len(examples), n, -1)
           if "emb" in measure.needs else None)
    texts = ([samples.texts[i * n : (i + 1) * n] for i in range(len(examples))]
             if "tokens" in measure.needs else None)
    scores = polychromic_advantages(quality, emb, cfg.advantage, cfg.subset_size,
                                    measure=measure, texts=texts)
    t2 = time.perf_counter()
    if cfg.lambda_ > 0:
        logp = completion_logprob(model, samples)
        adv = torch.as_tensor(scores.advantages.reshape(-1), dtype=logp.dtype, device=logp.device)
        term = (adv * logp).mean()
    else:  # λ = 0: the term has no weight, so skip its forward pass
        term = torch.zeros(())
    t3 = time.perf_counter()
    stats = StepStats(
        quality_loss=float("nan"),
        combined_loss=float("nan"),
        diversity_step=True,
        diversity_term=float(term.detach()),
        diversity_score=float(scores.diversity.mean()),
        poly_score=float(scores.score.mean()),
        sample_quality=float(quality.mean()),
        seconds={"generate": t1 - t0, "score": t2 - t1, "logprob_forward": t3 - t2},
    )
    return term, stats


def step_gradients(
    model: Any, tokenizer: Any, task: Task, encoder: Any, examples: Sequence[Example],
    cfg: TrialConfig, step: int, params: Sequence[torch.nn.Parameter],
    n_diversity: int | None = None, sampler: Any = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, StepStats]:
    """Gradients of CE (averaged over ``grad_accum`` micro-batches) and, on a diversity step
    with λ > 0, of −λ·term over the first ``n_diversity`` examples (default
    ``max_examples_for_diversity``; a data-parallel worker scores its share). Returns
    ``(g_ce, g_div or None, stats)``; nothing touches ``.grad``. ``sampler``: a vLLM engine
    that samples the diversity completions (see ``diversity_term``); None = HF ``generate``."""
    t0 = time.perf_counter()
    g_ce = [torch.zeros_like(p) for p in params]
    ce_total = 0.0
    device = next(model.parameters()).device
    micro = np.array_split(np.arange(len(examples)), min(cfg.grad_accum, len(examples)))
    for idx in micro:
        if len(idx) == 0:
            continue
        batch = sft_batch(tokenizer, task, [examples[i] for i in idx], cfg.max_length)
        out = model(**{k: v.to(device) for k, v in batch.items()})
        ce = out.loss * (len(idx) / len(examples))
        for acc, g in zip(g_ce, _grads(ce, params)):
            acc.add_(g)
        ce_total += float(ce.detach())
    sft_seconds = time.perf_counter() - t0

    if not is_diversity_step(step, cfg):
        return g_ce, None, StepStats(ce_total, ce_total, seconds={"sft": sft_seconds})

    term, stats = diversity_term(
        model, tokenizer, task, encoder,
        examples[: cfg.max_examples_for_diversity if n_diversity is None else n_diversity], cfg,
        sampler=sampler,
    )
    g_div = None
    if cfg.lambda_ > 0:
        t1 = time.perf_counter()
        g_div = _grads(-cfg.lambda_ * term, params)
        stats.seconds["div_backward"] = time.perf_counter() - t1
    stats.quality_loss = ce_total
    stats.combined_loss = ce_total - cfg.lambda_ * stats.diversity_term
    stats.diversity_grad_share = grad_share(g_ce, g_div)
    stats.seconds["sft"] = sft_seconds
    return g_ce, g_div, stats
