"""QLoRA (bitsandbytes NF4) training steps on CUDA: the path ``quantize: auto`` takes on a GPU.

    python bench/qlora_step.py [--model smollm2-135m-instruct] [--steps 3] [--backend hf|vllm]
        [--out qlora_step.json]

Loads the base in 4-bit NF4 (double quantization, bf16 compute) with a fresh LoRA adapter,
runs ``--steps`` optimizer steps that are all diversity steps (λ = 1, 4 prompts × 4 samples ×
≤ 32 tokens: SFT CE + sampling + scoring + the surrogate's forward and backward), and records
seconds per step, peak GPU memory, the losses and ``diversity_grad_share`` (all must be finite,
the share > 0). ``--backend vllm`` samples with a colocated vLLM engine (bf16 base + LoRA
synced each step) while the 4-bit model computes the log-probabilities. Refuses to run
without CUDA (4-bit training on CPU is not what this measures).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.config import TrialConfig  # noqa: E402
from polychromic.metrics.encoder import get_encoder  # noqa: E402
from polychromic.models.loading import load_for_training  # noqa: E402
from polychromic.tasks import get_task  # noqa: E402
from polychromic.training.step import step_gradients  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA here: the QLoRA step check needs a GPU")
    device = torch.device("cuda", 0)
    cfg = TrialConfig.from_dict({
        "model": args.model, "quantize": "4bit", "lambda_": 1.0, "batch_size": 8,
        "max_length": 64, "n_generations": 4, "max_examples_for_diversity": 4,
        "compute_every_n_steps": 1, "max_new_tokens": 32, "generation_backend": args.backend})
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model, tok = load_for_training(cfg, device)
    load_s = time.perf_counter() - t0
    sampler = None
    if args.backend == "vllm":
        from polychromic.models.backends import VLLMSampler

        sampler = VLLMSampler(cfg, device, colocated=True)
    model.train()
    task = get_task(cfg)
    encoder = get_encoder(device="cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    examples = task.examples("train")
    steps = []
    for step in range(args.steps):
        torch.manual_seed(step)
        batch = examples[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        g_ce, g_div, stats = step_gradients(model, tok, task, encoder, batch, cfg, step, params,
                                            sampler=sampler)
        for p, gc, gd in zip(params, g_ce, g_div or [None] * len(params)):
            p.grad = gc if gd is None else gc + gd
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        steps.append({"seconds": time.perf_counter() - t0, "quality_loss": stats.quality_loss,
                      "combined_loss": stats.combined_loss,
                      "diversity_grad_share": stats.diversity_grad_share,
                      "parts": stats.seconds})
        print(json.dumps(steps[-1]), flush=True)
    ok = all(math.isfinite(s["quality_loss"]) and math.isfinite(s["combined_loss"])
             and (s["diversity_grad_share"] or 0) > 0 for s in steps)
    result = {
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "model": args.model, "backend": args.backend,
        "loaded_in_4bit": bool(getattr(model, "is_loaded_in_4bit", False)
                               or getattr(model.base_model.model, "is_loaded_in_4bit", False)),
        "load_seconds": load_s, "steps": steps,
        "median_step_seconds": sorted(s["seconds"] for s in steps)[len(steps) // 2],
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "ok": ok,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
