"""A trial's model card (``README.md``) and record (``trial.json``): what the trial is, why it was chosen,
its metrics against the λ=0 baseline with their intervals and definitions, and how to load it.
Pure text from the study's numbers; ``polychromic.export.artifacts`` writes it beside the model.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core import columns
from polychromic.core.jsonutil import to_jsonable
from polychromic.metrics.aggregate import HEADLINE
from polychromic.models.memory import FIXED_QUANTIZATION
from polychromic.review import confirmation as cv
from polychromic.review.format import _is_true, fmt, fmt_delta
from polychromic.review.frontier import NOT_MEASURED, frontier_columns, frontier_rows
from polychromic.review.study import Study, compared_metrics
from polychromic.stats import significance
from polychromic.stats.headroom import AT_CEILING, LOW_HEADROOM, PAST_CEILING, ceiling_state
from polychromic.store import layout
from polychromic.store.records import read_json


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


def why_exported(study: Study, row: pd.Series) -> str:
    """Why this trial was exported (``chosen_because`` from ``study_model.choose_trial``) and,
    unless that already says it, whether ``study/confirm.py`` confirmed its change on the
    study's first objective."""

    because = row.get("chosen_because")
    because = because if isinstance(because, str) and because else "named for export"
    if row.get("confirm_checked") is True:  # study_model.prefer_confirmed said it
        return because
    if _is_true(row.get("is_baseline")):  # confirm.py confirms a trial against it, never it
        return f"{because}; the λ=0 baseline itself: every Δ of the study is measured against it"
    metric = study.objectives[0][0]
    started = pd.to_numeric(pd.Series([row.get("confirm_started")]), errors="coerce").iloc[0]
    state = cv.confirmed_state(row.get(f"confirmed_{metric}"))
    if pd.isna(started) or started <= 0:
        return (f"{because}; not confirmed on fresh prompts and seeds (run "
                f"`{cv.confirm_command(study, str(row['trial_id']))}`)")
    if state == cv.NOT_JUDGED:
        return f"{because}; its confirmation gives no verdict on {metric} (yet)"
    return f"{because}; its {metric} change was {state} on fresh prompts and seeds"


def baseline_metrics(study: Study) -> dict[str, Any]:
    base = study.baseline()
    if base is None:
        return {}
    names = list(dict.fromkeys([*HEADLINE, *(m for m in columns.EVAL_METRICS if m in base)]))
    return {"trial_id": str(base["trial_id"]), "status": base["status"],
            **{m: base.get(m) for m in names},
            "headroom": {m: {k: base.get(f"{k}_{m}") for k in ("floor", "ceiling", "headroom")}
                         for m in columns.DIVERSITY if f"headroom_{m}" in base}}


#: the Hub model an embedded base was made from (not the same weights: a de-quantized GGUF)
EMBEDDED_ORIGIN = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_id(model: str) -> str | None:
    """``model`` when it is a Hub id (``org/name``, not a folder on this machine), else None:
    the card's ``base_model:`` front matter must be something the Hub can resolve."""
    if model.startswith(("/", ".", "~")) or Path(model).expanduser().exists():
        return None
    return model if _HUB_ID.match(model) else None


def base_model_note(model: str) -> str:
    """Why the card has no ``base_model:`` front matter, "" when it has one."""
    if hub_id(model):
        return ""
    if model in EMBEDDED_ORIGIN:
        return (f"`base_model` is left out of the front matter: `{model}` is "
                "polychromic-study's embedded model, a de-quantized GGUF of "
                f"[{EMBEDDED_ORIGIN[model]}](https://huggingface.co/{EMBEDDED_ORIGIN[model]}), "
                "not that checkpoint's weights.")
    if model == "tiny":
        return ("`base_model` is left out of the front matter: `tiny` is polychromic-study's "
                "random 2-layer test model, not a Hub model.")
    return (f"`base_model` is left out of the front matter: `{model}` is a local folder, not a "
            "Hub id.")


def load_snippet(model: str, mode: str) -> str:
    """The card's loading code: a Hub id as is; an embedded base through polychromic-study
    (its folder is built on the reader's machine); a local folder as a placeholder. Never a
    path of the exporting machine's cache."""
    if mode != "adapter":
        return ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")\n"
                "tok = AutoTokenizer.from_pretrained(\"path/to/this/folder\")")
    if hub_id(model):
        base = f"BASE_MODEL = {model!r}\n"
    elif model in ("smollm2-135m-instruct", "tiny"):
        base = ("from polychromic.models.loading import resolve_model_path  # polychromic-study\n"
                f"BASE_MODEL = resolve_model_path({model!r})  # built once, then cached\n")
    else:
        base = ("BASE_MODEL = \"path/to/the/base/model\"  # the folder the trial trained on: "
                f"{Path(model).name}\n")
    return ("from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, "
            f"AutoTokenizer\n\n{base}"
            "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL)\n"
            "model = PeftModel.from_pretrained(base, \"path/to/this/folder\")\n"
            "tok = AutoTokenizer.from_pretrained(\"path/to/this/folder\")")


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
            ("significant", "significant_", ""),
            ("significant_unadjusted", "significant_unadjusted_", ""), ("mde", "mde_", ""),
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
        "vs_temperature_frontier": {c: to_jsonable(row.get(c)) for c in frontier_columns(
            list(row.index)) if not (isinstance(row.get(c), float) and math.isnan(row.get(c)))},
        "chosen_because": why_exported(study, row),
        "confirmation": row.get("confirmation") if isinstance(row.get("confirmation"), str)
        else "",
        "verification": verification, "warnings": warnings,
    }


def trained_quantization(record: dict[str, Any]) -> str:
    """The quantization the trial's base really had: its record (``quantization``, from the
    loaded layers), else what the configured ``quantize`` loads when it was explicit
    (``auto`` depended on the device: ``unknown``)."""
    loaded = (record.get("metrics") or {}).get("quantization")
    if isinstance(loaded, str) and loaded:
        return loaded
    return FIXED_QUANTIZATION.get(str((record.get("config") or {}).get("quantize")), "unknown")


def quantized_base_note(record: dict[str, Any], mode: str) -> str:
    """What serving needs to know when the adapter was trained on a quantized base."""
    q = trained_quantization(record)
    if q in ("none", "unknown"):
        return ""
    kind = {"nf4": "a 4-bit NF4 base (bitsandbytes, double quantization)",
            "int8": "an 8-bit (LLM.int8) base"}.get(q, f"a {q} base")
    if mode == "adapter":
        return (f"\n**Trained on {kind}.** The adapter learned corrections to the quantized "
                "weights it saw: load the base the same way (`BitsAndBytesConfig`) to reproduce "
                "the evaluated model; on a 16-bit base it behaves slightly differently.\n")
    v = record.get("verification") or {}
    return (f"\n**The adapter was trained on {kind}**, and is merged here into the 16-bit "
            "base: this model's weights are not the quantized ones it was trained and "
            "evaluated with, so its outputs differ slightly from the evaluated trial "
            "(the metrics above are those of the quantized base + adapter). Re-evaluate before "
            "relying on them, or serve the adapter on the same quantized base. Merged logits "
            f"match 16-bit base + adapter within {v.get('max_abs_logit_diff', float('nan')):.2g}"
            f" (tolerance {v.get('logit_tolerance')}).\n")


def frontier_text(row: pd.Series) -> str:
    """The card's *Against the baseline's temperature frontier*: the trial's gains against the
    λ=0 baseline's frontier and pass@k against its best temperature
    (``polychromic.review.frontier.frontier_rows``, what ``--trial`` shows), the temperatures
    for the baseline itself, or ``frontier: not measured`` for a study without one."""
    temps = str(row.get("frontier_temperatures") or "not measured")
    if temps == "not measured":
        return NOT_MEASURED + "."
    head = (f"The λ=0 baseline was also sampled at T = {temps} on the same prompts and seeds; "
            "a trial is judged against the curve those points span (docs/decide.md).")
    rows = frontier_rows(row)
    if _is_true(row.get("is_baseline")) or not rows:
        return head + ("" if _is_true(row.get("is_baseline")) else
                       " This trial has no gain against it (not finished, or other prompts).")
    return (head + "\n\n| against the frontier | gain | 95% CI | MDE | note |\n"
            "|---|--:|--:|--:|---|\n"
            + "\n".join(f"| {what} | {gain} | {ci} | {mde} | {note} |"
                         for what, gain, ci, mde, note in rows))


def model_card(study: Study, row: pd.Series, cfg: Any, mode: str, record: dict[str, Any]) -> str:
    """``README.md``: base model, how to load, trial config, metrics with definitions and deltas
    vs the baseline, data, study name and date."""
    tid = str(row["trial_id"])
    base = record["baseline"]
    library = "peft" if mode == "adapter" else "transformers"
    load = load_snippet(str(cfg.model), mode)
    front = f"base_model: {hub_id(str(cfg.model))}\n" if hub_id(str(cfg.model)) else ""
    embedded = base_model_note(str(cfg.model))
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
        state = ceiling_state(float(room)) if not pd.isna(room) else ""
        note = {AT_CEILING: "at ceiling: no gain on it can be shown",
                PAST_CEILING: "past ceiling: the baseline is beyond unrelated texts; a gain "
                "would not mean more diverse replies"}.get(state, "")
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
    confirmation_text = cv.markdown(study, trials, None if row.get("is_baseline") else tid)
    why = record.get("chosen_because") or why_exported(study, row)
    status_line = "" if row["status"] == "finished" else (
        f"\n> **Warning:** this trial is {row['status_text']}; this is its last checkpoint, "
        "not a finished run.\n")
    if row.get("is_baseline"):
        status_line += "\nThis is the study's baseline (λ = 0: plain SFT, no diversity term).\n"
    return f"""---
{front}library_name: {library}
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

`{cfg.model}`, LoRA r={cfg.lora_r}, alpha={cfg.lora_alpha} on
{", ".join(cfg.lora_target_modules)}; trained quantize={cfg.quantize}.
{"" if mode == "adapter" else "Merged after reloading the base unquantized (never into 4-bit)."}
{embedded}
{quantized_base_note(record, mode)}

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
with [CI] and (relative change %); {significance.LEGEND}.
{f"CI: {study.ci_method}." if study.ci_method else ""}

**Verdict** (vs the λ = 0 baseline): {verdict}

| metric | this trial | baseline | Δ vs baseline | MDE | definition |
|---|--:|--:|--:|--:|---|
{chr(10).join(metric_rows)}

MDE = minimum detectable effect: the smallest true change this study finds significant with 80%
power; a CI inside ±MDE means no change this study could have seen.

### Against the baseline's temperature frontier

Temperature trades quality for diversity for free: a change the baseline also gets by being
sampled at another temperature is no gain of training.

{frontier_text(row)}

### Selection vs confirmation

The deltas above are the selection: one training seed on the study's test prompts, for a
trial picked as the best of many, so they are biased upwards (the winner's curse).
`study/confirm.py` re-trains the trial and the baseline with new seeds on fresh prompts;
shrinkage = confirmation − selection.

{confirmation_text}

### Headroom of the diversity metrics

Headroom = (ceiling − value) / (ceiling − floor), with the floor = every sample of a prompt
identical and the ceiling = unrelated texts of the task of the same lengths; below
{100 * LOW_HEADROOM:.0f}% the baseline is at the ceiling and no diversity gain can be shown; below 0
it is past the ceiling (more diverse than unrelated texts), where a gain would not mean more
diverse replies.

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


