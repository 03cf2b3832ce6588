"""Sampling completions and scoring their log-probabilities.

``sample`` runs one batched ``generate`` (KV cache, no grad) for several prompts × n samples;
``completion_logprob`` is the forward pass *with* grad over those same tokens that the
score-function estimator needs (prompt tokens and everything after the first EOS masked).

``sample_seeded`` is evaluation's sampler: the same distribution as ``sample`` (temperature,
then nucleus top-p as HF's warpers apply them), but each prompt's samples are drawn from a
generator of their own (one uniform per sample per step, inverse-CDF), so a prompt's samples
do not depend on which other prompts share the call. It beats a bare ``generate`` over the same
sequences (BENCHMARKS, "Against a bare generate") by doing less work for the same samples: each
prompt is prefilled once for its n samples, the KV cache is written in place, the nucleus is cut
from ``topk`` candidates rather than a sort of the vocabulary, and a finished sample leaves the
batch (``generate`` computes every row until the last one ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


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


#: how many of the most likely tokens ``topk`` takes per row, in turn, before the nucleus is
#: cut: the rows whose nucleus the first count holds are done, the others try the next, and a
#: full sort of the vocabulary is left to the rest. At T = 1, top-p 0.95, SmolLM2's nucleus is
#: ≤ 1,024 tokens in 92% of the steps and ≤ 4,096 in all of them (chitchat), and a ``topk`` of
#: 1,024 takes an eighth of the time of the full sort of its 49,152 tokens
NUCLEUS_CANDIDATES = (1024, 8192)


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index of each row's draw from the (unnormalised) weights ``probs`` (B, K) by inverse
    CDF with the uniforms ``u`` (B,)."""
    cum = probs.cumsum(dim=-1)
    target = (u.to(cum.dtype) * cum[:, -1]).unsqueeze(1)
    return torch.searchsorted(cum, target).clamp(max=probs.shape[1] - 1).squeeze(1)


def _nucleus_draw(probs: torch.Tensor, order: torch.Tensor, top_p: float,
                  u: torch.Tensor) -> torch.Tensor:
    """Token ids drawn from ``probs`` sorted descending (``order``: their ids), cut to the
    nucleus of mass ``top_p``: a token is kept when the mass strictly above it is < ``top_p``."""
    cum = probs.cumsum(dim=-1)
    kept = probs * ((cum - probs) < top_p)
    return order.gather(1, _inverse_cdf(kept, u).unsqueeze(1)).squeeze(1)


def draw_tokens(logits: torch.Tensor, temperature: float, top_p: float,
                u: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits`` (B, V), sampled at ``temperature`` from the nucleus of
    mass ``top_p`` by inverse CDF with the uniforms ``u`` (B,) in [0, 1).

    Same distribution as HF's ``TemperatureLogitsWarper`` + ``TopPLogitsWarper`` +
    multinomial: a token is kept when the probability mass strictly above it is < ``top_p``
    (the most likely token always is), and the kept tokens are renormalised.

    The nucleus is cut from the most likely tokens (``topk``, ``NUCLEUS_CANDIDATES``) where
    their mass reaches ``top_p`` (then no other token can be in it), from a full sort of the
    row elsewhere: the same tokens in the same order either way, so the same draws."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    u = u.to(probs.device)
    if top_p >= 1.0:
        return _inverse_cdf(probs, u)
    out = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    rest = torch.arange(probs.shape[0], device=probs.device)  # rows not drawn yet
    for k in NUCLEUS_CANDIDATES:
        if k >= probs.shape[1]:
            break
        top, order = probs[rest].topk(k, dim=-1, sorted=True)
        # the mass above the (k+1)-th token, summed as the full sort's cumsum sums it
        covered = top.cumsum(dim=-1)[:, -1] >= top_p
        out[rest[covered]] = _nucleus_draw(top[covered], order[covered], top_p,
                                           u[rest[covered]])
        rest = rest[~covered]
        if not len(rest):
            return out
    out[rest] = _nucleus_draw(*probs[rest].sort(dim=-1, descending=True), top_p, u[rest])
    return out


def _cache_of(out: Any) -> tuple[str, Any]:
    """The KV cache a forward pass returned, with the keyword the next forward pass takes it
    by: ``cache`` in recent transformers (5.24), ``past_key_values`` before (5.19, the vLLM
    venv's pin). The two must match: a model's ``forward`` swallows an unknown keyword in its
    ``**kwargs``, so a cache passed under the other name is dropped without a word and every
    step decodes its one token with no context (garbage samples, no error)."""
    cache = getattr(out, "cache", None)
    if cache is not None:
        return "cache", cache
    return "past_key_values", out.past_key_values


class BufferedLayer(DynamicLayer):
    """One layer of a KV cache written into buffers allocated once for the whole decoding
    (``capacity`` positions): a step writes its keys and values in place instead of
    concatenating the growing cache (``DynamicLayer``'s ``torch.cat`` copied the whole cache
    at every step: 13% of a decoding profile on CPU). ``keys``/``values`` are views of the
    filled part, which is what attention reads."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, repeats: int,
                 capacity: int) -> None:
        """The prefilled ``keys``/``values`` (B, heads, L, dim), each row repeated ``repeats``
        times (row-major, as ``repeat_interleave``), in buffers of ``capacity`` positions."""
        super().__init__()
        b, heads, length, dim = keys.shape
        self._bufs = []
        for filled in (keys, values):
            buf = filled.new_empty((b * repeats, heads, capacity, dim))
            buf.view(b, repeats, heads, capacity, dim)[:, :, :, :length] = filled.unsqueeze(1)
            self._bufs.append(buf)
        self.length, self.device, self.is_initialized = length, keys.device, True
        self._views()

    def _views(self) -> None:
        self.keys, self.values = (buf[:, :, : self.length] for buf in self._bufs)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self._bufs[0].shape[2]:
            raise ValueError(f"KV buffer of {self._bufs[0].shape[2]} positions is full")
        self._bufs[0][:, :, self.length : end] = key_states
        self._bufs[1][:, :, self.length : end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._bufs = [buf[indices] for buf in self._bufs]
        self._views()


def _buffered(cache: Any, repeats: int, capacity: int) -> bool:
    """Replace every layer of a prefilled ``DynamicCache`` by a ``BufferedLayer`` (each row
    repeated ``repeats`` times); False, leaving the cache as it is, when a layer is of another
    kind (sliding window, quantized, ...)."""
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return False
    cache.layers = [BufferedLayer(layer.keys, layer.values, repeats, capacity)
                    for layer in layers]
    return True


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
    attention mask as in ``generate``). Each prompt is prefilled once, not ``n`` times (the
    prefill of the chat-formatted prompts is most of the work of short completions), and its
    KV cache then copied to its ``n`` rows, in buffers allocated once (``BufferedLayer``);
    finished samples leave the batch (``PRUNE_SHARE``)."""
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    device = next(model.parameters()).device
    enc = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(device)
    prompt_len = enc["input_ids"].shape[1]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    eos = tokenizer.eos_token_id
    rows = len(prompts) * n
    tokens = torch.zeros((rows, max_new_tokens), dtype=torch.long)
    counts = torch.zeros(rows, dtype=torch.long)
    active = torch.arange(rows)  # the original row of each row of the model's batch
    live = torch.ones(rows, dtype=torch.bool)  # per batch row: not finished yet
    was_training = model.training
    model.eval()
    try:
        position = (enc["attention_mask"].cumsum(dim=1) - 1).clamp(min=0)
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    position_ids=position, use_cache=True, logits_to_keep=1)
        key, cache = _cache_of(out)
        if not _buffered(cache, n, prompt_len + max_new_tokens):
            cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1, :].repeat_interleave(n, dim=0)
        # the attention mask of every position the decoding can reach, sliced per step
        attn = torch.cat([enc["attention_mask"].repeat_interleave(n, dim=0),
                          enc["attention_mask"].new_ones((rows, max_new_tokens))], dim=1)
        next_pos = (position[:, -1] + 1).repeat_interleave(n)
        for step in range(max_new_tokens):
            u = torch.cat([torch.rand(n, generator=g) for g in gens])[active]
            tok = draw_tokens(logits, temperature, top_p, u)
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
            out = model(input_ids=tok.unsqueeze(1), attention_mask=attn[:, : prompt_len + step + 1],
                        position_ids=next_pos.unsqueeze(1), **{key: cache},
                        use_cache=True, logits_to_keep=1)
            (key, cache), next_pos, logits = _cache_of(out), next_pos + 1, out.logits[:, -1, :]
    finally:
        model.train(was_training)
    texts = tokenizer.batch_decode([tokens[r, : int(counts[r])].tolist() for r in range(rows)],
                                   skip_special_tokens=True)
    return Drawn(texts, counts.tolist())
