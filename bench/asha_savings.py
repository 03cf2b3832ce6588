"""Compute ASHA saves: trial-steps run with early stopping vs every trial run to the end.

    python bench/asha_savings.py [--trials 8] [--steps 8]

Runs a real study (Ray Tune + Optuna + ASHA on ``poly_score``) on the embedded chitchat task
with the tiny model (CPU-sized), then counts, from each trial's history, the optimizer steps it
actually ran. The reference is the same trials each run to ``--steps``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polychromic.records import read_json, read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--model", default="tiny")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        space = {
            "description": "ASHA savings benchmark",
            "settings": {"model": args.model, "steps": args.steps, "batch_size": 2,
                         "max_length": 48, "report_every": 1, "n_generations": 3,
                         "compute_every_n_steps": 1, "max_examples_for_diversity": 2,
                         "max_new_tokens": 8, "n_eval_prompts": 2, "n_eval_samples": 10,
                         "eval_max_new_tokens": 8, "learning_rate": 0.01},
            "params": {"lambda_": {"distribution": "log_uniform", "low": 0.01, "high": 10.0}},
            "objectives": [{"metric": "semantic_diversity", "mode": "max"}],
            "scheduler": {"metric": "poly_score", "mode": "max", "grace_period": 2,
                          "reduction_factor": 2},
            "num_trials": args.trials,
        }
        path = Path(tmp) / "asha.yaml"
        path.write_text(yaml.safe_dump(space))
        subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", str(path),
                        "--storage-path", tmp, "--name", "asha", "--no-wandb"], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        rows = []
        for tdir in sorted((Path(tmp) / "asha" / "trials").iterdir()):
            steps = max((h.get("step", 0) for h in read_jsonl(tdir / "history.jsonl")), default=0)
            cfg = read_json(tdir / "config.json") or {}
            status = (read_json(tdir / "status.json") or {}).get("status", "?")
            rows.append((tdir.name, cfg.get("lambda_"), steps, status))
    ran = sum(r[2] for r in rows)
    full = len(rows) * args.steps
    print(f"{len(rows)} trials × {args.steps} steps, ASHA grace 2, reduction 2, metric poly_score")
    print("| trial | lambda_ | steps run | status |\n|---|---|---|---|")
    for tid, lam, steps, status in rows:
        print(f"| {tid} | {lam:.4g} | {steps} | {status} |")
    print(f"\ntrial-steps: {ran} with ASHA vs {full} run to the end → saved {full - ran} "
          f"({1 - ran / full:.0%})")
    print(json.dumps({"ran": ran, "full": full}))


if __name__ == "__main__":
    main()
