"""Before a study: headroom, power and cost (``study/run.py --space X --plan``).

Trains nothing. On the cluster the study would use:

1. evaluates the *base model* (no adapter) with the space's baseline settings through the same
   Ray Data pipeline as every trial: ``<study>/plan/generations.parquet``;
2. builds the floor and ceiling sample sets of those generations (``polychromic.stats.headroom``):
   ``<study>/plan/headroom.parquet``;
3. times a few real training steps (an SFT step and a diversity step, λ = 1, after one
   warm-up step) in a Ray task with a Train worker's resources;
4. reports per metric: the base model's value, floor, ceiling, headroom, and the planned
   minimum detectable effect (``polychromic.stats.power``: from the base model's own sampling noise);
   and the cost (``polychromic.tuning.cost``): wall time, GPU-hours and $ for the space's steps and
   trials with and without ASHA. All of it goes to ``<study>/plan/plan.json``.

The λ=0 baseline of the study is fine-tuned (SFT), so its diversity can differ from the base
model's (30 SFT steps raised per-prompt semantic diversity from 0.77 to 0.87 on chitchat at
temperature 1): the plan's headroom is the base model's, and the study reports the baseline's.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core import columns
from polychromic.core.config import TrialConfig
from polychromic.evaluation.pipeline import evaluate
from polychromic.metrics.aggregate import COMPARED, HEADLINE, aggregate
from polychromic.metrics.encoder import get_encoder
from polychromic.stats import headroom, power
from polychromic.stats.bootstrap import N_RESAMPLES, SEED, paired_delta, weighted_metrics
from polychromic.store import layout
from polychromic.store.generations import read_generations
from polychromic.store.records import write_json
from polychromic.tasks import get_task
from polychromic.tuning import cost
from polychromic.tuning.feasibility import refuse_infeasible, worker_bundle
from polychromic.tuning.runner import TRIAL_DRIVER_CPU, concurrency
from polychromic.tuning.space import Space

log = logging.getLogger(__name__)


def time_steps(cfg_dict: dict[str, Any], repeats: int = 1) -> dict[str, float]:
    """Seconds of one SFT step and one diversity step (λ = 1) of ``cfg``, each the median of
    ``repeats`` after a warm-up step; the model load is timed apart."""
    import torch

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import load_for_training

    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.training.step import step_gradients

    cfg = TrialConfig.from_dict({**cfg_dict, "lambda_": 1.0,
                                 "compute_every_n_steps": max(2, cfg_dict["compute_every_n_steps"])})
    torch.set_num_threads(cfg.torch_threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.use_gpu is not False
                          else "cpu")
    t0 = time.perf_counter()
    model, tok = load_for_training(cfg, device)
    task = get_task(cfg)
    encoder = get_encoder(device=str(device) if device.type == "cuda" else "cpu")
    examples = task.examples("train")[: cfg.batch_size * cfg.grad_accum // cfg.num_workers]
    params = [p for p in model.parameters() if p.requires_grad]
    load = time.perf_counter() - t0
    n_div = max(1, cfg.max_examples_for_diversity // cfg.num_workers)

    def run(step: int) -> float:
        start = time.perf_counter()
        step_gradients(model, tok, task, encoder, examples, cfg, step, params, n_diversity=n_div)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(1)  # warm-up
    sft = statistics.median(run(1) for _ in range(repeats))
    div = statistics.median(run(0) for _ in range(repeats))
    return {"sft_seconds": sft, "diversity_seconds": div, "load_seconds": load,
            "device": device.type}


def planned_se(gens: pd.DataFrame) -> dict[str, float]:
    """SE of a future trial − baseline delta per metric, from sampling noise alone: each
    prompt's samples split into two halves (even / odd sample index) compared as a paired
    study, scaled from n/2 to n samples per prompt by 1/√2 (see ``polychromic.stats.power``)."""

    parity = gens["sample_index"].to_numpy(dtype=np.int64) % 2
    even, odd = gens[parity == 0], gens[parity == 1]
    if even.empty or odd.empty:
        return {}
    threshold = float(gens.attrs.get("class_threshold", 0.8))
    a = weighted_metrics(even, class_threshold=threshold)
    b = weighted_metrics(odd, class_threshold=threshold)
    n_prompts = gens["prompt_id"].nunique()
    return {m: paired_delta(a[m], b[m], n_prompts, N_RESAMPLES, SEED).se / math.sqrt(2)
            for m in a if m in b}


def rows(metrics: dict[str, Any], bounds: dict[str, dict[str, float]],
         se: dict[str, float]) -> list[dict[str, Any]]:
    """One row per compared metric: value, floor, ceiling, headroom, MDE (abs and %)."""

    out = []
    for m in COMPARED:
        value = float(metrics.get(m, float("nan")))
        if not math.isfinite(value) and m not in se:
            continue
        floor = bounds.get(headroom.FLOOR, {}).get(m, float("nan"))
        ceiling = bounds.get(headroom.CEILING, {}).get(m, float("nan"))
        mde = power.mde(se.get(m, float("nan")))
        out.append({"metric": m, "value": value, "floor": floor, "ceiling": ceiling,
                    "headroom": headroom.headroom(value, floor, ceiling), "mde": mde,
                    "mde_relative": 100 * mde / abs(value) if value else float("nan"),
                    "definition": (columns.column(m).definition if columns.column(m) else "")})
    return out


#: the metrics the plan's frontier table shows at each temperature (quality, then diversity)
FRONTIER_METRICS = ("pass@1", "quality_mean", "semantic_diversity_per_prompt", "distinct_2")


def frontier_rows(front: pd.DataFrame, cfg: TrialConfig, pool: Any,
                  eval_sets: pd.DataFrame) -> list[dict[str, Any]]:
    """The base model's temperature frontier: per temperature of ``front`` (its
    ``eval_temperature`` column), every compared metric and the headroom of every diversity
    metric against that temperature's own floor and ceiling (the ceiling's references are cut
    to that temperature's sample lengths; the eval temperature reuses ``eval_sets``)."""
    out = []
    for temp, part in front.groupby("eval_temperature", sort=True):
        part = part.reset_index(drop=True)
        values = aggregate(part, class_threshold=cfg.class_threshold)
        sets = (eval_sets if float(temp) == cfg.eval_temperature
                else headroom.build_sets(part, pool, get_encoder()))
        bounds = headroom.bounds(sets, cfg.class_threshold)
        room = {m: headroom.headroom(float(values.get(m, float("nan"))),
                                     bounds[headroom.FLOOR].get(m, float("nan")),
                                     bounds[headroom.CEILING].get(m, float("nan")))
                for m in columns.DIVERSITY}
        out.append({"temperature": float(temp),
                    "metrics": {m: float(values.get(m, float("nan"))) for m in COMPARED},
                    "headroom": room})
    return out


def timing_options(cfg: TrialConfig, cluster_gpus: float) -> dict[str, Any]:
    """Ray options of the step-timing task: it loads the model and takes a trial's steps, so
    it requests what one Train worker does (``feasibility.worker_bundle``: CPUs, a GPU when
    the trial uses one, the memory estimate, ``worker_resources``)."""
    bundle = worker_bundle(cfg, cluster_gpus)
    custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
    return {"num_cpus": bundle["CPU"], "num_gpus": bundle.get("GPU", 0.0),
            **({"memory": int(bundle["memory"])} if bundle.get("memory") else {}),
            "resources": custom or None}


def make_plan(space: Space, root: Path, price: float) -> dict[str, Any]:
    """Run steps 1–4 of the module docstring on the connected Ray cluster; write and return
    the plan."""
    import ray

    cfg = space.trial_config(space.baseline())
    # the step timing asks for what a Train worker does: a request the cluster can never
    # place would wait forever, so it is refused here (one line) as a study's would be
    pending = refuse_infeasible(cfg, TRIAL_DRIVER_CPU, space.source)
    if pending:
        log.info("%s", pending)
    folder = layout.plan_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    gpus = ray.cluster_resources().get("GPU", 0)
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else gpus > 0
    temps = cfg.frontier_grid()
    t0 = time.perf_counter()
    metrics = evaluate(cfg, None, folder, frontier=bool(temps))  # every temperature, one pass
    eval_seconds = time.perf_counter() - t0
    gens = read_generations(folder / layout.GENERATIONS)

    pool = headroom.reference_pool(get_task(cfg))
    sets = headroom.build_sets(gens, pool, get_encoder())
    headroom.write_sets(sets, folder / layout.HEADROOM)
    bounds = headroom.bounds(sets, getattr(cfg, "class_threshold", None))
    front = (frontier_rows(read_generations(folder / layout.FRONTIER), cfg, pool, sets)
             if temps else [])
    gens.attrs["class_threshold"] = cfg.class_threshold
    se = planned_se(gens)
    # timed after the evaluation, not beside it: on a small machine the two would share cores
    # and the step times (the cost estimate) would come out several times too high
    steps = ray.get(ray.remote(time_steps).options(**timing_options(cfg, gpus))
                    .remote(cfg.to_dict()))
    samples = int(len(gens))
    sched = space.scheduler
    asha = (cost.asha_fraction(cfg.steps, int(sched["grace_period"]),
                               float(sched["reduction_factor"]))
            if sched.get("enabled", True) else 1.0)
    est = cost.estimate(
        steps=cfg.steps, compute_every_n_steps=cfg.compute_every_n_steps,
        sft_seconds=steps["sft_seconds"], diversity_seconds=steps["diversity_seconds"],
        eval_samples=samples,
        sample_seconds=eval_seconds / max(1, samples * max(1, len(temps))),
        num_trials=space.num_trials, full_trials=1 + len(space.points), asha=asha,
        concurrency=concurrency(space, ray.cluster_resources()),
        gpus_per_trial=cfg.num_workers if use_gpu else 0.0, price=price)
    plan = {
        "space": space.source, "model": cfg.model, "task": cfg.task,
        "eval_prompts": int(gens["prompt_id"].nunique()), "eval_samples": samples,
        "eval_seconds": eval_seconds, **steps, "device": steps["device"],
        "gpu_hour_price": price, "metrics": rows(metrics, bounds, se),
        "cost": est.__dict__, "steps": cfg.steps, "num_trials": space.num_trials,
        "eval_temperature": cfg.eval_temperature, "frontier": front,
        "frontier_temperatures": temps,
    }
    write_json(folder / layout.PLAN_FILE, plan)  # atomic; numpy types and NaN handled
    return plan


def _f(value: float, digits: int = 3) -> str:
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        return "—"
    return "0" if abs(value) < 1e-9 else f"{value:.{digits}g}"


def _pct(value: float) -> str:
    """A percentage without exponent: ``7.2``, ``52``, ``120`` (``_f`` would print 1.2e+02)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        return "—"
    return f"{value:.0f}" if abs(value) >= 10 else _f(value, 2)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _width(metric: str) -> int:
    """A frontier table column's width: its name and two spaces, at least 10."""
    return max(10, len(metric) + 2)


def frontier_lines(plan: dict[str, Any]) -> list[str]:
    """The base model's temperature frontier as a table (none for an older plan or with the
    frontier off): per temperature the headline metrics and the semantic-diversity headroom,
    so the evaluation temperature can be chosen where a diversity gain has room."""
    front = plan.get("frontier") or []
    if not front:
        return []
    head = "headroom_semantic_diversity_per_prompt"
    lines = ["", f"temperature frontier of the base model (one pipeline pass, "
             f"{len(front)} temperatures; * = the space's eval_temperature):",
             f"{'T':>6}" + "".join(f"{m:>{_width(m)}}" for m in FRONTIER_METRICS)
             + f"{'headroom':>10}"]
    for row in front:
        mark = "*" if row["temperature"] == plan.get("eval_temperature") else " "
        room = row["headroom"].get("semantic_diversity_per_prompt", float("nan"))
        lines.append(f"{row['temperature']:>5g}{mark}"
                     + "".join(f"{_f(row['metrics'].get(m, float('nan'))):>{_width(m)}}"
                               for m in FRONTIER_METRICS)
                     + f"{(_f(100 * room, 2) + '%') if math.isfinite(room) else '—':>10}")
    lines.append(f"headroom here = {head.removeprefix('headroom_')}'s headroom at that "
                 "temperature (its own floor and ceiling); the study's λ=0 baseline is "
                 "evaluated at the same temperatures after training")
    return lines


def report_lines(plan: dict[str, Any]) -> list[str]:
    """The plan as the lines ``--plan`` prints (headline metrics first)."""
    lines = [f"plan for {plan['space']}: base model {plan['model']} on {plan['task']}, "
             f"{plan['eval_prompts']} prompts × {plan['eval_samples'] // max(1, plan['eval_prompts'])}"
             " samples (no training)", ""]
    by = {r["metric"]: r for r in plan["metrics"]}
    w = max([30, *map(len, by)]) + 2  # the longest name and two spaces: columns never touch
    header = f"{'metric':<{w}}{'base':>8}{'floor':>8}{'ceiling':>9}{'headroom':>10}{'MDE':>9}{'MDE %':>8}"
    lines.append(header)

    order = [m for m in HEADLINE if m in by] + [m for m in by if m not in HEADLINE]
    for m in order:
        r = by[m]
        h = r["headroom"]
        tag = f"  {headroom.ceiling_state(h)}" if isinstance(h, float) and \
            headroom.ceiling_state(h) else ""
        lines.append(f"{m:<{w}}{_f(r['value']):>8}{_f(r['floor']):>8}{_f(r['ceiling']):>9}"
                     f"{(_pct(100 * h) + '%') if math.isfinite(h) else '—':>10}"
                     f"{('±' + _f(r['mde'], 2)) if math.isfinite(r['mde']) else '—':>9}"
                     f"{(_pct(r['mde_relative']) + '%') if math.isfinite(r['mde_relative']) else '—':>8}"
                     f"{tag}")
    lines += frontier_lines(plan)
    n_temps = max(1, len(plan.get("frontier_temperatures") or []))
    c = plan["cost"]
    lines += [
        "",
        "headroom = (ceiling − base) / (ceiling − floor): floor = each prompt's samples identical, "
        "ceiling = unrelated reference texts of the task; < 10% = at ceiling: no gain can be shown; "
        "< 0 = past ceiling (beyond unrelated texts)",
        f"MDE = {power.z_factor():.2f} × SE: the smallest trial − baseline change this study size "
        "detects with 80% power at α = 0.05 (SE from the base model's sampling noise only: "
        "optimistic; seeds and training add to it)",
        "",
        f"measured: SFT step {plan['sft_seconds']:.2f} s, diversity step "
        f"{plan['diversity_seconds']:.2f} s ({plan['device']}), evaluation "
        f"{plan['eval_seconds']:.1f} s for {plan['eval_samples'] * n_temps} samples "
        f"({plan['eval_seconds'] / max(1, plan['eval_samples'] * n_temps):.3f} s/sample, "
        "start-up included" + (f"; {n_temps} temperatures in one pass" if n_temps > 1 else "")
        + ")",
        f"cost: {plan['num_trials']} trials × {plan['steps']} steps ≈ {_duration(c['study_seconds'])}"
        f" of trial time with ASHA ({100 * (1 - c['asha_fraction']):.0f}% of searched steps "
        f"saved, idealised), {_duration(c['study_seconds_no_asha'])} without; "
        f"≈ {_duration(c['wall_seconds'])} wall at {c['concurrency']} trial(s) at once; "
        + (f"{c['gpu_hours']:.2f} GPU-hours ≈ ${c['cost_usd']:.2f} at "
           f"${plan['gpu_hour_price']:.2f}/GPU-hour" if c["gpu_hours"] > 0 else
           f"0 GPU-hours (CPU; on GPUs the same steps would be measured there, "
           f"${plan['gpu_hour_price']:.2f}/GPU-hour)"),
        "not counted: process and model start-up per trial (tens of seconds on CPU)"
        + (f"; the λ=0 baseline's frontier, {n_temps - 1} more evaluations in its own pass "
           f"(≈ {_duration((n_temps - 1) * plan['eval_samples'] * plan['eval_seconds'] / max(1, plan['eval_samples'] * n_temps))}"
           "), and the frontier_for sweep after the study" if n_temps > 1 else ""),
        "the study's λ=0 baseline is fine-tuned: its headroom can differ from the base model's; "
        "the leaderboard reports the baseline's",
    ]
    return lines
