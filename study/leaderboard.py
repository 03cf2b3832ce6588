"""Review a study: the leaderboard in the terminal, as csv/json/parquet/markdown, or as HTML.

    python study/leaderboard.py smoke                       # fits 100 columns, best first
    python study/leaderboard.py smoke --wide                # every headline metric, Δ and CI
    python study/leaderboard.py smoke --wide | less -S      # ... as one wide table
    python study/leaderboard.py smoke --trial a7ae1_00003   # one trial, one row per metric
    python study/leaderboard.py studies/smoke --top 5 --sort pass@1
    python study/leaderboard.py smoke --filter 'lambda_>0.5,status==finished'
    python study/leaderboard.py smoke --format csv > smoke.csv
    python study/leaderboard.py smoke --format parquet -o smoke.parquet
    python study/leaderboard.py smoke --html smoke.html     # self-contained report

Works while the study runs and on finished or interrupted studies. Bad input (no such study,
corrupt folder, unknown column) is one line ``error: ...`` on stderr and exit status 2.
See docs/review.md for the columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.core.errors import ConfigError  # noqa: E402
from polychromic.review.format import FORMATS, render  # noqa: E402
from polychromic.review.study import (  # noqa: E402
    DEFAULT_GPU_HOUR_PRICE,
    column_names,
    find_trial,
    load_study,
    select,
)
from polychromic.review.terminal import print_table, print_trial  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from polychromic.core.cli import OneLineParser

    parser = OneLineParser(
        prog="study/leaderboard.py", description="Leaderboard of a polychromic study (reads the study folder only).",
        epilog="Sorting: default = the study's objective(s) (two objectives: Pareto rank, then "
               "each objective). Filter terms: 'column op number' with op in > >= < <= == != "
               "(== and != also take a word, e.g. status==finished), joined by ',' = AND.",
    )
    parser.add_argument("study", help="study name (under --storage-path) or study folder")
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE,
                        help="where named studies live (default: %(default)s)")
    parser.add_argument("--format", default="table", choices=FORMATS,
                        help="table (terminal) or a machine/paper format (default: %(default)s)")
    parser.add_argument("-o", "--output", help="write the --format output to this file "
                        "(with --format table: a markdown table)")
    parser.add_argument("--sort", metavar="METRIC[:asc|:desc]",
                        help="sort by a column (best first when it has a better direction)")
    parser.add_argument("--top", type=int, metavar="N", help="only the first N rows")
    parser.add_argument("--filter", metavar="EXPR", help="e.g. 'lambda_>0.5,pass@1>=0.3'")
    parser.add_argument("--metrics", metavar="M1,M2",
                        help="headline metrics to show (default: all with a value); "
                        "'--metrics list' prints every column --metrics, --sort and --filter "
                        "can name")
    parser.add_argument("--gpu-hour-price", type=float, default=DEFAULT_GPU_HOUR_PRICE,
                        metavar="USD", help="price of one GPU-hour for the cost column "
                        "(default: $%(default).2f, an on-demand cloud A100/H100 hour)")
    parser.add_argument("--gpus-per-trial", type=float, metavar="N",
                        help="GPUs per trial where the study did not record the device")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    parser.add_argument("--wide", action="store_true",
                        help="terminal table with every headline metric, its Δ and CI, grad "
                        "share, GPU-hours and cost: in a terminal as blocks of columns that fit "
                        "its width, piped as one wide table (default: a view that fits 100 "
                        "columns); not with --trial, which shows all of that for one trial")
    parser.add_argument("--all-warnings", action="store_true",
                        help="the default view warns only about the metrics it shows; this "
                        "lists every warning (so does --wide)")
    parser.add_argument("--trial", metavar="ID",
                        help="one trial (id or unique prefix), transposed: its settings and "
                        "every metric with value, Δ, CI, MDE and headroom; other formats: "
                        "that trial's row")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print or write the leaderboard; 0 on success, 2 with one ``error:`` line for any bad
    input (nothing written)."""
    from polychromic.core.cli import COMMAND_LINE, parse
    from polychromic.store.guards import output_file

    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        if args.wide and args.trial is not None:
            raise ConfigError("--wide", "--trial already shows every metric of one trial with "
                              "its Δ, CI, MDE and headroom; use one of the two", COMMAND_LINE)
        study = load_study(args.study, args.storage_path, args.gpu_hour_price, args.gpus_per_trial)
        # checked before anything is written: never a folder, never a file of the study
        output = output_file(args.output, "--output", study.path) if args.output else None
        html = output_file(args.html, "--html", study.path) if args.html else None
        if args.metrics is not None and args.metrics.strip() == "list":
            from polychromic.core import columns

            for name in column_names(study.frame):
                col = columns.column(name)
                print(f"{name:<40} {col.definition}" if col else name)
            return 0
        df = select(study, args.sort, args.top, args.filter)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
        if args.trial is not None:
            tid = str(find_trial(study, args.trial)["trial_id"])
            df = study.frame[study.frame["trial_id"].astype(str) == tid].reset_index(drop=True)
        if args.format == "table" and not args.output:
            if args.trial is not None:
                print_trial(study, args.trial)
            else:
                print_table(study, df, metrics, wide=args.wide, all_warnings=args.all_warnings)
        else:
            out = render(study, df, "markdown" if args.format == "table" else args.format, metrics)
            if output is not None:
                path = output
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(out, bytes):
                        path.write_bytes(out)
                    else:
                        path.write_text(out, encoding="utf-8")
                except OSError as err:  # named by the user's path, not a folder above it
                    raise OSError(err.errno, err.strerror or str(err), str(path)) from None
                print(f"wrote {path}", file=sys.stderr)
            elif isinstance(out, bytes):
                if sys.stdout.isatty():
                    raise ConfigError("--format", "parquet is binary: give -o FILE or redirect "
                                      "stdout", COMMAND_LINE)
                sys.stdout.buffer.write(out)
            else:
                sys.stdout.write(out)
        if html is not None:
            from polychromic.review.html_report import write_report

            path = write_report(study, df, html, metrics)
            print(f"report: {path.resolve()}", file=sys.stderr)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unwritable --output/--html
        print(f"error: {err.filename or args.html or args.output}: (file): "
              f"{err.strerror or err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
