"""HumanEval checks per second in the sandbox, 1 vs 2 worker processes, same run.

    python bench/sandbox.py [--repeats 2]

Runs the 164 canonical solutions through the check harness (``polychromic.tasks.humaneval``:
a trusted harness process runs the test against the candidate in a second process, and proves
completion with a per-run secret), each program in its own sandboxed child process
(namespaces, unprivileged uid, rlimits; see polychromic/tasks/sandbox.py), and reports checks/s and
how many passed. For reference, the same run also times the bare exit-status program used
before the harness (prompt + solution + test + ``check(entry_point)`` in one process, pass =
exit status 0) with 2 workers, so the harness's cost is measured on the same machine state.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.embedded import humaneval_jsonl  # noqa: E402
from polychromic.tasks.humaneval import problems, program_for, stdin_for, verdict  # noqa: E402
from polychromic.tasks.sandbox import Batch, Limits, isolation_report, run_programs  # noqa: E402

#: What ``HumanEvalTask`` runs with: its default timeout, the dataset's folder hidden.
LIMITS = Limits(timeout=5.0, hide=(str(humaneval_jsonl().parent),))


def harness_run(workers: int) -> tuple[Batch, int]:
    """One batch of the 164 canonical solutions through the harness; (batch, passed)."""
    probs = problems()
    keys = [secrets.token_hex(16) for _ in probs]
    batch = run_programs([program_for(p, p.target) for p in probs], LIMITS, workers,
                         stdins=[stdin_for(p, k) for p, k in zip(probs, keys)])
    return batch, sum(verdict(r, k)[0] for r, k in zip(batch, keys))


def bare_run(workers: int) -> tuple[Batch, int]:
    """The pre-harness program: one process, pass = exit status 0 (reference only)."""
    programs = [f"{p.prompt}{p.target}\n\n\n{p.meta['test']}\n\ncheck({p.meta['entry_point']})\n"
                for p in problems()]
    batch = run_programs(programs, LIMITS, workers)
    return batch, sum(r.passed for r in batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    n = len(problems())
    print(f"{n} HumanEval canonical solutions, {os.cpu_count()} CPU cores; "
          f"isolation: {', '.join(isolation_report())}")
    print("| program | workers | seconds (median) | checks/s | passed |\n|---|---|---|---|---|")
    rates = {}
    for name, run, workers in (("harness", harness_run, 1), ("harness", harness_run, 2),
                               ("bare exit status (reference)", bare_run, 2)):
        runs = [run(workers) for _ in range(args.repeats)]
        sec = statistics.median(b.seconds for b, _ in runs)
        rates[name, workers] = n / sec
        print(f"| {name} | {workers} | {sec:.2f} | {n / sec:.1f} | {runs[-1][1]}/{n} |")
    print(f"\nspeed-up 2 vs 1 workers (harness): "
          f"{rates['harness', 2] / rates['harness', 1]:.2f}×")
    print(f"harness vs bare exit-status program, 2 workers: "
          f"{rates['harness', 2] / rates['bare exit status (reference)', 2]:.2f}× the rate")


if __name__ == "__main__":
    main()
