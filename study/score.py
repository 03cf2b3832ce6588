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

from polychromic.core.errors import ConfigError  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Rescore a study; 0 on success, 2 with one ``error:`` line for any bad input (the study
    is then left exactly as it was)."""
    from polychromic.core.cli import OneLineParser, parse

    parser = OneLineParser(prog="study/score.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study folder, or a name under --storage-path")
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE)
    parser.add_argument("--threshold", type=float, help="new pass/fail quality threshold")
    parser.add_argument("--recheck", action="store_true",
                        help="re-run the task's quality checker on every stored sample")
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        from polychromic.review.study import resolve_study
        from polychromic.tuning.rescore import rescore_study

        root = resolve_study(args.study, args.storage_path)
        path = rescore_study(root, args.threshold, args.recheck)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a read-only study folder: nothing was changed
        print(f"error: {err.filename or args.study}: (file): {err.strerror or err}",
              file=sys.stderr)
        return 2
    from polychromic.review.study import load_study
    from polychromic.review.terminal import print_table

    try:  # the default terminal view, as study/run.py prints it
        study = load_study(str(root))
    except ConfigError as err:  # rescored and written, but not readable back
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"rescored study {study.name}"
          + (f" (threshold {args.threshold:g})" if args.threshold is not None else "")
          + (" (checker re-run)" if args.recheck else ""))
    print_table(study, study.frame)
    print(f"leaderboard: {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
