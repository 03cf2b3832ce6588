"""Search spaces: one YAML schema for every study, validated completely before Ray starts.

A space is a YAML mapping with these keys (only ``objectives`` is required)::

    description: one line, shown by `study/run.py --space` and `--help`
    settings:                       # fixed TrialConfig values (polychromic/core/config.py)
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
by the ``BaselineFirst`` searcher wrapper (polychromic/tuning/search.py) and kept out of Optuna's
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

``load_space`` is the strict reading (run, resume, rescore). ``read_saved_space``
(``polychromic.store.saved_space``) is the lenient one, for what only needs the file as written (a study's objectives in review, the
shipped spaces' descriptions): the same bounded read, no validation, None when unreadable.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.columns import EVAL_METRICS, PASS_KS, TRAIN_METRICS
from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path
from polychromic.store.saved_space import SPACES_DIR, read_space_yaml, shipped_spaces
from polychromic.tasks import get_task

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
#: TrialConfig fields only study/confirm.py sets
CONFIRM_ONLY = ("role", "confirm_of")
#: TrialConfig fields that hold for the whole study (the baseline's frontier; where trials are
#: evaluated, which changes how fast, not what is measured), never searched
STUDY_WIDE = ("frontier_temperatures", "frontier_for", "eval_placement")

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

    def coerce(self, value: Any) -> Any:
        """``value`` as this distribution's number type (YAML reads ``1e-3`` as a string; an
        ``int`` distribution's ``4.0`` is ``4``); a choice, or a non-number, unchanged."""
        if self.distribution == "choice" or (number := _number(value)) is None:
            return value
        if self.distribution in ("int", "log_int") and float(number).is_integer():
            return int(number)
        return number


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
        defaults = TrialConfig.from_dict(self.settings).to_dict()
        return {**_baseline_values(self.params, defaults), "lambda_": 0.0}

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
    ``polychromic.core.inputs``), so no space file can hang, exhaust memory or be half-read."""
    path = resolve_space_path(name_or_path)
    return parse_space(read_space_yaml(path), str(path), path.stem, overrides)


def parse_space(raw: Any, source: str, name: str,
                overrides: dict[str, Any] | None = None) -> Space:
    """Validate a loaded YAML document (see the module docstring); raises ``ConfigError``.

    One parser per top-level key, called in the order problems are reported: the document's
    shape, the fixed settings (file, ``resources``, ``--set``), then what depends on them
    (parameters, points, objectives, scheduler, budget), the λ=0 baseline as a whole trial,
    and last the checks that import torch or the task."""
    _check_top_level(raw, source)
    description = _parse_description(raw.get("description", ""), source)
    settings, origin = _parse_settings(raw.get("settings"), source)
    _add_resources(raw.get("resources"), settings, origin, source)
    raw_params = _params_mapping(raw.get("params"), source)
    _apply_overrides(overrides or {}, raw_params, settings, origin, source)
    base = _settings_config(settings, origin, source)
    params = _parse_params(raw_params, settings, origin, base, source)
    points = _parse_points(raw.get("points"), params, _baseline_values(params, base.to_dict()),
                           source)
    objectives = _parse_objectives(raw.get("objectives"), base.n_eval_samples, source)
    scheduler = _parse_scheduler(raw.get("scheduler"), base.steps, source)
    num_trials = _parse_num_trials(raw.get("num_trials", 1 + len(points)), len(points),
                                   bool(params), source)
    sampler = _parse_sampler(raw.get("sampler", "tpe"), source)
    mct = _parse_max_concurrent_trials(raw.get("max_concurrent_trials", 0), source)
    space = Space(name, source, description, settings, params, points, objectives, scheduler,
                  num_trials, sampler, mct)
    _check_baseline_trial(space, origin, source)
    _check_expensive(base, origin, source)
    return space


# --- the document and the fixed settings -------------------------------------------------------


def _check_top_level(raw: Any, source: str) -> None:
    """The document is a mapping whose keys are all in ``TOP_LEVEL``."""
    if raw is None:
        raise ConfigError("(top level)", "the file is empty (a space needs at least "
                          "`objectives`)", source)
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"must be a mapping of {', '.join(TOP_LEVEL)}; "
                          f"got a {_kind(raw)}", source)
    for key in raw:
        if key not in TOP_LEVEL:
            raise ConfigError(str(key), f"unknown key{_did_you_mean(key, TOP_LEVEL)} "
                              f"(known: {', '.join(TOP_LEVEL)})", source)


def _parse_description(value: Any, source: str) -> str:
    """``description:``, stripped: one line, since ``--space`` and ``--help`` list it so."""
    if not isinstance(value, str) or "\n" in value.strip():
        raise ConfigError("description", "must be a one-line string", source)
    return value.strip()


def _parse_settings(value: Any, source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``settings:`` as a fresh dict of TrialConfig fields, and ``origin``: field → where it
    was set (``settings.<field>`` here; ``resources.…`` and ``--set …`` are added later), so
    an error about a value names the place the user wrote it."""
    settings = copy.deepcopy(value or {})
    if not isinstance(settings, dict):
        raise ConfigError("settings", "must be a mapping of TrialConfig fields, got a "
                          f"{_kind(settings)}", source)
    known = TrialConfig.field_names()
    for key in settings:
        if key not in known:
            raise ConfigError(f"settings.{key}", f"unknown setting{_did_you_mean(key, known)} "
                              "(see polychromic/core/config.py for the fields)", source)
    return settings, {str(k): f"settings.{k}" for k in settings}


def _add_resources(value: Any, settings: dict[str, Any], origin: dict[str, str],
                   source: str) -> None:
    """``resources:`` into ``settings``: only ``RESOURCE_FIELDS``, each given once."""
    resources = value or {}
    if not isinstance(resources, dict):
        raise ConfigError("resources", f"must be a mapping of {', '.join(RESOURCE_FIELDS)}, "
                          f"got a {_kind(resources)}", source)
    for key, item in resources.items():
        if key not in RESOURCE_FIELDS:
            raise ConfigError(f"resources.{key}", f"unknown key (known: "
                              f"{', '.join(RESOURCE_FIELDS)}; other settings belong in "
                              "settings)", source)
        if key in settings:
            raise ConfigError(f"resources.{key}", "is also given in settings; give it once",
                              source)
        settings[key] = item
        origin[key] = f"resources.{key}"


def _params_mapping(value: Any, source: str) -> dict[Any, Any]:
    """``params:`` as a mapping (its entries are parsed once the fixed settings are known)."""
    raw_params = value or {}
    if not isinstance(raw_params, dict):
        raise ConfigError("params", "must be a mapping of parameter name → distribution, "
                          f"got a {_kind(raw_params)}", source)
    return raw_params


def _apply_overrides(overrides: dict[str, Any], raw_params: dict[Any, Any],
                     settings: dict[str, Any], origin: dict[str, str], source: str) -> None:
    """``--set`` values into ``settings``: known fields that the space does not search."""
    known = TrialConfig.field_names()
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"--set {key}", f"unknown setting{_did_you_mean(key, known)}",
                              COMMAND_LINE)
        if key in raw_params:
            raise ConfigError(f"--set {key}", f"is searched in {source} (params.{key}); "
                              "--set changes fixed settings only", COMMAND_LINE)
        settings[key] = value
        origin[key] = f"--set {key}"


def _settings_config(settings: dict[str, Any], origin: dict[str, str], source: str) -> TrialConfig:
    """TrialConfig of the fixed settings; an error names where the bad value came from."""
    for name in CONFIRM_ONLY:  # a study's own trials are role: search; confirm.py sets these
        if name in settings and settings[name] != getattr(TrialConfig, name):
            raise _blame(origin.get(name, f"settings.{name}"), "is set by study/confirm.py for "
                         "its confirmation runs, not by a search space", source)
    try:
        return TrialConfig.from_dict(settings, source=source)
    except ConfigError as err:
        # a field nobody set is a default that another setting makes invalid
        raise _blame(origin.get(err.field, f"settings.{err.field}"), err.message,
                     source) from None


def _blame(where: str, message: str, source: str) -> ConfigError:
    """The error for a fixed setting set at ``where`` (see ``origin``): a ``--set`` value is
    the command line's fault, anything else the space file's."""
    return ConfigError(where, message, COMMAND_LINE if where.startswith("--set") else source)


# --- searched parameters ---------------------------------------------------------------------


def _parse_params(raw_params: dict[Any, Any], settings: dict[str, Any], origin: dict[str, str],
                  base: TrialConfig, source: str) -> dict[str, Param]:
    """Every ``params`` entry, then the checks across them: the diversity batch and each
    explicit baseline as a whole trial."""
    params = {pname: _parse_param(pname, spec, settings, origin, source)
              for pname, spec in raw_params.items()}
    _check_diversity_batch(params, base, source)
    _check_baselines(params, settings, source)
    return params


def _parse_param(pname: Any, spec: Any, settings: dict[str, Any], origin: dict[str, str],
                 source: str) -> Param:
    """One ``params`` entry; every bound or choice is probed through TrialConfig."""
    where = f"params.{pname}"
    dist = _param_distribution(pname, spec, settings, origin, where, source)
    p = Param(pname, dist, baseline=spec.get("baseline"))
    if dist == "choice":
        p.values = _choice_values(spec, where, source)
    else:
        p.low, p.high = _range_bounds(dist, spec, where, source)
    _probe(p, settings, where, source)
    p.baseline = p.coerce(p.baseline)
    return p


def _param_distribution(pname: Any, spec: Any, settings: dict[str, Any],
                        origin: dict[str, str], where: str, source: str) -> str:
    """The distribution of a ``params`` entry, once the entry is known to be a TrialConfig
    field not fixed elsewhere, mapped to a known distribution and known keys."""
    known = TrialConfig.field_names()
    if pname not in known:
        raise ConfigError(where, "unknown parameter (must be a TrialConfig field, e.g. lambda_, "
                          "n_generations, compute_every_n_steps, max_examples_for_diversity, "
                          f"lora_r, learning_rate){_did_you_mean(pname, known)}", source)
    if pname in STUDY_WIDE:
        raise ConfigError(where, "is a study-wide setting (the baseline's temperature "
                          "frontier), not a trial's: fix it in settings", source)
    if pname in settings:
        raise ConfigError(where, f"is also fixed in {origin[pname]}; fix it or search it, not "
                          "both", source)
    if not isinstance(spec, dict):
        raise ConfigError(where, "must be a mapping like "
                          "{distribution: log_uniform, low: 0.01, high: 10}", source)
    dist = spec.get("distribution")
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{where}.distribution", f"unknown distribution {dist!r} (known: "
                          f"{', '.join(DISTRIBUTIONS)})", source)
    for key in spec:
        if key not in PARAM_KEYS:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(PARAM_KEYS)})",
                              source)
    return dist


def _choice_values(spec: dict[str, Any], where: str, source: str) -> list[Any]:
    """A ``choice``'s ``values``: a non-empty list of distinct scalars."""
    if "low" in spec or "high" in spec:
        raise ConfigError(f"{where}.{'low' if 'low' in spec else 'high'}",
                          "choice takes values, not low/high", source)
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}.values", "choice needs a non-empty list of values", source)
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise ConfigError(f"{where}.values[{i}]", "must be a number, string or boolean, "
                              f"got a {_kind(v)}", source)
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"{where}.values", "lists a value twice", source)
    return list(values)


def _range_bounds(dist: str, spec: dict[str, Any], where: str,
                  source: str) -> tuple[float | int, float | int]:
    """A numeric distribution's ``(low, high)``: finite, ordered, > 0 on a log scale, whole
    numbers for ``int``/``log_int``."""
    if "values" in spec:
        raise ConfigError(f"{where}.values", f"{dist} takes low and high, not values", source)
    bounds = {}
    for bound in ("low", "high"):
        if bound not in spec:
            raise ConfigError(f"{where}.{bound}", f"missing ({dist} needs low and high)", source)
        number = _number(spec[bound])
        if number is None:
            raise ConfigError(f"{where}.{bound}", f"must be a finite number, got "
                              f"{spec[bound]!r}", source)
        bounds[bound] = number
    low, high = bounds["low"], bounds["high"]
    if low >= high:
        raise ConfigError(f"{where}.low", f"low ({_fmt(low)}) must be < high ({_fmt(high)})",
                          source)
    if dist.startswith("log") and low <= 0:
        raise ConfigError(f"{where}.low", f"log-scale bounds must be > 0, got {_fmt(low)}", source)
    if dist in ("int", "log_int"):
        for bound, value in bounds.items():
            if not float(value).is_integer():
                raise ConfigError(f"{where}.{bound}", f"{dist} needs whole-number bounds, "
                                  f"got {_fmt(value)}", source)
        return int(low), int(high)
    return low, high


def _probe(p: Param, settings: dict[str, Any], where: str, source: str) -> None:
    """Each bound or choice of ``p`` with the fixed settings must be a valid TrialConfig."""
    if p.distribution == "choice":
        probes = [(f"values[{i}]", v) for i, v in enumerate(p.values)]
    else:
        probes = [("low", p.low), ("high", p.high)]
    for label, probe in probes:
        try:
            TrialConfig.from_dict({**settings, p.name: probe}, source=source)
        except ConfigError as err:
            if err.field != p.name:  # the value breaks another setting (e.g. subset_size)
                raise ConfigError(f"{where}.{label}", f"{_fmt(probe)} conflicts with "
                                  f"settings.{err.field}: {err.message}", source) from None
            raise ConfigError(f"{where}.{label}", err.message, source) from None


def _check_diversity_batch(params: dict[str, Param], base: TrialConfig, source: str) -> None:
    """A searched ``max_examples_for_diversity`` stays within one batch."""
    p = params.get("max_examples_for_diversity")
    if p is None:
        return
    top = max(p.values) if p.distribution == "choice" else p.high
    if top > base.batch_size:  # type: ignore[operator]
        raise ConfigError("params.max_examples_for_diversity.high" if p.distribution != "choice"
                          else "params.max_examples_for_diversity.values",
                          f"{_fmt(top)} exceeds batch_size ({base.batch_size}): a diversity "
                          "step uses at most one batch of prompts, so larger values all behave "
                          "the same", source)


def _check_baselines(params: dict[str, Param], settings: dict[str, Any], source: str) -> None:
    """Each explicit ``baseline`` with the fixed settings must be a valid TrialConfig."""
    for pname, p in params.items():
        if p.baseline is None:
            continue
        try:
            TrialConfig.from_dict({**settings, pname: p.baseline}, source=source)
        except ConfigError as err:
            raise ConfigError(f"params.{pname}.baseline", err.message, source) from None


def _baseline_values(params: dict[str, Param], defaults: dict[str, Any]) -> dict[str, Any]:
    """Each searched parameter's baseline: its own ``baseline``, else the fixed setting or
    TrialConfig's default (``defaults``). The λ=0 trial and incomplete points use these."""
    return {name: p.baseline if p.baseline is not None else defaults[name]
            for name, p in params.items()}


# --- points ------------------------------------------------------------------------------------


def _parse_points(value: Any, params: dict[str, Param], fill: dict[str, Any],
                  source: str) -> list[dict[str, Any]]:
    """``points:`` as complete points (Ray's OptunaSearch needs every searched parameter in
    each; a missing one takes its value from ``fill``, the baselines)."""
    raw_points = value or []
    if not isinstance(raw_points, list):
        raise ConfigError("points", "must be a list of {parameter: value} mappings, "
                          f"got a {_kind(raw_points)}", source)
    return [_parse_point(i, point, params, fill, source) for i, point in enumerate(raw_points)]


def _parse_point(i: int, point: Any, params: dict[str, Param], fill: dict[str, Any],
                 source: str) -> dict[str, Any]:
    """``points[i]``: searched parameters only, each inside its distribution."""
    if not isinstance(point, dict) or not point:
        raise ConfigError(f"points[{i}]", "must be a mapping {parameter: value} of searched "
                          f"parameters ({', '.join(params) or 'none are searched'})", source)
    full = {pname: _point_value(i, point, p, fill, source) for pname, p in params.items()}
    for pname in point:
        if pname not in params:
            raise ConfigError(f"points[{i}].{pname}", "is not a searched parameter (searched: "
                              f"{', '.join(params) or 'none'})", source)
    return full


def _point_value(i: int, point: dict[Any, Any], p: Param, fill: dict[str, Any],
                 source: str) -> Any:
    """``p``'s value in ``points[i]`` (given, else its baseline), inside its distribution."""
    given = p.name in point
    value = p.coerce(point[p.name] if given else fill[p.name])
    if p.contains(value):
        return value
    why = f"{value!r} lies outside {_describe(p)}"
    if not given:
        why = (f"not given, and its baseline value {why}; give it in the point "
               f"or set params.{p.name}.baseline")
    elif p.name == "lambda_" and value == 0:
        why += " (the λ=0 baseline runs first anyway)"
    raise ConfigError(f"points[{i}].{p.name}", why, source)


# --- objectives, scheduler, budget ---------------------------------------------------------------


def _parse_objectives(value: Any, n_eval_samples: int, source: str) -> list[tuple[str, str]]:
    """``objectives:``: one or two distinct ``(metric, mode)`` of metrics the evaluation
    reports (pass@k only for k ≤ ``n_eval_samples``)."""
    if value is None:
        raise ConfigError("objectives", "missing: give one or two {metric, mode} mappings, "
                          "e.g. [{metric: pass@10, mode: max}]", source)
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise ConfigError("objectives", "must be a list of one or two {metric, mode} mappings",
                          source)
    objectives: list[tuple[str, str]] = []
    for i, obj in enumerate(value):
        objectives.append(_parse_objective(i, obj, objectives, n_eval_samples, source))
    return objectives


def _parse_objective(i: int, obj: Any, earlier: list[tuple[str, str]], n_eval_samples: int,
                     source: str) -> tuple[str, str]:
    """``objectives[i]``: a ``{metric, mode}`` mapping, its metric not among ``earlier``."""
    where = f"objectives[{i}]"
    if not isinstance(obj, dict):
        raise ConfigError(where, f"must be a mapping {{metric, mode}}, got a {_kind(obj)}",
                          source)
    for key in obj:
        if key not in ("metric", "mode"):
            raise ConfigError(f"{where}.{key}", "unknown key (known: metric, mode)", source)
    metric = obj.get("metric")
    eval_metrics = _eval_metrics(n_eval_samples)
    if metric not in eval_metrics:
        raise ConfigError(f"{where}.metric", f"{metric!r} is not reported by any trial"
                          f"{_objective_hint(metric, n_eval_samples)} (evaluation metrics: "
                          f"{', '.join(eval_metrics)})", source)
    mode = obj.get("mode")
    if mode not in ("min", "max"):
        raise ConfigError(f"{where}.mode", f"must be max or min (the direction), got {mode!r}",
                          source)
    if any(metric == m for m, _ in earlier):
        raise ConfigError(f"{where}.metric", f"{metric!r} is already objectives[0]", source)
    return metric, mode


def _eval_metrics(n_eval_samples: int) -> list[str]:
    """The metrics a trial reports after evaluation: ``EVAL_METRICS`` and pass@k for every k of
    ``PASS_KS`` and ``n_eval_samples`` up to ``n_eval_samples``."""
    n = n_eval_samples
    return [*EVAL_METRICS, *(f"pass@{k}" for k in sorted({*PASS_KS, n}) if k <= n)]


def _objective_hint(metric: Any, n_eval_samples: int) -> str:
    """Why an unknown objective metric is not reported, when it is a likely mistake."""
    if isinstance(metric, str) and metric in TRAIN_METRICS:
        return " during evaluation (it is a training metric: use it in scheduler.metric)"
    if isinstance(metric, str) and metric.startswith("pass@"):
        return f" with n_eval_samples={n_eval_samples}"
    return ""


def _parse_scheduler(value: Any, steps: int, source: str) -> dict[str, Any]:
    """``scheduler:`` with its defaults filled in (the grace period: a quarter of ``steps``)."""
    sched_raw = value or {}
    if not isinstance(sched_raw, dict):
        raise ConfigError("scheduler", f"must be a mapping of {', '.join(SCHEDULER_KEYS)}, "
                          f"got a {_kind(sched_raw)}", source)
    for key in sched_raw:
        if key not in SCHEDULER_KEYS:
            raise ConfigError(f"scheduler.{key}", f"unknown key (known: "
                              f"{', '.join(SCHEDULER_KEYS)})", source)
    sched = dict(sched_raw)
    defaults = {"enabled": True, "metric": "poly_score", "mode": "max",
                "grace_period": max(1, steps // 4), "reduction_factor": 2}
    for key, default in defaults.items():
        sched.setdefault(key, default)
    _check_scheduler(sched, steps, source)
    return sched


def _check_scheduler(sched: dict[str, Any], steps: int, source: str) -> None:
    """ASHA's settings: a training metric, a grace period below ``steps`` when enabled."""
    if not isinstance(sched["enabled"], bool):
        raise ConfigError("scheduler.enabled", f"must be true or false, got "
                          f"{sched['enabled']!r}", source)
    if sched["metric"] not in TRAIN_METRICS:
        raise ConfigError("scheduler.metric", f"{sched['metric']!r} is not reported during "
                          f"training (training metrics: {', '.join(TRAIN_METRICS)})", source)
    if sched["mode"] not in ("min", "max"):
        raise ConfigError("scheduler.mode", f"must be max or min, got {sched['mode']!r}", source)
    grace = sched["grace_period"]
    if not _is_whole(grace, 1, 2**63):
        raise ConfigError("scheduler.grace_period", "must be a whole number of steps ≥ 1, got "
                          f"{grace!r}", source)
    if sched["enabled"] and grace >= steps:
        raise ConfigError("scheduler.grace_period", f"{grace} is not below steps ({steps}): "
                          "ASHA could never stop a trial (set scheduler.enabled: false "
                          "instead)", source)
    rf = sched["reduction_factor"]
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not 1 < rf < MAX_WHOLE:
        raise ConfigError("scheduler.reduction_factor", f"must be a finite number > 1, got "
                          f"{rf!r}", source)


def _parse_num_trials(value: Any, n_points: int, searched: bool, source: str) -> int:
    """``num_trials:``: room for the baseline and the points; more needs a searched
    parameter."""
    if not _is_whole(value, 1, MAX_WHOLE):
        raise ConfigError("num_trials", f"must be a whole number from 1 to {MAX_WHOLE:,}, got "
                          f"{value!r}", source)
    if value < 1 + n_points:
        raise ConfigError("num_trials", f"{value} is fewer than the baseline + {n_points} "
                          "points", source)
    if value > 1 and not searched:
        raise ConfigError("params", "a study with more than one trial needs at least one "
                          "searched parameter", source)
    return value


def _parse_sampler(value: Any, source: str) -> str:
    """``sampler:``, one of ``SAMPLERS``."""
    if value not in SAMPLERS:
        raise ConfigError("sampler", f"must be one of {', '.join(SAMPLERS)}, got {value!r}",
                          source)
    return value


def _parse_max_concurrent_trials(value: Any, source: str) -> int:
    """``max_concurrent_trials:`` (0: as many as the cluster's resources allow)."""
    if not _is_whole(value, 0, MAX_WHOLE):
        raise ConfigError("max_concurrent_trials", f"must be a whole number from 0 to "
                          f"{MAX_WHOLE:,}, got {value!r}", source)
    return value


def _is_whole(value: Any, low: int, high: int) -> bool:
    """``value`` is an int (not a bool) from ``low`` to ``high``."""
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


# --- the space as a whole ----------------------------------------------------------------------


def _check_baseline_trial(space: Space, origin: dict[str, str], source: str) -> None:
    """The λ=0 baseline itself must be a valid trial."""
    try:
        space.trial_config(space.baseline())
    except ConfigError as err:
        raise ConfigError(origin.get(err.field, err.field), f"{err.message} in the λ=0 "
                          "baseline", source) from None


def _check_expensive(base: TrialConfig, origin: dict[str, str], source: str) -> None:
    """The checks that import torch (model name) or the task's modules (task, data file)."""
    _check_model(base, origin, source)
    _check_held_out(_check_task(base, origin, source), base, origin, source)


def _check_model(base: TrialConfig, origin: dict[str, str], source: str) -> None:
    """The model name can load (an embedded model, a model folder or a Hub id)."""
    # lazy: pulls torch, which this path does not otherwise need
    from polychromic.models.loading import check_model_name

    try:
        check_model_name(base.model)
    except ConfigError as err:
        raise _blame(origin.get("model", "settings.model"), err.message, source) from None


def _check_task(base: TrialConfig, origin: dict[str, str], source: str) -> Any:
    """The task and its data file load; returns the task."""

    try:
        return get_task(base)
    except ConfigError as err:
        if err.source != "config":  # a data file's own problem: it names that file
            raise
        raise _blame(origin.get(err.field, f"settings.{err.field}"), err.message,
                     source) from None


def _check_held_out(task: Any, base: TrialConfig, origin: dict[str, str], source: str) -> None:
    """The task's test split holds at least ``n_eval_prompts`` prompts: evaluation takes the
    first n_eval_prompts of it (polychromic.evaluation.pipeline), and a file whose rows all hash to train
    would pass everything else and evaluate 0 prompts."""
    counts = getattr(task, "counts", None)
    held_out = (int(counts.get("test", 0)) if isinstance(counts, dict)
                else len(task.examples("test")))
    if held_out < base.n_eval_prompts:
        data = f"the data file {base.data}" if base.data else f"task {base.task}"
        per_split = f" (rows per split: {counts})" if isinstance(counts, dict) else ""
        raise _blame(origin.get("n_eval_prompts", "settings.n_eval_prompts"),
                     f"{base.n_eval_prompts} held-out prompts asked, but {data} gives only "
                     f"{held_out} in its test split{per_split}; lower n_eval_prompts or add "
                     "data", source)


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
