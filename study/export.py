"""Export a trial of a study: LoRA adapter (default) or merged model, tokenizer, model card.

    python study/export.py smoke --out exports/smoke-best                 # best trial's adapter
    python study/export.py smoke --out exports/div --best --by semantic_diversity
    python study/export.py smoke --out exports/t1 --trial 00f38dbd --merge
    python study/export.py smoke --out exports/smoke-best --force         # replace DIR

The export is reloaded and made to generate a few greedy tokens before it replaces DIR. A
non-empty DIR needs --force; a failed or early-stopped trial is only exported when named with
--trial. Bad input is one line ``error: ...`` on stderr and exit status 2; an export that does
not reload or generate is ``error: export check failed: ...`` and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.core.errors import ConfigError  # noqa: E402
from polychromic.review.study import choose_trial, load_study, resolve_study  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from polychromic.core.cli import OneLineParser

    parser = OneLineParser(
        prog="study/export.py", description="Export a trial's LoRA adapter or merged model, with tokenizer, model card "
                    "(README.md) and trial.json.")
    parser.add_argument("study", help="study name (under --storage-path) or study folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", metavar="ID", help="trial id (or a unique prefix)")
    which.add_argument("--best", action="store_true",
                       help="the best finished λ>0 trial by the study's objectives, a "
                            "confirmed gain preferred: the trial `study/confirm.py --best` "
                            "confirms (the default); the λ=0 baseline only with --trial")
    parser.add_argument("--by", metavar="METRIC[:asc|:desc]",
                        help="with --best: rank the λ>0 trials by this column instead of the "
                             "study's objectives")
    parser.add_argument("--merge", action="store_true",
                        help="merge into the unquantized base and save a plain transformers model")
    parser.add_argument("--force", action="store_true", help="replace a non-empty DIR")
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE,
                        help="where named studies live (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present), cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--prompt", help="prompt for the export check (default: a fixed one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Export a trial; 0 on success, 1 when the export check fails, 2 with one ``error:``
    line for any bad input (nothing written, the study untouched)."""
    from polychromic.core.cli import COMMAND_LINE, parse

    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        if args.by and args.trial:
            raise ConfigError("--by", "ranks trials for --best; it cannot be used with --trial",
                              COMMAND_LINE)
        from polychromic.export.artifacts import DEFAULT_PROMPT, check_device, check_out_dir

        check_device(args.device)
        # before the study is even read: never into, over or around the study
        root = resolve_study(args.study, args.storage_path)
        check_out_dir(args.out, args.force, root, args.storage_path)
        study = load_study(str(root), args.storage_path)
        row = choose_trial(study, args.trial, args.by)
        logging.basicConfig(level=logging.ERROR)
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
        from polychromic.export.artifacts import ExportError, export_trial

        try:
            done = export_trial(study, row, Path(args.out), merge=args.merge, force=args.force,
                                device=args.device, prompt=args.prompt or DEFAULT_PROMPT,
                                explicit=args.trial is not None)
        except ExportError as err:
            print(f"error: export check failed: {err}", file=sys.stderr)
            return 1
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err.filename or args.out}: (file): {err.strerror or err}",
              file=sys.stderr)
        return 2
    for message in done.warnings:
        print(f"warning: {message}", file=sys.stderr)
    print(f"exported trial {done.trial_id} ({done.mode}) of study {study.name} to {done.out}")
    from polychromic.export.card import why_exported

    print(f"chosen: {why_exported(study, row)}")
    print(f"check: greedy after {done.prompt!r} → {done.output!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
