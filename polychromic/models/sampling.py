"""Sampling completions and scoring their log-probabilities.

``sample`` runs one batched ``generate`` (KV cache, no grad) for several prompts × n samples;
``completion_logprob`` is the forward pass *with* grad over those same tokens that the
score-function estimator needs (prompt tokens and everything after the first EOS masked).

``sample_seeded`` is evaluation's sampler: the same distribution as ``sample`` (temperature,
then nucleus top-p as HF's warpers apply them), but each prompt's samples are drawn from a
generator of their own (one uniform per sample per step, inverse-CDF), so a prompt's samples
do not depend on which other prompts share the call; and a finished sample leaves the batch
(``generate`` computes every row until the last one ends), which is where it beats a bare
``generate`` over the same sequences (BENCHMARKS, "Evaluation pipeline").
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


@dataclass
class Drawn:
    """``n`` completions per prompt, prompt-major (row = prompt_index * n + j): the texts and
    their token counts (up to and including the first EOS)."""

    texts: list[str]
    token_counts: list[int]


#: a finished sample leaves the batch once at least this share of the batch's rows is finished
#: (each removal copies the KV cache once: removing one row per step would cost more than the
#: rows save)
PRUNE_SHARE = 0.125


def draw_tokens(logits: torch.Tensor, temperature: float, top_p: float,
                u: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits`` (B, V), sampled at ``temperature`` from the nucleus of
    mass ``top_p`` by inverse CDF with the uniforms ``u`` (B,) in [0, 1).

    Same distribution as HF's ``TemperatureLogitsWarper`` + ``TopPLogitsWarper`` +
    multinomial: a token is kept when the probability mass strictly above it is < ``top_p``
    (the most likely token always is), and the kept tokens are renormalised."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        cum = probs.cumsum(dim=-1)
        probs = probs * ((cum - probs) < top_p)
    else:
        order = None
    cum = probs.cumsum(dim=-1)
    target = (u.to(cum.device, cum.dtype) * cum[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cum, target).clamp(max=probs.shape[1] - 1)
    return (order.gather(1, idx) if order is not None else idx).squeeze(1)


def _cache_of(out: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` since transformers 5.x; the name
    ``past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _keep_rows(cache: Any, rows: torch.Tensor) -> bool:
    """Keep only ``rows`` of every layer of a KV cache, in place; False when the cache has no
    per-layer row selection (then nothing leaves the batch)."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(layer, "batch_select_indices") for layer in layers):
        return False
    for layer in layers:
        layer.batch_select_indices(rows)
    return True


@torch.no_grad()
def sample_seeded(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seeds: list[int],
) -> Drawn:
    """``n`` sampled completions for each prompt, prompt ``i``'s drawn from a generator seeded
    with ``seeds[i]``: at every step each of its ``n`` samples takes one uniform from it, finished
    or not, so its samples are a function of the prompt, its seed and the model alone.

    A decoding loop over the model's KV cache (prompts left-padded, positions from the
    attention mask as in ``generate``); finished samples leave the batch (``PRUNE_SHARE``)."""
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    device = next(model.parameters()).device
    enc = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(device)
    attn = enc["attention_mask"].repeat_interleave(n, dim=0)
    rows = attn.shape[0]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    eos = tokenizer.eos_token_id
    tokens = torch.zeros((rows, max_new_tokens), dtype=torch.long)
    counts = torch.zeros(rows, dtype=torch.long)
    active = torch.arange(rows)  # the original row of each row of the model's batch
    live = torch.ones(rows, dtype=torch.bool)  # per batch row: not finished yet
    was_training = model.training
    model.eval()
    try:
        position = (attn.cumsum(dim=1) - 1).clamp(min=0)
        out = model(input_ids=enc["input_ids"].repeat_interleave(n, dim=0), attention_mask=attn,
                    position_ids=position, use_cache=True, logits_to_keep=1)
        cache, next_pos = _cache_of(out), position[:, -1] + 1
        for step in range(max_new_tokens):
            u = torch.cat([torch.rand(n, generator=g) for g in gens])[active]
            tok = draw_tokens(out.logits[:, -1, :], temperature, top_p, u)
            drawn = tok.cpu()
            tokens[active[live], step] = drawn[live]
            counts[active[live]] += 1
            live = live & (drawn != eos)
            if step == max_new_tokens - 1 or not live.any():
                break
            finished = int((~live).sum())
            if finished and finished >= PRUNE_SHARE * len(live):
                keep = live.nonzero().squeeze(1)
                if _keep_rows(cache, keep.to(device)):
                    active, live = active[keep], live[keep]
                    keep = keep.to(device)
                    tok, attn, next_pos = tok[keep], attn[keep], next_pos[keep]
            attn = torch.cat([attn, attn.new_ones((attn.shape[0], 1))], dim=1)
            out = model(input_ids=tok.unsqueeze(1), attention_mask=attn,
                        position_ids=next_pos.unsqueeze(1), cache=cache,
                        use_cache=True, logits_to_keep=1)
            cache, next_pos = _cache_of(out), next_pos + 1
    finally:
        model.train(was_training)
    texts = tokenizer.batch_decode([tokens[r, : int(counts[r])].tolist() for r in range(rows)],
                                   skip_special_tokens=True)
    return Drawn(texts, counts.tolist())
