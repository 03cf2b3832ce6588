"""Recompute every trial's metrics and the leaderboard from stored generations (no LM).

    python study/score.py smoke --threshold 0.7 --dry-run   # what would change; writes nothing
    python study/score.py smoke                      # same numbers, from generations.parquet
    python study/score.py smoke --threshold 0.7      # a stricter pass/fail threshold
    python study/score.py studies/smoke --recheck    # re-run the task's quality checker
    python study/score.py smoke --undo               # put the last rescore's files back

A real run REWRITES, in place, every trial's result.json (and, with --threshold or --recheck,
its generations.parquet: the pass/fail of every sample) and the study's leaderboard.parquet.
The files it replaces are not lost: they are moved to <study>/rescores/<UTC time>/ (with a
rescore.json saying when and with which arguments), and --undo puts the last rescore's files
back. --dry-run prints, per trial, the old → new pass@k and quality_mean and changes no byte of
the study. Bad input is one ``error:`` line and exit status 2, the study left as it was.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.core.errors import ConfigError  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from polychromic.core.cli import OneLineParser

    parser = OneLineParser(prog="study/score.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study folder, or a name under --storage-path")
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE, metavar="DIR",
                        help="where named studies live, as given to study/run.py "
                             "(default: %(default)s)")
    parser.add_argument("--threshold", type=float,
                        help="new pass/fail quality threshold in [0, 1] (rewrites every "
                             "sample's pass/fail in generations.parquet)")
    parser.add_argument("--recheck", action="store_true",
                        help="re-run the task's quality checker on every stored sample")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--dry-run", action="store_true",
                      help="print old → new pass@k and quality_mean per trial; write nothing")
    what.add_argument("--undo", action="store_true",
                      help="put back the files the last rescore replaced (from "
                           "<study>/rescores/) and rebuild nothing else")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Rescore a study; 0 on success, 2 with one ``error:`` line for any bad input (the study
    is then left exactly as it was)."""
    from polychromic.core.cli import COMMAND_LINE, parse

    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        from polychromic.review.study import resolve_study
        from polychromic.tuning import rescore

        root = resolve_study(args.study, args.storage_path)
        if args.undo:
            if args.threshold is not None or args.recheck:
                raise ConfigError("--undo", "takes no --threshold or --recheck: it restores "
                                  "the files the last rescore replaced", COMMAND_LINE)
            folder, record = rescore.undo_last(root)
            print(f"undid the rescore of {record.get('at', folder.name)}: put back "
                  f"{len(record.get('replaced') or [])} file(s) from {folder}")
            return 0
        plan = rescore.plan_study(root, args.threshold, args.recheck)
        if args.dry_run:
            print("\n".join(rescore.changes(plan)))
            return 0
        done = rescore.apply(plan)
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
          + (" (checker re-run)" if args.recheck else "")
          + f": rewrote {done.results} result.json"
          + (f", {done.generations} generations.parquet" if done.generations else "")
          + f" and {done.leaderboard.name}; the previous files are in {done.history} (undo: "
          f"python study/score.py {shlex.quote(str(root))} --undo)")
    print_table(study, study.frame)
    print(f"leaderboard: {done.leaderboard.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
