"""Ray Train's own start-up: seconds from ``TorchTrainer.fit()`` until a train function that
does nothing is entered, and until ``fit()`` returns, on a local cluster like the study's
(Train V2, the controller polled every 0.2 s as ``polychromic.tuning.trial`` sets it).

    python bench/train_start.py [--runs 3] [ENV=VALUE ...]

Each ENV=VALUE is set in this process and in every worker (e.g.
``RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=0``), so a setting's effect is measured against a run
without it. The reference for a trial's ``worker_start`` phase: what no code of ours can
remove (the first run also starts Ray's worker pool and is slower).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

MARK = Path(tempfile.gettempdir()) / "polychromic-train-start.json"


def entered(config: dict) -> None:
    """The train function: write when it was entered, then return."""
    MARK.write_text(json.dumps({"entered": time.time()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("env", nargs="*", help="ENV=VALUE settings for this run")
    args = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.env)
    env = {"RAY_TRAIN_V2_ENABLED": "1", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2", **extra}
    os.environ.update(env)
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    storage = tempfile.mkdtemp(prefix="train_start_")
    try:
        for i in range(args.runs):
            t0 = time.time()
            TorchTrainer(entered,
                         scaling_config=ScalingConfig(num_workers=1,
                                                      resources_per_worker={"CPU": 1}),
                         run_config=RunConfig(storage_path=storage, name=f"run{i}")).fit()
            back = time.time() - t0
            into = json.loads(MARK.read_text())["entered"] - t0
            print(f"run {i}: entered after {into:.2f} s, fit() returned after {back:.2f} s"
                  f"{' (' + ' '.join(args.env) + ')' if args.env else ''}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
