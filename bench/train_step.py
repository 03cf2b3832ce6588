"""Train-step cost: a diversity step vs a plain SFT step vs its parts, same batch, same run.

    python bench/train_step.py [--model smollm2-135m-instruct] [--repeats 3]

Measured on the same model, batch and seed, each the median of ``--repeats`` runs:
- ``sft``: one optimizer step's gradients on a non-diversity step (CE forward + backward);
- ``diversity``: a diversity step with λ = 1 (CE fwd+bwd, sampling, scoring, log-prob forward
  with grad and its backward);
- ``generate``: the batched ``generate`` of the same samples alone;
- ``grad_forward``: one forward with grad over the sampled completions (log-probs) alone;
- ``grad_forward_backward``: the same plus its backward.
Reference = sft + generate + grad_forward (the issue's target: diversity ≤ 1.15 × reference);
the table also gives the ratio against sft + generate + grad_forward_backward.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.config import TrialConfig  # noqa: E402
from polychromic.metrics.encoder import get_encoder  # noqa: E402
from polychromic.models.loading import load_for_training  # noqa: E402
from polychromic.models.sampling import completion_logprob, sample  # noqa: E402
from polychromic.tasks import get_task  # noqa: E402
from polychromic.training.step import step_gradients  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n-generations", type=int, default=4)
    ap.add_argument("--max-examples-for-diversity", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    cfg = TrialConfig.from_dict({
        "model": args.model, "lambda_": 1.0, "batch_size": args.batch_size, "max_length": 64,
        "n_generations": args.n_generations, "compute_every_n_steps": 2,
        "max_examples_for_diversity": args.max_examples_for_diversity,
        "max_new_tokens": args.max_new_tokens})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model, tok = load_for_training(cfg, device)
    model.train()
    task = get_task(cfg)
    encoder = get_encoder(device=str(device) if device.type == "cuda" else "cpu")
    batch = task.examples("train")[: cfg.batch_size]
    params = [p for p in model.parameters() if p.requires_grad]
    div_examples = batch[: cfg.max_examples_for_diversity]
    prompts = [task.format_prompt(tok, ex) for ex in div_examples]

    def sft() -> None:
        step_gradients(model, tok, task, encoder, batch, cfg, 1, params)

    def diversity() -> None:
        step_gradients(model, tok, task, encoder, batch, cfg, 0, params)

    def generate():
        return sample(model, tok, prompts, cfg.n_generations, cfg.max_new_tokens,
                      cfg.temperature, cfg.top_p)

    torch.manual_seed(0)
    samples = generate()

    def grad_forward() -> None:
        completion_logprob(model, samples).mean()

    def grad_forward_backward() -> None:
        torch.autograd.grad(completion_logprob(model, samples).mean(), params)

    diversity()  # warm-up (encoder, kernels)
    t = {name: timed(fn, args.repeats) for name, fn in [
        ("sft", sft), ("diversity", diversity), ("generate", generate),
        ("grad_forward", grad_forward), ("grad_forward_backward", grad_forward_backward)]}
    ref = t["sft"] + t["generate"] + t["grad_forward"]
    ref_bwd = t["sft"] + t["generate"] + t["grad_forward_backward"]
    where = torch.cuda.get_device_name() if device.type == "cuda" else (
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    print(f"model {args.model}, {where}, torch {torch.__version__}; batch {cfg.batch_size}×64 tok, "
          f"{len(div_examples)} prompts × {cfg.n_generations} samples × {cfg.max_new_tokens} new "
          f"tokens; median of {args.repeats}")
    print("| part | seconds |\n|---|---|")
    for name, sec in t.items():
        print(f"| {name} | {sec:.3f} |")
    print(f"| reference = sft + generate + grad_forward | {ref:.3f} |")
    print(f"\ndiversity / reference = **{t['diversity'] / ref:.3f}** (target ≤ 1.15); "
          f"diversity / (sft + generate + grad_forward_backward) = {t['diversity'] / ref_bwd:.3f}")


if __name__ == "__main__":
    main()
