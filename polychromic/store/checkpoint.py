"""Trial checkpoints: LoRA adapter (peft format) + optimizer state + step + training history.

A checkpoint folder holds ``adapter/`` (loadable with ``PeftModel.from_pretrained``),
``state.pt`` (optimizer, step, RNG) and ``history.json`` (every logged report so far), so a
resumed trial continues at its step with its curves intact; a checkpoint holding only
``error.json`` marks a trial that stopped on a non-finite loss. The names are
``polychromic.store.layout``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polychromic.core.jsonutil import to_jsonable
from polychromic.store import layout, remote
from polychromic.store.layout import ADAPTER, ADAPTER_WEIGHTS, CHECKPOINT_HISTORY, CHECKPOINT_STATE


def save(folder: Path, model: Any, optimizer: Any, step: int,
         history: list[dict[str, Any]]) -> None:
    import torch  # lazy: finding a checkpoint (export, resume) needs no torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder / ADAPTER)
    torch.save(
        {"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state()},
        folder / CHECKPOINT_STATE,
    )
    (folder / CHECKPOINT_HISTORY).write_text(json.dumps(to_jsonable(history)))


def load(folder: Path, model: Any, optimizer: Any) -> tuple[int, list[dict]]:
    """Restore adapter weights and optimizer in place; returns ``(step, history)``."""
    import torch  # lazy: finding a checkpoint (export, resume) needs no torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = load_file(str(folder / ADAPTER / ADAPTER_WEIGHTS))
    set_peft_model_state_dict(model, weights)
    state = torch.load(folder / CHECKPOINT_STATE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), json.loads((folder / CHECKPOINT_HISTORY).read_text())


def latest_checkpoint(train_dir: str | Path,
                      usable: Callable[[str], bool] | None = None) -> str | None:
    """The newest checkpoint of a Train run folder or URI that ``usable`` accepts, by default
    a complete one (:func:`is_complete`: a copy cut short by a kill is skipped). The one place
    that knows how a trial's checkpoints are found and which is the newest: resuming an
    abandoned trial (``polychromic.tuning.resume``), exporting a trial (``polychromic.export.artifacts``, which wants one with an
    adapter)."""
    usable = usable or is_complete
    names = [n for n in remote.list_dir(str(train_dir)) if n.startswith(layout.CHECKPOINT_PREFIX)]
    for folder in (remote.join(str(train_dir), n) for n in reversed(names)):
        if usable(folder):
            return folder
    return None


def is_complete(folder: str) -> bool:
    """A checkpoint folder (or URI) holds everything training resumes from, or only the
    ``error.json`` that marks a non-finite loss."""
    if remote.exists(remote.join(folder, layout.CHECKPOINT_ERROR)):
        return True
    return all(remote.exists(remote.join(folder, f)) for f in
               (layout.CHECKPOINT_STATE, layout.CHECKPOINT_HISTORY,
                f"{layout.ADAPTER}/{layout.ADAPTER_WEIGHTS}"))
