"""Estimated vs measured memory of a CPU training worker, and its step times, per model and
quantization (BENCHMARKS.md, "Memory: estimate vs measured").

    python bench/memory_check.py                      # tiny and SmolLM2-135M, fp32 and NF4
    python bench/memory_check.py --models tiny --quantize none 4bit --out result.json

Each case runs in its own process: ``polychromic.training.loop.train`` for 2 steps of the smoke
space's settings (step 0 a diversity step, step 1 an SFT step), no Ray. Measured = peak RSS
(``ru_maxrss``) − RSS after imports (the Python/torch runtime is not the model's); estimated =
``polychromic.models.memory.estimate`` on CPU without its fixed 0.5 GiB (a CUDA context).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m-instruct"])
    parser.add_argument("--quantize", nargs="+", default=["none", "4bit"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(*args.case)))
        return
    rows = []
    for model in args.models:
        for q in args.quantize:
            run = subprocess.run([sys.executable, __file__, "--case", model, q],
                                 capture_output=True, text=True)
            if run.returncode:
                print(run.stderr[-2000:], file=sys.stderr)
                continue
            row = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{model:<24}{q:<6} measured {row['measured_gib']:.2f} GiB (peak RSS "
                  f"{row['peak_rss_gib']:.2f}), estimated {row['estimated_gib']:.2f} GiB "
                  f"({row['ratio']:.2f}×); SFT step {row['sft_step_s']:.2f} s, diversity step "
                  f"{row['diversity_step_s']:.2f} s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
