"""The evaluation pipeline's Ray Data actors: Generate (HF generate: base model + adapter,
loaded once per actor), GenerateVLLM (an actor owning a vllm.LLM) and Score (the
task's checker + the sentence encoder, loaded once per actor). Each takes a batch of rows and
returns it with its samples or scores; polychromic.evaluation.pipeline wires them.

Each also adds its clock readings as columns (``TIMING_COLUMNS``, dropped before the samples
are written): when a generation call started, and each row's share of the seconds spent in
the generation and scoring calls, from which the evaluation's ``phase_seconds`` are summed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from polychromic.core import faults
from polychromic.core.config import TrialConfig
from polychromic.metrics.encoder import get_encoder
from polychromic.store.generations import (
    GENERATED_COLUMNS,
    PROMPT_COLUMNS,
    example_of,
)
from polychromic.store.remote import download
from polychromic.tasks import get_task

#: per-row clock columns: generation call start (``time.time()``), the row's share of the
#: generation call's and of the scoring call's seconds
GEN_STARTED, GEN_SECONDS, SCORE_SECONDS = "_gen_started_at", "_gen_seconds", "_score_seconds"
TIMING_COLUMNS = (GEN_STARTED, GEN_SECONDS, SCORE_SECONDS)


def _timed(out: dict[str, list], started: float, first_row: int) -> None:
    """Fill the generation clock columns of the rows from ``first_row`` on (one call)."""
    n = len(out["text"]) - first_row
    share = (time.time() - started) / max(1, n)
    out.setdefault(GEN_STARTED, []).extend([started] * n)
    out.setdefault(GEN_SECONDS, []).extend([share] * n)


def temperatures(batch: dict[str, np.ndarray], default: float) -> list[float]:
    """Each item's sampling temperature: its ``temperature`` column (a frontier pass samples
    one adapter at several temperatures, one item per generation group and temperature), else
    ``default`` (the trial's ``eval_temperature``)."""
    n = len(batch["rows"])
    if "temperature" not in batch:
        return [float(default)] * n
    return [float(t) for t in batch["temperature"]]


def generate_groups(model: Any, tok: Any, task: Any, cfg: TrialConfig,
                    batch: dict[str, Any]) -> dict[str, list]:
    """Sample every item of ``batch`` (a generation group of prompt rows as JSON, at the
    item's temperature) with a loaded HF model: ``n_eval_samples`` completions per prompt,
    each prompt from its own seed (``sample_seeded``: finished samples leave the batch). The
    rows ``generations.parquet`` holds, with the clock columns. Used by the ``Generate`` actor
    and by an evaluation in the Train worker (polychromic.evaluation.in_worker): one code path,
    the same samples."""
    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.backends import sample_seed

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.sampling import sample_seeded

    out: dict[str, list] = {k: [] for k in GENERATED_COLUMNS}
    temps = temperatures(batch, cfg.eval_temperature)
    for rows_json, temp in zip(batch["rows"], temps, strict=True):
        started, first = time.time(), len(out["text"])
        rows = json.loads(rows_json)
        prompts = [task.format_prompt(tok, example_of(r)) for r in rows]
        # the prompt's seed, not the group's or the temperature's: every temperature draws
        # from the same seed (the eval temperature's samples are those of a plain
        # evaluation), and neither the grouping nor the actor count changes a sample
        seeds = [sample_seed(cfg.eval_seed, int(r["prompt_index"])) for r in rows]
        s = sample_seeded(model, tok, prompts, cfg.n_eval_samples,
                          cfg.eval_max_new_tokens, temp, cfg.eval_top_p, seeds)
        for i, row in enumerate(rows):
            for j in range(cfg.n_eval_samples):
                r = i * cfg.n_eval_samples + j
                for key in PROMPT_COLUMNS:
                    out[key].append(row[key])
                out["sample_index"].append(j)
                out["text"].append(s.texts[r])
                out["token_count"].append(int(s.token_counts[r]))
                out["eval_temperature"].append(temp)
        _timed(out, started, first)
    return out


def score_batch(task: Any, encoder: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Quality check and embedding of each sample of ``batch`` (generated rows). A batch that
    fails is kept with NaN scores and the reason in ``score_error`` (never a silent 0.0).
    Used by the ``Score`` actor and by an evaluation in the Train worker."""
    started = time.time()
    n = len(batch["text"])
    texts = [str(t) for t in batch["text"]]
    out = dict(batch)
    try:
        faults.at_scoring(batch["prompt_index"])
        examples = [example_of({k: batch[k][i] for k in batch}) for i in range(n)]
        checks = task.check(examples, texts)
        out["quality_score"] = np.array([c.score for c in checks], dtype=np.float64)
        out["passed"] = np.array([c.passed for c in checks], dtype=bool)
        out["reason"] = np.array([c.reason for c in checks], dtype=object)
        out["embedding"] = list(encoder.encode(texts).astype(np.float32))
        out["score_error"] = np.array([""] * n, dtype=object)
    except Exception as err:  # recorded per sample, aggregated as NaN + reason
        reason = f"{type(err).__name__}: {err}"[:500]
        out["quality_score"] = np.full(n, np.nan)
        out["passed"] = np.zeros(n, dtype=bool)
        out["reason"] = np.array(["scoring failed"] * n, dtype=object)
        # same type as a scored batch (Arrow needs one schema): NaN rows, flagged failed
        out["embedding"] = list(np.full((n, encoder.dim), np.nan, dtype=np.float32))
        out["score_error"] = np.array([reason] * n, dtype=object)
    out[SCORE_SECONDS] = np.full(n, (time.time() - started) / max(1, n))
    return out


class Generate:
    """Ray Data actor: samples ``n_eval_samples`` completions per prompt of a group, at the
    item's temperature, each prompt from its own seed (``sample_seeded``: finished samples
    leave the batch); the model and adapter are loaded once, in the constructor, whatever the
    number of groups or temperatures it samples."""

    def __init__(self, cfg: dict[str, Any], adapter_dir: str | None, threads: int) -> None:
        import torch

        # lazy: pulls torch, which this path does not otherwise need
        from polychromic.models.loading import load_for_inference

        torch.set_num_threads(max(1, threads))
        self.cfg = TrialConfig.from_dict(cfg)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if adapter_dir is not None:  # a URI study's adapter is fetched here; a folder is used as is
            adapter_dir = str(download(adapter_dir))
        self.model, self.tok = load_for_inference(self.cfg, adapter_dir, device)
        self.task = get_task(self.cfg)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        return generate_groups(self.model, self.tok, self.task, self.cfg, batch)


class GenerateVLLM:
    """Ray Data actor (``generation_backend: vllm``): one ``vllm.LLM(enable_lora=True)`` on the
    converted local base model, the trial's adapter passed per request as a ``LoRARequest``;
    rows out exactly as ``Generate`` writes them. Each sample is its own request seeded by
    (``eval_seed``, prompt index, sample index), so neither the actor count nor the grouping
    changes a sample."""

    def __init__(self, cfg: dict[str, Any], adapter_dir: str | None, threads: int) -> None:
        import torch

        # lazy: pulls torch, which this path does not otherwise need
        from polychromic.models.backends import VLLMSampler

        # lazy: pulls torch, which this path does not otherwise need
        from polychromic.models.loading import load_tokenizer

        torch.set_num_threads(max(1, threads))
        self.cfg = TrialConfig.from_dict(cfg)
        if adapter_dir is not None:  # a URI study's adapter is fetched here; a folder is used as is
            adapter_dir = str(download(adapter_dir))
        self.engine = VLLMSampler(self.cfg)
        self.lora = self.engine.lora_request(adapter_dir)
        self.tok = load_tokenizer(self.engine.path)
        self.task = get_task(self.cfg)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        # lazy: pulls torch, which this path does not otherwise need
        from polychromic.models.backends import sample_seed

        cfg, n = self.cfg, self.cfg.n_eval_samples
        out: dict[str, list] = {k: [] for k in GENERATED_COLUMNS}
        temps = temperatures(batch, cfg.eval_temperature)
        for rows_json, temp in zip(batch["rows"], temps, strict=True):
            started, first = time.time(), len(out["text"])
            rows = json.loads(rows_json)
            prompts = [self.task.format_prompt(self.tok, example_of(r)) for r in rows]
            seeds = [sample_seed(cfg.eval_seed, int(r["prompt_index"]), j)
                     for r in rows for j in range(n)]
            s = self.engine.sample(self.tok, prompts, n, cfg.eval_max_new_tokens,
                                   temp, cfg.eval_top_p, lora=self.lora, seeds=seeds)
            counts = s.token_counts
            for i, row in enumerate(rows):
                for j in range(n):
                    for key in PROMPT_COLUMNS:
                        out[key].append(row[key])
                    out["sample_index"].append(j)
                    out["text"].append(s.texts[i * n + j])
                    out["token_count"].append(int(counts[i * n + j]))
                    out["eval_temperature"].append(temp)
            _timed(out, started, first)
        return out


class Score:
    """Ray Data actor: quality check and embedding of each sample. A batch that fails is kept
    with NaN scores and the reason in ``score_error`` (never a silent 0.0)."""

    def __init__(self, cfg: dict[str, Any], threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.cfg = TrialConfig.from_dict(cfg)
        self.task = get_task(self.cfg)
        self.encoder = get_encoder()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return score_batch(self.task, self.encoder, batch)
