"""Can the connected cluster ever run one trial? Answered before any trial starts.

Ray never refuses a request it cannot place: a Train worker asking for a GPU on a GPU-less
cluster waits forever (the autoscaler repeats "No available node types can fulfill resource
request", Train its ``WorkerGroupStartupTimeoutError``). So the runner compares one trial's
demand — ``num_workers`` bundles of {CPU: cpus_per_worker, GPU: 1 if use_gpu, memory: the
estimate (polychromic.models.memory.ray_memory), worker_resources} plus the trial driver's CPU — with what the cluster can *ever* provide: its alive nodes now plus
the autoscaler's node types (from the head's ``~/ray_bootstrap_config.yaml``, which ``ray up``
writes; a local cluster has none). A bundle must fit on one node (or node type); all workers
must fit in the nodes plus the node types' ``max_workers``. Otherwise: one line, exit 2.
A custom resource (``worker_resources``) no node has yet is only logged as pending: such
resources come from nodes started by hand, which may join after the study starts. A node type
that declares no ``memory`` (Ray measures it when the node starts) is taken to hold the request.

Also here: the lines ``--check`` and ``--plan`` print about which quantization each trial
loads and its estimated memory per Train worker (polychromic.models.memory), with the
``cluster.yaml`` GPU worker types that hold it; a GPU space none of them holds is refused.
Pure functions over resource dicts; only :func:`connected_cluster` talks to Ray.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.models import memory

#: the file ``ray up`` writes on the head with the cluster's autoscaler config
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
#: Ray's own resources that are not asked for by a trial (object store, node ids, …)
_IGNORED = ("object_store_memory",)
GIB = memory.GIB


def quantization_line(cfg: TrialConfig, cuda_here: bool) -> str:
    """What ``quantize`` resolves to for this study's trials, said before anything starts."""
    q = cfg.quantize
    if q == "auto":
        here = ("this machine has CUDA: 4bit NF4 here" if cuda_here else
                "this machine has no CUDA: fp32 here")
        return (f"quantization: quantize=auto → 4bit (NF4) on a CUDA worker, none (fp32) on a "
                f"CPU worker; {here} (--set quantize=4bit forces NF4, which bitsandbytes also "
                "runs on CPU, slower)")
    what = {"4bit": "4bit (NF4, double quantization)", "8bit": "8bit (LLM.int8)",
            "none": "none (fp32 on CPU, bf16 on CUDA)"}[q]
    return f"quantization: every trial loads the base {what}, on CPU or GPU workers alike"


def worker_bundle(cfg: TrialConfig, cluster_gpus: float) -> dict[str, float]:
    """One Train worker's resource request (``polychromic.tuning.trial`` passes it to Ray
    Train): its CPUs, a GPU when it uses one, the memory the estimate gives for its model and
    settings (none when the model's shape is unknown), and ``worker_resources``."""
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else cluster_gpus > 0
    ram = memory.ray_memory(cfg.to_dict(), cuda=bool(use_gpu), part="training_worker")
    return {"CPU": float(cfg.cpus_per_worker), **({"GPU": 1.0} if use_gpu else {}),
            **({"memory": float(ram)} if ram else {}),
            **{k: float(v) for k, v in cfg.worker_resources.items()}}


def shown(bundle: dict[str, float]) -> str:
    """A bundle as the messages print it (memory in GiB)."""
    return "{" + ", ".join(f"'{k}': " + (f"{v / GIB:.2f} GiB" if k == "memory" else f"{v:g}")
                           for k, v in bundle.items()) + "}"


def _memory_known(node: dict[str, float], bundle: dict[str, float]) -> dict[str, float]:
    """``node`` with an unknown memory (a node type that declares none) taken as unlimited."""
    return node if "memory" not in bundle or "memory" in node else {**node, "memory": math.inf}


def _fits(bundle: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(k, 0.0) >= v - 1e-9 for k, v in bundle.items() if v > 0)


def check_feasible(cfg: TrialConfig, nodes: list[dict[str, float]],
                   node_types: dict[str, tuple[dict[str, float], int]],
                   driver_cpu: float, source: str) -> str:
    """Refuse (``ConfigError``) a trial the cluster can never place; else return what will be
    pending and why ("" when a node holds a worker now).

    ``nodes``: the resources of each alive node now; ``node_types``: name → (resources of one
    node, most nodes of that type the autoscaler may add)."""
    cluster_gpus = sum(n.get("GPU", 0.0) for n in nodes) + sum(
        r.get("GPU", 0.0) * m for r, m in node_types.values())
    bundle = worker_bundle(cfg, cluster_gpus)
    nodes = [_memory_known(n, bundle) for n in nodes]
    node_types = {k: (_memory_known(r, bundle), m) for k, (r, m) in node_types.items()}
    types = f"its {len(node_types)} node type(s)" if node_types else "no autoscaler"
    custom = sorted(k for k in bundle if k not in ("CPU", "GPU", "memory"))
    unseen = [k for k in custom if not any(n.get(k, 0.0) >= bundle[k] for n in nodes)
              and not any(r.get(k, 0.0) >= bundle[k] for r, _ in node_types.values())]
    if unseen:  # custom resources come from nodes started by hand (`ray start --resources`),
        # which may join after the study starts: said, not refused
        return (f"no node advertises {', '.join(unseen)} yet: trials stay pending until a node "
                f"started with `ray start --resources` that holds {shown(bundle)} joins")
    for key, need in bundle.items():
        have = [n.get(key, 0.0) for n in nodes] + [r.get(key, 0.0) for r, _ in node_types.values()]
        if need > 0 and max(have, default=0.0) < need - 1e-9:
            field = {"GPU": "use_gpu", "CPU": "cpus_per_worker", "memory": "model"}.get(
                key, f"worker_resources.{key}")
            largest = max(have, default=0.0)
            what = ("each trial needs 1 GPU per worker; this cluster has none and "
                    + (f"its {len(node_types)} autoscaler node type(s) add none" if node_types
                       else "no autoscaler to add any")
                    if key == "GPU" and largest == 0 else
                    f"each Train worker requests {need / GIB:.1f} GiB of memory (the estimate "
                    f"for {cfg.model} with these settings); the largest node (now or of "
                    f"{types}) has {largest / GIB:.1f} GiB for Ray's tasks"
                    if key == "memory" else
                    f"each Train worker needs {need:g} {key}; the largest node (now or of "
                    f"{types}) has {largest:g}")
            raise ConfigError(field, what, source)
    if not any(_fits(bundle, n) for n in nodes) and not any(
            _fits(bundle, r) for r, _ in node_types.values()):
        raise ConfigError("resources", f"no node (now or of {types}) holds one Train worker's "
                          f"request {shown(bundle)} on its own", source)
    slots = sum(_slots(bundle, n) for n in nodes) + sum(
        _slots(bundle, r) * m for r, m in node_types.values())
    if slots < cfg.num_workers:
        raise ConfigError("num_workers", f"each trial needs {cfg.num_workers} workers of "
                          f"{shown(bundle)}; this cluster can ever hold {slots:g}", source)
    cpus = sum(n.get("CPU", 0.0) for n in nodes) + sum(
        r.get("CPU", 0.0) * m for r, m in node_types.values())
    if cpus < cfg.num_workers * bundle["CPU"] + driver_cpu - 1e-9:
        raise ConfigError("cpus_per_worker", f"a trial needs {cfg.num_workers} × "
                          f"{bundle['CPU']:g} CPU for its workers + {driver_cpu:g} for its driver;"
                          f" this cluster can ever have {cpus:g}", source)
    if any(_fits(bundle, n) for n in nodes):
        return ""
    fitting = sorted(name for name, (r, _) in node_types.items() if _fits(bundle, r))
    return (f"no node holds a Train worker's {shown(bundle)} now: trials stay pending until the "
            f"autoscaler adds a node of type {' or '.join(fitting)} (minutes)")


def _slots(bundle: dict[str, float], node: dict[str, float]) -> float:
    """How many ``bundle`` fit on ``node`` at once."""
    counts = [math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in bundle.items()
              if v > 0 and math.isfinite(node.get(k, 0.0))]
    return float(min(counts)) if counts else math.inf


def autoscaler_node_types(path: Path = BOOTSTRAP_CONFIG) -> dict[str, tuple[dict[str, float], int]]:
    """The node types the autoscaler may add (name → (resources, max_workers)), read from the
    head's bootstrap config; empty without one (a local cluster, or ``ray start`` by hand)."""
    import yaml

    path = path.expanduser()
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    out: dict[str, tuple[dict[str, float], int]] = {}
    for name, spec in (raw.get("available_node_types") or {}).items():
        if (name == raw.get("head_node_type") or not isinstance(spec, dict)
                or not isinstance(spec.get("resources"), dict)):
            continue  # the head is already one of the nodes; it is never added
        most = spec.get("max_workers", raw.get("max_workers", 0))
        if isinstance(most, int) and most > 0:
            out[str(name)] = ({str(k): float(v) for k, v in spec["resources"].items()
                               if isinstance(v, (int, float))}, most)
    return out


def connected_cluster() -> list[dict[str, float]]:
    """The alive nodes' total resources (Ray must be initialized)."""
    import ray

    return [{k: float(v) for k, v in node.get("Resources", {}).items()
             if k not in _IGNORED and not k.startswith("node:")}
            for node in ray.nodes() if node.get("Alive")]


def refuse_infeasible(cfg: TrialConfig, driver_cpu: float, source: str) -> str:
    """:func:`check_feasible` against the connected cluster and its autoscaler."""
    return check_feasible(cfg, connected_cluster(), autoscaler_node_types(), driver_cpu, source)


def _gpu_quantization(cfg: TrialConfig) -> str:
    return {"auto": "nf4", "4bit": "nf4", "8bit": "int8", "none": "bf16"}[cfg.quantize]


def memory_lines(cfg: TrialConfig, cluster: dict[str, Any], source: str) -> list[str]:
    """``--check``/``--plan``: estimated peak memory per Train worker on a GPU and on CPU
    (polychromic.models.memory), and the cluster.yaml GPU worker types it fits; refuses
    (``ConfigError``) a GPU space no worker type of ``cluster`` can hold. The model's shape
    comes from :func:`polychromic.models.memory.shape_of` (nothing loaded, built or fetched)."""
    shape = memory.shape_of(cfg.model)
    if shape is None:
        return [f"memory: no local config.json for {cfg.model} (not downloaded): no estimate"]
    settings = cfg.to_dict()
    q = _gpu_quantization(cfg)
    gpu = memory.estimate(shape, settings, q, cuda=True,
                          gradient_checkpointing=cfg.gradient_checkpointing)
    other = memory.estimate(shape, settings, q, cuda=True,
                            gradient_checkpointing=not cfg.gradient_checkpointing)
    cpu_q = memory.loaded_as(cfg.quantize, cuda=False)
    cpu = memory.estimate(shape, settings, cpu_q, cuda=False,
                          gradient_checkpointing=cfg.gradient_checkpointing)
    types = memory.worker_types(cluster)
    fits = [f"{name} ({kind}, {gib:g} GiB)" for name, (kind, gib) in types.items()
            if gib is not None and gib >= gpu["training_worker"]]
    lines = [
        f"memory (estimate, {shape.parameters() / 1e6:,.1f} M parameters): per training worker "
        f"on a GPU at {q}: {gpu['training_worker']:.2f} GiB = weights {gpu['weights']:.2f} + "
        f"LoRA/AdamW {gpu['lora_adamw']:.2f} + activations {gpu['activations']:.2f} ("
        f"{'without' if cfg.gradient_checkpointing else 'with'} gradient checkpointing "
        f"{other['activations']:.2f}) + rollout KV cache "
        f"{gpu['rollout_kv_cache']:.2f} + overhead {gpu['overhead']:.2f}; evaluation actor "
        f"{gpu['eval_actor']:.2f} GiB; on CPU ({cpu_q}): {cpu['training_worker']:.2f} GiB",
        "memory: fits cluster.yaml worker types: " + (", ".join(fits) if fits else "none"),
    ]
    too_small = [(name, kind, gib) for name, (kind, gib) in types.items()
                 if gib is not None and gib < gpu["training_worker"]]
    if types and not fits and cfg.use_gpu is not False and too_small:
        name, kind, gib = max(too_small, key=lambda t: t[2])
        hint = (f"; --set gradient_checkpointing=true: {other['training_worker']:.0f} GiB"
                if not cfg.gradient_checkpointing and other["training_worker"] <= gib else "")
        raise ConfigError("model", f"estimated {gpu['training_worker']:.0f} GiB per training "
                          f"worker ({cfg.model} at {q}) exceeds the {gib:g} GiB of {kind} "
                          f"({name}, the largest GPU worker type in cluster.yaml){hint}", source)
    return lines


def plan_memory(cfg: TrialConfig, cluster_yaml: Path, source: str) -> list[str]:
    """:func:`memory_lines` for ``cfg`` against the GPU worker types of ``cluster_yaml``."""
    import yaml

    try:
        cluster = yaml.safe_load(cluster_yaml.read_text()) if cluster_yaml.is_file() else {}
    except (OSError, yaml.YAMLError):
        cluster = {}
    return memory_lines(cfg, cluster or {}, source)
