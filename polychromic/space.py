"""Search spaces: one YAML schema for every study, validated before Ray starts.

```yaml
description: one line shown by `study/run.py --space`
settings: {model: smollm2-135m-instruct, steps: 40, ...}   # fixed TrialConfig values
params:                                                    # searched TrialConfig fields
  lambda_: {distribution: log_uniform, low: 0.01, high: 10}
  n_generations: {distribution: int, low: 2, high: 8}
  lora_r: {distribution: choice, values: [8, 16, 32]}
points: [{lambda_: 1.0}]          # evaluated first, after the λ=0 baseline
objectives: [{metric: semantic_diversity, mode: max}]     # one → TPE; two → multi-objective
scheduler: {metric: poly_score, mode: max, grace_period: 10, reduction_factor: 2}  # ASHA
num_trials: 12                    # including the baseline
sampler: tpe                      # tpe | nsga2
max_concurrent_trials: 0          # 0 = from the cluster's resources
```

Every study runs the λ=0 baseline first, with the fixed settings (searched parameters other
than λ take their ``baseline`` value, or the setting's default).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polychromic.config import TrialConfig
from polychromic.errors import ConfigError

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int", "choice")
TOP_LEVEL = ("description", "settings", "params", "points", "objectives", "scheduler",
             "num_trials", "sampler", "max_concurrent_trials")
SAMPLERS = ("tpe", "nsga2")

#: reported on every training report (usable by the ASHA scheduler)
TRAIN_METRICS = ("quality_loss", "combined_loss", "diversity_score", "poly_score",
                 "sample_quality", "diversity_grad_share", "mean_diversity_score",
                 "mean_diversity_grad_share")
#: reported once per trial after evaluation (usable as objectives)
EVAL_METRICS = ("quality_mean", "distinct_1", "distinct_2", "self_bleu", "semantic_diversity",
                "distinct_1_per_prompt", "distinct_2_per_prompt", "self_bleu_per_prompt",
                "semantic_diversity_per_prompt", "mean_tokens")


@dataclass
class Param:
    name: str
    distribution: str
    low: float | None = None
    high: float | None = None
    values: list[Any] = field(default_factory=list)
    baseline: Any = None


@dataclass
class Space:
    """A validated search space."""

    name: str
    source: str
    description: str
    settings: dict[str, Any]
    params: dict[str, Param]
    points: list[dict[str, Any]]
    objectives: list[tuple[str, str]]
    scheduler: dict[str, Any]
    num_trials: int
    sampler: str = "tpe"
    max_concurrent_trials: int = 0

    def baseline(self) -> dict[str, Any]:
        """The λ=0 trial's searched values (settings come from ``settings``)."""
        out = {}
        defaults = TrialConfig.from_dict(self.settings).to_dict()
        for name, p in self.params.items():
            out[name] = p.baseline if p.baseline is not None else defaults[name]
        out["lambda_"] = 0.0
        return out

    def trial_config(self, suggested: dict[str, Any]) -> TrialConfig:
        return TrialConfig.from_dict({**self.settings, **suggested}, source=self.source)

    def optuna_distributions(self) -> dict[str, Any]:
        import optuna.distributions as od

        out = {}
        for name, p in self.params.items():
            if p.distribution == "choice":
                out[name] = od.CategoricalDistribution(p.values)
            elif p.distribution in ("int", "log_int"):
                out[name] = od.IntDistribution(int(p.low), int(p.high),
                                               log=p.distribution == "log_int")
            else:
                out[name] = od.FloatDistribution(p.low, p.high,
                                                 log=p.distribution == "log_uniform")
        return out


def shipped_spaces() -> dict[str, str]:
    """Shipped space names → their one-line descriptions."""
    out = {}
    for path in sorted(SPACES_DIR.glob("*.yaml")):
        try:
            out[path.stem] = str((yaml.safe_load(path.read_text()) or {}).get("description", ""))
        except yaml.YAMLError:
            out[path.stem] = "(unreadable YAML)"
    return out


def resolve_space_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("--space", f"no such file: {name_or_path}", "command line")
        return path
    shipped = SPACES_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError("--space", f"unknown space {name_or_path!r} (shipped: "
                          f"{', '.join(shipped_spaces())})", "command line")
    return shipped


def load_space(name_or_path: str, overrides: dict[str, Any] | None = None) -> Space:
    """Read, apply ``--set`` overrides to ``settings``, and validate. Raises ``ConfigError``."""
    path = resolve_space_path(name_or_path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError("yaml", f"not valid YAML{where}", source) from None
    return parse_space(raw, source, path.stem, overrides)


def parse_space(raw: Any, source: str, name: str,
                overrides: dict[str, Any] | None = None) -> Space:
    def bad(fld: str, why: str) -> ConfigError:
        return ConfigError(fld, why, source)

    if not isinstance(raw, dict):
        raise bad("<top level>", f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_LEVEL:
            raise bad(str(key), f"unknown key (known: {', '.join(TOP_LEVEL)})")
    settings = copy.deepcopy(raw.get("settings") or {})
    if not isinstance(settings, dict):
        raise bad("settings", "must be a mapping of TrialConfig fields")
    raw_params = raw.get("params") or {}
    if not isinstance(raw_params, dict):
        raise bad("params", "must be a mapping of parameter name → distribution")
    for key, value in (overrides or {}).items():
        if key in raw_params:
            raise ConfigError(key, "is searched in this space (params); --set changes fixed "
                              "settings only", "--set")
        settings[key] = value
    try:
        base = TrialConfig.from_dict(settings, source=source)
    except ConfigError as err:
        field_name = err.field if err.source == "--set" else f"settings.{err.field}"
        raise ConfigError(field_name, err.message, err.source) from None
    from polychromic.model import check_model_name

    try:
        check_model_name(base.model)
    except ConfigError as err:
        raise bad("settings.model", err.message) from None

    known = TrialConfig.field_names()
    params: dict[str, Param] = {}
    for pname, spec in raw_params.items():
        where = f"params.{pname}"
        if pname not in known:
            raise bad(where, "unknown parameter (must be a TrialConfig field, e.g. lambda_, "
                      "n_generations, compute_every_n_steps, max_examples_for_diversity, "
                      "lora_r, learning_rate)")
        if pname in settings:
            raise bad(where, "is also fixed in settings; fix it or search it, not both")
        if not isinstance(spec, dict):
            raise bad(where, "must be a mapping like {distribution: log_uniform, low: 0.01, high: 10}")
        dist = spec.get("distribution")
        if dist not in DISTRIBUTIONS:
            raise bad(f"{where}.distribution",
                      f"unknown distribution {dist!r} (known: {', '.join(DISTRIBUTIONS)})")
        extra = set(spec) - {"distribution", "low", "high", "values", "baseline"}
        if extra:
            raise bad(f"{where}.{sorted(extra)[0]}", "unknown key")
        p = Param(pname, dist, baseline=spec.get("baseline"))
        if dist == "choice":
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise bad(f"{where}.values", "choice needs a non-empty list of values")
            p.values = values
            probes = values
        else:
            for bound in ("low", "high"):
                v = spec.get(bound)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise bad(f"{where}.{bound}", f"must be a number, got {v!r}")
            p.low, p.high = float(spec["low"]), float(spec["high"])
            if p.low >= p.high:
                raise bad(f"{where}.low", f"low ({spec['low']}) must be < high ({spec['high']})")
            if dist.startswith("log") and p.low <= 0:
                raise bad(f"{where}.low", f"log-scale bounds must be > 0, got {spec['low']}")
            if dist in ("int", "log_int") and not (float(p.low).is_integer()
                                                   and float(p.high).is_integer()):
                raise bad(f"{where}.low", "int distributions need integer bounds")
            probes = [p.low, p.high]
            if dist in ("int", "log_int"):
                probes = [int(p.low), int(p.high)]
        for i, probe in enumerate(probes):
            try:
                TrialConfig.from_dict({**settings, pname: probe}, source=source)
            except ConfigError as err:
                label = f"values[{i}]" if dist == "choice" else ("low", "high")[i]
                raise bad(f"{where}.{label}", err.message) from None
        params[pname] = p

    points = raw.get("points") or []
    if not isinstance(points, list):
        raise bad("points", "must be a list of {param: value} mappings")
    for i, point in enumerate(points):
        if not isinstance(point, dict) or set(point) - set(params):
            raise bad(f"points[{i}]", f"must map searched parameters ({', '.join(params)}) to values")

    eval_metrics = set(EVAL_METRICS) | {f"pass@{k}" for k in range(1, base.n_eval_samples + 1)}
    objectives_raw = raw.get("objectives")
    if not isinstance(objectives_raw, list) or not 1 <= len(objectives_raw) <= 2:
        raise bad("objectives", "must be a list of one or two {metric, mode} mappings")
    objectives = []
    for i, obj in enumerate(objectives_raw):
        if not isinstance(obj, dict):
            raise bad(f"objectives[{i}]", "must be a mapping {metric, mode}")
        metric, mode = obj.get("metric"), obj.get("mode")
        if metric not in eval_metrics:
            raise bad(f"objectives[{i}].metric", f"{metric!r} is not reported by any trial "
                      f"(evaluation metrics: {', '.join(sorted(eval_metrics))})")
        if mode not in ("min", "max"):
            raise bad(f"objectives[{i}].mode", f"must be min or max, got {mode!r}")
        objectives.append((metric, mode))

    sched = dict(raw.get("scheduler") or {})
    sched.setdefault("metric", "poly_score")
    sched.setdefault("mode", "max")
    sched.setdefault("grace_period", max(1, base.steps // 4))
    sched.setdefault("reduction_factor", 2)
    for key in sched:
        if key not in ("metric", "mode", "grace_period", "reduction_factor", "enabled"):
            raise bad(f"scheduler.{key}", "unknown key")
    if sched["metric"] not in TRAIN_METRICS:
        raise bad("scheduler.metric", f"{sched['metric']!r} is not reported during training "
                  f"(training metrics: {', '.join(TRAIN_METRICS)})")
    if sched["mode"] not in ("min", "max"):
        raise bad("scheduler.mode", f"must be min or max, got {sched['mode']!r}")
    if not isinstance(sched["grace_period"], int) or sched["grace_period"] < 1:
        raise bad("scheduler.grace_period", "must be a whole number of steps ≥ 1")
    if not isinstance(sched["reduction_factor"], (int, float)) or sched["reduction_factor"] <= 1:
        raise bad("scheduler.reduction_factor", "must be > 1")

    num_trials = raw.get("num_trials", 1 + len(points))
    if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 1:
        raise bad("num_trials", f"must be a whole number ≥ 1 (got {num_trials!r})")
    if num_trials < 1 + len(points):
        raise bad("num_trials", f"{num_trials} is fewer than the baseline + {len(points)} points")
    if num_trials > 1 and not params:
        raise bad("params", "a study with more than one trial needs at least one searched parameter")
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise bad("sampler", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    mct = raw.get("max_concurrent_trials", 0)
    if isinstance(mct, bool) or not isinstance(mct, int) or mct < 0:
        raise bad("max_concurrent_trials", f"must be a whole number ≥ 0 (got {mct!r})")
    space = Space(name, source, str(raw.get("description", "")), settings, params, points,
                  objectives, sched, num_trials, sampler, mct)
    space.trial_config(space.baseline())  # the baseline itself must be a valid trial
    from polychromic.tasks import get_task

    try:
        get_task(base)
    except ConfigError as err:
        raise ConfigError(f"settings.{err.field}" if err.source == "config" else err.field,
                          err.message, source if err.source == "config" else err.source) from None
    return space
