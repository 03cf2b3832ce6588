"""Export a trial's model: the LoRA adapter (peft format) or a merged transformers model, with
the tokenizer, a model card (``README.md``) and ``trial.json``.

* adapter (default): ``adapter_config.json`` + ``adapter_model.safetensors`` copied from the
  trial's checkpoint, loadable with ``PeftModel.from_pretrained(base, DIR)``.
* ``merge=True``: the base model is reloaded unquantized (bf16 on CUDA, fp32 on CPU:
  ``load_base(for_merge=True)``; merging into a 4-bit model fails or erases the small LoRA
  deltas), the adapter merged into it, and a plain folder loadable by
  ``AutoModelForCausalLM.from_pretrained(DIR)`` saved. No ``adapter_config.json`` is written
  there (transformers would then treat the folder as an adapter).

Everything is written to a temporary sibling folder, reloaded from there and made to generate
a few greedy tokens; only then does it replace ``DIR``. So a failed export never leaves a
half-written or broken ``DIR``, and ``DIR`` is only replaced when it is empty or ``force``.
For a merged export the greedy tokens of the reloaded merged model are compared with those of
base + adapter; in fp32 they must be identical. Their next-token logits on the verification
prompt are compared too: ``max_abs_logit_diff`` ≤ :data:`LOGIT_TOLERANCE` of the dtype (fp32:
merging changes only the order of float additions; bf16 rounds every merged weight).

An adapter trained on a 4-bit (NF4) or 8-bit base is merged the same way, into the 16-bit
reload (never into the quantized base: peft#2501); the card says what that means for serving.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path
from polychromic.export.card import model_card, trial_record
from polychromic.review.study import Study
from polychromic.store import layout
from polychromic.store.checkpoint import latest_checkpoint
from polychromic.store.guards import protected_folders
from polychromic.store.records import read_json, read_jsonl, write_json
from polychromic.store.remote import download, is_uri, join

DEFAULT_PROMPT = "Hi, how are you doing?"
VERIFY_TOKENS = 8
ADAPTER_FILES = ("adapter_config.json", layout.ADAPTER_WEIGHTS, "adapter_model.bin")
SRC = COMMAND_LINE
#: largest |merged − (base + adapter)| next-token logit accepted, per merge dtype
LOGIT_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.25, "float16": 0.05}









class ExportError(RuntimeError):
    """The exported files were written but do not reload or generate as they should."""


@dataclass
class Exported:
    """What an export wrote and how its check went."""

    out: Path
    trial_id: str
    mode: str
    prompt: str
    output: str
    warnings: list[str] = field(default_factory=list)


# --- why the trial, and its checkpoint --------------------------------------------------------




def _adapter_in(folder: Path) -> Path | None:
    """The adapter folder of a checkpoint (its ``adapter/``, or the folder itself), or None."""
    for candidate in (folder / layout.ADAPTER, folder):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    return None


def checkpoint_adapter(study: Study, row: pd.Series) -> Path:
    """The trial's adapter folder: its final checkpoint (result.json), else the newest one its
    history recorded, else the newest with an adapter its training wrote
    (``checkpoint.latest_checkpoint``). Absolute paths from another machine are re-rooted under the
    study folder. ``ConfigError`` when there is none."""
    tdir = study.trial_dir(str(row["trial_id"]))
    recorded = [row.get("checkpoint_path")]
    recorded += [h.get("checkpoint_path") for h in reversed(read_jsonl(tdir / layout.HISTORY))
                 if isinstance(h, dict)]
    for path in recorded:
        if not isinstance(path, str) or not path:
            continue
        if is_uri(path):  # a URI study (polychromic.store.remote): fetch the adapter
            try:
                found = _adapter_in(download(join(path, layout.ADAPTER)))
            except OSError:
                found = None
            if found is not None:
                return found
            continue
        for folder in (Path(path), tdir / layout.TRAIN / Path(path).name):
            if (found := _adapter_in(folder)) is not None:
                return found
    newest = latest_checkpoint(tdir / layout.TRAIN, lambda f: _adapter_in(Path(f)) is not None)
    if newest is not None and (found := _adapter_in(Path(newest))) is not None:
        return found
    raise ConfigError("--trial", f"trial {row['trial_id']} ({row['status_text']}) has no "
                      f"checkpoint with an adapter under {tdir}", SRC)


def check_out_dir(out: Path, force: bool, study: Study | Path, storage: Any = None) -> Path:
    """``out`` expanded and checked before anything is loaded; ``ConfigError`` when the export
    would damage a study or something else: ``out`` inside the study folder (links resolved),
    containing it, or looking like a study folder itself (``study.json``, ``trials/``); an
    existing ``out`` that is not a folder; a non-empty ``out`` without ``force``; and, even
    with it, replacing the storage root, the working directory, the home folder or ``/``."""
    out = expand_path(out, "--out", SRC)  # ~user, NUL, over-long names: one line
    resolved, root = out.resolve(), Path(getattr(study, "path", study)).resolve()
    if resolved == root or root in resolved.parents:
        raise ConfigError("--out", f"refusing to write into {out}: it is inside the study "
                          f"{root} (export somewhere else)", SRC)
    if resolved in root.parents:
        raise ConfigError("--out", f"refusing to replace {out}: it contains the study {root}",
                          SRC)
    if os.path.lexists(out) and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a folder", SRC)
    if out.is_dir():
        if layout.study_file(out).exists() or layout.trials_dir(out).is_dir():
            raise ConfigError("--out", f"refusing to replace {out}: it is a study folder", SRC)
        if any(out.iterdir()) and not force:
            raise ConfigError("--out", f"{out} is not empty (use --force to replace it)", SRC)
        for p in protected_folders(root, storage):
            if p == resolved or resolved in p.parents:
                raise ConfigError("--out", f"refusing to replace {out}: it contains {p}", SRC)
    return out


DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


def check_device(device: str) -> str:
    """``--device`` is ``auto``, ``cpu``, ``mps`` or ``cuda[:N]``; anything else is one line
    (before torch is imported, not a RuntimeError from ``torch.device`` after loading)."""
    if not isinstance(device, str) or not DEVICE.match(device):
        raise ConfigError("--device", f"unknown device {str(device)[:40]!r} (use auto, cpu, "
                          "cuda or cuda:N)", SRC)
    return device


# --- loading, generating ------------------------------------------------------------------------


def pick_device(device: str = "auto") -> Any:
    import torch

    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device", f"{device} requested but CUDA is not available", SRC)
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ConfigError("--device", f"{device} requested but there are only "
                          f"{torch.cuda.device_count()} CUDA devices", SRC)
    if device == "mps" and not (getattr(torch.backends, "mps", None)
                                and torch.backends.mps.is_available()):
        raise ConfigError("--device", "mps requested but it is not available", SRC)
    return torch.device(device)


def greedy(model: Any, tok: Any, prompt: str, n_tokens: int = VERIFY_TOKENS) -> list[int]:
    """Exactly ``n_tokens`` greedy tokens after ``prompt`` (deterministic: no sampling)."""
    import torch

    device = next(model.parameters()).device
    inputs = tok(prompt, return_tensors="pt").to(device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                             do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def last_logits(model: Any, tok: Any, prompt: str) -> Any:
    """The next-token logits (fp32, on CPU) after ``prompt``."""
    import torch

    inputs = tok([prompt], return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model(**inputs).logits[0, -1].float().cpu()


def reload_adapter(cfg: Any, folder: Path, device: Any) -> tuple[Any, Any]:
    """Base model (quantized as the trial was) + the exported adapter + the exported tokenizer."""
    from peft import PeftModel

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import load_base, load_tokenizer

    base, _ = load_base(cfg, device)
    model = PeftModel.from_pretrained(base, str(folder))
    model.eval()
    return model, load_tokenizer(str(folder))


def reload_merged(folder: Path, device: Any) -> tuple[Any, Any]:
    """The exported merged folder as a plain transformers model."""
    from transformers import AutoModelForCausalLM

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder)).to(device)
    model.eval()
    return model, load_tokenizer(str(folder))


# --- the export ---------------------------------------------------------------------------------


def export_trial(study: Study, row: pd.Series, out: Path, merge: bool = False,
                 force: bool = False, device: str = "auto", prompt: str = DEFAULT_PROMPT,
                 explicit: bool = False) -> Exported:
    """Write the export of ``row``'s trial to ``out`` (see the module docstring)."""
    import torch
    from peft import PeftModel

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import load_base, load_tokenizer, resolve_model_path

    out = check_out_dir(out, force, study)
    tid = str(row["trial_id"])
    warnings = []
    if row["status"] != "finished":
        if not explicit:
            raise ConfigError("--trial", f"trial {tid} is {row['status_text']}; name it "
                              f"explicitly with --trial {tid} to export it anyway", SRC)
        warnings.append(f"trial {tid} is {row['status_text']}: exporting its last checkpoint")
    adapter = checkpoint_adapter(study, row)
    config_path = study.trial_dir(tid) / layout.CONFIG
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise ConfigError(layout.CONFIG, f"trial {tid} has no readable {config_path}", SRC)
    cfg = TrialConfig.from_dict(config, source=str(config_path))
    dev = pick_device(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        verification: dict[str, Any] = {"prompt": prompt, "new_tokens": VERIFY_TOKENS,
                                        "decoding": "greedy", "device": str(dev)}
        if merge:
            base, tok = load_base(cfg, dev, for_merge=True)
            if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
                raise ExportError("the base model loaded quantized; refusing to merge into it")
            peft_model = PeftModel.from_pretrained(base, str(adapter))
            peft_model.eval()
            expected = greedy(peft_model, tok, prompt)
            before = last_logits(peft_model, tok, prompt)
            merged = peft_model.merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(str(tmp), safe_serialization=True)
            tok.save_pretrained(str(tmp))
            dtype = str(next(merged.parameters()).dtype).replace("torch.", "")
            del base, peft_model, merged
            model, tok2 = reload_merged(tmp, dev)
            got = greedy(model, tok2, prompt)
            diff = float((last_logits(model, tok2, prompt) - before).abs().max())
            tolerance = LOGIT_TOLERANCE.get(dtype, 0.25)
            verification.update({"dtype": dtype, "base_plus_adapter_ids": expected,
                                 "merged_ids": got, "matches_base_plus_adapter": got == expected,
                                 "max_abs_logit_diff": diff, "logit_tolerance": tolerance})
            if not diff <= tolerance:
                raise ExportError(f"merged model's logits differ from base + adapter by {diff:.3g}"
                                  f" (> {tolerance} allowed in {dtype})")
            if got != expected:
                message = (f"merged model's greedy tokens {got} differ from base + adapter "
                           f"{expected} ({dtype})")
                if dtype == "float32":
                    raise ExportError(message)
                warnings.append(message + ": rounding in 16-bit can flip near-ties")
        else:
            for name in ADAPTER_FILES:
                if (adapter / name).is_file():
                    shutil.copy2(adapter / name, tmp / name)
            load_tokenizer(resolve_model_path(cfg.model)).save_pretrained(str(tmp))
            model, tok2 = reload_adapter(cfg, tmp, dev)
            got = greedy(model, tok2, prompt)
            verification["ids"] = got
        text = tok2.decode(got, skip_special_tokens=True)
        verification["output"] = text
        if not got:
            raise ExportError("the reloaded model generated no token")
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        mode = "merged" if merge else "adapter"
        record = trial_record(study, row, cfg, mode, adapter, verification, warnings)
        write_json(tmp / "trial.json", record)
        (tmp / "README.md").write_text(model_card(study, row, cfg, mode, record), encoding="utf-8")
        for item in tmp.rglob("*"):  # some writers make private files; an export is shared
            item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
        if out.exists():  # empty, or non-empty with force (checked above)
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, tid, mode, prompt, text, warnings)








