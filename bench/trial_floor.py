"""The floor under a trial's non-training time on this machine: the work of a trial's Train
worker measured in a plain process (no Ray), Ray Train's own start, and what first touching
fresh memory costs here, in one run.

    python bench/trial_floor.py [--space smoke] [--lambda 0.5] [--touch-gib 3]

1. imports: what a Train worker imports before its first step (transformers' causal-LM
   classes, peft, sentence-transformers), timed in a fresh process that has imported torch
   and Ray Train's torch backend already, as a Train worker has when its function starts.
2. the trial's own work in this process, the modules already imported: the model, encoder
   and task load, the training loop (the space's steps; ``train_seconds``), then the
   evaluation of the model as trained (``evaluate_loaded``, as ``eval_placement: worker``
   runs it: generation, scoring, writing).
3. Ray Train's start: ``bench/train_start.py --runs 2`` in a subprocess (a function that does
   nothing entered after ``fit()``; ``fit()`` returned), its second run.
4. memory: a fresh process writes ``--touch-gib`` GiB, frees them, and a second fresh process
   does the same at once; seconds per GiB of each (the second reuses pages the first freed).

Mapped onto a trial's phases (polychromic.core.phases): worker start ≥ Ray Train's bare start;
model load ≥ imports + loads; training ≥ the loop + the Train run's return; the evaluation's
phases as measured. The non-training share of a trial of this space is at least what these
give, on this machine, when nothing else is slow.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: what a Train worker has imported before its train function starts (Ray Train's torch backend)
WORKER_BASE = "import torch, torch.distributed, ray.train.torch; "
WORKER_IMPORTS = (WORKER_BASE + "import transformers, peft, sentence_transformers; "
                  "from transformers import AutoModelForCausalLM; "
                  "from peft import LoraConfig, get_peft_model")
TOUCH = ("import sys, time, numpy as np; t = time.time(); a = np.ones({n} << 27); "
         "t = time.time() - t; del a; print(t)")


def fresh_python(code: str) -> float:
    """Wall seconds of ``python -c code`` (interpreter start included)."""
    started = time.time()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.time() - started


def touch_seconds(gib: int) -> float:
    """Seconds for a fresh process to write ``gib`` GiB (as printed by the process)."""
    out = subprocess.run([sys.executable, "-c", TOUCH.format(n=gib)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def ray_train_start() -> tuple[float, float]:
    """(entered, returned) seconds after ``fit()`` of bench/train_start.py's last run."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "train_start.py"), "--runs", "2"],
                         check=True, capture_output=True, text=True).stdout
    runs = re.findall(r"entered after ([\d.]+) s, fit\(\) returned after ([\d.]+) s", out)
    if not runs:
        raise SystemExit(f"error: bench/train_start.py printed no run: {out[-400:]}")
    entered, returned = map(float, runs[-1])
    return entered, returned - entered


def trial_work(space: str, lambda_: float) -> dict[str, float]:
    """Load, train and evaluate one trial of ``space`` in this process; seconds per part."""
    import torch

    from polychromic.evaluation.in_worker import evaluate_loaded
    from polychromic.training.loop import train
    from polychromic.tuning.space import load_space

    cfg = load_space(space).trial_config({"lambda_": lambda_})
    seen: dict[str, float] = {}
    evaluation: dict[str, float] = {}

    def report(metrics: dict, folder: Path | None) -> None:
        seen["load"] = metrics["model_load_seconds"]
        seen["loop"] = metrics["train_seconds"]

    def finish(model: object, tok: object, folder: Path) -> None:
        evaluation.update(evaluate_loaded(cfg, model, tok, folder / "evaluation"))

    train(cfg, torch.device("cpu"), report, finish=finish)
    return {**seen, **{k: v or 0.0 for k, v in evaluation.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="smoke")
    ap.add_argument("--lambda", dest="lambda_", type=float, default=0.5)
    ap.add_argument("--touch-gib", type=int, default=3)
    args = ap.parse_args()

    imports = fresh_python(WORKER_IMPORTS) - fresh_python(WORKER_BASE)
    # imported here too, so that the in-process run below times the loads alone
    import peft  # noqa: F401
    import sentence_transformers  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401
    work = trial_work(args.space, args.lambda_)
    entered, back = ray_train_start()
    first, again = touch_seconds(args.touch_gib), touch_seconds(args.touch_gib)

    # the trial's phases (polychromic.core.phases), each at its least on this machine
    phases = {"worker start": entered, "model load": imports + work["load"],
              "training": work["loop"] + back,
              "evaluation start-up": work.get("evaluation_startup", 0.0),
              "generation": work["generation"], "scoring": work["scoring"],
              "writing": work["writing"]}
    floor = sum(v for k, v in phases.items() if k != "training")
    print(f"{args.space}, λ={args.lambda_}: a trial's phases at their least (its work without Ray,"
          f" and Ray Train's own start and return)")
    print(f"  worker start = Ray Train's bare start {entered:.2f} s")
    print(f"  model load = worker imports {imports:.2f} s + model, encoder, task {work['load']:.2f} s")
    print(f"  training = the loop {work['loop']:.2f} s + the Train run's return {back:.2f} s")
    for name, seconds in phases.items():
        print(f"  {name:<20} {seconds:6.2f} s")
    print(f"non-training share at least {floor / (floor + phases['training']):.0%} "
          f"({floor:.1f} s of {floor + phases['training']:.1f} s)")
    print(f"first touch of {args.touch_gib} GiB in a fresh process: "
          f"{first / args.touch_gib:.2f} s/GiB; again at once: {again / args.touch_gib:.2f} "
          f"s/GiB (ratio {first / again:.1f})")


if __name__ == "__main__":
    main()
