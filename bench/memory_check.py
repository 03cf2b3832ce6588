"""Estimated vs measured memory of a CPU training worker, and its step times, per model and
quantization (BENCHMARKS.md, "Memory: estimate vs measured").

    python bench/memory_check.py                      # tiny and SmolLM2-135M, fp32 and NF4
    python bench/memory_check.py --models tiny --quantize none 4bit --out result.json
    python bench/memory_check.py --generate --models smollm2-135m-instruct   # tokens/s only

Each case runs in its own process: ``polychromic.training.loop.train`` for 2 steps of the smoke
space's settings (step 0 a diversity step, step 1 an SFT step), no Ray. Measured = peak RSS
(``ru_maxrss``) − RSS after imports (the Python/torch runtime is not the model's); estimated =
``polychromic.models.memory.estimate`` on CPU without its fixed 0.5 GiB (a CUDA context).

``--generate``: evaluation tokens/s instead, per model and quantization, each in its own
process: the base model (no adapter) samples the evaluation's settings — the first 4 chitchat
test prompts (``eval_batch_prompts``) × 10 samples (``n_eval_samples``) × ≤ 48 new tokens
(``eval_max_new_tokens``), temperature 1.0, top-p 0.95 — in one batched HF ``generate`` after a
one-prompt warm-up, twice; tokens counted up to and including EOS, the faster run kept.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SMOKE = {"task": "chitchat", "batch_size": 4, "max_length": 64, "n_generations": 4,
         "compute_every_n_steps": 2, "max_examples_for_diversity": 2, "max_new_tokens": 20,
         "steps": 2, "report_every": 1, "lambda_": 1.0}


def rss_gib() -> float:
    """Current RSS of this process (GiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def one_case(model: str, quantize: str) -> dict:
    import torch

    from polychromic.core.config import TrialConfig
    from polychromic.models.loading import resolve_model_path
    from polychromic.models.memory import GIB, estimate, read_shape
    from polychromic.training.loop import train

    cfg = TrialConfig.from_dict({**SMOKE, "model": model, "quantize": quantize})
    path = resolve_model_path(model)
    from polychromic.metrics.encoder import get_encoder

    get_encoder()  # the sentence encoder is part of the runtime, not of the estimate
    before = rss_gib()
    reports: list[dict] = []
    t0 = time.perf_counter()
    train(cfg, torch.device("cpu"), lambda m, _f: reports.append(m))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    est = estimate(read_shape(path), cfg.to_dict(), "nf4" if quantize == "4bit" else "none",
                   cuda=False)
    estimated = est["training_worker"] - 0.5 * GIB / GIB
    return {"model": model, "quantize": quantize, "rss_before_gib": before, "peak_rss_gib": peak,
            "measured_gib": peak - before, "estimated_gib": estimated,
            "ratio": estimated / max(1e-9, peak - before),
            "diversity_step_s": reports[0]["train_seconds"],
            "sft_step_s": reports[1]["train_seconds"] - reports[0]["train_seconds"],
            "wall_s": time.perf_counter() - t0, "estimate": est}


def gen_case(model: str, quantize: str) -> dict:
    import torch

    from polychromic.core.config import TrialConfig
    from polychromic.models.loading import load_base, loaded_quantization
    from polychromic.models.sampling import sample
    from polychromic.tasks import get_task

    cfg = TrialConfig.from_dict({**SMOKE, "model": model, "quantize": quantize})
    t0 = time.perf_counter()
    base, tok = load_base(cfg, torch.device("cpu"))
    base.eval()
    load_s = time.perf_counter() - t0
    task = get_task(cfg)
    prompts = [task.format_prompt(tok, ex) for ex in
               task.examples(cfg.eval_split)[: cfg.eval_batch_prompts]]
    torch.manual_seed(cfg.eval_seed)
    sample(base, tok, prompts[:1], 1, 4)
    runs = []
    for _ in range(2):
        t1 = time.perf_counter()
        out = sample(base, tok, prompts, cfg.n_eval_samples, cfg.eval_max_new_tokens,
                     cfg.eval_temperature, cfg.eval_top_p)
        runs.append((time.perf_counter() - t1, int(sum(out.token_counts))))
    seconds, tokens = min(runs, key=lambda r: r[0] / max(1, r[1]))
    return {"model": model, "quantize": quantize, "loaded": loaded_quantization(base),
            "load_s": load_s, "prompts": len(prompts), "samples": cfg.n_eval_samples,
            "max_new_tokens": cfg.eval_max_new_tokens, "tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m-instruct"])
    parser.add_argument("--quantize", nargs="+", default=["none", "4bit"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--generate", action="store_true",
                        help="evaluation tokens/s instead of training memory")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps((gen_case if args.generate else one_case)(*args.case)))
        return
    rows = []
    for model in args.models:
        for q in args.quantize:
            run = subprocess.run([sys.executable, __file__, "--case", model, q,
                                  *(["--generate"] if args.generate else [])],
                                 capture_output=True, text=True)
            if run.returncode:
                print(run.stderr[-2000:], file=sys.stderr)
                continue
            row = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append(row)
            if args.generate:
                print(f"{model:<24}{q:<6} {row['loaded']}: {row['tokens']} tokens in "
                      f"{row['seconds']:.1f} s = {row['tokens_per_s']:.1f} tokens/s "
                      f"(load {row['load_s']:.1f} s)", flush=True)
                continue
            print(f"{model:<24}{q:<6} measured {row['measured_gib']:.2f} GiB (peak RSS "
                  f"{row['peak_rss_gib']:.2f}), estimated {row['estimated_gib']:.2f} GiB "
                  f"({row['ratio']:.2f}×); SFT step {row['sft_step_s']:.2f} s, diversity step "
                  f"{row['diversity_step_s']:.2f} s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
