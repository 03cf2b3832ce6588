"""Search spaces: one YAML schema for every study, validated completely before Ray starts.

A space is a YAML mapping with these keys (only ``objectives`` is required)::

    description: one line, shown by `study/run.py --space` and `--help`
    settings:                       # fixed TrialConfig values (polychromic/config.py)
      model: smollm2-135m-instruct  #   model, task, quantize, steps, n_eval_prompts, ...
      steps: 300
    resources:                      # per trial (optional; the same TrialConfig fields,
      num_workers: 1                #   grouped here for readability, `--set` works on them)
      cpus_per_worker: 1
      use_gpu: auto                 #   auto = GPUs when the cluster has them
    params:                         # searched TrialConfig fields → distribution
      lambda_: {distribution: log_uniform, low: 0.01, high: 10}
      n_generations: {distribution: int, low: 2, high: 8, baseline: 4}
      lora_r: {distribution: choice, values: [8, 16, 32]}
    points: [{lambda_: 1.0}]        # evaluated first, right after the λ=0 baseline
    objectives:                     # one → single-objective, two → multi-objective (Pareto)
      - {metric: pass@10, mode: max}                # mode = direction: max | min
      - {metric: semantic_diversity_per_prompt, mode: max}
    sampler: tpe                    # tpe (single and multi-objective) | nsga2
    scheduler:                      # ASHA early stopping on a *training* metric
      {enabled: true, metric: poly_score, mode: max, grace_period: 100, reduction_factor: 2}
    num_trials: 16                  # including the baseline and the points
    max_concurrent_trials: 0        # 0 = as many as the cluster's resources allow

Distributions: ``log_uniform`` and ``uniform`` (floats, ``low`` < ``high``, log bounds > 0),
``int`` and ``log_int`` (whole-number bounds), ``choice`` (``values``: a list of scalars).
A parameter's optional ``baseline`` is its value in the λ=0 trial and in ``points`` that do
not name it (default: the fixed setting, or TrialConfig's default).

**The λ=0 baseline runs first in every study.** The spec calls it an Optuna
``points_to_evaluate`` entry, but λ=0 lies outside a log-uniform λ range, and a point outside
a distribution is either refused by Optuna or silently re-sampled. So the baseline is issued
by the ``BaselineFirst`` searcher wrapper (polychromic/search.py) and kept out of Optuna's
model; the space's own ``points`` *are* Optuna ``points_to_evaluate`` and run right after it.
Ray's OptunaSearch needs every searched parameter in every point, so ``Space.points`` holds
complete points (missing parameters filled with their baseline values, which must therefore
lie inside the distribution).

``--set key=value`` (``load_space``'s ``overrides``) replaces any fixed setting, including the
``resources`` ones; a searched parameter cannot be overridden.

Validation order: everything structural first (pure Python, milliseconds), then the checks
that import heavy modules (the model name: torch; the task and its data file: the metrics).
Every problem raises ``ConfigError(field, message, source)``, printed by ``study/run.py`` as
the single line ``error: <source>: <field>: <message>`` with exit status 2.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polychromic.columns import EVAL_METRICS, PASS_KS, TRAIN_METRICS
from polychromic.config import TrialConfig
from polychromic.errors import ConfigError
from polychromic.inputs import MAX_SPACE_BYTES, expand_path, load_yaml, read_text

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int", "choice")
TOP_LEVEL = ("description", "settings", "resources", "params", "points", "objectives",
             "scheduler", "num_trials", "sampler", "max_concurrent_trials")
PARAM_KEYS = ("distribution", "low", "high", "values", "baseline")
#: the TrialConfig fields that may be grouped under ``resources:``
RESOURCE_FIELDS = ("num_workers", "cpus_per_worker", "use_gpu")
SCHEDULER_KEYS = ("enabled", "metric", "mode", "grace_period", "reduction_factor")
SAMPLERS = ("tpe", "nsga2")
#: the largest trial count, concurrency or reduction factor a space may ask for
MAX_WHOLE = 1_000_000
COMMAND_LINE = "command line"
#: TrialConfig fields only study/confirm.py sets
CONFIRM_ONLY = ("role", "confirm_of")

# TRAIN_METRICS (reported on every training report, usable by the ASHA scheduler) and
# EVAL_METRICS (reported once per trial after evaluation, usable as objectives; pass@k for
# PASS_KS and n_eval_samples is added per space) come from the column catalog.


@dataclass
class Param:
    """One searched TrialConfig field and its distribution."""

    name: str
    distribution: str
    low: float | None = None
    high: float | None = None
    values: list[Any] = field(default_factory=list)
    baseline: Any = None

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this distribution."""
        if self.distribution == "choice":
            return value in self.values
        number = _number(value)
        if number is None or not self.low <= number <= self.high:  # type: ignore[operator]
            return False
        return self.distribution not in ("int", "log_int") or float(number).is_integer()


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
        """The full TrialConfig of a trial: fixed settings plus the searcher's values."""
        return TrialConfig.from_dict({**self.settings, **suggested}, source=self.source)

    def optuna_distributions(self) -> dict[str, Any]:
        """The searched parameters as Optuna distributions (for ``OptunaSearch(space=...)``)."""
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
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            out[path.stem] = "(unreadable)"
            continue
        desc = raw.get("description", "") if isinstance(raw, dict) else ""
        out[path.stem] = " ".join(str(desc).split())
    return out


def resolve_space_path(name_or_path: str) -> Path:
    """A shipped space's file, or the YAML file named; ``ConfigError`` when neither exists."""
    if not name_or_path:
        raise ConfigError("--space", f"unknown space '' (shipped: {', '.join(shipped_spaces())}; "
                          "or give a path to a .yaml file)", COMMAND_LINE)
    path = expand_path(name_or_path, "--space", COMMAND_LINE)  # ~user, NUL, ENAMETOOLONG
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not os.path.lexists(path):
            raise ConfigError("--space", f"no such file: {name_or_path}", COMMAND_LINE)
        return path  # load_space refuses a folder, device or FIFO naming the file
    shipped = SPACES_DIR / f"{name_or_path}.yaml"
    if len(name_or_path) < 200 and not shipped.is_file() and path.is_file():
        return path  # a YAML file without the .yaml suffix
    if len(name_or_path) >= 200 or not shipped.is_file():
        raise ConfigError("--space", f"unknown space {name_or_path[:80]!r} (shipped: "
                          f"{', '.join(shipped_spaces())}; or give a path to a .yaml file)",
                          COMMAND_LINE)
    return shipped


def load_space(name_or_path: str, overrides: dict[str, Any] | None = None) -> Space:
    """Read, apply ``--set`` overrides to ``settings``, and validate. Raises ``ConfigError``.

    The file is read bounded (a regular file of at most ``MAX_SPACE_BYTES``, never a folder,
    device or FIFO) and parsed strictly (no aliases, no duplicate keys, bounded nesting: see
    ``polychromic.inputs``), so no space file can hang, exhaust memory or be half-read."""
    path = resolve_space_path(name_or_path)
    source = str(path)
    text = read_text(path, "(file)", source, MAX_SPACE_BYTES)
    raw = load_yaml(text, source)
    return parse_space(raw, source, path.stem, overrides)


def parse_space(raw: Any, source: str, name: str,
                overrides: dict[str, Any] | None = None) -> Space:
    """Validate a loaded YAML document (see the module docstring); raises ``ConfigError``."""

    def bad(fld: str, why: str) -> ConfigError:
        return ConfigError(fld, why, source)

    if raw is None:
        raise bad("(top level)", "the file is empty (a space needs at least `objectives`)")
    if not isinstance(raw, dict):
        raise bad("(top level)", f"must be a mapping of {', '.join(TOP_LEVEL)}; "
                  f"got a {_kind(raw)}")
    for key in raw:
        if key not in TOP_LEVEL:
            raise bad(str(key), f"unknown key{_did_you_mean(key, TOP_LEVEL)} "
                      f"(known: {', '.join(TOP_LEVEL)})")
    description = raw.get("description", "")
    if not isinstance(description, str) or "\n" in description.strip():
        raise bad("description", "must be a one-line string")

    # --- fixed settings: the file's settings + resources, then --set --------------------
    settings = copy.deepcopy(raw.get("settings") or {})
    if not isinstance(settings, dict):
        raise bad("settings", f"must be a mapping of TrialConfig fields, got a {_kind(settings)}")
    known = TrialConfig.field_names()
    for key in settings:
        if key not in known:
            raise bad(f"settings.{key}", f"unknown setting{_did_you_mean(key, known)} "
                      "(see polychromic/config.py for the fields)")
    origin = {str(k): f"settings.{k}" for k in settings}  # field → where it was set
    resources = raw.get("resources") or {}
    if not isinstance(resources, dict):
        raise bad("resources", f"must be a mapping of {', '.join(RESOURCE_FIELDS)}, "
                  f"got a {_kind(resources)}")
    for key, value in resources.items():
        if key not in RESOURCE_FIELDS:
            raise bad(f"resources.{key}", f"unknown key (known: {', '.join(RESOURCE_FIELDS)}; "
                      "other settings belong in settings)")
        if key in settings:
            raise bad(f"resources.{key}", "is also given in settings; give it once")
        settings[key] = value
        origin[key] = f"resources.{key}"
    raw_params = raw.get("params") or {}
    if not isinstance(raw_params, dict):
        raise bad("params", f"must be a mapping of parameter name → distribution, "
                  f"got a {_kind(raw_params)}")
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"--set {key}", f"unknown setting{_did_you_mean(key, known)}",
                              COMMAND_LINE)
        if key in raw_params:
            raise ConfigError(f"--set {key}", f"is searched in {source} (params.{key}); "
                              "--set changes fixed settings only", COMMAND_LINE)
        settings[key] = value
        origin[key] = f"--set {key}"
    base = _settings_config(settings, origin, source)

    # --- searched parameters -------------------------------------------------------------
    params: dict[str, Param] = {}
    for pname, spec in raw_params.items():
        where = f"params.{pname}"
        if pname not in known:
            raise bad(where, "unknown parameter (must be a TrialConfig field, e.g. lambda_, "
                      "n_generations, compute_every_n_steps, max_examples_for_diversity, "
                      f"lora_r, learning_rate){_did_you_mean(pname, known)}")
        if pname in settings:
            raise bad(where, f"is also fixed in {origin[pname]}; fix it or search it, not both")
        if not isinstance(spec, dict):
            raise bad(where, "must be a mapping like "
                      "{distribution: log_uniform, low: 0.01, high: 10}")
        dist = spec.get("distribution")
        if dist not in DISTRIBUTIONS:
            raise bad(f"{where}.distribution",
                      f"unknown distribution {dist!r} (known: {', '.join(DISTRIBUTIONS)})")
        for key in spec:
            if key not in PARAM_KEYS:
                raise bad(f"{where}.{key}", f"unknown key (known: {', '.join(PARAM_KEYS)})")
        params[pname] = _param(pname, dist, spec, settings, source, where)
    if "max_examples_for_diversity" in params:
        p = params["max_examples_for_diversity"]
        top = max(p.values) if p.distribution == "choice" else p.high
        if top > base.batch_size:  # type: ignore[operator]
            raise bad("params.max_examples_for_diversity.high" if p.distribution != "choice"
                      else "params.max_examples_for_diversity.values",
                      f"{_fmt(top)} exceeds batch_size ({base.batch_size}): a diversity step "
                      "uses at most one batch of prompts, so larger values all behave the same")

    # --- the baseline and the points -----------------------------------------------------
    defaults = base.to_dict()
    fill: dict[str, Any] = {}
    for pname, p in params.items():
        value = p.baseline if p.baseline is not None else defaults[pname]
        fill[pname] = value
        if p.baseline is not None:
            try:
                TrialConfig.from_dict({**settings, pname: value}, source=source)
            except ConfigError as err:
                raise bad(f"params.{pname}.baseline", err.message) from None
    raw_points = raw.get("points") or []
    if not isinstance(raw_points, list):
        raise bad("points", f"must be a list of {{parameter: value}} mappings, "
                  f"got a {_kind(raw_points)}")
    points: list[dict[str, Any]] = []
    for i, point in enumerate(raw_points):
        if not isinstance(point, dict) or not point:
            raise bad(f"points[{i}]", "must be a mapping {parameter: value} of searched "
                      f"parameters ({', '.join(params) or 'none are searched'})")
        full = {}
        for pname in params:
            given = pname in point
            value = point[pname] if given else fill[pname]
            if params[pname].distribution != "choice" and _number(value) is not None:
                value = _number(value)
                if params[pname].distribution in ("int", "log_int") and float(value).is_integer():
                    value = int(value)
            if not params[pname].contains(value):
                fld = f"points[{i}].{pname}"
                why = f"{value!r} lies outside {_describe(params[pname])}"
                if not given:
                    why = (f"not given, and its baseline value {why}; give it in the point "
                           f"or set params.{pname}.baseline")
                elif pname == "lambda_" and value == 0:
                    why += " (the λ=0 baseline runs first anyway)"
                raise bad(fld, why)
            full[pname] = value
        for pname in point:
            if pname not in params:
                raise bad(f"points[{i}].{pname}", "is not a searched parameter (searched: "
                          f"{', '.join(params) or 'none'})")
        points.append(full)

    # --- objectives, scheduler, budget -----------------------------------------------------
    n = base.n_eval_samples
    eval_metrics = [*EVAL_METRICS, *(f"pass@{k}" for k in sorted({*PASS_KS, n}) if k <= n)]
    objectives_raw = raw.get("objectives")
    if objectives_raw is None:
        raise bad("objectives", "missing: give one or two {metric, mode} mappings, "
                  "e.g. [{metric: pass@10, mode: max}]")
    if not isinstance(objectives_raw, list) or not 1 <= len(objectives_raw) <= 2:
        raise bad("objectives", "must be a list of one or two {metric, mode} mappings")
    objectives: list[tuple[str, str]] = []
    for i, obj in enumerate(objectives_raw):
        where = f"objectives[{i}]"
        if not isinstance(obj, dict):
            raise bad(where, f"must be a mapping {{metric, mode}}, got a {_kind(obj)}")
        for key in obj:
            if key not in ("metric", "mode"):
                raise bad(f"{where}.{key}", "unknown key (known: metric, mode)")
        metric = obj.get("metric")
        if metric not in eval_metrics:
            hint = ""
            if isinstance(metric, str) and metric in TRAIN_METRICS:
                hint = " during evaluation (it is a training metric: use it in scheduler.metric)"
            elif isinstance(metric, str) and metric.startswith("pass@"):
                hint = f" with n_eval_samples={n}"
            raise bad(f"{where}.metric", f"{metric!r} is not reported by any trial{hint} "
                      f"(evaluation metrics: {', '.join(eval_metrics)})")
        mode = obj.get("mode")
        if mode not in ("min", "max"):
            raise bad(f"{where}.mode", f"must be max or min (the direction), got {mode!r}")
        if any(metric == m for m, _ in objectives):
            raise bad(f"{where}.metric", f"{metric!r} is already objectives[0]")
        objectives.append((metric, mode))

    sched_raw = raw.get("scheduler") or {}
    if not isinstance(sched_raw, dict):
        raise bad("scheduler", f"must be a mapping of {', '.join(SCHEDULER_KEYS)}, "
                  f"got a {_kind(sched_raw)}")
    sched = dict(sched_raw)
    for key in sched:
        if key not in SCHEDULER_KEYS:
            raise bad(f"scheduler.{key}", f"unknown key (known: {', '.join(SCHEDULER_KEYS)})")
    sched.setdefault("enabled", True)
    sched.setdefault("metric", "poly_score")
    sched.setdefault("mode", "max")
    sched.setdefault("grace_period", max(1, base.steps // 4))
    sched.setdefault("reduction_factor", 2)
    if not isinstance(sched["enabled"], bool):
        raise bad("scheduler.enabled", f"must be true or false, got {sched['enabled']!r}")
    if sched["metric"] not in TRAIN_METRICS:
        raise bad("scheduler.metric", f"{sched['metric']!r} is not reported during training "
                  f"(training metrics: {', '.join(TRAIN_METRICS)})")
    if sched["mode"] not in ("min", "max"):
        raise bad("scheduler.mode", f"must be max or min, got {sched['mode']!r}")
    grace = sched["grace_period"]
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace <= 2**63:
        raise bad("scheduler.grace_period", f"must be a whole number of steps ≥ 1, got {grace!r}")
    if sched["enabled"] and grace >= base.steps:
        raise bad("scheduler.grace_period", f"{grace} is not below steps ({base.steps}): ASHA "
                  "could never stop a trial (set scheduler.enabled: false instead)")
    rf = sched["reduction_factor"]
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not 1 < rf < MAX_WHOLE:
        raise bad("scheduler.reduction_factor", f"must be a finite number > 1, got {rf!r}")

    num_trials = raw.get("num_trials", 1 + len(points))
    if (isinstance(num_trials, bool) or not isinstance(num_trials, int)
            or not 1 <= num_trials <= MAX_WHOLE):
        raise bad("num_trials", f"must be a whole number from 1 to "
                  f"{MAX_WHOLE:,}, got {num_trials!r}")
    if num_trials < 1 + len(points):
        raise bad("num_trials", f"{num_trials} is fewer than the baseline + {len(points)} points")
    if num_trials > 1 and not params:
        raise bad("params", "a study with more than one trial needs at least one searched "
                  "parameter")
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise bad("sampler", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    mct = raw.get("max_concurrent_trials", 0)
    if isinstance(mct, bool) or not isinstance(mct, int) or not 0 <= mct <= MAX_WHOLE:
        raise bad("max_concurrent_trials", f"must be a whole number from 0 to "
                  f"{MAX_WHOLE:,}, got {mct!r}")
    space = Space(name, source, description.strip(), settings, params, points, objectives, sched,
                  num_trials, sampler, mct)
    try:
        space.trial_config(space.baseline())  # the baseline itself must be a valid trial
    except ConfigError as err:
        raise bad(origin.get(err.field, err.field), f"{err.message} in the λ=0 baseline") from None

    _check_expensive(base, origin, source)
    return space


def _settings_config(settings: dict[str, Any], origin: dict[str, str], source: str) -> TrialConfig:
    """TrialConfig of the fixed settings; an error names where the bad value came from."""
    for name in CONFIRM_ONLY:  # a study's own trials are role: search; confirm.py sets these
        if name in settings and settings[name] != getattr(TrialConfig, name):
            where = origin.get(name, f"settings.{name}")
            raise ConfigError(where, "is set by study/confirm.py for its confirmation runs, "
                              "not by a search space",
                              COMMAND_LINE if where.startswith("--set") else source)
    try:
        return TrialConfig.from_dict(settings, source=source)
    except ConfigError as err:
        # a field nobody set is a default that another setting makes invalid
        where = origin.get(err.field, f"settings.{err.field}")
        raise ConfigError(where, err.message,
                          COMMAND_LINE if where.startswith("--set") else source) from None


def _check_expensive(base: TrialConfig, origin: dict[str, str], source: str) -> None:
    """The checks that import torch (model name) or the task's modules (task, data file)."""
    from polychromic.model import check_model_name

    try:
        check_model_name(base.model)
    except ConfigError as err:
        where = origin.get("model", "settings.model")
        raise ConfigError(where, err.message,
                          COMMAND_LINE if where.startswith("--set") else source) from None
    from polychromic.tasks import get_task

    try:
        task = get_task(base)
    except ConfigError as err:
        if err.source != "config":  # a data file's own problem: it names that file
            raise
        where = origin.get(err.field, f"settings.{err.field}")
        raise ConfigError(where, err.message,
                          COMMAND_LINE if where.startswith("--set") else source) from None
    # evaluation takes the first n_eval_prompts of the test split (polychromic.evaluate): a
    # file whose rows all hash to train would pass everything else and evaluate 0 prompts
    counts = getattr(task, "counts", None)
    held_out = (int(counts.get("test", 0)) if isinstance(counts, dict)
                else len(task.examples("test")))
    if held_out < base.n_eval_prompts:
        where = origin.get("n_eval_prompts", "settings.n_eval_prompts")
        data = f"the data file {base.data}" if base.data else f"task {base.task}"
        per_split = f" (rows per split: {counts})" if isinstance(counts, dict) else ""
        raise ConfigError(where, f"{base.n_eval_prompts} held-out prompts asked, but {data} "
                          f"gives only {held_out} in its test split{per_split}; lower "
                          "n_eval_prompts or add data",
                          COMMAND_LINE if where.startswith("--set") else source)


def _param(pname: str, dist: str, spec: dict[str, Any], settings: dict[str, Any], source: str,
           where: str) -> Param:
    """Validate one ``params`` entry; every bound/value is probed through TrialConfig."""

    def bad(fld: str, why: str) -> ConfigError:
        return ConfigError(fld, why, source)

    p = Param(pname, dist, baseline=spec.get("baseline"))
    labels: list[str]
    if dist == "choice":
        if "low" in spec or "high" in spec:
            raise bad(f"{where}.{'low' if 'low' in spec else 'high'}",
                      "choice takes values, not low/high")
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise bad(f"{where}.values", "choice needs a non-empty list of values")
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise bad(f"{where}.values[{i}]", f"must be a number, string or boolean, "
                          f"got a {_kind(v)}")
        if len({repr(v) for v in values}) != len(values):
            raise bad(f"{where}.values", "lists a value twice")
        p.values = list(values)
        probes, labels = p.values, [f"values[{i}]" for i in range(len(values))]
    else:
        if "values" in spec:
            raise bad(f"{where}.values", f"{dist} takes low and high, not values")
        bounds = {}
        for bound in ("low", "high"):
            if bound not in spec:
                raise bad(f"{where}.{bound}", f"missing ({dist} needs low and high)")
            number = _number(spec[bound])
            if number is None:
                raise bad(f"{where}.{bound}", f"must be a finite number, got {spec[bound]!r}")
            bounds[bound] = number
        p.low, p.high = bounds["low"], bounds["high"]
        if p.low >= p.high:
            raise bad(f"{where}.low", f"low ({_fmt(p.low)}) must be < high ({_fmt(p.high)})")
        if dist.startswith("log") and p.low <= 0:
            raise bad(f"{where}.low", f"log-scale bounds must be > 0, got {_fmt(p.low)}")
        if dist in ("int", "log_int"):
            for bound, value in bounds.items():
                if not float(value).is_integer():
                    raise bad(f"{where}.{bound}", f"{dist} needs whole-number bounds, "
                              f"got {_fmt(value)}")
            p.low, p.high = int(p.low), int(p.high)
        probes, labels = [p.low, p.high], ["low", "high"]
    for probe, label in zip(probes, labels, strict=True):
        try:
            TrialConfig.from_dict({**settings, pname: probe}, source=source)
        except ConfigError as err:
            if err.field != pname:  # the value breaks another setting (e.g. subset_size)
                raise bad(f"{where}.{label}", f"{_fmt(probe)} conflicts with "
                          f"settings.{err.field}: {err.message}") from None
            raise bad(f"{where}.{label}", err.message) from None
    if p.baseline is not None and dist != "choice" and _number(p.baseline) is not None:
        p.baseline = _number(p.baseline)
        if dist in ("int", "log_int") and float(p.baseline).is_integer():
            p.baseline = int(p.baseline)
    return p


def _number(value: Any) -> float | int | None:
    """``value`` as a finite number (YAML reads ``1e-3`` as a string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= 2**63 else None  # beyond that float() overflows
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _describe(p: Param) -> str:
    if p.distribution == "choice":
        return f"the choices {p.values}"
    return f"{p.distribution} [{_fmt(p.low)}, {_fmt(p.high)}]"


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__)


def _did_you_mean(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
