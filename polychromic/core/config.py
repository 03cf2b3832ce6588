"""One trial's settings: a flat dataclass whose field names are the names used everywhere
(search-space YAML, ``--set``, W&B config, leaderboard columns).

``TrialConfig.from_dict`` validates every value and raises ``ConfigError`` naming the field,
so bad input is refused before Ray or a model is started.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

from polychromic.core.errors import ConfigError

QUANTIZE = ("auto", "none", "4bit", "8bit")
ADVANTAGES = ("leave_one_out", "subsets")
EVAL_SPLITS = ("test", "validation")
ROLES = ("search", "confirm")
#: the set diversity d(S) the polychromic objective rewards (implemented in polychromic.training.set_objective)
DIVERSITY_MEASURES = ("semantic", "semantic_classes", "distinct_2", "self_bleu")
#: who samples completions (diversity steps and evaluation); see polychromic.models.backends
GENERATION_BACKENDS = ("auto", "hf", "vllm")
#: which trials are also evaluated at every frontier temperature (the λ=0 baseline always is)
FRONTIER_FOR = ("baseline", "pareto", "all")
#: where a trial's final evaluation runs (``TrialConfig.eval_placement``)
EVAL_PLACEMENTS = ("auto", "worker", "actors")
#: the default frontier temperatures (the space's ``eval_temperature`` is added to them)
FRONTIER_TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.2)
#: the highest frontier temperature, and the most temperatures one frontier may hold
MAX_FRONTIER_TEMPERATURE, MAX_FRONTIER_POINTS = 2.0, 16


@dataclass
class TrialConfig:
    """Everything one trial needs. Defaults are the embedded, CPU-sized ones."""

    # --- model -------------------------------------------------------------------------
    model: str = "smollm2-135m-instruct"
    """Embedded name (``smollm2-135m-instruct``, ``tiny`` for tests), a local folder or a hub id."""
    quantize: str = "auto"
    """``auto``: 4-bit NF4 where CUDA is present, unquantized on CPU; or ``none``/``4bit``/``8bit``."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )

    # --- task --------------------------------------------------------------------------
    task: str = "chitchat"
    data: str | None = None
    """Data file for file-backed tasks (``replies``)."""
    prompt_field: str = "prompt"
    response_field: str = "response"
    split_field: str | None = None
    group_field: str | None = None
    quality_threshold: float | None = None
    """Pass/fail threshold of the task's checker; ``None`` = the task's calibrated default."""
    skip_bad_rows: bool = False
    max_train_examples: int | None = None

    # --- SFT -----------------------------------------------------------------------------
    steps: int = 200
    batch_size: int = 8
    """Examples per micro-batch on one worker; the effective batch of an optimizer step is
    ``batch_size × grad_accum`` whatever ``num_workers`` is (each worker takes its share)."""
    grad_accum: int = 1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    max_length: int = 128
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them: less
    memory per Train worker (``--check`` prints both estimates), about a third more compute."""
    seed: int = 0
    report_every: int = 10
    """Report metrics and save a checkpoint every this many optimizer steps (and at the end)."""

    # --- polychromic objective ---------------------------------------------------------
    lambda_: float = 0.0
    n_generations: int = 4
    compute_every_n_steps: int = 5
    max_examples_for_diversity: int = 4
    advantage: str = "leave_one_out"
    subset_size: int | None = None
    """Only for ``advantage: subsets``: size of the scored subsets (default ⌈n/2⌉, at least 2)."""
    diversity_measure: str = "semantic"
    """d(S) in f(S) = mean quality × d(S): ``semantic`` (1 − mean pairwise cosine, clipped to
    [0, 1]), ``semantic_classes`` ((classes − 1)/(n − 1), samples joined when their embedding
    cosine ≥ ``class_threshold``), ``distinct_2`` (distinct bigrams / bigrams of the set) or
    ``self_bleu`` (1 − the set's Self-BLEU-4). See polychromic/training/set_objective.py."""
    class_threshold: float = 0.8
    """Embedding cosine at or above which two samples are the same equivalence class: used by
    ``diversity_measure: semantic_classes`` and by the ``distinct_classes`` evaluation metric."""
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    generation_backend: str = "auto"
    """Who samples completions, on diversity steps and in evaluation: ``hf`` (transformers
    ``generate``), ``vllm`` (a colocated vLLM engine in the Train worker, vLLM actors in the
    evaluation pipeline; needs the ``[vllm]`` extra) or ``auto`` (vLLM where CUDA and vLLM are
    both present, else HF). The sampling distribution is the same; the log-probabilities of
    the surrogate always come from the trained model."""

    # --- evaluation --------------------------------------------------------------------
    n_eval_prompts: int = 32
    n_eval_samples: int = 10
    eval_max_new_tokens: int = 48
    eval_temperature: float = 1.0
    eval_top_p: float = 0.95
    eval_seed: int = 1234
    eval_batch_prompts: int = 4
    """Prompts per generation call in evaluation (each gives ``n_eval_samples`` sequences)."""
    eval_actors: int = 0
    """Generation actors in the evaluation pipeline; 0 = sized from the cluster's resources."""
    eval_placement: str = "auto"
    """Where a study trial's final evaluation runs: ``actors`` (the Ray Data pipeline: base
    model + adapter loaded again in generation actors, scoring actors beside them),
    ``worker`` (in the trial's Train worker, right after its last step: the trained model
    already in memory, no actor start-up; same items, seeds and scoring code, so the same
    samples: row for row on CPU; on a GPU a quantized base keeps kbit training's fp32 norms
    in the worker, so the last bits of the logits can differ) or ``auto`` (the worker where the pipeline would run a single HF generation actor
    anyway and the trial trains on one worker, else the actors: several GPUs or many cores
    shard the samples across actors). The vLLM backend always evaluates in actors."""
    frontier_temperatures: list[float] = field(
        default_factory=lambda: list(FRONTIER_TEMPERATURES))
    """The baseline's temperature frontier: its final adapter is also evaluated at each of
    these temperatures (in (0, 2], distinct) plus ``eval_temperature``, on the same prompts,
    sample counts and per-sample seeds, in one pipeline pass (``frontier.parquet``); ``[]``
    turns the frontier off. Temperature trades quality for diversity for free: a trial's gain
    is judged against this curve (issue 20; the statistics are polychromic.stats)."""
    frontier_for: str = "pareto"
    """Which trials get the frontier sweep besides the λ=0 baseline: ``baseline`` (only it),
    ``pareto`` (also the study's Pareto-optimal trials, after the study) or ``all``."""
    eval_split: str = "test"
    """Where the held-out prompts come from: ``test`` (selection: every study trial) or
    ``validation`` (the confirmation split, disjoint from training and selection; set by
    ``study/confirm.py``)."""

    # --- resources ---------------------------------------------------------------------
    num_workers: int = 1
    """Data-parallel Train workers per trial; they split the effective batch and the diversity
    prompts, and average the LoRA gradients with one all-reduce."""
    use_gpu: bool | None = None
    """``None``: use GPUs when the cluster has them."""
    cpus_per_worker: float = 1.0
    torch_threads: int = 0
    """CPU threads per worker for torch; 0 = all cores of the node (Ray would otherwise pin 1)."""
    worker_resources: dict[str, float] = field(default_factory=dict)
    """Extra Ray resources each Train worker asks for, on top of ``cpus_per_worker`` and the
    GPU: e.g. ``{"trainer_node": 1}`` keeps training on the nodes started with that custom
    resource (``ray start --resources '{"trainer_node": 2}'``). Empty = CPU/GPU only."""
    max_failures: int = 2
    """Restarts of a trial from its last checkpoint after a worker or node dies."""

    # --- derived / bookkeeping -----------------------------------------------------------
    wandb: bool = True
    role: str = "search"
    """``search`` (a study trial) or ``confirm`` (a retraining by ``study/confirm.py``)."""
    confirm_of: str | None = None
    """``role: confirm``: the study trial this run re-trains (or whose baseline it is)."""

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrialConfig:
        """Build and validate; unknown keys and bad values raise ``ConfigError``."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"expected a mapping, got {type(values).__name__}", source)
        known = cls.field_names()
        for key in values:
            if key not in known:
                raise ConfigError(key, f"unknown setting (known: {', '.join(sorted(known))})", source)
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        coerced = {k: _coerce(k, v, types[k], source) for k, v in values.items()}
        cfg = cls(**coerced)
        cfg.validate(source)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def frontier_grid(self) -> list[float]:
        """The temperatures of the frontier, ascending: ``frontier_temperatures`` plus
        ``eval_temperature``; [] when ``frontier_temperatures`` is empty (frontier off)."""
        if not self.frontier_temperatures:
            return []
        return sorted({float(t) for t in self.frontier_temperatures} | {self.eval_temperature})

    def validate(self, source: str = "config") -> None:
        """Raise ``ConfigError`` for the first bad value, naming the field."""

        def bad(name: str, why: str) -> None:
            raise ConfigError(name, f"{why} (got {getattr(self, name)!r})", source)

        if not isinstance(self.model, str) or not self.model.strip():
            bad("model", "must be a non-empty name, path or hub id")
        for name, allowed in (("quantize", QUANTIZE), ("advantage", ADVANTAGES),
                              ("eval_split", EVAL_SPLITS), ("role", ROLES),
                              ("diversity_measure", DIVERSITY_MEASURES),
                              ("generation_backend", GENERATION_BACKENDS),
                              ("frontier_for", FRONTIER_FOR),
                              ("eval_placement", EVAL_PLACEMENTS)):
            if getattr(self, name) not in allowed:
                bad(name, f"must be one of {', '.join(allowed)}")
        if self.generation_backend == "vllm" and importlib.util.find_spec("vllm") is None:
            bad("generation_backend", "vllm is not installed here (pip install "
                "'polychromic-study[vllm]' on a GPU machine, or use hf / auto)")
        if not math.isfinite(self.class_threshold) or not 0 < self.class_threshold <= 1:
            bad("class_threshold", "must be in (0, 1] (a cosine similarity above which two "
                "samples count as the same class)")
        for name in ("lora_r", "lora_alpha", "steps", "batch_size", "grad_accum", "report_every",
                     "max_new_tokens", "n_eval_prompts", "eval_max_new_tokens", "num_workers",
                     "eval_batch_prompts", "compute_every_n_steps"):
            if getattr(self, name) < 1:
                bad(name, "must be ≥ 1")
        if self.max_length < 8:
            bad("max_length", "must be ≥ 8")
        if self.n_generations < 2:
            bad("n_generations", "must be ≥ 2 (diversity needs at least two samples per prompt)")
        if self.max_examples_for_diversity < 1:
            bad("max_examples_for_diversity", "must be ≥ 1")
        if (self.batch_size * self.grad_accum) % self.num_workers:
            bad("num_workers", f"must divide the effective batch batch_size × grad_accum = "
                f"{self.batch_size * self.grad_accum} (each worker takes an equal share)")
        if self.max_examples_for_diversity < self.num_workers:
            bad("max_examples_for_diversity", f"must be ≥ num_workers={self.num_workers} "
                "(each worker scores at least one prompt's samples)")
        if self.n_eval_samples < 1:
            bad("n_eval_samples", "must be ≥ 1")
        if self.subset_size is not None and not 2 <= self.subset_size <= self.n_generations:
            bad("subset_size", f"must be between 2 and n_generations={self.n_generations}")
        for name in ("lambda_", "learning_rate", "weight_decay", "lora_dropout", "temperature",
                     "top_p", "eval_temperature", "eval_top_p", "cpus_per_worker"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                bad(name, "must be a finite number ≥ 0")
        if self.learning_rate <= 0:
            bad("learning_rate", "must be > 0")
        if self.lora_dropout >= 1:
            bad("lora_dropout", "must be < 1")
        for name in ("top_p", "eval_top_p"):
            if not 0 < getattr(self, name) <= 1:
                bad(name, "must be in (0, 1]")
        for name in ("temperature", "eval_temperature"):
            if getattr(self, name) <= 0:
                bad(name, "must be > 0")
        self._validate_frontier(source)
        if self.quality_threshold is not None and not 0 <= self.quality_threshold <= 1:
            bad("quality_threshold", "must be in [0, 1]")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            bad("max_train_examples", "must be ≥ 1")
        if self.max_failures < 0:
            bad("max_failures", "must be ≥ 0")
        if self.eval_actors < 0 or self.torch_threads < 0:
            bad("eval_actors" if self.eval_actors < 0 else "torch_threads", "must be ≥ 0")
        if not self.lora_target_modules:
            bad("lora_target_modules", "must name at least one module")
        for key, value in self.worker_resources.items():
            if not key or key in ("CPU", "GPU"):
                bad("worker_resources", "resource names must be non-empty and not CPU/GPU "
                    "(those come from cpus_per_worker and use_gpu)")
            if not math.isfinite(value) or value < 0:
                bad("worker_resources", f"{key}: must be a finite number ≥ 0")

    def _validate_frontier(self, source: str) -> None:
        """``frontier_temperatures``: at most ``MAX_FRONTIER_POINTS`` distinct numbers in
        (0, ``MAX_FRONTIER_TEMPERATURE``] (``_coerce`` made them finite floats)."""
        temps = self.frontier_temperatures
        name = "frontier_temperatures"
        for i, t in enumerate(temps):
            if not 0 < t <= MAX_FRONTIER_TEMPERATURE:
                raise ConfigError(name, f"item {i} ({t:g}) must be a temperature in (0, "
                                  f"{MAX_FRONTIER_TEMPERATURE:g}] (got {temps!r})", source)
        seen: set[float] = set()
        for t in temps:
            if t in seen:
                raise ConfigError(name, f"lists {t:g} twice (got {temps!r})", source)
            seen.add(t)
        if len(temps) > MAX_FRONTIER_POINTS:
            raise ConfigError(name, f"lists {len(temps)} temperatures; at most "
                              f"{MAX_FRONTIER_POINTS} (each one is a full evaluation of the "
                              "baseline)", source)


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    """Turn YAML/``--set`` values into the field's type, or raise naming the field.

    Every value is typed all the way down, so nothing odd reaches ``validate`` or a trial:
    ints fit in 64 bits (``10**400`` is refused, not carried into a seed or a step count),
    floats are finite (``1e999``, ``.inf`` and ``.nan`` are refused), list fields hold
    non-empty strings only (``[1, 2]``, ``[[a]]``, ``[{x: 1}]``, ``[null]`` are refused),
    mapping fields map names to finite numbers, and text holds no NUL byte and at most
    :data:`MAX_TEXT` characters."""
    ann = str(annotation)
    if value is None:
        if "None" in ann:
            return None
        raise ConfigError(name, "must not be empty", source)
    kind = ann.split(" ")[0]
    try:
        if ann.startswith("bool"):
            if "None" in ann and isinstance(value, str) and value.lower() in ("auto", "none"):
                return None
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError
        if ann.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            if isinstance(value, (dict, list)):
                raise ValueError
            number = int(value)
            if not -MAX_INT <= number <= MAX_INT:
                raise ConfigError(name, f"{_short(value)} is too large (the limit is ±2^63)",
                                  source)
            return number
        if ann.startswith("float"):
            return _finite(name, value, source)
        if ann.startswith("list[float]"):
            kind = "list of numbers"
            return _numbers(name, value, source)
        if ann.startswith("list"):
            kind = "list of strings"
            if isinstance(value, str):
                items = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, list):
                items = value
            else:
                raise ValueError
            for i, item in enumerate(items):
                if not isinstance(item, str) or not item.strip():
                    raise ConfigError(name, f"item {i} must be a non-empty string, got "
                                      f"{_short(item)} (expected a list of strings, e.g. "
                                      "[q_proj, v_proj])", source)
                _text(name, item, source)
            return [item.strip() for item in items]
        if ann.startswith("dict"):  # resource name → amount (YAML mapping or --set {k: v})
            kind = "mapping of name → number"
            if not isinstance(value, dict):
                raise ValueError
            out = {}
            for key, amount in value.items():
                if not isinstance(key, str) or not key.strip():
                    raise ConfigError(name, f"key {_short(key)} must be a non-empty name",
                                      source)
                out[_text(name, key, source)] = _finite(f"{name}", amount, source, key)
            return out
        if ann.startswith("str"):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return _text(name, str(value), source)
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(name, f"expected {kind}, got {_short(value)}", source) from None
    return value


#: the largest whole number a setting takes (64-bit signed)
MAX_INT = 2**63 - 1
#: the longest text a setting takes (names, paths, hub ids)
MAX_TEXT = 4096


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a hostile value can be megabytes long)."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return f"<a {type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[:limit] + "…"


def _finite(name: str, value: Any, source: str, key: Any = None) -> float:
    """``value`` as a finite float (not a bool, not inf/nan, not a number beyond a float)."""
    where = f" ({key}: {_short(value)})" if key is not None else f", got {_short(value)}"
    if isinstance(value, (bool, dict, list)) or value is None:
        raise ConfigError(name, f"expected a number{where}", source)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected a number{where}", source) from None
    except OverflowError:
        raise ConfigError(name, f"must be a finite number{where}", source) from None
    if not math.isfinite(number):
        raise ConfigError(name, f"must be a finite number{where}", source)
    return number


def _numbers(name: str, value: Any, source: str) -> list[float]:
    """A list of finite numbers: a YAML list, or ``--set``'s ``0.5,0.7`` (``[]`` or an empty
    string: no numbers)."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]")
        items: list[Any] = [v.strip() for v in text.split(",") if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (bool, dict, list)) or item is None:
            raise ConfigError(name, f"item {i} must be a number, got {_short(item)} (expected "
                              "a list of numbers, e.g. [0.5, 0.7, 1.0])", source)
        out.append(_finite(name, item, source, f"item {i}"))
    return out


def _text(name: str, value: str, source: str) -> str:
    """Text without a NUL byte and at most ``MAX_TEXT`` characters."""
    if "\0" in value:
        raise ConfigError(name, "contains a NUL byte", source)
    if len(value) > MAX_TEXT:
        raise ConfigError(name, f"is {len(value):,} characters long (the limit is "
                          f"{MAX_TEXT:,})", source)
    return value
