"""One trial's settings: a flat dataclass whose field names are the names used everywhere
(search-space YAML, ``--set``, W&B config, leaderboard columns).

``TrialConfig.from_dict`` validates every value and raises ``ConfigError`` naming the field,
so bad input is refused before Ray or a model is started.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from polychromic.errors import ConfigError

QUANTIZE = ("auto", "none", "4bit", "8bit")
ADVANTAGES = ("leave_one_out", "subsets")


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
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0

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

    def validate(self, source: str = "config") -> None:
        """Raise ``ConfigError`` for the first bad value, naming the field."""

        def bad(name: str, why: str) -> None:
            raise ConfigError(name, f"{why} (got {getattr(self, name)!r})", source)

        if not isinstance(self.model, str) or not self.model.strip():
            bad("model", "must be a non-empty name, path or hub id")
        if self.quantize not in QUANTIZE:
            bad("quantize", f"must be one of {', '.join(QUANTIZE)}")
        if self.advantage not in ADVANTAGES:
            bad("advantage", f"must be one of {', '.join(ADVANTAGES)}")
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


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    """Turn YAML/``--set`` values into the field's type, or raise naming the field."""
    ann = str(annotation)
    if value is None:
        if "None" in ann:
            return None
        raise ConfigError(name, "must not be empty", source)
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
            return int(value)
        if ann.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if ann.startswith("list"):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError
            return [str(v) for v in value]
        if ann.startswith("dict"):  # resource name → amount (YAML mapping or --set {k: v})
            if not isinstance(value, dict) or any(isinstance(v, bool) for v in value.values()):
                raise ValueError
            return {str(k): float(v) for k, v in value.items()}
        if ann.startswith("str"):
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        kind = "mapping of name → number" if ann.startswith("dict") else ann.split(" ")[0]
        raise ConfigError(name, f"expected {kind}, got {value!r}", source) from None
    return value
