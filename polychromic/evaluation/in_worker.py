"""A trial's final evaluation in its own Train worker (``eval_placement``).

When the last training step ends, the worker already holds what an evaluation actor would
load again: torch and transformers imported, the base model with the trained adapter, and
(for an embedding diversity measure) the sentence encoder. Evaluating there removes the
actors' start-up (process spawn, imports, model + adapter + encoder loads: 9 s of a 50 s smoke
trial, BENCHMARKS) without changing a sample: the items, the per-prompt seeds, the sampler and
the scoring code are the pipeline's own (``eval_items``, ``generate_groups``, ``score_batch``),
so the rows are those the Ray Data pipeline writes (row for row on CPU, tested; on a GPU a
quantized base keeps kbit training's fp32 layer norms in the worker, where an actor loads them
in bf16, so the logits, and rarely a sampled token, can differ in their last bits).

The files go into the final checkpoint (``CHECKPOINT_EVALUATION``), which Ray Train stores
where the trial can read it, whichever node the worker ran on; the trial copies them into its
folder and computes the metrics from them (``adopt_evaluation``), as for an evaluation by
actors.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polychromic.core.config import TrialConfig
from polychromic.evaluation.actors import generate_groups, score_batch
from polychromic.evaluation.pipeline import eval_items, finish_table, write_evaluation
from polychromic.metrics.aggregate import aggregate
from polychromic.metrics.encoder import get_encoder
from polychromic.store import layout
from polychromic.store.generations import read_generations
from polychromic.store.remote import download, join, read_text
from polychromic.tasks import get_task


def evaluate_loaded(cfg: TrialConfig, model: Any, tok: Any, out_dir: Path,
                    frontier: bool = False) -> dict[str, float | None]:
    """Sample and score the held-out prompts with an already loaded ``model`` (the trained
    adapter attached) and write ``out_dir/generations.parquet`` (and, with ``frontier``,
    ``out_dir/frontier.parquet`` at every temperature of ``cfg.frontier_grid()``) and
    ``out_dir/timings.json``. Returns the evaluation's phases (EVALUATION_PHASES of
    polychromic.core.phases). The model is put in eval mode and back."""
    started = time.time()
    temps = cfg.frontier_grid() if frontier else []
    task, encoder = get_task(cfg), get_encoder()
    _, items = eval_items(cfg, temps or [cfg.eval_temperature])
    was_training = model.training
    model.eval()
    try:
        parts = []
        for item in items:  # one generation group at one temperature, scored as it comes
            rows = generate_groups(model, tok, task, cfg, {"rows": [item["rows"]],
                                                           "temperature": [item["temperature"]]})
            batch = {k: np.asarray(v, dtype=object if k == "text" else None)
                     for k, v in rows.items()}
            parts.append(pd.DataFrame(score_batch(task, encoder, batch)))
    finally:
        model.train(was_training)
    clocks: dict[str, float | None] = {}
    gens = finish_table(cfg, pd.concat(parts, ignore_index=True), started, clocks)
    writing = time.time()
    write_evaluation(cfg, gens, Path(out_dir), frontier=bool(temps))
    clocks["writing"] = time.time() - writing
    (Path(out_dir) / layout.EVALUATION_TIMINGS).write_text(json.dumps(clocks))
    return clocks


def adopt_evaluation(cfg: TrialConfig, checkpoint: str, trial_dir: Path,
                     timings: dict[str, float | None]) -> dict[str, Any] | None:
    """The metrics of an evaluation the Train worker stored in the final ``checkpoint`` (a
    folder or a URI): its ``generations.parquet`` (and ``frontier.parquet``) copied into
    ``trial_dir``, each written whole, and ``timings`` given the worker's phases. None when
    the checkpoint holds no evaluation (evaluated by actors, or the worker's evaluation
    failed): the caller evaluates by actors."""
    where = join(checkpoint, layout.CHECKPOINT_EVALUATION)
    saved = read_text(join(where, layout.EVALUATION_TIMINGS))
    if saved is None:
        return None
    with tempfile.TemporaryDirectory(prefix="polychromic-eval-") as scratch:
        local = download(where, Path(scratch))  # a local checkpoint is read where it is
        for name in (layout.FRONTIER, layout.GENERATIONS):  # generations last: it marks done
            if (local / name).is_file():
                tmp = trial_dir / f".{name}.tmp"
                shutil.copyfile(local / name, tmp)
                tmp.replace(trial_dir / name)
    timings.update(json.loads(saved))
    gens = read_generations(trial_dir / layout.GENERATIONS)
    return aggregate(gens, class_threshold=cfg.class_threshold)
