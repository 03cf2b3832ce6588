#!/usr/bin/env bash
# What bench/gpu_check.sh needs on a lent GPU machine that the machine lacks, into .gpu_carry/
# (ignored by git; name it in the device tool's `carry`). Run here, from the repo root, once:
#
#   bash bench/gpu_wheels.sh
#
#   .gpu_carry/wheels/     bitsandbytes 0.50.2's manylinux wheel for CPython 3.12 (43 MB; its
#                          needs, torch/numpy/packaging, are on the lent machine)
#   .gpu_carry/tokenizer/  SmolLM2's tokenizer (from the embedded GGUF, via the tiny model)
#   .gpu_carry/smollm2-135m-config/   SmolLM2-135M-Instruct's config.json (no weights)
#   .gpu_carry/minilm/     all-MiniLM-L6-v2's config and tokenizer (no weights)
#
# About 45 MiB; the repo adds ~2 MiB, under the device tool's 64 MiB. The pip command is the
# device README's: binary only, for Python 3.12 on x86-64 manylinux (bitsandbytes 0.50.2 is
# tagged manylinux_2_24, which the README's default list lacks, so it is named here).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-.gpu_carry}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=$(command -v python3); fi
mkdir -p "$CARRY/wheels"
rm -f "$CARRY"/wheels/bitsandbytes-*.whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$CARRY/wheels" bitsandbytes==0.50.2
PYTHONPATH=$PWD "$PY" bench/gpu_check.py --prepare "$CARRY"
du -sh "$CARRY"
