"""SFT batches: chat-formatted prompt + reference reply, loss on the reply tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from polychromic.tasks.base import Example, Task


def sft_batch(
    tokenizer: Any, task: Task, examples: Sequence[Example], max_length: int
) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask``/``labels``; labels are -100 except on the
    target (+ EOS). Over-long pairs keep the prompt's tail and the target's head."""
    rows, labels = [], []
    for ex in examples:
        prompt = tokenizer(task.format_prompt(tokenizer, ex), add_special_tokens=False)["input_ids"]
        target = tokenizer(ex.target, add_special_tokens=False)["input_ids"]
        target = target + [tokenizer.eos_token_id]
        target = target[: max(1, max_length // 2)] if len(prompt) + len(target) > max_length else target
        prompt = prompt[-(max_length - len(target)) :]
        rows.append(prompt + target)
        labels.append([-100] * len(prompt) + target)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels]),
    }


def batch_indices(n_examples: int, batch_size: int, step: int, seed: int, rank: int = 0,
                  world: int = 1) -> np.ndarray:
    """Example indices for optimizer ``step`` on worker ``rank``: a function of (seed, step)
    only, so a resumed trial sees exactly the batches it would have seen, and λ=0 and λ>0
    trials with the same seed see the same data."""
    global_batch = batch_size * world
    per_epoch = max(1, n_examples // global_batch)
    epoch, offset = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_examples)
    start = offset * global_batch + rank * batch_size
    return order[start : start + batch_size] if n_examples >= global_batch else order[:batch_size]
