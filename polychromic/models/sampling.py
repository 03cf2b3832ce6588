"""Sampling completions and scoring their log-probabilities.

``sample`` runs one batched ``generate`` (KV cache, no grad) for several prompts × n samples;
``completion_logprob`` is the forward pass *with* grad over those same tokens that the
score-function estimator needs (prompt tokens and everything after the first EOS masked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Samples:
    """``n`` completions per prompt, flattened prompt-major: row = prompt_index * n + j."""

    sequences: torch.Tensor  # (B, prompt_len + completion_len), prompts left-padded
    attention_mask: torch.Tensor  # (B, same): 0 on left padding and after the first EOS
    completion_mask: torch.Tensor  # (B, completion_len): 1 on generated tokens up to EOS
    prompt_len: int
    texts: list[str]
    n: int

    @property
    def completion(self) -> torch.Tensor:
        return self.sequences[:, self.prompt_len :]

    @property
    def token_counts(self) -> list[int]:
        return self.completion_mask.sum(dim=1).tolist()


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> Samples:
    """``n`` sampled completions for each prompt in one ``generate`` call."""
    device = next(model.parameters()).device
    enc = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(device)
    was_training = model.training
    model.eval()
    try:
        out = model.generate(
            **enc,
            do_sample=True,
            num_return_sequences=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    finally:
        model.train(was_training)
    prompt_len = enc["input_ids"].shape[1]
    completion = out[:, prompt_len:]
    is_eos = completion == tokenizer.eos_token_id
    # keep tokens up to and including the first EOS; pad after it
    completion_mask = ((is_eos.long().cumsum(dim=1) - is_eos.long()) == 0).long()
    attention = torch.cat(
        [enc["attention_mask"].repeat_interleave(n, dim=0), completion_mask], dim=1
    )
    texts = tokenizer.batch_decode(
        torch.where(completion_mask.bool(), completion, tokenizer.pad_token_id),
        skip_special_tokens=True,
    )
    return Samples(out, attention, completion_mask, prompt_len, texts, n)


def completion_logprob(model: Any, samples: Samples) -> torch.Tensor:
    """Mean token log-probability of each completion under ``model`` (with grad), shape (B,).

    Position ids follow the attention mask, as in ``generate``, so left padding does not
    shift positions.
    """
    attn = samples.attention_mask
    position_ids = (attn.cumsum(dim=1) - 1).clamp(min=0)
    completion = samples.completion
    keep = completion.shape[1] + 1
    logits = model(
        input_ids=samples.sequences,
        attention_mask=attn,
        position_ids=position_ids,
        logits_to_keep=keep,
    ).logits[:, :-1]  # logits at position t predict token t+1: the completion tokens
    logp = torch.log_softmax(logits.float(), dim=-1)
    token_logp = logp.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    mask = samples.completion_mask.to(token_logp.dtype)
    return (token_logp * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
