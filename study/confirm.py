"""Confirm a study's chosen trial on fresh prompts and new training seeds.

    python study/confirm.py smoke --best --seeds 3           # the study's best trial
    python study/confirm.py smoke --trial 1a2b3c --seeds 2 --prompts 48

Re-trains the chosen configuration and the λ=0 baseline with R new training seeds each
(Ray Tune trials in the same study folder, tagged ``role: confirm``), evaluates them on the
task's confirmation split (disjoint from training and from the selection prompts), and adds to
the leaderboard each headline metric's delta with a two-level paired bootstrap (seed pairs,
then prompts) beside the selection delta, and ``confirmed`` / ``not confirmed``. Each seed
pair's λ=0 run also samples the study's frontier temperatures on the fresh prompts, and the
trial's gains against that pair's temperature frontier (and its pass@k against the pair
baseline's best temperature) are confirmed the same way (``frontier: not measured`` when the
study's ``frontier_temperatures`` is ``[]``). Re-running the
same command after a crash resumes it (each run happens once). Bad input (no such trial, an
unfinished one, seeds < 2, a study without a finished baseline) is one ``error:`` line and
exit status 2, before anything starts. The terminal shows one progress display (a pipe: one
line per run event) and the result; Ray's, Tune's and Train's output goes to
``<study>/logs/confirm-<trial>.log``, named on the first line (``-v``: printed here instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polychromic.core.cli import COMMAND_LINE  # noqa: E402
from polychromic.core.errors import ConfigError, Interrupted  # noqa: E402
from polychromic.store.layout import DEFAULT_STORAGE  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from polychromic.core.cli import OneLineParser

    parser = OneLineParser(prog="study/confirm.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study name (under --storage-path) or study folder")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", metavar="ID", help="a finished trial (id or unique prefix)")
    which.add_argument("--best", action="store_true",
                       help="the study's best λ>0 trial by its objective(s), a confirmed "
                            "gain preferred: the trial `study/export.py --best` exports and the "
                            "review names as best (the default)")
    parser.add_argument("--seeds", type=int, default=3, help="seed pairs R (≥ 2; default 3)")
    parser.add_argument("--prompts", type=int,
                        help="confirmation prompts (default: as many as the study evaluated)")
    parser.add_argument("--storage-path", default=DEFAULT_STORAGE, metavar="DIR",
                        help="where named studies live, as given to study/run.py "
                             "(default: %(default)s)")
    parser.add_argument("--address", help="Ray cluster address (default: start a local one)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print Ray's, Tune's and Train's output here as it comes (default: "
                             "one progress display, that output in <study>/logs/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from polychromic.core.cli import parse

    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        from polychromic.review.study import choose_trial, confirm_intro, load_study
        from polychromic.store import layout
        from polychromic.tuning import confirm

        if args.seeds < confirm.MIN_SEEDS:
            raise ConfigError("--seeds", f"must be ≥ {confirm.MIN_SEEDS} (seed noise needs at "
                              f"least two pairs to be estimated), got {args.seeds}", COMMAND_LINE)
        study = load_study(args.study, args.storage_path)
        base = study.baseline()
        if base is None or base["status"] != "finished" or not (
                study.trial_dir(base["trial_id"]) / layout.GENERATIONS).is_file():
            raise ConfigError("study", f"{study.name} has no finished λ=0 baseline to confirm "
                              "against", COMMAND_LINE)
        row = choose_trial(study, trial=args.trial, action="confirm")
        if row["status"] != "finished":
            raise ConfigError("--trial", f"trial {row['trial_id']} is {row['status']}, not "
                              "finished", COMMAND_LINE)
        if bool(row["is_baseline"]):
            raise ConfigError("--trial", f"trial {row['trial_id']} is the λ=0 baseline; "
                              "confirm a trial against it", COMMAND_LINE)
        trial_id, base_id = str(row["trial_id"]), str(base["trial_id"])
        from polychromic.store.records import read_json

        cfg = read_json(study.trial_dir(trial_id) / layout.CONFIG) or {}
        prompts = args.prompts if args.prompts is not None else int(cfg.get("n_eval_prompts", 0))
        if prompts < 1:
            raise ConfigError("--prompts", f"must be ≥ 1, got {prompts}", COMMAND_LINE)
        confirm.check_split(study.path, cfg, base_id, prompts)
        configs = confirm.confirmation_configs(study.path, trial_id, base_id, args.seeds,
                                               prompts)
    except ConfigError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    intro = confirm_intro(row, base_id, args.seeds, prompts, len(configs))
    try:
        confirm.run(study.path, trial_id, configs, args.address, quiet=not args.verbose,
                    intro=intro)
    except Interrupted as err:  # Ctrl+C: Tune saved the state; the same command continues
        print(str(err), file=sys.stderr)
        return 130
    from polychromic.review.leaderboard import build_leaderboard, write_leaderboard

    df = build_leaderboard(study.path)
    path = write_leaderboard(study.path, df)
    line = df.loc[df["trial_id"] == trial_id, "confirmation"]
    print(f"\ntrial {trial_id}: {line.iloc[0] if len(line) else 'no confirmation recorded'}")
    print(f"leaderboard: {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
