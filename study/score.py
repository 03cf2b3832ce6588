"""Recompute every trial's metrics and the leaderboard from stored generations (no LM).

    python study/score.py smoke                      # same numbers, from generations.parquet
    python study/score.py smoke --threshold 0.7      # a stricter pass/fail threshold
    python study/score.py studies/smoke --recheck    # re-run the task's quality checker
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.errors import ConfigError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study folder, or a name under --storage-path")
    parser.add_argument("--storage-path", default="studies")
    parser.add_argument("--threshold", type=float, help="new pass/fail quality threshold")
    parser.add_argument("--recheck", action="store_true",
                        help="re-run the task's quality checker on every stored sample")
    args = parser.parse_args(argv)
    root = Path(args.study)
    if not (root / "study.json").is_file():
        root = Path(args.storage_path) / args.study
    try:
        from polychromic.leaderboard import print_table
        from polychromic.rescore import rescore_study

        path = rescore_study(root, args.threshold, args.recheck)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import pandas as pd

    print_table(pd.read_parquet(path), title=f"study {root.name} (rescored)")
    print(f"leaderboard: {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
