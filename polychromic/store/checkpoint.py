"""Trial checkpoints: LoRA adapter (peft format) + optimizer state + step + training history.

A checkpoint folder holds ``adapter/`` (loadable with ``PeftModel.from_pretrained``),
``state.pt`` (optimizer, step, RNG) and ``history.json`` (every logged report so far), so a
resumed trial continues at its step with its curves intact; a checkpoint holding only
``error.json`` marks a trial that stopped on a non-finite loss. The names are
``polychromic.store.layout``'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from polychromic.core.jsonutil import to_jsonable
from polychromic.store.layout import ADAPTER, ADAPTER_WEIGHTS, CHECKPOINT_HISTORY, CHECKPOINT_STATE


def save(folder: Path, model: Any, optimizer: torch.optim.Optimizer, step: int,
         history: list[dict[str, Any]]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder / ADAPTER)
    torch.save(
        {"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state()},
        folder / CHECKPOINT_STATE,
    )
    (folder / CHECKPOINT_HISTORY).write_text(json.dumps(to_jsonable(history)))


def load(folder: Path, model: Any, optimizer: torch.optim.Optimizer) -> tuple[int, list[dict]]:
    """Restore adapter weights and optimizer in place; returns ``(step, history)``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = load_file(str(folder / ADAPTER / ADAPTER_WEIGHTS))
    set_peft_model_state_dict(model, weights)
    state = torch.load(folder / CHECKPOINT_STATE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), json.loads((folder / CHECKPOINT_HISTORY).read_text())
