"""Run (or resume) a polychromic study.

    python study/run.py --space smoke
    python study/run.py --space lambda_wide --set model=Qwen/Qwen3-8B --set quantize=4bit \
        --set gradient_checkpointing=true
    python study/run.py --space my_space.yaml --check     # validate only, start nothing
    python study/run.py --space smoke --plan              # headroom, power and cost; no training
    python study/run.py --resume lambda_wide
    python study/run.py --space            # lists the shipped spaces (so does --help)
    python study/run.py --space smoke -v   # Ray's, Tune's and W&B's output here, not in logs/

A run shows one progress display (on a terminal; a pipe gets one line per trial event) and
the leaderboard; Ray's, Tune's, Train's and W&B's output goes to <study>/logs/run.log, named
on the first line.

Bad input (space, --set value, model path, data file, arguments) is refused before Ray
starts: exit status 2 and the single line ``error: <file>: <field>: <what is wrong>`` on
stderr (``<file>`` is ``command line`` for arguments), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.core.cli import COMMAND_LINE  # noqa: E402
from polychromic.core.errors import ConfigError, Interrupted  # noqa: E402
from polychromic.core.inputs import load_yaml  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402
from polychromic.store.saved_space import shipped_spaces
from polychromic.tuning.space import load_space  # noqa: E402

#: the cluster to rent: --check and --plan say which of its GPU worker types hold the estimate
CLUSTER_YAML = Path(__file__).resolve().parent.parent / "cluster.yaml"


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
        if key in out:
            raise ConfigError(f"--set {key}", "given twice; give each setting once",
                              COMMAND_LINE)
        # strict YAML: no aliases (a few characters can expand to gigabytes), bounded nesting
        out[key] = load_yaml(value, COMMAND_LINE, f"--set {key}") if value.strip() else None
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
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE,
                        help="where studies live: a folder (every node must mount it at the same "
                             "path on a multi-node cluster) or a URI such as s3://bucket/studies")
    parser.add_argument("--local-dir", default=DEFAULT_STORAGE,
                        help="with a URI --storage-path: the head's folder for the study records "
                             "(mirrored to the URI as trials end)")
    parser.add_argument("--name", help="study name (default: the space's name)")
    parser.add_argument("--resume", metavar="STUDY", help="continue an interrupted study")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    parser.add_argument("--address", help="Ray cluster address (default: start a local one)")
    parser.add_argument("--check", action="store_true",
                        help="validate the space (with --set) and exit; starts nothing")
    parser.add_argument("--plan", action="store_true",
                        help="before a study: evaluate the base model, then print each metric's "
                             "headroom and minimum detectable effect and the study's cost "
                             "(trains nothing; writes <study>/plan/)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print Ray's, Tune's, Train's and W&B's output here as it comes "
                             "(default: one progress display, that output in <study>/logs/)")
    parser.add_argument("--gpu-hour-price", type=float, default=None, metavar="USD",
                        help="with --plan: price of one GPU-hour (default 2.00)")
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
        if args.plan and args.resume:
            raise ConfigError("--plan", "plans a new study: give --space (and --set), not "
                              "--resume", COMMAND_LINE)
        if args.gpu_hour_price is not None and not (
                math.isfinite(args.gpu_hour_price) and args.gpu_hour_price >= 0):
            raise ConfigError("--gpu-hour-price", f"must be a finite number ≥ 0, got "
                              f"{args.gpu_hour_price}", COMMAND_LINE)
        if args.resume and args.set:
            raise ConfigError("--set", "a resumed study keeps the settings it was started "
                              "with", COMMAND_LINE)
        overrides = parse_sets(args.set)
        _check_study_location(args)
        if args.resume:
            space_ref, overrides = _saved_study(args.storage_path, args.local_dir, args.resume)
        else:
            space_ref = args.space
        space = load_space(space_ref, overrides)  # validate before anything expensive
        base = space.trial_config(space.baseline())
        if args.check:
            from polychromic.tuning.feasibility import (
                plan_memory,
                quantization_line,
                refuse_before_start,
            )

            checked = refuse_before_start(base, space.source)  # may refuse: before "ok"
            print(f"ok: {space.source}: {space.num_trials} trials, objectives "
                  f"{', '.join(f'{m} ({d})' for m, d in space.objectives)}")
            print(quantization_line(base, _cuda_here()))
            print("\n".join([*plan_memory(base, CLUSTER_YAML), checked]))
            from polychromic.tuning.confirm import confirmation_note

            note = confirmation_note(base)
            if note:
                print(f"note: {note}")
            return 0
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        from polychromic.tuning.feasibility import plan_memory, refuse_before_start

        # on a `ray up` head, a GPU space none of its node types can hold: refused here, in one
        # line, before Ray starts (a study, a --plan and a --resume alike); a local or
        # --address cluster is checked once joined (polychromic.tuning.feasibility)
        refuse_before_start(base, space.source)
        if args.plan:
            return plan(space, args, plan_memory(base, CLUSTER_YAML))
        from polychromic.tuning.runner import start_or_resume

        root = start_or_resume(args.space, overrides, args.storage_path, args.name,
                               args.resume, use_wandb=not args.no_wandb, address=args.address,
                               local_dir=args.local_dir, quiet=not args.verbose)
    except ConfigError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except Interrupted as err:  # Ctrl+C: Tune saved the state; no post-study steps
        print(str(err), file=sys.stderr)
        return 130
    from polychromic.review.study import load_study
    from polychromic.review.terminal import print_table
    from polychromic.store import layout

    study = load_study(str(root))
    print()
    print_table(study, study.frame)
    print(f"\nstudy folder: {root.resolve()}")
    print(f"leaderboard:  {layout.leaderboard_file(root).resolve()}")
    print(f"optuna:       optuna-dashboard {layout.optuna_url(root)}")
    return 0


def _cuda_here() -> bool:
    """Whether this machine has CUDA (``--check`` starts no cluster, so it can say only this)."""
    import torch

    return torch.cuda.is_available()


def _check_study_location(args: argparse.Namespace) -> None:
    """``--name``/``--resume`` must be one plain folder name (``../../etc`` or ``a/b`` would
    put the study outside ``--storage-path``), and a local ``--storage-path``/``--local-dir``
    must be a folder or not exist yet: refused here, before the space is even read."""
    from polychromic.core.inputs import check_name, expand_path
    from polychromic.store.remote import is_uri

    for option, value in (("--name", args.name), ("--resume", args.resume)):
        if value is not None:
            check_name(value, option, COMMAND_LINE)
    for option, value in (("--storage-path", args.storage_path), ("--local-dir", args.local_dir)):
        if option == "--storage-path" and is_uri(value):
            continue
        path = expand_path(value, option, COMMAND_LINE)
        if os.path.lexists(path) and not path.is_dir():
            raise ConfigError(option, f"{value} exists and is not a folder", COMMAND_LINE)


def plan(space: Any, args: argparse.Namespace, memory: list[str]) -> int:
    """``--plan``: headroom, MDE and cost before a study (polychromic.tuning.plan); trains nothing."""
    import ray

    from polychromic.review.study import DEFAULT_GPU_HOUR_PRICE
    from polychromic.store import layout, remote
    from polychromic.tuning.plan import make_plan, report_lines
    from polychromic.tuning.progress import quiet_run

    root, _ = remote.study_locations(args.storage_path, args.local_dir, args.name or space.name)
    price = DEFAULT_GPU_HOUR_PRICE if args.gpu_hour_price is None else args.gpu_hour_price
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    cfg = space.trial_config(space.baseline())
    temps = cfg.frontier_grid() or [cfg.eval_temperature]
    intro = (f"plan: the base model at {len(temps)} temperature(s) ("
             f"{', '.join(f'{t:g}' for t in temps)}) × {cfg.n_eval_prompts} prompts × "
             f"{cfg.n_eval_samples} samples, its headroom, then timed training steps")
    # like a study: Ray's output in <study>/logs/plan.log (-v: here), the terminal says what runs
    with (contextlib.nullcontext() if args.verbose
          else quiet_run(layout.log_file(root, layout.PLAN_LOG), None, intro)):
        started = not ray.is_initialized()
        if started:
            ray.init(address=args.address, log_to_driver=False)
        try:
            result = make_plan(space, root, price)
        finally:
            if started:  # stopped inside the log, so nothing it prints comes later
                ray.shutdown()
    print("\n".join(report_lines(result)))
    print("\n".join(memory))
    print(f"\nplan:        {layout.plan_dir(root) / layout.PLAN_FILE}")
    print(f"samples:     {layout.plan_dir(root) / layout.GENERATIONS}")
    return 0


def _saved_study(storage_path: str, local_dir: str, name: str) -> tuple[str, dict[str, Any]]:
    """The space and overrides a study was started with (its ``study.json``, fetched from a
    URI ``--storage-path`` when this head does not have it)."""
    from polychromic.store import layout, remote

    root, storage_uri = remote.study_locations(storage_path, local_dir, name)
    if storage_uri:
        remote.reachable(storage_uri)
    path = str(layout.study_file(root))
    if storage_uri and not os.path.exists(path):  # a new head: the copy mirrored to the URI
        path = remote.join(storage_uri, layout.STUDY_FILE)
    try:
        if remote.is_uri(path):
            text = remote.read_text(path)
        elif os.path.lexists(path):  # bounded, and never a FIFO or a device
            from polychromic.core.inputs import MAX_RECORD_BYTES, read_text

            text = read_text(Path(path), "(file)", str(path), MAX_RECORD_BYTES)
        else:
            text = None
        if text is None:
            raise FileNotFoundError(path)
        saved = json.loads(text)
    except FileNotFoundError:
        raise ConfigError("--resume", f"no study {name!r} in {storage_path} "
                          f"({path} missing)", COMMAND_LINE) from None
    except (OSError, ValueError, RecursionError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("(file)", f"unreadable: {err}", str(path)) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("space"), str):
        raise ConfigError("space", "missing", str(path))
    overrides = saved.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("overrides", f"must be a mapping of setting → value, got "
                          f"{type(overrides).__name__}", str(path))
    return saved["space"], dict(overrides)


if __name__ == "__main__":
    sys.exit(main())
