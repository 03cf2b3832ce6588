"""Evaluation pipeline throughput: generated and scored samples/s with 1 and 2 generation
actors (Ray Data) against a bare HF ``generate`` of the same sequences, and scoring alone per
1,000 samples, in one run.

    python bench/eval_pipeline.py [--model smollm2-135m-instruct] [--prompts 16]
        [--samples 10] [--max-new-tokens 32] [--batch-prompts 2]

The reference ("bare generate"): this process loads the base model (load time reported apart)
and samples the same chat-formatted prompts × samples in ONE ``generate`` call
(``polychromic.models.sampling.sample``) at the evaluation's temperature and top-p, all cores'
threads; only the call is timed. The pipeline's seconds are everything ``evaluate`` takes: Ray
Data's start-up, the actors' model and encoder loads, generation, scoring and the write.
ratio = bare seconds / pipeline seconds (> 1: the pipeline produced the scored samples faster
than the bare call alone generated them).

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


def bare_generate(cfg: TrialConfig) -> tuple[float, int]:
    """Seconds of one HF ``generate`` over the evaluation's prompts × samples in this process
    (all cores' threads, the model loaded first and not timed), and its generated tokens."""
    import torch

    from polychromic.models.loading import load_for_inference
    from polychromic.models.sampling import sample
    from polychromic.tasks import get_task

    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    model, tok = load_for_inference(cfg, None, torch.device("cpu"))
    load = time.perf_counter() - t0
    task = get_task(cfg)
    prompts = [task.format_prompt(tok, ex) for ex in task.examples(cfg.eval_split)
               [: cfg.n_eval_prompts]]
    torch.manual_seed(cfg.eval_seed)
    t0 = time.perf_counter()
    out = sample(model, tok, prompts, cfg.n_eval_samples, cfg.eval_max_new_tokens,
                 cfg.eval_temperature, cfg.eval_top_p)
    sec = time.perf_counter() - t0
    tokens = int(sum(out.token_counts))
    print(f"bare generate: model load {load:.1f} s (not timed), {tokens} tokens generated")
    del model
    return sec, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-prompts", type=int, default=2,
                    help="eval_batch_prompts: prompts per generation group (one decoding call)")
    ap.add_argument("--actors", default="1,2", help="generation actor counts to time")
    args = ap.parse_args()
    counts = [int(a) for a in args.actors.split(",")]
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(include_dashboard=False, log_to_driver=False)
    cfg = TrialConfig.from_dict({"model": args.model, "n_eval_prompts": args.prompts,
                                 "n_eval_samples": args.samples,
                                 "eval_batch_prompts": args.batch_prompts,
                                 "eval_max_new_tokens": args.max_new_tokens})
    n = args.prompts * args.samples
    print(f"model {args.model}, {os.cpu_count()} CPU cores, {args.prompts} prompts × "
          f"{args.samples} samples × ≤{args.max_new_tokens} new tokens, "
          f"{args.batch_prompts} prompts per generation group")
    bare_sec, bare_tokens = bare_generate(cfg)
    print(f"| run | seconds | samples/s | ratio to bare |\n|---|---|---|---|\n"
          f"| bare HF generate, one call (load apart) | {bare_sec:.1f} | {n / bare_sec:.2f} | "
          f"1.00 |")
    rates = {}
    phases: list[str] = []  # the evaluation's phase_seconds, per actor count
    with tempfile.TemporaryDirectory() as tmp:
        for actors in counts:
            t0 = time.perf_counter()
            timings: dict[str, float | None] = {}
            evaluate(cfg, None, Path(tmp) / str(actors), actors=actors, timings=timings)
            sec = time.perf_counter() - t0
            rates[actors] = n / sec
            print(f"| pipeline, {actors} generation actor{'s' if actors > 1 else ''} | "
                  f"{sec:.1f} | {rates[actors]:.2f} | {bare_sec / sec:.2f} |")
            phases.append(f"{actors} actor{'s' if actors > 1 else ''}: " + ", ".join(
                f"{k} {v:.1f} s" for k, v in timings.items() if v is not None))
        gens = read_generations(Path(tmp) / str(counts[0]) / "generations.parquet")
    scorer = Score(cfg.to_dict(), threads=os.cpu_count() or 1)
    batch = {k: gens[k].to_numpy() for k in ("prompt_index", "prompt_id", "prompt", "target",
                                             "group", "meta", "text")}
    scorer(batch)  # warm-up
    t0 = time.perf_counter()
    scorer(batch)
    score_sec = time.perf_counter() - t0
    scored = n / score_sec
    for line in phases:
        print(f"evaluation phases, {line}")
    if 1 in rates and 2 in rates:
        print(f"\nscaling 2 vs 1 actors: {rates[2] / rates[1]:.2f}× "
              f"(efficiency {rates[2] / rates[1] / 2:.0%})")
    print(f"scoring alone: {scored:.0f} samples/s "
          f"= {1000 / scored:.2f} s per 1,000 samples; scored/generated = "
          f"{scored / max(rates.values()):.0f}× (target ≥ 5×)")
    ray.shutdown()


if __name__ == "__main__":
    main()
