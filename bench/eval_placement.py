"""Where a trial is evaluated: the smoke study with ``eval_placement: actors`` (the Ray Data
pipeline, the reference) and ``eval_placement: worker`` (the Train worker, right after its
last step), one after the other in one run, each trial's ``phase_seconds`` side by side.

    python bench/eval_placement.py [--space smoke] [--order actors,worker] [--out DIR]

Each study is README's command 1 (``study/run.py --space smoke --no-wandb``) with
``--set eval_placement=...`` in its own folder: the study's wall time (the process, Ray's
start and the post-study steps included), each trial's phases (polychromic.core.phases), and
the non-training share of each trial's wall (everything but the ``training`` phase). Both
studies draw the same samples (same seeds, same items, same sampler), which is checked: the
generations of every trial must match row for row.
ratio = the reference's seconds / this placement's seconds (> 1: faster).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polychromic.core.phases import PHASES  # noqa: E402
from polychromic.store.generations import read_generations  # noqa: E402


def run_study(space: str, placement: str, storage: Path) -> tuple[float, dict[str, dict]]:
    """Run the study with ``placement`` (its stdout to ``<storage>/<name>.out``); its wall
    seconds and {λ: result.json}."""
    name = f"{space}-{placement}"
    cmd = [sys.executable, str(ROOT / "study" / "run.py"), "--space", space, "--no-wandb",
           "--storage-path", str(storage), "--name", name, "--set", f"eval_placement={placement}"]
    started = time.time()
    with (storage / f"{name}.out").open("w") as out:  # what the user would have seen
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=out)
    wall = time.time() - started
    results = {}
    for path in sorted((storage / name / "trials").glob("*/result.json")):
        result = json.loads(path.read_text())
        results[float(result["lambda_"])] = {**result, "_dir": str(path.parent)}
    return wall, results


def row(label: str, result: dict) -> str:
    phases = result["phase_seconds"]
    cells = [f"{phases[k]:.1f}" if phases.get(k) is not None else "—" for k in PHASES]
    wall = result["wall_seconds"]
    share = (wall - (phases.get("training") or 0.0)) / wall
    return (f"| {label} | {result.get('evaluated_in', '?')} | {wall:.1f} | "
            + " | ".join(cells) + f" | {share:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="smoke")
    ap.add_argument("--order", default="actors,worker",
                    help="the placements, in the order they run (the first is the reference)")
    ap.add_argument("--out", type=Path, default=None, help="study folder (default: a temp dir)")
    args = ap.parse_args()
    storage = args.out or Path(tempfile.mkdtemp(prefix="eval_placement_"))
    storage.mkdir(parents=True, exist_ok=True)
    order = args.order.split(",")
    runs = {p: run_study(args.space, p, storage) for p in order}

    print(f"studies in {storage}")
    print("| λ | evaluated in | wall | " + " | ".join(PHASES) + " | non-training |")
    print("|---|---|--:|" + "--:|" * len(PHASES) + "--:|")
    for lam in sorted(runs[order[0]][1]):
        for p in order:
            print(row(f"{lam:g} ({p})", runs[p][1][lam]))
    ref_wall = runs[order[0]][0]
    for p in order:
        wall, results = runs[p]
        trials = sum(r["wall_seconds"] for r in results.values())
        training = sum(r["phase_seconds"].get("training") or 0.0 for r in results.values())
        print(f"{p}: study {wall:.1f} s (ratio {ref_wall / wall:.2f}), trials {trials:.1f} s, "
              f"non-training {(trials - training) / trials:.0%} of the trials' wall")
    # the same samples, whichever placement drew them
    for lam, ref in runs[order[0]][1].items():
        a = read_generations(Path(ref["_dir"]) / "generations.parquet")["text"].tolist()
        for p in order[1:]:
            b = read_generations(Path(runs[p][1][lam]["_dir"]) / "generations.parquet")
            same = a == b["text"].tolist()
            print(f"λ={lam:g}: {p} samples {'identical to' if same else 'DIFFER from'} "
                  f"{order[0]}'s ({len(a)} rows)")


if __name__ == "__main__":
    main()
