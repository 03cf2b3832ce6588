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
base + adapter; in fp32 they must be identical.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core import columns
from polychromic.core.cli import COMMAND_LINE
from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path
from polychromic.metrics.aggregate import HEADLINE
from polychromic.review import confirmation as cv
from polychromic.review.format import fmt, fmt_delta
from polychromic.review.study import Study, compared_metrics
from polychromic.stats.headroom import LOW_HEADROOM
from polychromic.store import layout
from polychromic.store.checkpoint import latest_checkpoint
from polychromic.store.guards import protected_folders
from polychromic.store.records import read_json, read_jsonl, write_json
from polychromic.store.remote import download, is_uri, join

DEFAULT_PROMPT = "Hi, how are you doing?"
VERIFY_TOKENS = 8
ADAPTER_FILES = ("adapter_config.json", layout.ADAPTER_WEIGHTS, "adapter_model.bin")
SRC = COMMAND_LINE

def definition(metric: str) -> str:
    """One-line definition for the model card, from the column catalog (full ones:
    docs/metrics.md), with the better direction of diversity metrics in words."""
    col = columns.column(metric)
    if col is None:
        return ""
    if col.family == "diversity" and "more diverse" not in col.definition:
        return col.definition + ("; lower = more diverse" if col.better == "min"
                                 else "; higher = more diverse")
    return col.definition


def card_metrics(study: Study, row: pd.Series) -> list[str]:
    """The metrics the card and ``trial.json`` report: the headline ones, then every other
    metric the leaderboard compared against the baseline, each if the trial or the baseline
    has it."""
    base = study.baseline()
    names = list(dict.fromkeys([*HEADLINE, *compared_metrics(study.frame)]))
    return [m for m in names if not (pd.isna(_value(row, m))
                                     and pd.isna(_value(base, m)) and pd.isna(_value(row, f"delta_{m}")))]


def _value(row: pd.Series | dict[str, Any] | None, key: str) -> Any:
    """``row[key]``, NaN when missing or text (a number or NaN, for ``pd.isna``)."""
    value = None if row is None else row.get(key)
    return float("nan") if value is None or isinstance(value, str) else value


def _pct(value: Any) -> str:
    return "—" if pd.isna(value) else f"{100 * value:.0f}%"


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


def why_exported(study: Study, row: pd.Series) -> str:
    """Why this trial was exported (``chosen_because`` from ``study_model.choose_trial``) and,
    unless that already says it, whether ``study/confirm.py`` confirmed its change on the
    study's first objective."""

    because = row.get("chosen_because")
    because = because if isinstance(because, str) and because else "named for export"
    if row.get("confirm_checked") is True:  # study_model.prefer_confirmed said it
        return because
    metric = study.objectives[0][0]
    started = pd.to_numeric(pd.Series([row.get("confirm_started")]), errors="coerce").iloc[0]
    state = cv.confirmed_state(row.get(f"confirmed_{metric}"))
    if pd.isna(started) or started <= 0:
        return (f"{because}; not confirmed on fresh prompts and seeds (run "
                f"`{cv.confirm_command(study, str(row['trial_id']))}`)")
    if state == cv.NOT_JUDGED:
        return f"{because}; its confirmation gives no verdict on {metric} (yet)"
    return f"{because}; its {metric} change was {state} on fresh prompts and seeds"


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
            merged = peft_model.merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(str(tmp), safe_serialization=True)
            tok.save_pretrained(str(tmp))
            dtype = str(next(merged.parameters()).dtype).replace("torch.", "")
            del base, peft_model, merged
            model, tok2 = reload_merged(tmp, dev)
            got = greedy(model, tok2, prompt)
            verification.update({"dtype": dtype, "base_plus_adapter_ids": expected,
                                 "merged_ids": got, "matches_base_plus_adapter": got == expected})
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


def baseline_metrics(study: Study) -> dict[str, Any]:
    base = study.baseline()
    if base is None:
        return {}
    names = list(dict.fromkeys([*HEADLINE, *(m for m in columns.EVAL_METRICS if m in base)]))
    return {"trial_id": str(base["trial_id"]), "status": base["status"],
            **{m: base.get(m) for m in names},
            "headroom": {m: {k: base.get(f"{k}_{m}") for k in ("floor", "ceiling", "headroom")}
                         for m in columns.DIVERSITY if f"headroom_{m}" in base}}


def base_model_path(model: str) -> str:
    """What ``from_pretrained`` takes for the base: the hub id or folder, or, for an embedded
    model, its converted folder on this machine."""
    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import resolve_model_path

    return resolve_model_path(model)


def trial_record(study: Study, row: pd.Series, cfg: Any, mode: str, adapter: Path,
                 verification: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``trial.json``: where the export came from, its config, metrics, deltas and its check."""
    tid = str(row["trial_id"])
    result = read_json(study.trial_dir(tid) / layout.RESULT) or {}
    deltas = {}
    for m in card_metrics(study, row):
        deltas[m] = {k: row.get(f"{p}{m}{s}") for k, p, s in (
            ("delta", "delta_", ""), ("ci_low", "delta_", "_ci_low"),
            ("ci_high", "delta_", "_ci_high"), ("relative_percent", "rel_delta_", ""),
            ("significant", "significant_", ""), ("mde", "mde_", ""),
            ("headroom", "headroom_", ""))}
    return {
        "study": study.name, "study_path": str(study.path), "trial_id": tid,
        "status": row["status"], "status_text": row["status_text"], "mode": mode,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": cfg.model, "base_model_path": base_model_path(cfg.model),
        "source_checkpoint": str(adapter),
        "objectives": [list(o) for o in study.objectives], "pareto_optimal": bool(row.get("pareto")),
        "config": cfg.to_dict(),
        "metrics": {k: v for k, v in result.items() if not isinstance(v, (dict, list))},
        "baseline": baseline_metrics(study), "deltas_vs_baseline": deltas,
        "verdict": row.get("verdict") if isinstance(row.get("verdict"), str) else "",
        "chosen_because": why_exported(study, row),
        "confirmation": row.get("confirmation") if isinstance(row.get("confirmation"), str)
        else "",
        "verification": verification, "warnings": warnings,
    }


def model_card(study: Study, row: pd.Series, cfg: Any, mode: str, record: dict[str, Any]) -> str:
    """``README.md``: base model, how to load, trial config, metrics with definitions and deltas
    vs the baseline, data, study name and date."""
    tid = str(row["trial_id"])
    base = record["baseline"]
    library = "peft" if mode == "adapter" else "transformers"
    if mode == "adapter":
        load = ("from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, "
                f"AutoTokenizer\n\nBASE_MODEL = {record['base_model_path']!r}\n"
                "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL)\n"
                "model = PeftModel.from_pretrained(base, \"path/to/this/folder\")\n"
                "tok = AutoTokenizer.from_pretrained(\"path/to/this/folder\")")
    else:
        load = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")\n"
                "tok = AutoTokenizer.from_pretrained(\"path/to/this/folder\")")
    embedded = (" (embedded in polychromic-study: `polychromic.models.loading.resolve_model_path"
                f"({cfg.model!r})` gives its folder)"
                if cfg.model in ("smollm2-135m-instruct", "tiny") else "")
    metric_rows = []
    for m in card_metrics(study, row):
        mde = _value(row, f"mde_{m}")
        metric_rows.append(f"| {m} | {fmt(_value(row, m))} | {fmt(base.get(m))} | "
                           f"{fmt_delta(row, m) or '—'} | {'—' if pd.isna(mde) else f'±{mde:.2g}'}"
                           f" | {definition(m)} |")
    verdict = record.get("verdict") or (
        "This is the baseline: every other trial is compared with it." if row.get("is_baseline")
        else "No verdict: the trial or the baseline has no evaluation to compare.")
    headroom_rows = []
    for m in columns.HEADLINE_DIVERSITY:
        h = base.get("headroom", {}).get(m, {})
        room, mine = _value(h, "headroom"), _value(row, f"headroom_{m}")
        if pd.isna(room) and pd.isna(mine):
            continue
        note = ("at ceiling: no gain on it can be shown" if not pd.isna(room)
                and room < LOW_HEADROOM else "")
        headroom_rows.append(f"| {m} | {fmt(_value(h, 'floor'))} | {fmt(_value(h, 'ceiling'))} "
                             f"| {_pct(room)} | {_pct(mine)} | {note} |")
    headroom_text = ("| metric | floor | ceiling | headroom (baseline) | headroom (this trial) "
                     "| |\n|---|--:|--:|--:|--:|---|\n" + "\n".join(headroom_rows)
                     if headroom_rows else "Not measured: the baseline has no floor and ceiling "
                     "sets (`headroom.parquet`).")
    knobs = ("lambda_", "n_generations", "compute_every_n_steps", "max_examples_for_diversity",
             "advantage", "lora_r", "lora_alpha", "lora_target_modules", "learning_rate", "steps",
             "batch_size", "max_length", "quantize", "seed")
    config_rows = [f"| {k} | {', '.join(v) if isinstance(v := getattr(cfg, k), list) else fmt(v)} |"
                   for k in knobs]
    v = record["verification"]
    check = f"greedy {v['new_tokens']} tokens after {v['prompt']!r}: {v.get('output', '')!r}"
    if mode == "merged":
        check += (f"; identical to base + adapter: {v.get('matches_base_plus_adapter')} "
                  f"(merged in {v.get('dtype')})")

    trials = cv.comparisons(study)
    trials = sorted(trials, key=lambda t: t.trial_id != tid)  # the exported trial first
    confirmation_text = cv.markdown(study, trials)
    why = record.get("chosen_because") or why_exported(study, row)
    status_line = "" if row["status"] == "finished" else (
        f"\n> **Warning:** this trial is {row['status_text']}; this is its last checkpoint, "
        "not a finished run.\n")
    if row.get("is_baseline"):
        status_line += "\nThis is the study's baseline (λ = 0: plain SFT, no diversity term).\n"
    return f"""---
base_model: {cfg.model}
library_name: {library}
tags: [lora, polychromic, diversity, polychromic-study]
---

# {study.name} / trial {tid}: polychromic LoRA, λ = {fmt(cfg.lambda_)}
{status_line}
{"LoRA adapter" if mode == "adapter" else "Merged model (LoRA merged into the base weights)"}
from trial `{tid}` of the study `{study.name}`, exported {record['exported_at']}.
Status: {row['status_text']}; Pareto-optimal on {study.axes[0][0]} vs {study.axes[1][0]}:
{"yes" if row.get("pareto") else "no"}. Study objectives:
{", ".join(f"{m} ({mode_})" for m, mode_ in study.objectives)}.

**Why this trial:** {why}.

## Base model

`{cfg.model}`{embedded}, LoRA r={cfg.lora_r}, alpha={cfg.lora_alpha} on
{", ".join(cfg.lora_target_modules)}; trained quantize={cfg.quantize}.
{"" if mode == "adapter" else "Merged after reloading the base unquantized (never into 4-bit)."}

```python
{load}
```

## Training configuration

The polychromic objective adds λ × a diversity reward (a set-level score over
{cfg.n_generations} samples per prompt) to the SFT loss; λ = 0 is plain SFT (the baseline).

| setting | value |
|---|---|
{chr(10).join(config_rows)}

The full configuration is `config` in `trial.json`.

## Evaluation

{cfg.n_eval_prompts} held-out prompts × {cfg.n_eval_samples} samples
(temperature {cfg.eval_temperature}, top-p {cfg.eval_top_p}, ≤ {cfg.eval_max_new_tokens} new
tokens). Baseline: trial `{base.get('trial_id', '—')}` (λ = 0). Δ = this trial − baseline
with [CI] and (relative change %); * = significant (the CI excludes 0).
{f"CI: {study.ci_method}." if study.ci_method else ""}

**Verdict** (vs the λ = 0 baseline): {verdict}

| metric | this trial | baseline | Δ vs baseline | MDE | definition |
|---|--:|--:|--:|--:|---|
{chr(10).join(metric_rows)}

MDE = minimum detectable effect: the smallest true change this study finds significant with 80%
power; a CI inside ±MDE means no change this study could have seen.

### Selection vs confirmation

The deltas above are the selection: one training seed on the study's test prompts, for a
trial picked as the best of many, so they are biased upwards (the winner's curse).
`study/confirm.py` re-trains the trial and the baseline with new seeds on fresh prompts;
shrinkage = confirmation − selection.

{confirmation_text}

### Headroom of the diversity metrics

Headroom = (ceiling − value) / (ceiling − floor), with the floor = every sample of a prompt
identical and the ceiling = unrelated texts of the task of the same lengths; below
{100 * LOW_HEADROOM:.0f}% the baseline is at the ceiling and no diversity gain can be shown.

{headroom_text}

Definitions in full: `docs/metrics.md` of polychromic-study.

## Data

Task `{cfg.task}`{f", data file `{cfg.data}`" if cfg.data else " (embedded data)"};
training examples: {cfg.max_train_examples or "all of the train split"}; evaluation on the
first {cfg.n_eval_prompts} prompts of the test split.

## Export check

{check}

Source checkpoint: `{record['source_checkpoint']}`.
"""
