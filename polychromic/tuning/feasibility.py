"""Can the connected cluster ever run one trial? Answered before any trial starts.

Ray never refuses a request it cannot place: a Train worker asking for a GPU on a GPU-less
cluster waits forever (the autoscaler repeats "No available node types can fulfill resource
request", Train its ``WorkerGroupStartupTimeoutError``). So the runner compares one trial's
demand — ``num_workers`` bundles of {CPU: cpus_per_worker, GPU: 1 if use_gpu, worker_resources}
plus the trial driver's CPU — with what the cluster can *ever* provide: its alive nodes now plus
the autoscaler's node types (from the head's ``~/ray_bootstrap_config.yaml``, which ``ray up``
writes; a local cluster has none). A bundle must fit on one node (or node type); all workers
must fit in the nodes plus the node types' ``max_workers``. Otherwise: one line, exit 2.

Also here: the line ``--check`` prints about which quantization each trial loads.
Pure functions over resource dicts; only :func:`connected_cluster` talks to Ray.
"""

from __future__ import annotations

import math
from pathlib import Path

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError

#: the file ``ray up`` writes on the head with the cluster's autoscaler config
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
#: Ray's own resources that are not asked for by a trial (object store, node ids, …)
_IGNORED = ("memory", "object_store_memory")


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
    """One Train worker's resource request, as ``polychromic.tuning.trial`` makes it."""
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else cluster_gpus > 0
    return {"CPU": float(cfg.cpus_per_worker), **({"GPU": 1.0} if use_gpu else {}),
            **{k: float(v) for k, v in cfg.worker_resources.items()}}


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
    types = f"its {len(node_types)} node type(s)" if node_types else "it has no node types"
    for key, need in bundle.items():
        have = [n.get(key, 0.0) for n in nodes] + [r.get(key, 0.0) for r, _ in node_types.values()]
        if need > 0 and max(have, default=0.0) < need - 1e-9:
            field = {"GPU": "use_gpu", "CPU": "cpus_per_worker"}.get(key, f"worker_resources.{key}")
            largest = max(have, default=0.0)
            what = (f"each trial needs 1 GPU per worker; this cluster has none and {types} add "
                    "none" if key == "GPU" and largest == 0 else
                    f"each Train worker needs {need:g} {key}; the largest node (now or of "
                    f"{types}) has {largest:g}")
            raise ConfigError(field, what, source)
    if not any(_fits(bundle, n) for n in nodes) and not any(
            _fits(bundle, r) for r, _ in node_types.values()):
        raise ConfigError("resources", f"no node (now or of {types}) holds one Train worker's "
                          f"request {bundle} on its own", source)
    slots = sum(_slots(bundle, n) for n in nodes) + sum(
        _slots(bundle, r) * m for r, m in node_types.values())
    if slots < cfg.num_workers:
        raise ConfigError("num_workers", f"each trial needs {cfg.num_workers} workers of "
                          f"{bundle}; this cluster can ever hold {slots:g}", source)
    cpus = sum(n.get("CPU", 0.0) for n in nodes) + sum(
        r.get("CPU", 0.0) * m for r, m in node_types.values())
    if cpus < cfg.num_workers * bundle["CPU"] + driver_cpu - 1e-9:
        raise ConfigError("cpus_per_worker", f"a trial needs {cfg.num_workers} × "
                          f"{bundle['CPU']:g} CPU for its workers + {driver_cpu:g} for its driver;"
                          f" this cluster can ever have {cpus:g}", source)
    if any(_fits(bundle, n) for n in nodes):
        return ""
    fitting = sorted(name for name, (r, _) in node_types.items() if _fits(bundle, r))
    return (f"no node holds a Train worker's {bundle} now: trials stay pending until the "
            f"autoscaler adds a node of type {' or '.join(fitting)} (minutes)")


def _slots(bundle: dict[str, float], node: dict[str, float]) -> float:
    """How many ``bundle`` fit on ``node`` at once."""
    counts = [math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0]
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
