"""`study/run.py --plan` wall time against one smoke trial, in the same run.

    python bench/plan_vs_trial.py [--space smoke] [--set model=tiny]

Runs, one after the other (one Ray cluster at a time), as real subprocesses with their own
local Ray cluster each:
- ``plan``: ``study/run.py --space SPACE --plan`` (base-model evaluation, floor/ceiling sets,
  timed steps; no training);
- ``trial``: ``study/run.py`` on the same space cut to its λ=0 baseline (``num_trials: 1``):
  one trial's training and evaluation, start-up included.
Prints both wall times and plan / trial.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polychromic.tuning.space import resolve_space_path  # noqa: E402


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="smoke")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    sets = [x for s in args.set for x in ("--set", s)]
    with tempfile.TemporaryDirectory() as tmp:
        plan = timed(["--space", args.space, *sets, "--plan", "--storage-path", tmp,
                      "--name", "plan", "--no-wandb"])
        raw = yaml.safe_load(resolve_space_path(args.space).read_text())
        raw.update({"num_trials": 1, "points": []})
        one = Path(tmp) / "one_trial.yaml"
        one.write_text(yaml.safe_dump(raw, sort_keys=False))
        trial = timed(["--space", str(one), *sets, "--storage-path", tmp, "--name", "trial",
                       "--no-wandb"])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"space {args.space} {' '.join(args.set)}")
    print(f"plan  (--plan, no training)      {plan:7.1f} s")
    print(f"trial (one λ=0 trial, same run)   {trial:7.1f} s")
    print(f"plan / trial                       {plan / trial:7.2f}")


if __name__ == "__main__":
    main()
