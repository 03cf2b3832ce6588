"""Evaluation's sampler (polychromic.models.sampling.sample_seeded): the distribution HF's
warpers define, a decoding loop that agrees with ``generate`` token for token, and samples that
depend on their prompt and seed alone (not on the other prompts of the call, nor on finished
samples leaving the batch). The tiny model, in this process: no Ray."""

from __future__ import annotations

import copy

import pytest
import torch

from polychromic.core.config import TrialConfig
from polychromic.models import sampling
from polychromic.models.sampling import draw_tokens, sample_seeded
from polychromic.tasks import get_task
from tests.conftest import TINY_SETTINGS

#: temperature at which sampling is argmax (for the tiny model's logits): compared with greedy
GREEDY_T = 1e-4


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object, list[str]]:
    # lazy: torch/transformers-heavy, only this module's tests need the model
    from polychromic.models.loading import load_for_inference

    cfg = TrialConfig.from_dict(dict(TINY_SETTINGS))
    model, tok = load_for_inference(cfg, None, torch.device("cpu"))
    task = get_task(cfg)
    prompts = [task.format_prompt(tok, ex) for ex in task.examples("test")[:3]]
    return model, tok, prompts


def greedy_generate(model, tok, prompts: list[str], n: int, max_new: int) -> list[str]:
    """HF greedy ``generate``, each prompt repeated ``n`` times (prompt-major)."""
    enc = tok([p for p in prompts for _ in range(n)], return_tensors="pt", padding=True,
              padding_side="left", add_special_tokens=False)
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new, top_k=None,
                         top_p=None, temperature=None, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_draws_follow_hf_temperature_and_top_p() -> None:
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 40, generator=gen) * 0.7
    for temperature, top_p in ((0.7, 0.8), (1.3, 1.0), (1.0, 0.3)):
        warped = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(
            None, logits.clone())) if top_p < 1 else logits / temperature
        want = torch.softmax(warped, dim=-1)[0].double()
        n = 200_000
        drawn = draw_tokens(logits.expand(n, -1), temperature, top_p,
                            torch.rand(n, generator=gen))
        freq = torch.bincount(drawn, minlength=40).double() / n
        # the nucleus is exactly HF's, and every frequency within 5 standard errors
        assert torch.equal(freq > 0, want > 0), (temperature, top_p)
        se = (want * (1 - want) / n).sqrt()
        assert ((freq - want).abs() <= 5 * se + 1e-12).all(), (temperature, top_p)


def test_decoding_loop_matches_generate_token_for_token(tiny) -> None:
    model, tok, prompts = tiny
    got = sample_seeded(model, tok, prompts, 2, 12, GREEDY_T, 1.0, [1, 2, 3])
    assert got.texts == greedy_generate(model, tok, prompts, 2, 12)
    assert got.token_counts == [12] * 6


def test_finished_samples_leave_the_batch_without_changing_any_sample(tiny, monkeypatch) -> None:
    model, tok, prompts = tiny
    seeds, n, limit = [1, 2, 3], 2, 10
    # an EOS that the first sample reaches early and others never (the tiny model's own EOS
    # is never drawn): those samples end there and leave the batch, the others go on
    plain = sample_seeded(model, tok, prompts, n, limit, 1.0, 1.0, seeds)
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in plain.texts]
    eos_id = next(t for t in ids[0][:5] if any(t not in other for other in ids[1:]))
    eos_tok = copy.deepcopy(tok)
    eos_tok.eos_token = tok.convert_ids_to_tokens(eos_id)
    assert eos_tok.eos_token_id == eos_id
    calls: list[int] = []
    keep_rows = sampling._keep_rows
    monkeypatch.setattr(sampling, "_keep_rows",
                        lambda cache, keep: calls.append(len(keep)) or keep_rows(cache, keep))
    pruned = sample_seeded(model, eos_tok, prompts, n, limit, 1.0, 1.0, seeds)
    assert calls and min(calls) < len(prompts) * n, calls  # rows did leave the batch
    assert min(pruned.token_counts) < limit and max(pruned.token_counts) == limit
    removals = len(calls)
    monkeypatch.setattr(sampling, "PRUNE_SHARE", 2.0)  # never: every row to the end
    kept = sample_seeded(model, eos_tok, prompts, n, limit, 1.0, 1.0, seeds)
    assert len(calls) == removals
    assert kept.texts == pruned.texts and kept.token_counts == pruned.token_counts


def test_a_prompts_samples_depend_on_its_seed_alone(tiny) -> None:
    model, tok, prompts = tiny
    together = sample_seeded(model, tok, prompts, 4, 8, 1.0, 0.95, [5, 6, 7])
    alone = sample_seeded(model, tok, prompts[1:2], 4, 8, 1.0, 0.95, [6])
    assert together.texts[4:8] == alone.texts
    again = sample_seeded(model, tok, prompts[1:2], 4, 8, 1.0, 0.95, [6])
    other = sample_seeded(model, tok, prompts[1:2], 4, 8, 1.0, 0.95, [8])
    assert again.texts == alone.texts and other.texts != alone.texts
    assert len(set(alone.texts)) > 1  # n different samples, not one repeated
    with pytest.raises(ValueError, match="seeds"):
        sample_seeded(model, tok, prompts, 4, 8, 1.0, 0.95, [5])


def _sorted_draw(logits: torch.Tensor, temperature: float, top_p: float,
                 u: torch.Tensor) -> torch.Tensor:
    """The nucleus draw with a full sort of every row (what ``draw_tokens`` did before it
    took the most likely tokens with ``topk``): the reference for the token-for-token check."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    probs, order = probs.sort(dim=-1, descending=True)
    cum = probs.cumsum(dim=-1)
    probs = probs * ((cum - probs) < top_p)
    cum = probs.cumsum(dim=-1)
    idx = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1)).clamp(max=probs.shape[1] - 1)
    return order.gather(1, idx).squeeze(1)


def test_nucleus_from_topk_draws_the_tokens_a_full_sort_draws(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(3)
    # rows from peaked to flat: nuclei of 1 to ~all 300 tokens, so that with candidates of
    # (4, 40) some rows are cut from 4 tokens, some from 40 and the rest from a full sort
    logits = torch.randn(600, 300, generator=gen) * torch.linspace(0.05, 6.0, 600).unsqueeze(1)
    u = torch.rand(600, generator=gen)
    monkeypatch.setattr(sampling, "NUCLEUS_CANDIDATES", (4, 40))
    sizes = []
    for temperature, top_p in ((1.0, 0.95), (0.7, 0.5), (1.5, 0.99)):
        probs = torch.softmax(logits / temperature, dim=-1).sort(dim=-1, descending=True)[0]
        size = ((probs.cumsum(dim=-1) - probs) < top_p).sum(dim=-1)
        sizes.append(size)
        want = _sorted_draw(logits, temperature, top_p, u)
        assert torch.equal(draw_tokens(logits, temperature, top_p, u), want)
    size = torch.cat(sizes)
    # each of the three ways was taken
    assert (size <= 4).any() and ((size > 4) & (size <= 40)).any() and (size > 40).any()


def test_buffered_kv_cache_samples_what_a_growing_cache_samples(tiny, monkeypatch) -> None:
    model, tok, prompts = tiny
    calls: list[bool] = []
    buffered = sampling._buffered
    monkeypatch.setattr(sampling, "_buffered",
                        lambda cache, n, cap: calls.append(buffered(cache, n, cap)) or calls[-1])
    fast = sample_seeded(model, tok, prompts, 3, 10, 1.0, 0.9, [4, 5, 6])
    assert calls == [True]  # the buffers replaced the model's cache
    # the cache as the model returns it (DynamicCache, concatenated at every step)
    monkeypatch.setattr(sampling, "_buffered", lambda cache, n, cap: False)
    plain = sample_seeded(model, tok, prompts, 3, 10, 1.0, 0.9, [4, 5, 6])
    assert fast.texts == plain.texts and fast.token_counts == plain.token_counts
    assert len(set(fast.texts)) > 1
