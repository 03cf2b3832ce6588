"""A trial's evaluation as a Ray Data pipeline; every sample is kept on disk.

held-out prompts → generation actors (base model + the trial's adapter, loaded once per
actor) → scoring actors (task checker + sentence encoder, loaded once per actor) →
``generations.parquet`` (one row per sample) → ``aggregate`` (corpus and per-prompt metrics).

The baseline's temperature frontier (``evaluate(frontier=True)``, ``evaluate_frontier``)
goes through the same single pass: the temperature is a column of the items (one per
generation group and temperature), so the actors load the model once and sample them all;
every temperature uses the same per-prompt seeds, and all samples go to ``frontier.parquet``.

Prompts are grouped into fixed generation groups (``eval_batch_prompts`` each: one batched
decoding call) and every prompt is sampled from its own seed (``eval_seed``, prompt index), so
the samples do not depend on how many actors there are or which actor got which group: 1 actor
and 32 give the same rows.

``generation_backend`` resolving to ``vllm`` swaps the generation actors for Ray Data LLM's
vLLM processor (``_vllm_processor``: the adapter loaded per request, every sample seeded by its
prompt and sample index), or, with ``POLYCHROMIC_VLLM_EVAL=actor``, for ``GenerateVLLM`` (a
plain actor owning a ``vllm.LLM``); the scoring actors, the ``generations.parquet`` schema and
the metrics are the same (docs/vllm.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from polychromic.core.config import TrialConfig
from polychromic.evaluation.actors import (
    GEN_SECONDS,
    GEN_STARTED,
    SCORE_SECONDS,
    TIMING_COLUMNS,
    Generate,
    GenerateVLLM,
    Score,
)
from polychromic.metrics.aggregate import aggregate
from polychromic.models import memory
from polychromic.store import layout
from polychromic.store.generations import (
    example_of,
    prompt_row,
    read_generations,
    write_generations,
)
from polychromic.store.remote import is_uri
from polychromic.tasks import get_task
from polychromic.tasks.base import Example

SAMPLING_COLUMNS = ("eval_temperature", "eval_top_p", "eval_max_new_tokens", "eval_seed")


def eval_examples(cfg: TrialConfig) -> list[Example]:
    """The fixed held-out prompts: the first ``n_eval_prompts`` of ``eval_split`` (``test``
    for every study trial, ``validation`` for confirmation runs)."""

    return get_task(cfg).examples(cfg.eval_split)[: cfg.n_eval_prompts]








def plan_actors(cfg: TrialConfig, vllm: bool = False) -> tuple[int, dict[str, float]]:
    """Generation actor count and per-actor resources from the cluster's free resources.

    GPU clusters: one actor per free GPU. CPU: fractional CPUs (a pool that takes every CPU
    starves the rest of the pipeline on a small machine). Each actor also requests the memory
    the estimate gives for its model (polychromic.models.memory, ``eval_actor``; ``vllm``: a
    vLLM engine's weights and KV share), so Ray places it where that memory is free (none
    requested when the model's shape is unknown)."""
    import ray

    free = ray.available_resources()
    gpus = int(free.get("GPU", 0)) if cfg.use_gpu is not False else 0
    ram = memory.ray_memory(cfg.to_dict(), cuda=bool(gpus), part="eval_actor", vllm=vllm)
    need = {"memory": ram} if ram else {}
    if gpus:
        n = cfg.eval_actors or gpus
        return n, {"num_gpus": 1, "num_cpus": 1, **need}
    cpus = max(1.0, free.get("CPU", 1.0))
    n = cfg.eval_actors or max(1, int(cpus // 2))
    return n, {"num_cpus": min(0.5, cpus / (2 * n)), **need}


def eval_placement(cfg: TrialConfig) -> str:
    """Where a study trial's final evaluation runs, ``cfg.eval_placement`` resolved:
    ``worker`` (its Train worker, polychromic.evaluation.in_worker) or ``actors`` (this
    pipeline). ``auto`` is the worker when the trial trains on one worker and the pipeline
    would sample with a single HF generation actor anyway (``plan_actors`` on the cluster's
    free resources now); the vLLM backend is always evaluated by actors. Needs Ray."""
    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.backends import resolve_backend

    if resolve_backend(cfg) == "vllm":
        return "actors"
    if cfg.eval_placement != "auto":
        return cfg.eval_placement
    return "worker" if cfg.num_workers == 1 and plan_actors(cfg)[0] == 1 else "actors"


def evaluate(cfg: TrialConfig, adapter_dir: str | None, out_dir: Path,
             actors: int | None = None,
             timings: dict[str, float | None] | None = None,
             frontier: bool = False) -> dict[str, Any]:
    """Generate, score, write ``out_dir/generations.parquet`` and return the metrics.
    ``timings``, when given, receives the evaluation's phases (``EVALUATION_PHASES`` of
    polychromic.core.phases).

    ``frontier``: the same pass also samples every other temperature of
    ``cfg.frontier_grid()`` (one pipeline, the model loaded once per actor) and writes them
    all to ``out_dir/frontier.parquet``; ``generations.parquet`` and the metrics are the
    eval temperature's, identical to a plain evaluation's (same seeds)."""
    temps = cfg.frontier_grid() if frontier else []
    clocks: dict[str, float | None] = {}
    gens = sample_and_score(cfg, adapter_dir, temps or [cfg.eval_temperature], actors, clocks)
    writing = time.time()
    at_eval = write_evaluation(cfg, gens, Path(out_dir), frontier=bool(temps))
    metrics = aggregate(at_eval, class_threshold=cfg.class_threshold)
    if timings is not None:
        timings.update(clocks, writing=time.time() - writing)
    return metrics


def write_evaluation(cfg: TrialConfig, gens: pd.DataFrame, out_dir: Path,
                     frontier: bool = False) -> pd.DataFrame:
    """Write an evaluation's samples (``finish_table``'s): the eval temperature's rows to
    ``generations.parquet`` and, for a frontier pass, every row to ``frontier.parquet``.
    Returns the eval temperature's rows (the metrics are theirs; the Train worker's
    evaluation leaves them to the trial, which reads the stored file)."""
    at_eval = gens[gens["eval_temperature"] == cfg.eval_temperature].reset_index(drop=True)
    write_generations(at_eval, out_dir / layout.GENERATIONS)
    if frontier:
        write_generations(gens, out_dir / layout.FRONTIER)
    return at_eval


def evaluate_frontier(cfg: TrialConfig, adapter_dir: str | None, out_dir: Path,
                      actors: int | None = None) -> pd.DataFrame | None:
    """The frontier of an adapter already evaluated at ``cfg.eval_temperature``: one pass
    samples the other temperatures of ``cfg.frontier_grid()``, and ``frontier.parquet`` gets
    them with the stored ``generations.parquet`` rows (drawn from the same seeds: a plain
    evaluation's samples are the frontier's at the eval temperature). All of them are
    sampled when no generations are stored. Returns the table written (None: frontier off).
    The file is written whole or not at all (a killed run leaves no partial frontier)."""
    temps = cfg.frontier_grid()
    if not temps:
        return None
    stored = Path(out_dir) / layout.GENERATIONS
    have = read_generations(stored) if stored.is_file() else None
    if have is not None:
        temps = [t for t in temps if t != cfg.eval_temperature]
    gens = sample_and_score(cfg, adapter_dir, temps, actors) if temps else None
    parts = [g for g in (have, gens) if g is not None]
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    table = table.sort_values(["eval_temperature", "prompt_index", "sample_index"],
                              ignore_index=True)
    write_generations(table, Path(out_dir) / layout.FRONTIER)
    return table


def sample_and_score(cfg: TrialConfig, adapter_dir: str | None, temperatures: list[float],
                     actors: int | None = None,
                     clocks: dict[str, float | None] | None = None) -> pd.DataFrame:
    """One Ray Data pass over the held-out prompts at every temperature of ``temperatures``:
    one item per (temperature, generation group), the temperature a column of the items, so
    each generation actor loads the model once and samples every temperature. Every
    temperature's samples come from the same per-prompt seeds. Returns the scored samples,
    ordered by temperature, prompt and sample (the generations.parquet schema); ``clocks``,
    when given, receives the pass's start-up, generation and scoring seconds."""
    import ray

    started = time.time()
    rows, items = eval_items(cfg, temperatures)
    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.backends import resolve_backend

    vllm = resolve_backend(cfg) == "vllm"
    n_actors, res = plan_actors(cfg, vllm=vllm)
    n_actors = actors or n_actors
    threads = cfg.torch_threads or max(1, (os.cpu_count() or 1) // n_actors)
    # scoring runs beside generation and needs a small share of its time (BENCHMARKS:
    # scoring alone ≥ 30× the generation rate): half the threads, so the two do not
    # oversubscribe the cores a generation actor's matrix maths already fills
    score_threads = cfg.torch_threads or max(1, threads // 2)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False  # Tune's table is the progress display
    if vllm and os.environ.get("POLYCHROMIC_VLLM_EVAL", "processor") == "processor":
        ds = _vllm_processor(cfg, rows, adapter_dir, n_actors, res, temperatures)
    else:
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            GenerateVLLM if vllm else Generate,
            fn_constructor_kwargs={"cfg": cfg.to_dict(), "adapter_dir": adapter_dir,
                                   "threads": threads},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=n_actors), **res,
        )
    ds = ds.map_batches(
        Score, fn_constructor_kwargs={"cfg": cfg.to_dict(), "threads": score_threads},
        batch_size=cfg.n_eval_samples * cfg.eval_batch_prompts,  # one generation group
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=res.get("num_cpus", 0.5), memory=memory.scoring_memory(),
    )
    gens = pd.concat([b for b in ds.iter_batches(batch_format="pandas", batch_size=None)],
                     ignore_index=True)
    return finish_table(cfg, gens, started, clocks)


def eval_items(cfg: TrialConfig, temperatures: list[float]) -> tuple[list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """The held-out prompt rows, and the evaluation's items: one per (temperature, generation
    group of ``eval_batch_prompts`` prompts), the group's rows as JSON and the temperature a
    column, temperature-major. The same items whoever samples them (Ray Data actors or the
    Train worker), so the same samples."""
    examples = eval_examples(cfg)
    rows = [prompt_row(i, ex) for i, ex in enumerate(examples)]
    step = cfg.eval_batch_prompts
    groups = [{"group_index": g, "rows": json.dumps(rows[s : s + step])}
              for g, s in enumerate(range(0, len(rows), step))]
    return rows, [{**group, "temperature": float(t)} for t in temperatures for group in groups]


def finish_table(cfg: TrialConfig, gens: pd.DataFrame, started: float,
                 clocks: dict[str, float | None] | None = None) -> pd.DataFrame:
    """Scored samples as stored (the generations.parquet schema): ordered by temperature,
    prompt and sample, the clock columns summed into ``clocks`` (when given: start-up since
    ``started``, generation and scoring seconds) and dropped, the sampling settings added."""
    gens = gens.sort_values(["eval_temperature", "prompt_index", "sample_index"],
                            ignore_index=True)
    if clocks is not None:
        clocks.update(_phase_seconds(gens, started))
    gens = gens.drop(columns=[c for c in TIMING_COLUMNS if c in gens.columns])
    drawn_at = gens.pop("eval_temperature").astype(float)
    for col in SAMPLING_COLUMNS:  # in this order, after the scores (the stored schema)
        gens[col] = drawn_at if col == "eval_temperature" else getattr(cfg, col)
    gens["n_eval_samples"] = cfg.n_eval_samples
    return gens


def _phase_seconds(gens: pd.DataFrame, started: float) -> dict[str, float | None]:
    """Start-up, generation and scoring seconds from the actors' clock columns (None where a
    path records none, e.g. the vLLM processor's generation)."""

    def total(col: str) -> float | None:
        return float(gens[col].sum()) if col in gens.columns else None

    first = float(gens[GEN_STARTED].min()) if GEN_STARTED in gens.columns else None
    return {"evaluation_startup": None if first is None else max(0.0, first - started),
            "generation": total(GEN_SECONDS), "scoring": total(SCORE_SECONDS)}


def _vllm_processor(cfg: TrialConfig, rows: list[dict[str, Any]], adapter_dir: str | None,
                    n_actors: int, res: dict[str, float], temperatures: list[float]) -> Any:
    """Generation with Ray Data LLM (``ray.data.llm.build_processor`` + a
    ``vLLMEngineProcessorConfig``): one row per sample (prompt-major), chat-formatted by the
    task here, sampled by vLLM engines on the converted local base model, the trial's adapter
    loaded per request through the row's ``model`` (Ray's dynamic LoRA loading), each sample
    seeded by (``eval_seed``, prompt index, sample index) at each of ``temperatures`` (a row's
    ``eval_temperature``). Out: the columns ``Generate`` writes.

    Two settings make it run on a CPU-only cluster too (Ray 2.60): the engine stage asks for
    ``num_gpus=1`` unless a ``placement_group_config`` gives its bundle (here: the CPU share
    ``plan_actors`` sized), and ``log_engine_metrics`` needs ``ray.serve`` (not in this
    project's Ray extras), so it is off."""
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.backends import engine_kwargs, sample_seed

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import load_tokenizer, resolve_model_path

    path = resolve_model_path(cfg.model)
    tok, task = load_tokenizer(path), get_task(cfg)
    n = cfg.n_eval_samples
    chat = [task.format_prompt(tok, example_of(row)) for row in rows]
    items = [{**row, "sample_index": j, "chat_prompt": chat[i], "eval_temperature": float(t),
              "seed": sample_seed(cfg.eval_seed, int(row["prompt_index"]), j)}
             for t in temperatures for i, row in enumerate(rows) for j in range(n)]
    cuda = bool(res.get("num_gpus"))
    extra: dict[str, Any] = {}
    lora: str | None = None
    if adapter_dir is not None:
        if is_uri(str(adapter_dir)):  # Ray fetches <dynamic_lora_loading_path>/<name> itself
            parent, _, lora = str(adapter_dir).rstrip("/").rpartition("/")
            extra["dynamic_lora_loading_path"] = parent
        else:
            lora = str(Path(adapter_dir).resolve())
    if not cuda:
        extra["placement_group_config"] = {"bundles": [{"CPU": res.get("num_cpus", 0.5) / 2}]}
        extra["runtime_env"] = {"env_vars": {"VLLM_CPU_KVCACHE_SPACE":
                                             str(memory.VLLM_CPU_KV_GIB)}}
    config = vLLMEngineProcessorConfig(
        model_source=path, engine_kwargs=engine_kwargs(cfg, cuda),
        batch_size=n * cfg.eval_batch_prompts, concurrency=n_actors,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
        log_engine_metrics=False, **extra,
    )
    keep = ("prompt_index", "prompt_id", "sample_index", "prompt", "target", "group", "meta",
            "eval_temperature")
    sampling = {"top_p": cfg.eval_top_p,
                "max_tokens": cfg.eval_max_new_tokens, "stop_token_ids": [tok.eos_token_id],
                "skip_special_tokens": True}

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        out = {f"_{k}": row[k] for k in keep}  # ``prompt`` is the engine's input column
        out.update(prompt=row["chat_prompt"],
                   sampling_params={**sampling, "seed": int(row["seed"]),
                                    "temperature": float(row["eval_temperature"])})
        if lora is not None:
            out["model"] = lora
        return out

    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[f"_{k}"] for k in keep}
        out["text"] = str(row["generated_text"])
        out["token_count"] = len(row["generated_tokens"])  # up to and including EOS, as HF
        return out

    # the row-wise pre/post steps are light: a small CPU share each (the default of 1 CPU
    # cannot be granted on a small machine whose CPUs the trial and the actors hold: deadlock)
    # on CPU the engine and the two steps split the generation share ``plan_actors`` sized
    share = res.get("num_cpus", 1.0)
    light = {"num_cpus": 0.25 if cuda else share / 4}
    processor = build_processor(config, preprocess=preprocess, postprocess=postprocess,
                                preprocess_map_kwargs=light, postprocess_map_kwargs=light)
    request_engine_memory(processor, res.get("memory", 0))
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(temperatures) * len(rows)
                                                             // cfg.eval_batch_prompts))
    return processor(ds)


def request_engine_memory(processor: Any, nbytes: float) -> list[str]:
    """Make the vLLM engine stage of a Ray Data LLM ``processor`` request ``nbytes`` of Ray's
    ``memory`` (``plan_actors``' estimate for a vLLM engine: its weights and KV share). The
    processor config has no field for it, and a ``memory`` key in its placement-group bundle
    is refused by Ray ("The resources dictionary must not contain the key 'memory'"), so it
    goes into the stage's own ``map_batches`` arguments. Returns the stages given it."""
    if not nbytes:
        return []
    named = []
    for name in processor.list_stage_names():
        stage = processor.get_stage_by_name(name)
        if type(stage).__name__ == "vLLMEngineStage":
            stage.map_batches_kwargs["memory"] = int(nbytes)
            named.append(name)
    return named
