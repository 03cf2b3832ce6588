"""The GPU check for a lent machine as it is (issue 21): QLoRA steps, memory estimate vs
measured, HF generation tokens/s, with nothing but what that machine has plus carried files.

    python bench/gpu_check.py --prepare .gpu_carry       # here, once (bench/gpu_wheels.sh)
    python bench/gpu_check.py --assets .gpu_carry --out $OUT/gpu_check.json [--quick]
        [--device auto|cuda|cpu] [--steps 3]

The lent machine (Python 3.12, torch with CUDA, transformers, peft, sentence-transformers,
accelerate, pyarrow, pandas) has no bitsandbytes, Ray, Optuna, NLTK, W&B or vLLM, reaches no
network, and takes at most 64 MiB of carried files. So this check imports only the modules of
the training step (no Ray/Optuna/NLTK/W&B: ``tests/test_gpu_check.py`` runs it with those
blocked), bitsandbytes comes as a carried wheel (bench/gpu_wheels.sh), and the models are
built there from carried configs and tokenizers, with random weights (the embedded SmolLM2
GGUF is 94 MB and MiniLM 88 MB: neither fits beside the 43 MB wheel):

* ``tiny`` (the tests' model, :func:`polychromic.models.loading.build_tiny`, seed 0) and
  ``smollm2-135m-random`` (SmolLM2-135M-Instruct's config.json, random weights: the same
  shapes, so the same memory and time per token, but meaningless text);
* the sentence encoder: all-MiniLM-L6-v2's config and tokenizer, random weights (same cost);
* the task: fixed chat prompts and a word-count quality score (no NLTK, no data package).

Parts, each recorded even when another fails (``errors``), the JSON rewritten after each:

1. ``train``: per model, ``--steps`` optimizer steps that are all diversity steps (λ = 1,
   4 prompts × 4 samples × 32 tokens, batch 8 × 64 tokens: :func:`trial_config`) with the base at NF4 (bitsandbytes
   ``Linear4bit`` asserted) + a fresh LoRA, AdamW: seconds per step, finite losses,
   ``diversity_grad_share`` > 0; the peak measured (``torch.cuda.max_memory_allocated`` and
   ``max_memory_reserved`` on CUDA, the process's peak RSS on CPU) beside
   :func:`polychromic.models.memory.estimate` for the same settings.
2. ``generate``: HF ``generate`` tokens/s (:func:`polychromic.models.sampling.sample`) with the
   base unquantized (bf16 on CUDA, fp32 on CPU) and at NF4, 16 prompts × 10 samples × 64 new
   tokens (``--quick``: 2 × 2 × 8).

``--device auto`` uses CUDA when torch sees it and the CPU otherwise (how the test runs it);
``--quick`` runs the tiny model only, one smaller step. Exit 0 when every part passed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.config import TrialConfig  # noqa: E402
from polychromic.metrics.encoder import get_encoder  # noqa: E402
from polychromic.models import memory  # noqa: E402
from polychromic.models.loading import (  # noqa: E402
    build_tiny,
    load_base,
    load_for_training,
    load_tokenizer,
    loaded_quantization,
)
from polychromic.models.sampling import sample  # noqa: E402
from polychromic.tasks.base import Check, Example, chat_prompt  # noqa: E402
from polychromic.training.step import step_gradients  # noqa: E402

#: modules the lent machine lacks; the check must never need them
ABSENT_THERE = ("ray", "optuna", "nltk", "wandb", "vllm")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
SMOLLM2_FILES = ("config.json", "generation_config.json")
MINILM_SKIP = ("model.safetensors", "README.md", ".gitattributes")
TOPICS = ("the weather", "your weekend", "a good book", "cooking pasta", "learning to swim",
          "a rainy day", "music you like", "the last film you saw", "coffee or tea",
          "a trip to the sea", "your favourite game", "getting up early", "a new job",
          "gardening", "a funny dog", "the best pizza")


class CheckTask:
    """Fixed chat prompts with short reference replies; quality = words / 8, capped at 1.

    Enough for the step's data path (SFT batch, rollouts, scoring) without NLTK or a data
    package; the scores of a random-weight model mean nothing and are not reported."""

    name = "gpu_check"

    def examples(self, split: str) -> list[Example]:
        return [Example(f"{split}-{i}", f"Tell me something about {t}.",
                        f"Sure, here is a short thought about {t}.", t)
                for i, t in enumerate(TOPICS * 2)]

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        return chat_prompt(tokenizer, example.prompt)

    def check(self, examples: list[Example], completions: list[str]) -> list[Check]:
        scores = [min(1.0, len(c.split()) / 8) for c in completions]
        return [Check(s, s >= 0.5, "ok" if s >= 0.5 else "short") for s in scores]


def prepare(carry: Path) -> None:
    """Write the assets the lent machine lacks into ``carry`` (run here, with the embedded
    packages installed): SmolLM2's tokenizer, SmolLM2-135M's config, MiniLM without weights."""
    # lazy: only --prepare needs the embedded packages (absent on the lent machine)
    from polychromic.core.embedded import minilm_dir
    from polychromic.models.loading import resolve_model_path

    for name, source, files in (("tokenizer", resolve_model_path("tiny"), TOKENIZER_FILES),
                                ("smollm2-135m-config",
                                 resolve_model_path("smollm2-135m-instruct"), SMOLLM2_FILES)):
        (carry / name).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(Path(source) / f, carry / name / f)
    if (carry / "minilm").exists():
        shutil.rmtree(carry / "minilm")
    shutil.copytree(minilm_dir(), carry / "minilm", ignore=shutil.ignore_patterns(*MINILM_SKIP))
    size = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    print(f"{carry}: {size / 2**20:.1f} MiB (wheels included)")


def build_models(assets: Path, work: Path, quick: bool) -> dict[str, Path]:
    """The check's model folders under ``work``, from the carried ``assets``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = load_tokenizer(str(assets / "tokenizer"))
    models = {"tiny": work / "tiny"}
    build_tiny(models["tiny"], tok)
    if not quick:
        out = models["smollm2-135m-random"] = work / "smollm2-135m-random"
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(assets / "smollm2-135m-config")
        AutoModelForCausalLM.from_config(config).save_pretrained(out)
        tok.save_pretrained(out)
        shutil.copy2(assets / "smollm2-135m-config" / "generation_config.json", out)
    return models


def build_encoder(assets: Path, work: Path) -> Path:
    """A MiniLM-shaped sentence-transformers folder: carried config/tokenizer, random weights."""
    from transformers import BertConfig, BertModel

    out = work / "minilm"
    shutil.copytree(assets / "minilm", out)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(out)).save_pretrained(out)
    return out


def trial_config(model: Path, quantize: str, quick: bool = False) -> TrialConfig:
    """The step's settings: batch 8 × 64 tokens, 4 prompts × 4 samples × 32 new tokens, λ = 1
    on every step (``quick``: batch 2, 2 prompts × 2 samples × 8 tokens)."""
    return TrialConfig.from_dict({
        "model": str(model), "quantize": quantize, "lambda_": 1.0,
        "batch_size": 2 if quick else 8, "max_length": 64, "n_generations": 2 if quick else 4,
        "max_examples_for_diversity": 2 if quick else 4, "compute_every_n_steps": 1,
        "max_new_tokens": 8 if quick else 32, "generation_backend": "hf"})


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_part(name: str, model_dir: Path, device: torch.device, encoder: Any,
               steps: int, quick: bool) -> dict[str, Any]:
    """``steps`` QLoRA diversity steps on ``model_dir`` at NF4; measured vs estimated peak."""
    cfg = trial_config(model_dir, "4bit", quick)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model, tok = load_for_training(cfg, device)
    load_s = time.perf_counter() - t0
    loaded = loaded_quantization(model)
    if loaded != "nf4":
        raise RuntimeError(f"{name}: asked for NF4, loaded {loaded!r}")
    model.train()
    task = CheckTask()
    params = [p for p in model.parameters() if p.requires_grad]
    # the trials' optimizer (polychromic.training.loop): weight decay included
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    examples = task.examples("train")
    rows = []
    for step in range(steps):
        torch.manual_seed(step)
        batch = examples[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        sync(device)
        t1 = time.perf_counter()
        g_ce, g_div, stats = step_gradients(model, tok, task, encoder, batch, cfg, step, params)
        for p, gc_, gd in zip(params, g_ce, g_div or [None] * len(params)):
            p.grad = gc_ if gd is None else gc_ + gd
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        rows.append({"seconds": time.perf_counter() - t1, "quality_loss": stats.quality_loss,
                     "combined_loss": stats.combined_loss,
                     "diversity_grad_share": stats.diversity_grad_share,
                     "parts": stats.seconds})
    shape = memory.read_shape(model_dir)
    assert shape is not None, f"no config.json in {model_dir}"
    est = memory.estimate(shape, cfg.to_dict(), "nf4", cuda=cuda,
                          gradient_checkpointing=cfg.gradient_checkpointing)
    if cuda:
        measured = {"max_memory_allocated_gib": torch.cuda.max_memory_allocated(device) / 2**30,
                    "max_memory_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30,
                    "allocated_before_load_gib": before / 2**30}
        peak = measured["max_memory_allocated_gib"]
    else:
        measured = {"peak_rss_gib": peak_rss_gib()}  # whole process, every part so far
        peak = measured["peak_rss_gib"]
    ok = all(math.isfinite(r["quality_loss"]) and math.isfinite(r["combined_loss"])
             and (r["diversity_grad_share"] or 0) > 0 for r in rows)
    without_overhead = est["training_worker"] - est["overhead"]
    out = {"model": name, "parameters_million": shape.parameters() / 1e6, "quantization": loaded,
           "load_seconds": load_s, "steps": rows,
           "median_step_seconds": sorted(r["seconds"] for r in rows)[len(rows) // 2],
           "measured": measured, "estimate_gib": est,
           "estimate_over_measured": est["training_worker"] / peak if peak else None,
           "estimate_without_overhead_over_measured": without_overhead / peak if peak else None,
           "ok": ok}
    del model, opt, params
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


def generate_part(name: str, model_dir: Path, quantize: str, device: torch.device,
                  prompts: int, samples: int, new_tokens: int) -> dict[str, Any]:
    """HF ``generate`` tokens/s of the base at ``quantize`` (one warm-up call, one timed)."""
    cfg = trial_config(model_dir, quantize)
    model, tok = load_base(cfg, device)
    model.eval()
    loaded = loaded_quantization(model)
    texts = [chat_prompt(tok, ex.prompt) for ex in CheckTask().examples("test")[:prompts]]
    torch.manual_seed(0)
    sample(model, tok, texts[:1], 1, 4)
    sync(device)
    t0 = time.perf_counter()
    out = sample(model, tok, texts, samples, new_tokens, temperature=1.0, top_p=0.95)
    sync(device)
    seconds = time.perf_counter() - t0
    tokens = int(sum(out.token_counts))
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"model": name, "quantization": loaded, "prompts": prompts, "samples": samples,
            "max_new_tokens": new_tokens, "tokens": tokens, "seconds": seconds,
            "tokens_per_second": tokens / seconds, "ok": tokens > 0}


def environment(device: torch.device) -> dict[str, Any]:
    import importlib.metadata as md
    import importlib.util

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "device_type": device.type,
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "cuda": torch.version.cuda,
            "versions": {p: version(p) for p in ("torch", "transformers", "peft", "accelerate",
                                                  "sentence-transformers", "bitsandbytes")},
            "importable": {m: _importable(m, importlib.util) for m in ABSENT_THERE}}


def _importable(module: str, util: Any) -> bool:
    try:
        return util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepare", type=Path, help="write the carried assets here and stop")
    ap.add_argument("--assets", type=Path, default=Path(".gpu_carry"))
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--work", type=Path, default=None, help="model folders (default: a temp dir)")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny model, one step, short generation")
    args = ap.parse_args()
    if args.prepare:
        prepare(args.prepare)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    want = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda", 0) if want == "cuda" else torch.device("cpu")
    steps = 1 if args.quick else args.steps
    gen = (2, 2, 8) if args.quick else (16, 10, 64)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "quick": args.quick, "environment": environment(device),
                              "train": [], "generate": [], "errors": []}
    t_start = time.perf_counter()

    def save() -> None:
        result["seconds"] = time.perf_counter() - t_start
        result["ok"] = (not result["errors"] and bool(result["train"])
                        and all(p["ok"] for p in result["train"] + result["generate"]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))

    def part(label: str, fn: Any, *a: Any) -> Any:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {label}", flush=True)
        try:
            value = fn(*a)
        except Exception as err:  # noqa: BLE001 - recorded, and the other parts still run
            result["errors"].append({"part": label, "error": f"{type(err).__name__}: {err}",
                                     "traceback": traceback.format_exc()[-3000:]})
            print(result["errors"][-1]["traceback"], file=sys.stderr, flush=True)
            value = None
        save()
        return value

    models = part("build models", build_models, args.assets, work, args.quick) or {}
    enc_dir = part("build encoder", build_encoder, args.assets, work)
    encoder = part("load encoder", get_encoder, str(enc_dir), device.type) if enc_dir else None
    if encoder is not None:
        for name, folder in models.items():
            row = part(f"train {name} nf4", train_part, name, folder, device, encoder, steps,
                       args.quick)
            if row:
                result["train"].append(row)
                save()
    for name, folder in models.items():
        for quantize in ("none", "4bit"):
            row = part(f"generate {name} {quantize}", generate_part, name, folder, quantize,
                       device, *gen)
            if row:
                result["generate"].append(row)
                save()
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    save()
    print(json.dumps({k: result[k] for k in ("ok", "seconds")}
                     | {"train": [(r["model"], round(r["median_step_seconds"], 3),
                                   r["measured"], round(r["estimate_gib"]["training_worker"], 3))
                                  for r in result["train"]],
                        "generate": [(r["model"], r["quantization"],
                                      round(r["tokens_per_second"], 1))
                                     for r in result["generate"]],
                        "errors": [e["error"] for e in result["errors"]]}, indent=1))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
