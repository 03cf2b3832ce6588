"""The diversity term reaches the weights: gradients with λ=1 differ from λ=0 on a diversity
step and are bit-identical on a non-diversity step (same seed, same batch, real tiny model)."""

from __future__ import annotations

import pytest
import torch

from polychromic.core.config import TrialConfig
from polychromic.metrics.encoder import get_encoder
from polychromic.models.loading import load_for_training
from polychromic.tasks import get_task
from polychromic.training.step import is_diversity_step, step_gradients
from tests.conftest import TINY_SETTINGS


def _gradients(lambda_: float, step: int) -> tuple[list[torch.Tensor], float | None]:
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "lambda_": lambda_})
    torch.manual_seed(cfg.seed)
    model, tok = load_for_training(cfg, torch.device("cpu"))
    # LoRA B starts at zero; give it a seeded non-zero value so the adapter is in play.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(7)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    task = get_task(cfg)
    examples = task.examples("train")[:2]
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(123)
    g_ce, g_div, stats = step_gradients(model, tok, task, get_encoder(device="cpu"), examples,
                                        cfg, step, params)
    total = [gc if gd is None else gc + gd for gc, gd in zip(g_ce, g_div or [None] * len(g_ce))]
    return total, stats.diversity_grad_share


def test_diversity_step_schedule() -> None:
    cfg = TrialConfig.from_dict({"compute_every_n_steps": 3})
    assert [s for s in range(10) if is_diversity_step(s, cfg)] == [0, 3, 6, 9]


@pytest.mark.slow  # trains the tiny model (~15 s on 2 cores)
def test_lambda_changes_gradients_only_on_diversity_steps() -> None:
    g0_div, share0 = _gradients(0.0, step=0)
    g1_div, share1 = _gradients(1.0, step=0)
    assert share0 == 0.0
    assert share1 is not None and 0.0 < share1 < 1.0
    diff = sum(float((a - b).abs().sum()) for a, b in zip(g0_div, g1_div))
    assert diff > 1e-6, "λ=1 must change the LoRA gradients on a diversity step"

    g0_plain, s0 = _gradients(0.0, step=1)
    g1_plain, s1 = _gradients(1.0, step=1)
    assert s0 is None and s1 is None  # not a diversity step: nothing measured
    for a, b in zip(g0_plain, g1_plain):
        assert torch.equal(a, b), "a non-diversity step must be exactly the SFT gradient"


def test_detached_diversity_has_zero_gradient() -> None:
    """The defect this project exists to fix, shown: `ce - lam * div.item()` moves nothing."""
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    ce = (w**2).sum()
    div = torch.tensor(0.7)
    (g_plain,) = torch.autograd.grad(ce, w, retain_graph=True)
    (g_lam,) = torch.autograd.grad(ce - 5.0 * div.item(), w)
    assert torch.equal(g_plain, g_lam)


@pytest.mark.slow  # trains the tiny model
@pytest.mark.parametrize("form", ["leave_one_out", "subsets"])
def test_both_advantage_forms_train(form: str) -> None:
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "lambda_": 1.0, "advantage": form,
                                 "n_generations": 4})
    torch.manual_seed(0)
    model, tok = load_for_training(cfg, torch.device("cpu"))
    task = get_task(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    _, g_div, stats = step_gradients(model, tok, task, get_encoder(device="cpu"),
                                     task.examples("train")[:2], cfg, 0, params)
    assert g_div is not None and stats.diversity_score is not None
    assert 0.0 <= stats.diversity_score <= 1.0
    assert stats.diversity_grad_share is not None and stats.diversity_grad_share > 0


@pytest.mark.slow  # a diversity step of the tiny model per measure
@pytest.mark.parametrize("measure", ["semantic_classes", "distinct_2", "self_bleu"])
def test_a_diversity_step_scores_sets_with_the_configured_measure(
        measure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """cfg.diversity_measure reaches the advantages, the logged diversity_score is its d(S),
    and the text measures run without a sentence encoder."""
    import polychromic.training.step as step_mod

    seen: list = []
    real = step_mod.polychromic_advantages

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append((kwargs["measure"], kwargs["texts"], args[1], out))
        return out

    monkeypatch.setattr(step_mod, "polychromic_advantages", spy)
    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "lambda_": 1.0, "n_generations": 3,
                                 "diversity_measure": measure, "class_threshold": 0.9})
    torch.manual_seed(0)
    model, tok = load_for_training(cfg, torch.device("cpu"))
    task = get_task(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    encoder = get_encoder(device="cpu") if measure == "semantic_classes" else None
    _, g_div, stats = step_gradients(model, tok, task, encoder, task.examples("train")[:2],
                                     cfg, 0, params)
    (used, texts, emb, scores), = seen
    assert used.name == measure
    assert getattr(used, "threshold", 0.9) == 0.9
    if measure == "semantic_classes":
        assert emb is not None and texts is None
    else:
        assert emb is None and len(texts) == 2 and all(len(t) == 3 for t in texts)
    assert stats.diversity_score == float(scores.diversity.mean())
    assert 0.0 <= stats.diversity_score <= 1.0
    assert g_div is not None
