"""HumanEval checks per second in the sandbox, 1 vs 2 worker processes, same run.

    python bench/sandbox.py [--repeats 2]

Runs the 164 canonical solutions (prompt + canonical_solution + test + check(entry_point)),
each in its own sandboxed child process (namespaces, unprivileged uid, rlimits; see
polychromic/sandbox.py), and reports checks/s and how many passed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.sandbox import isolation_report, run_programs  # noqa: E402
from polychromic.tasks.humaneval import problems, program_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    probs = problems()
    programs = [program_for(p, p.target) for p in probs]
    print(f"{len(programs)} HumanEval canonical solutions, {os.cpu_count()} CPU cores; "
          f"isolation: {', '.join(isolation_report())}")
    print("| workers | seconds (median) | checks/s | passed |\n|---|---|---|---|")
    rates = {}
    for workers in (1, 2):
        runs = [run_programs(programs, workers=workers) for _ in range(args.repeats)]
        sec = statistics.median(r.seconds for r in runs)
        passed = sum(r.passed for r in runs[-1])
        rates[workers] = len(programs) / sec
        print(f"| {workers} | {sec:.2f} | {rates[workers]:.1f} | {passed}/{len(programs)} |")
    print(f"\nspeed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}×")


if __name__ == "__main__":
    main()
