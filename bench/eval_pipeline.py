"""Evaluation pipeline throughput: generated and scored samples/s with 1 and 2 generation
actors (Ray Data), and scoring alone per 1,000 samples, in one run.

    python bench/eval_pipeline.py [--model smollm2-135m-instruct] [--prompts 16]

Generation throughput = samples / (time of the full pipeline); scoring throughput = samples /
(time of the scoring stage alone: the task's checker + the sentence encoder, on the stored
generations), so the two can be compared: scoring must not be the bottleneck.
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
from polychromic.evaluation.actors import Score  # noqa: E402
from polychromic.evaluation.pipeline import evaluate  # noqa: E402
from polychromic.store.generations import read_generations  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(include_dashboard=False, log_to_driver=False)
    cfg = TrialConfig.from_dict({"model": args.model, "n_eval_prompts": args.prompts,
                                 "n_eval_samples": args.samples, "eval_batch_prompts": 2,
                                 "eval_max_new_tokens": args.max_new_tokens})
    n = args.prompts * args.samples
    print(f"model {args.model}, {os.cpu_count()} CPU cores, {args.prompts} prompts × "
          f"{args.samples} samples × ≤{args.max_new_tokens} new tokens")
    print("| generation actors | pipeline seconds | generated samples/s |\n|---|---|---|")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for actors in (1, 2):
            t0 = time.perf_counter()
            evaluate(cfg, None, Path(tmp) / str(actors), actors=actors)
            sec = time.perf_counter() - t0
            rates[actors] = n / sec
            print(f"| {actors} | {sec:.1f} | {rates[actors]:.2f} |")
        gens = read_generations(Path(tmp) / "1" / "generations.parquet")
    scorer = Score(cfg.to_dict(), threads=os.cpu_count() or 1)
    batch = {k: gens[k].to_numpy() for k in ("prompt_index", "prompt_id", "prompt", "target",
                                             "group", "meta", "text")}
    scorer(batch)  # warm-up
    t0 = time.perf_counter()
    scorer(batch)
    score_sec = time.perf_counter() - t0
    scored = n / score_sec
    print(f"\nscaling 2 vs 1 actors: {rates[2] / rates[1]:.2f}× "
          f"(efficiency {rates[2] / rates[1] / 2:.0%}); scoring alone: {scored:.0f} samples/s "
          f"= {1000 / scored:.2f} s per 1,000 samples; scored/generated = "
          f"{scored / max(rates.values()):.0f}× (target ≥ 5×)")
    ray.shutdown()


if __name__ == "__main__":
    main()
