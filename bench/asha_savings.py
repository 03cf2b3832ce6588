"""Compute ASHA saves: trial-steps run with early stopping vs every trial run to the end.

    python bench/asha_savings.py [--trials 8] [--steps 8] [--metric poly_score]

Runs a real study (Ray Tune + Optuna TPE over λ and the learning rate + ASHA on a training
metric) on the embedded chitchat task with the tiny model (CPU-sized) and counts, from each
trial's history, the optimizer steps it actually ran. The reference is a second study that
runs exactly the same trials (same λ, learning rate, seed) each to the end without ASHA; it
also tells whether ASHA stopped the trial that would have been best.
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

from polychromic.store import layout  # noqa: E402
from polychromic.store.records import read_json, read_jsonl  # noqa: E402


def run_study(tmp: Path, name: str, space: dict) -> list[dict]:
    """Run one study through study/run.py; one row per trial from what it wrote."""
    path = Path(tmp) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", str(path),
                    "--storage-path", str(tmp), "--name", name, "--no-wandb"], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    rows = []
    for tdir in sorted(layout.trials_dir(Path(tmp) / name).iterdir()):
        cfg = read_json(tdir / layout.CONFIG) or {}
        result = read_json(tdir / layout.RESULT) or {}
        rows.append({
            "trial": tdir.name, "lambda_": cfg.get("lambda_"), "learning_rate": cfg.get("learning_rate"),
            "steps": max((h.get("step", 0) for h in read_jsonl(tdir / layout.HISTORY)), default=0),
            "status": (read_json(tdir / layout.STATUS) or {}).get("status", "?"),
            "objective": result.get(OBJECTIVE),
        })
    return rows


OBJECTIVE = "semantic_diversity"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--metric", default="poly_score", help="ASHA's training metric")
    ap.add_argument("--mode", default="max")
    args = ap.parse_args()
    settings = {"model": args.model, "steps": args.steps, "batch_size": 2, "max_length": 48,
                "report_every": 1, "n_generations": 3, "compute_every_n_steps": 1,
                "max_examples_for_diversity": 2, "max_new_tokens": 8, "n_eval_prompts": 4,
                "n_eval_samples": 10, "eval_max_new_tokens": 12}
    # the learning rate is searched too, so that trials really differ at the rungs
    params = {"lambda_": {"distribution": "log_uniform", "low": 0.01, "high": 10.0},
              "learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 0.3}}
    asha = {"metric": args.metric, "mode": args.mode, "grace_period": 2, "reduction_factor": 2}
    with tempfile.TemporaryDirectory() as tmp:
        early = run_study(Path(tmp), "asha", {
            "description": "ASHA savings benchmark: with ASHA", "settings": settings,
            "params": params, "objectives": [{"metric": OBJECTIVE, "mode": "max"}],
            "scheduler": asha, "num_trials": args.trials})
        # the same trials, every one run to the end (no searching: each is a fixed point)
        points = [{"lambda_": r["lambda_"], "learning_rate": r["learning_rate"]}
                  for r in early if r["lambda_"] != 0]
        full = run_study(Path(tmp), "full", {
            "description": "ASHA savings benchmark: every trial to the end",
            "settings": settings, "params": params, "points": points,
            "objectives": [{"metric": OBJECTIVE, "mode": "max"}],
            "scheduler": {"enabled": False}, "num_trials": 1 + len(points)})
    key = lambda r: (round(r["lambda_"], 9), round(r["learning_rate"], 12))  # noqa: E731
    end = {key(r): r for r in full}
    ran, total = sum(r["steps"] for r in early), sum(end[key(r)]["steps"] for r in early)
    best = max(full, key=lambda r: r["objective"] if r["objective"] is not None else -1)
    kept_best = any(key(r) == key(best) and r["status"] == "finished" for r in early)
    print(f"{len(early)} trials × {args.steps} steps, ASHA on {args.metric} ({args.mode}), "
          f"grace 2, reduction 2; objective {OBJECTIVE}")
    print("| trial | lambda_ | learning_rate | steps with ASHA | status | "
          f"{OBJECTIVE} (with ASHA) | {OBJECTIVE} (run to the end) |")
    print("|---|---|---|---|---|---|---|")
    for r in early:
        other = end[key(r)]
        fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"| {r['trial']} | {r['lambda_']:.4g} | {r['learning_rate']:.3g} | {r['steps']} | "
              f"{r['status']} | {fmt(r['objective'])} | {fmt(other['objective'])} |")
    print(f"\ntrial-steps: {ran} with ASHA vs {total} for the same trials run to the end → "
          f"saved {total - ran} ({1 - ran / total:.0%}); the best trial run to the end "
          f"(λ={best['lambda_']:.4g}, lr={best['learning_rate']:.3g}) was "
          f"{'kept' if kept_best else 'STOPPED'} by ASHA")
    print(json.dumps({"ran": ran, "full": total, "kept_best": kept_best}))


if __name__ == "__main__":
    main()
