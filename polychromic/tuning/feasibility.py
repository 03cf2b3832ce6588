"""Can the cluster a study runs on ever run one trial? Answered before any trial starts.

Ray never refuses a request it cannot place: a Train worker asking for a GPU on a GPU-less
cluster waits forever (the autoscaler repeats "No available node types can fulfill resource
request", Train its ``WorkerGroupStartupTimeoutError``). So the runner compares one trial's
demand — ``num_workers`` bundles of {CPU: cpus_per_worker, GPU: 1 if use_gpu, memory: the
estimate (polychromic.models.memory.ray_memory), worker_resources} plus the trial driver's
CPU — with what the cluster it is connected to (local, or ``--address``) can *ever* provide:
its alive nodes now plus the autoscaler's node types (from the head's
``~/ray_bootstrap_config.yaml``, which ``ray up`` writes; a local cluster has none). A bundle
must fit on one node (or node type); all workers must fit in the nodes plus the node types'
``max_workers``; a GPU worker's estimated peak GPU memory must fit one GPU of the node (its
``accelerator_type``) or node type (its instance type). Otherwise: one line, exit 2.
A custom resource (``worker_resources``) no node has yet is only logged as pending: such
resources come from nodes started by hand, which may join after the study starts. A node type
that declares no ``memory`` (Ray measures it when the node starts), or a GPU of unknown size,
is taken to hold the request.

On a ``ray up`` head the node types are known before Ray is even joined, so
:func:`refuse_before_start` refuses a GPU space none of them holds before anything starts.

Also here: the lines ``--check`` and ``--plan`` print about which quantization each trial
loads and its estimated memory per Train worker (polychromic.models.memory), with the
``cluster.yaml`` GPU worker types that would hold it (what to rent; a refusal comes only
from the cluster a study actually runs on).
Pure functions over resource dicts; only :func:`connected_cluster` talks to Ray.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.models import memory

#: the file ``ray up`` writes on the head with the cluster's autoscaler config
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
#: Ray's own resources that are not asked for by a trial (object store, node ids, …)
_IGNORED = ("object_store_memory",)
GIB = memory.GIB
#: where Ray names a node's GPU model among its resources (``accelerator_type:A10G``)
ACCELERATOR = "accelerator_type:"


class NodeType(NamedTuple):
    """A node type of a cluster-launcher config (``cluster.yaml``, or the bootstrap config
    ``ray up`` writes on the head)."""

    resources: dict[str, float]
    max_workers: int
    instance: str = ""  # InstanceType (AWS) / machineType (GCP)
    gpu_gib: float | None = None  # memory of one GPU, from the instance type (None: unknown)


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
    settings (none when the model's shape is unknown), and ``worker_resources``. With
    ``generation_backend: vllm`` the worker's colocated engine is counted (its own weights and
    KV share on CPU); ``auto`` resolves to vLLM only on a CUDA worker, whose engine lives in the
    GPU memory it reserves, so HF's KV cache is counted there instead (a small over-request)."""
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else cluster_gpus > 0
    ram = memory.ray_memory(cfg.to_dict(), cuda=bool(use_gpu), part="training_worker",
                            vllm=cfg.generation_backend == "vllm")
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
                   node_types: dict[str, NodeType], driver_cpu: float, source: str) -> str:
    """Refuse (``ConfigError``) a trial the cluster can never place; else return what will be
    pending and why ("" when a node holds a worker now).

    ``nodes``: the resources of each alive node now (as :func:`connected_cluster` returns
    them); ``node_types``: the node types the autoscaler may add (:func:`autoscaler_node_types`)."""
    cluster_gpus = sum(n.get("GPU", 0.0) for n in nodes) + sum(
        t.resources.get("GPU", 0.0) * t.max_workers for t in node_types.values())
    bundle = worker_bundle(cfg, cluster_gpus)
    if "GPU" in bundle:  # GPUs too small for one worker are no GPUs for this trial
        nodes, node_types = check_gpu_memory(cfg, nodes, node_types, source)
    nodes = [_memory_known(n, bundle) for n in nodes]
    res = {k: _memory_known(t.resources, bundle) for k, t in node_types.items()}
    types = {k: (r, node_types[k].max_workers) for k, r in res.items()}
    kinds = f"its {len(types)} node type(s)" if types else "no autoscaler"
    custom = sorted(k for k in bundle if k not in ("CPU", "GPU", "memory"))
    unseen = [k for k in custom if not any(n.get(k, 0.0) >= bundle[k] for n in nodes)
              and not any(r.get(k, 0.0) >= bundle[k] for r, _ in types.values())]
    if unseen:  # custom resources come from nodes started by hand (`ray start --resources`),
        # which may join after the study starts: said, not refused
        return (f"no node advertises {', '.join(unseen)} yet: trials stay pending until a node "
                f"started with `ray start --resources` that holds {shown(bundle)} joins")
    for key, need in bundle.items():
        have = [n.get(key, 0.0) for n in nodes] + [r.get(key, 0.0) for r, _ in types.values()]
        if need > 0 and max(have, default=0.0) < need - 1e-9:
            field = {"GPU": "use_gpu", "CPU": "cpus_per_worker", "memory": "model"}.get(
                key, f"worker_resources.{key}")
            largest = max(have, default=0.0)
            what = ("each trial needs 1 GPU per worker; this cluster has none and "
                    + (f"its {len(types)} autoscaler node type(s) add none" if types
                       else "no autoscaler to add any")
                    if key == "GPU" and largest == 0 else
                    f"each Train worker requests {need / GIB:.1f} GiB of memory (the estimate "
                    f"for {cfg.model} with these settings); the largest node (now or of "
                    f"{kinds}) has {largest / GIB:.1f} GiB for Ray's tasks"
                    if key == "memory" else
                    f"each Train worker needs {need:g} {key}; the largest node (now or of "
                    f"{kinds}) has {largest:g}")
            raise ConfigError(field, what, source)
    if not any(_fits(bundle, n) for n in nodes) and not any(
            _fits(bundle, r) for r, _ in types.values()):
        raise ConfigError("resources", f"no node (now or of {kinds}) holds one Train worker's "
                          f"request {shown(bundle)} on its own", source)
    slots = sum(_slots(bundle, n) for n in nodes) + sum(
        _slots(bundle, r) * m for r, m in types.values())
    if slots < cfg.num_workers:
        raise ConfigError("num_workers", f"each trial needs {cfg.num_workers} workers of "
                          f"{shown(bundle)}; this cluster can ever hold {slots:g}", source)
    cpus = sum(n.get("CPU", 0.0) for n in nodes) + sum(
        r.get("CPU", 0.0) * m for r, m in types.values())
    if cpus < cfg.num_workers * bundle["CPU"] + driver_cpu - 1e-9:
        raise ConfigError("cpus_per_worker", f"a trial needs {cfg.num_workers} × "
                          f"{bundle['CPU']:g} CPU for its workers + {driver_cpu:g} for its driver;"
                          f" this cluster can ever have {cpus:g}", source)
    if any(_fits(bundle, n) for n in nodes):
        return ""
    fitting = sorted(name for name, (r, _) in types.items() if _fits(bundle, r))
    return (f"no node holds a Train worker's {shown(bundle)} now: trials stay pending until the "
            f"autoscaler adds a node of type {' or '.join(fitting)} (minutes)")


def gpu_estimate(cfg: TrialConfig, gradient_checkpointing: bool | None = None) -> float | None:
    """Estimated peak GPU memory (GiB) of one Train worker of ``cfg`` on a GPU, at the
    quantization it loads there (polychromic.models.memory); None when the model's shape is
    unknown. ``gradient_checkpointing``: the estimate with that setting instead of ``cfg``'s."""
    shape = memory.shape_of(cfg.model)
    if shape is None:
        return None
    ckpt = cfg.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    return memory.estimate(shape, cfg.to_dict(), memory.loaded_as(cfg.quantize, cuda=True),
                           cuda=True, gradient_checkpointing=ckpt)["training_worker"]


def node_gpu_gib(node: dict[str, float]) -> tuple[str, float | None]:
    """The GPU model of a node now (Ray's ``accelerator_type:…`` resource) and the memory of
    one of its GPUs (None: unknown model)."""
    kind = next((k[len(ACCELERATOR):] for k in node if k.startswith(ACCELERATOR)), "")
    return kind, memory.accelerator_gib(kind) if kind else None


def check_gpu_memory(cfg: TrialConfig, nodes: list[dict[str, float]],
                     node_types: dict[str, NodeType], source: str
                     ) -> tuple[list[dict[str, float]], dict[str, NodeType]]:
    """Refuse (``ConfigError``) a GPU trial whose estimated peak GPU memory per Train worker
    (:func:`gpu_estimate`) no GPU of the cluster holds, now or of the autoscaler's node types;
    a GPU of unknown size is taken to hold it. Returns ``nodes`` and ``node_types`` with the
    GPUs that are too small taken out (they can never hold one of its workers)."""
    need = gpu_estimate(cfg)
    if need is None:
        return nodes, node_types
    now = [(n, *node_gpu_gib(n)) for n in nodes if n.get("GPU", 0.0) > 0]
    places = ([(kind or "GPU", "a node now", gib) for _, kind, gib in now]
              + [(t.instance or name, name, t.gpu_gib) for name, t in node_types.items()
                 if t.resources.get("GPU", 0.0) > 0])
    small = [p for p in places if p[2] is not None and p[2] < need]
    if places and len(small) == len(places):
        kind, where, gib = max(small, key=lambda p: p[2])
        other = gpu_estimate(cfg, not cfg.gradient_checkpointing)
        hint = (f"; --set gradient_checkpointing=true: {other:.0f} GiB"
                if not cfg.gradient_checkpointing and other is not None and other <= gib else "")
        raise ConfigError("model", f"estimated {need:.0f} GiB per training worker ({cfg.model} "
                          f"at {memory.loaded_as(cfg.quantize, cuda=True)}) exceeds the {gib:g} "
                          f"GiB of {kind} ({where}, the largest GPU this cluster has or its "
                          f"autoscaler can add){hint}", source)

    def too_small(gib: float | None) -> bool:
        return gib is not None and gib < need

    nodes = [{k: v for k, v in n.items() if k != "GPU"} if n.get("GPU") and
             too_small(node_gpu_gib(n)[1]) else n for n in nodes]
    node_types = {k: t._replace(resources={r: v for r, v in t.resources.items() if r != "GPU"})
                  if t.resources.get("GPU") and too_small(t.gpu_gib) else t
                  for k, t in node_types.items()}
    return nodes, node_types


def _slots(bundle: dict[str, float], node: dict[str, float]) -> float:
    """How many ``bundle`` fit on ``node`` at once."""
    counts = [math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in bundle.items()
              if v > 0 and math.isfinite(node.get(k, 0.0))]
    return float(min(counts)) if counts else math.inf


def node_types(config: dict[str, Any]) -> dict[str, NodeType]:
    """The worker node types of a cluster-launcher config (``cluster.yaml``, or the bootstrap
    config ``ray up`` writes on the head from it): name → :class:`NodeType`, the head's type
    left out (it is already one of the nodes; it is never added). A type's ``max_workers``
    defaults to the config's."""
    out: dict[str, NodeType] = {}
    types = config.get("available_node_types") if isinstance(config, dict) else None
    for name, spec in (types if isinstance(types, dict) else {}).items():
        if (name == config.get("head_node_type") or not isinstance(spec, dict)
                or not isinstance(spec.get("resources"), dict)):
            continue
        most = spec.get("max_workers", config.get("max_workers", 0))
        node = spec.get("node_config") if isinstance(spec.get("node_config"), dict) else {}
        kind = str(node.get("InstanceType") or node.get("machineType") or "")
        out[str(name)] = NodeType({str(k): float(v) for k, v in spec["resources"].items()
                                   if isinstance(v, (int, float))},
                                  most if isinstance(most, int) else 0, kind,
                                  memory.gpu_gib(kind))
    return out


def read_cluster_config(path: Path) -> dict[str, Any]:
    """A cluster-launcher YAML as a mapping; {} when missing or unreadable."""
    import yaml

    path = path.expanduser()
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def autoscaler_node_types(path: Path = BOOTSTRAP_CONFIG) -> dict[str, NodeType]:
    """The node types the autoscaler may add (those with ``max_workers`` > 0), read from the
    head's bootstrap config; empty without one (a local cluster, or ``ray start`` by hand)."""
    return {k: t for k, t in node_types(read_cluster_config(path)).items() if t.max_workers > 0}


def connected_cluster() -> list[dict[str, float]]:
    """The alive nodes' total resources (Ray must be initialized), ``accelerator_type:…``
    included (it names the node's GPU model)."""
    import ray

    return [{k: float(v) for k, v in node.get("Resources", {}).items()
             if k not in _IGNORED and not k.startswith("node:")}
            for node in ray.nodes() if node.get("Alive")]


def refuse_infeasible(cfg: TrialConfig, driver_cpu: float, source: str) -> str:
    """:func:`check_feasible` against the connected cluster and its autoscaler."""
    return check_feasible(cfg, connected_cluster(), autoscaler_node_types(), driver_cpu, source)


def refuse_before_start(cfg: TrialConfig, source: str) -> str:
    """Before Ray starts: on a ``ray up`` head (its bootstrap config is here) the cluster the
    study will run on is the one launched from ``cluster.yaml``, whose node types are known
    now: a GPU trial none of their GPUs holds is refused (:func:`check_gpu_memory`). Returns
    what it checked against, for ``--check`` to say; a local or ``--address`` cluster is
    checked once joined (:func:`refuse_infeasible`)."""
    types = autoscaler_node_types()
    gpus = sum(t.resources.get("GPU", 0.0) * t.max_workers for t in types.values())
    if not types:
        return ("memory: the cluster a study joins (local, or --address) is checked against "
                "its nodes and autoscaler node types when the study or --plan starts")
    if "GPU" in worker_bundle(cfg, gpus):
        check_gpu_memory(cfg, [], types, source)
    return (f"memory: checked against this `ray up` cluster's node types "
            f"({BOOTSTRAP_CONFIG}): {', '.join(sorted(types))}")


def memory_lines(cfg: TrialConfig, cluster: dict[str, Any]) -> list[str]:
    """``--check``/``--plan``: estimated peak memory per Train worker on a GPU and on CPU
    (polychromic.models.memory), and the GPU worker types of ``cluster`` (a cluster-launcher
    config: ``cluster.yaml``) that hold it, i.e. what to rent. Says, never refuses: a refusal
    comes from the cluster the study runs on (:func:`check_gpu_memory`). The model's shape
    comes from :func:`polychromic.models.memory.shape_of` (nothing loaded, built or fetched)."""
    shape = memory.shape_of(cfg.model)
    if shape is None:
        return [f"memory: no local config.json for {cfg.model} (not downloaded): no estimate"]
    settings = cfg.to_dict()
    q = memory.loaded_as(cfg.quantize, cuda=True)
    gpu = memory.estimate(shape, settings, q, cuda=True,
                          gradient_checkpointing=cfg.gradient_checkpointing)
    other = memory.estimate(shape, settings, q, cuda=True,
                            gradient_checkpointing=not cfg.gradient_checkpointing)
    cpu_q = memory.loaded_as(cfg.quantize, cuda=False)
    cpu = memory.estimate(shape, settings, cpu_q, cuda=False,
                          gradient_checkpointing=cfg.gradient_checkpointing)
    types = {k: t for k, t in node_types(cluster).items() if t.resources.get("GPU", 0.0) > 0}
    fits = [f"{name} ({t.instance}, {t.gpu_gib:g} GiB)" for name, t in types.items()
            if t.gpu_gib is not None and t.gpu_gib >= gpu["training_worker"]]
    return [
        f"memory (estimate, {shape.parameters() / 1e6:,.1f} M parameters): per training worker "
        f"on a GPU at {q}: {gpu['training_worker']:.2f} GiB = weights {gpu['weights']:.2f} + "
        f"LoRA/AdamW {gpu['lora_adamw']:.2f} + activations {gpu['activations']:.2f} ("
        f"{'without' if cfg.gradient_checkpointing else 'with'} gradient checkpointing "
        f"{other['activations']:.2f}) + rollout KV cache "
        f"{gpu['rollout_kv_cache']:.2f} + overhead {gpu['overhead']:.2f}; evaluation actor "
        f"{gpu['eval_actor']:.2f} GiB; on CPU ({cpu_q}): {cpu['training_worker']:.2f} GiB",
        "memory: fits cluster.yaml worker types: " + (", ".join(fits) if fits else (
            "none (a study on a cluster launched from it would be refused)" if types
            else "none (no GPU worker types)")),
    ]


def plan_memory(cfg: TrialConfig, cluster_yaml: Path) -> list[str]:
    """:func:`memory_lines` for ``cfg`` against the GPU worker types of ``cluster_yaml``."""
    return memory_lines(cfg, read_cluster_config(cluster_yaml))
