"""The QLoRA path, on every CI run: bitsandbytes ≥ 0.50 runs NF4 (4-bit) and LLM.int8 (8-bit)
on CPU, so nothing here is skipped without a GPU.

One tiny 4-bit study (``quantize: 4bit``, λ = 0 and λ = 2) runs through ``study/run.py`` on a
real local Ray cluster; its driver is SIGKILLed once the baseline has finished and the λ = 2
trial has written its step-2 checkpoint, and ``--resume`` finishes it. That one study (the
session-scoped ``nf4_study`` of conftest.py, temperature frontier off) serves the training,
resume, evaluation, review and ``--merge`` export assertions below, and is the ``in_snapshot``
case of tests/test_resume.py.

What a resumed 4-bit trial shares with an uninterrupted one: the base weights (NF4 blockwise
quantization has no randomness: reloading quantizes the same fp32 files to the same bytes,
asserted in ``test_nf4_layers_are_real_and_reload_bit_identically``), the adapter and AdamW
state (restored from the checkpoint) and the sampling RNG of every later step (seeded from
(seed, step, rank), see ``polychromic.training.loop``). What it does not share: the torch
thread scheduling of CPU float reductions, so losses after the restore agree to rounding, not
bit for bit (bitsandbytes itself keeps no RNG state). 8-bit is trained in-process only
(``test_8bit_trains_in_process``): the same code path, a second Ray study would double the cost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from polychromic.core.config import TrialConfig
from polychromic.store.records import read_json, read_jsonl
from tests.conftest import TINY_SETTINGS, ResumedStudy, load_cli, write_tiny_study

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def _results(study: Path) -> dict[float, dict[str, Any]]:
    """λ → result.json of every trial with a result."""
    out = {}
    for path in (study / "trials").glob("*/result.json"):
        result = read_json(path)
        out[round(float(result["lambda_"]), 6)] = {**result, "trial_id": path.parent.name}
    return out


#: the tests that read the killed and resumed 4-bit study (conftest ``nf4_study``: a study run,
#: slow like every test that runs study/run.py)
uses_study = pytest.mark.slow


@uses_study
def test_4bit_trials_train_on_nf4_layers_with_finite_losses(nf4_study: ResumedStudy) -> None:
    study = nf4_study.study
    results = _results(study)
    assert sorted(results) == [0.0, 2.0], results.keys()
    for result in results.values():
        assert result["status"] == "finished", result
        # the record comes from the loaded layer types: a silent fp32 fallback reads "none"
        assert result["quantization"] == "nf4", result
        assert (result["device_type"], result["gpus_per_worker"], result["gpus"]) == ("cpu", 0, 0)
        assert result["device_name"]
        history = read_jsonl(study / "trials" / result["trial_id"] / "history.jsonl")
        assert history and all(math.isfinite(h["quality_loss"]) for h in history), history
        assert all(h["quantization"] == "nf4" for h in history)
    assert results[0.0]["mean_diversity_grad_share"] == 0.0
    assert results[2.0]["mean_diversity_grad_share"] > 0.0


@uses_study
def test_killed_driver_resumes_the_4bit_trial_from_its_checkpoint(nf4_study: ResumedStudy) -> None:
    study, interrupted = nf4_study.study, nf4_study.interrupted
    status = read_json(study / "trials" / interrupted / "status.json") or {}
    carrier = status.get("adopted_by") or interrupted
    history = read_jsonl(study / "trials" / carrier / "history.jsonl")
    # steps 2 and 4 trained once each: the restore continued from the step-2 checkpoint
    trained = [h["step"] for h in history if h.get("restored_from_step", 0) < h["step"]]
    assert trained == [2, 4], history
    assert any(h.get("restored_from_step") == 2 for h in history), history


@uses_study
def test_4bit_evaluation_stores_samples(nf4_study: ResumedStudy) -> None:
    n = TINY_SETTINGS["n_eval_prompts"] * TINY_SETTINGS["n_eval_samples"]
    for result in _results(nf4_study.study).values():
        gens = pd.read_parquet(nf4_study.study / "trials" / result["trial_id"] / "generations.parquet")
        assert len(gens) == n
        assert gens["text"].map(lambda t: isinstance(t, str)).all()
        assert math.isfinite(result["semantic_diversity"])
        # by Ray Data actors, which load the 4-bit base and the saved adapter again
        assert result["evaluated_in"] == "actors", result
        assert result["phase_seconds"]["evaluation_startup"] > 0


@uses_study
def test_review_bills_the_recorded_device_not_the_quantization(nf4_study: ResumedStudy,
                                                               tmp_path: Path) -> None:
    from polychromic.review.study import load_study

    frame = load_study(str(nf4_study.study)).frame
    assert (frame["device"] == "cpu").all(), frame[["trial_id", "device"]]
    assert (frame["gpu_hours"] == 0).all() and (frame["cost_usd"] == 0).all()
    # a study from before the record: 4bit is only a guess of a GPU, labelled as such
    old = write_tiny_study(tmp_path)
    config = read_json(old / "trials" / "bbbb2222" / "config.json")
    (old / "trials" / "bbbb2222" / "config.json").write_text(
        json.dumps({**config, "quantize": "4bit"}))
    study = load_study(str(old))
    row = study.frame.set_index("trial_id").loc["bbbb2222"]
    assert row["device"] == "gpu?" and row["gpus"] == 1
    assert any("inferred from quantize" in note for note in study.notes), study.notes


@uses_study
def test_merge_export_of_a_4bit_trial_reloads_the_base_in_16_bit(nf4_study: ResumedStudy,
                                                                  tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from polychromic.models.loading import load_base, load_tokenizer, loaded_quantization

    study = nf4_study.study
    tid = _results(study)[2.0]["trial_id"]
    out = tmp_path / "merged"
    assert load_cli("export").main([str(study), "--out", str(out), "--trial", tid,
                                    "--merge"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config  # a plain 16-bit model, not a 4-bit one
    record = json.loads((out / "trial.json").read_text())
    assert record["metrics"]["quantization"] == "nf4"
    assert record["verification"]["max_abs_logit_diff"] <= 1e-3
    card = (out / "README.md").read_text()
    assert "trained on a 4-bit NF4 base" in card and "serve the adapter" in card

    # independently: 16-bit base + the trial's adapter vs the merged folder, logits within 1e-3
    # (fp32 on CPU: merging only reorders float additions)
    cfg = TrialConfig.from_dict(read_json(study / "trials" / tid / "config.json"))
    base, _ = load_base(cfg, torch.device("cpu"), for_merge=True)
    assert loaded_quantization(base) == "none"
    adapter = Path(record["source_checkpoint"])
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    inputs = load_tokenizer(str(out))(["Hi, what are you up to this weekend?"],
                                      return_tensors="pt")
    with torch.no_grad():
        want, got = reference(**inputs).logits, merged(**inputs).logits
    assert torch.allclose(got, want, atol=1e-3, rtol=0), float((got - want).abs().max())
    plain, _ = load_base(cfg, torch.device("cpu"), for_merge=True)
    with torch.no_grad():  # and the adapter is really in there
        assert not torch.allclose(got, plain.eval()(**inputs).logits, atol=1e-5)


def test_nf4_layers_are_real_and_reload_bit_identically() -> None:
    import bitsandbytes as bnb

    from polychromic.models.loading import load_for_training, loaded_quantization

    cfg = TrialConfig.from_dict({"model": "tiny", "quantize": "4bit"})
    first, _ = load_for_training(cfg, torch.device("cpu"))
    second, _ = load_for_training(cfg, torch.device("cpu"))
    layers = {name: m for name, m in first.named_modules()
              if name.endswith(PROJECTIONS) and hasattr(m, "base_layer")}
    assert len(layers) == 2 * len(PROJECTIONS)  # two layers of the tiny Llama
    assert all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in layers.values())
    assert loaded_quantization(first) == "nf4"
    again = dict(second.named_modules())
    for name, m in layers.items():
        assert torch.equal(m.base_layer.weight.data, again[name].base_layer.weight.data), name


def test_8bit_trains_in_process() -> None:
    """``quantize: 8bit`` on CPU: int8 layers, finite losses, a diversity gradient."""
    from polychromic.training.loop import train

    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "quantize": "8bit", "steps": 2,
                                 "report_every": 1, "compute_every_n_steps": 1, "lambda_": 5.0})
    reports: list[dict[str, Any]] = []
    train(cfg, torch.device("cpu"), lambda metrics, _folder: reports.append(metrics))
    assert [r["step"] for r in reports] == [1, 2], reports
    assert all(r["quantization"] == "int8" and math.isfinite(r["quality_loss"]) for r in reports)
    assert reports[-1]["mean_diversity_grad_share"] > 0


@pytest.mark.parametrize("quantize", ["4bit", "none"])
def test_gradient_checkpointing_trains(quantize: str) -> None:
    """``gradient_checkpointing: true`` (what ``--check`` proposes when a worker would not fit):
    the same steps train, with a diversity gradient, on a 4-bit and an unquantized base."""
    from polychromic.training.loop import train

    cfg = TrialConfig.from_dict({**TINY_SETTINGS, "quantize": quantize, "steps": 2,
                                 "report_every": 2, "compute_every_n_steps": 1, "lambda_": 5.0,
                                 "gradient_checkpointing": True})
    reports: list[dict[str, Any]] = []
    train(cfg, torch.device("cpu"), lambda metrics, _folder: reports.append(metrics))
    assert reports and math.isfinite(reports[-1]["quality_loss"]), reports
    assert reports[-1]["mean_diversity_grad_share"] > 0
