"""Run (or resume) a polychromic study.

    python study/run.py --space smoke
    python study/run.py --space lambda_wide --set model=Qwen/Qwen3-8B --set quantize=4bit
    python study/run.py --space my_space.yaml --check     # validate only, start nothing
    python study/run.py --resume lambda_wide
    python study/run.py --space            # lists the shipped spaces (so does --help)

Bad input (space, --set value, model path, data file, arguments) is refused before Ray
starts: exit status 2 and the single line ``error: <file>: <field>: <what is wrong>`` on
stderr (``<file>`` is ``command line`` for arguments), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.errors import ConfigError  # noqa: E402
from polychromic.space import COMMAND_LINE, load_space, shipped_spaces  # noqa: E402


def spaces_help() -> str:
    """The shipped spaces with their one-line descriptions (for ``--space`` and ``--help``)."""
    spaces = shipped_spaces()
    width = max((len(k) for k in spaces), default=0) + 2
    return "shipped spaces (--space NAME, or --space path/to/space.yaml):\n" + "\n".join(
        f"  {k:<{width}}{v}" for k, v in spaces.items())


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line in this tool's format, exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {COMMAND_LINE}: arguments: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` items → overrides; values are read as YAML scalars (``4bit``,
    ``1e-3``, ``true``, ``[q_proj, v_proj]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", f"expected key=value, got {item!r}", COMMAND_LINE)
        try:
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}", f"cannot read the value {value!r}",
                              COMMAND_LINE) from None
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="study/run.py",
        description="Ray Tune + Optuna study of polychromic LoRA fine-tuning.",
        epilog=spaces_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", nargs="?", const="",
                        help="shipped space name or YAML path (no value: list the shipped spaces)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fixed setting of the space, e.g. --set quantize=4bit "
                             "(repeatable)")
    parser.add_argument("--storage-path", default="studies",
                        help="where studies live: a folder (every node must mount it at the same "
                             "path on a multi-node cluster) or a URI such as s3://bucket/studies")
    parser.add_argument("--local-dir", default="studies",
                        help="with a URI --storage-path: the head's folder for the study records "
                             "(mirrored to the URI as trials end)")
    parser.add_argument("--name", help="study name (default: the space's name)")
    parser.add_argument("--resume", metavar="STUDY", help="continue an interrupted study")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    parser.add_argument("--address", help="Ray cluster address (default: start a local one)")
    parser.add_argument("--check", action="store_true",
                        help="validate the space (with --set) and exit; starts nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.space == "":
        print(spaces_help())
        return 0
    try:
        if args.space is None and not args.resume:
            print(spaces_help())
            raise ConfigError("--space", "required (a shipped space or a YAML file), "
                              "or --resume STUDY", COMMAND_LINE)
        if args.space and args.resume:
            raise ConfigError("--resume", "resumes the space a study was started with; "
                              "do not give --space too", COMMAND_LINE)
        if args.resume and args.set:
            raise ConfigError("--set", "a resumed study keeps the settings it was started "
                              "with", COMMAND_LINE)
        overrides = parse_sets(args.set)
        if args.resume:
            space_ref, overrides = _saved_study(args.storage_path, args.local_dir, args.resume)
        else:
            space_ref = args.space
        space = load_space(space_ref, overrides)  # validate before anything expensive
        if args.check:
            print(f"ok: {space.source}: {space.num_trials} trials, objectives "
                  f"{', '.join(f'{m} ({d})' for m, d in space.objectives)}")
            return 0
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        from polychromic.leaderboard import build_leaderboard, print_table
        from polychromic.study import start_or_resume

        root = start_or_resume(args.space, overrides, args.storage_path, args.name,
                               args.resume, use_wandb=not args.no_wandb, address=args.address,
                               local_dir=args.local_dir)
    except ConfigError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print_table(build_leaderboard(root, space), title=f"study {root.name}")
    print(f"\nstudy folder: {root.resolve()}")
    print(f"leaderboard:  {(root / 'leaderboard.parquet').resolve()}")
    print(f"optuna:       optuna-dashboard sqlite:///{(root / 'optuna.db').resolve()}")
    return 0


def _saved_study(storage_path: str, local_dir: str, name: str) -> tuple[str, dict[str, Any]]:
    """The space and overrides a study was started with (its ``study.json``, fetched from a
    URI ``--storage-path`` when this head does not have it)."""
    from polychromic import storage

    root, remote = storage.study_locations(storage_path, local_dir, name)
    if remote:
        storage.reachable(remote)
    path = str(root / "study.json")
    if remote and not os.path.exists(path):  # a new head: the copy mirrored to the URI
        path = storage.join(remote, "study.json")
    try:
        text = storage.read_text(path)
        if text is None:
            raise FileNotFoundError(path)
        saved = json.loads(text)
    except FileNotFoundError:
        raise ConfigError("--resume", f"no study {name!r} in {storage_path} "
                          f"({path} missing)", COMMAND_LINE) from None
    except (OSError, ValueError) as err:
        raise ConfigError("(file)", f"unreadable: {err}", str(path)) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("space"), str):
        raise ConfigError("space", "missing", str(path))
    return saved["space"], dict(saved.get("overrides") or {})


if __name__ == "__main__":
    sys.exit(main())
