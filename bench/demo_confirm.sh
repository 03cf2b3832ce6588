#!/usr/bin/env bash
# The demo study, then its confirmation, each timed; then the runs' own wall times, whose sum is
# the reference: what the same runs cost one after another (the study and confirm.py run two
# at once on 2 cores). Results: BENCHMARKS.md, "Demo study and confirmation on 2 CPU cores".
#   bench/demo_confirm.sh [STORAGE] [SEEDS]  (default /tmp/demo-bench, must not hold a demo study;
#                                             SEEDS: confirm.py's seed pairs, default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-/tmp/demo-bench}
SEEDS=${2:-4}
PY=.venv/bin/python
t0=$(date +%s)
$PY study/run.py --space demo --storage-path "$S"
t1=$(date +%s)
$PY study/confirm.py demo --best --seeds "$SEEDS" --storage-path "$S"
t2=$(date +%s)
echo "study_s=$((t1 - t0)) confirm_s=$((t2 - t1)) total_s=$((t2 - t0))"
$PY - "$S/demo" <<'PY'
import json, sys
from pathlib import Path

from polychromic.store import layout

rows = []
for tdir in sorted(layout.trials_dir(Path(sys.argv[1])).iterdir()):
    cfg = json.loads((tdir / layout.CONFIG).read_text())
    res = json.loads((tdir / layout.RESULT).read_text())
    rows.append((cfg.get("role", "search"), tdir.name, cfg["lambda_"], cfg["seed"],
                 res.get("wall_seconds"), res.get("pass@1"),
                 res.get("semantic_diversity_per_prompt"), res.get("mean_tokens")))
print("role    trial        λ  seed  wall_s  pass@1  sem_div_pp  tokens")
for r in rows:
    print(f"{r[0]:7} {r[1]:12} {r[2]:>3g} {r[3]:>5} {r[4]:7.0f} {r[5]:7.3f} {r[6]:11.3f} {r[7]:7.2f}")
for role in ("search", "confirm"):
    print(f"{role}: sum of run wall times {sum(r[4] for r in rows if r[0] == role):.0f} s")
PY
