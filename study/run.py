"""Run (or resume) a polychromic study.

    python study/run.py --space smoke
    python study/run.py --space lambda_wide --set model=Qwen/Qwen3-8B --set quantize=4bit
    python study/run.py --resume lambda_wide
    python study/run.py --space            # lists the shipped spaces

Bad input (space, --set value, model path, data file) is refused before Ray starts:
exit status 2 and one line ``error: <file>: <field>: <what is wrong>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.errors import ConfigError  # noqa: E402
from polychromic.space import load_space, shipped_spaces  # noqa: E402


def spaces_help() -> str:
    return "shipped spaces:\n" + "\n".join(f"  {k:<14} {v}" for k, v in shipped_spaces().items())


def parse_sets(items: list[str]) -> dict[str, object]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", f"expected key=value, got {item!r}", "command line")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Ray Tune + Optuna study of polychromic LoRA fine-tuning.",
        epilog=spaces_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", nargs="?", const="", help="shipped space name or YAML path")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fixed setting (repeatable)")
    parser.add_argument("--storage-path", default="studies", help="where studies live")
    parser.add_argument("--name", help="study name (default: the space's name)")
    parser.add_argument("--resume", metavar="STUDY", help="continue an interrupted study")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    parser.add_argument("--address", help="Ray cluster address (default: start a local one)")
    parser.add_argument("--check", action="store_true", help="validate the space and exit")
    args = parser.parse_args(argv)

    if args.space == "" or (args.space is None and not args.resume):
        print(spaces_help())
        return 0 if args.space == "" else 2
    try:
        overrides = parse_sets(args.set)
        if args.space:
            load_space(args.space, overrides)  # validate before anything expensive
        if args.check:
            print("ok")
            return 0
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        from polychromic.leaderboard import build_leaderboard, print_table
        from polychromic.study import start_or_resume

        root = start_or_resume(args.space, overrides, Path(args.storage_path), args.name,
                               args.resume, use_wandb=not args.no_wandb, address=args.address)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_table(build_leaderboard(root, load_space(args.space or _saved_space(root), overrides)),
                title=f"study {root.name}")
    print(f"\nstudy folder: {root.resolve()}")
    print(f"leaderboard:  {(root / 'leaderboard.parquet').resolve()}")
    print(f"optuna:       optuna-dashboard sqlite:///{(root / 'optuna.db').resolve()}")
    return 0


def _saved_space(root: Path) -> str:
    from polychromic.records import read_json

    return (read_json(root / "study.json") or {}).get("space", "")


if __name__ == "__main__":
    sys.exit(main())
