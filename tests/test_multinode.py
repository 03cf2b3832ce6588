"""Multi-node, on one machine: a head and a worker node started with ``ray start`` on this
host, a tiny study run against them with ``study/run.py --address``, Train workers placed on
the worker node by a custom resource, checkpoints at a storage URI (``file://``, through the
same pyarrow filesystem layer as ``s3://``), records on the head, then the worker
node killed mid-trial and the interrupted trial finished on a replacement node from its
checkpoint (nothing lost).

How the pieces fit:

* The head advertises no ``trainer_node``; the worker node advertises ``trainer_node: 2`` and
  the space sets ``worker_resources: {trainer_node: 1}``, so every Train worker must run on the
  worker node. The Tune driver connects to the head; trial drivers and evaluation actors go
  where Ray places them, often the worker node, so its loss may also cost a trial its driver
  (Tune then retries the trial, which re-attaches to its Train run and resumes from the same
  checkpoint). Both recovery paths must end in the same place.
* The λ=0.5 trial holds after its step-2 report: the existing ``POLYCHROMIC_FAULT`` hook
  (kind ``kill``) writes a marker at step 2 and sleeps ``delay_s`` before it would kill its
  own worker. The test waits for the marker *and* for the step-2 report in the trial's
  ``history.jsonl`` (so the checkpoint is registered with Train and Tune), then kills the
  worker node: its ``ray start --block`` process, its raylet and every Ray worker under it, by
  PID (SIGKILL, like a lost machine). The marker stops the hook from firing again after the
  restore.
* A replacement node with the same resource is started; Train restarts the worker group there
  from the step-2 checkpoint and the study ends normally.

Every process this test starts carries a per-test random ``RAY_AUTH_TOKEN`` in its
environment; the finalizer kills the process trees it started and then any process left with
that token (Ray re-parents some), by PID. Nothing else on the machine is touched (no
``ray stop``). Ray's temp dirs are short folders in /tmp, not under ``tmp_path``: Ray's Unix
socket paths (``<temp>/session_<date>_<pid>/sockets/plasma_store``) must stay under 108 bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pandas as pd
import psutil
import pytest

from polychromic.store.records import read_json, read_jsonl
from tests.conftest import NO_FRONTIER, ROOT, TINY_SETTINGS, load_cli, write_space

RAY = str(Path(sys.executable).with_name("ray"))
TRAIN_WORKER = "RayTrainWorker"  # process title of a Ray Train worker (``ray::RayTrainWorker…``)


def free_port() -> int:
    """A TCP port nobody listens on right now (the other clusters on this machine use theirs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """Ray nodes on this machine as ``ray start --block`` subprocesses, each with its own temp
    dir and ports, and every process of it findable by PID for the kill and the cleanup."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.temp = Path(tempfile.mkdtemp(prefix="ray-mn-", dir="/tmp"))
        self.token = secrets.token_hex(32)
        self.taken: set[int] = set()
        self.port = self.free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        self.env = {
            **env,
            # a token of our own: nothing else can join this cluster, and every process of it
            # is recognisable by this value in its environment
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
            # Ray code that looks its cluster up (the state API in Train's
            # PlacementGroupCleaner) must find this one, not another cluster on this machine
            "RAY_ADDRESS": self.address,
            # notice the killed node within ~3 s instead of Ray's default ~30 s
            "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def free_port(self) -> int:
        """A port nobody listens on now and not yet handed to a component of this cluster (the
        OS may hand out the same free port twice, and Ray refuses a port used twice)."""
        while (port := free_port()) in self.taken:
            continue
        self.taken.add(port)
        return port

    def spawn(self, args: list[str], log: str, extra_env: dict[str, str] | None = None
               ) -> subprocess.Popen:
        with open(self.logs / log, "w") as out:
            proc = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(extra_env or {})},
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def _node_args(self, name: str, cpus: int, resources: dict[str, float]) -> list[str]:
        return ["--block", "--num-cpus", str(cpus), "--resources", json.dumps(resources),
                "--temp-dir", str(self.temp / name), "--object-store-memory", str(300 * 2**20),
                "--disable-usage-stats",
                "--dashboard-agent-listen-port", str(self.free_port()),
                "--dashboard-agent-grpc-port", str(self.free_port()),
                "--metrics-export-port", str(self.free_port()),
                "--runtime-env-agent-port", str(self.free_port())]

    def start_head(self, cpus: int) -> subprocess.Popen:
        # The dashboard serves the state API, which Ray Train's PlacementGroupCleaner polls to
        # release the placement group of a controller that died with its node; without it,
        # the dead run's bundles (moved to the replacement node) would block the restart.
        proc = self.spawn([RAY, "start", "--head", "--port", str(self.port),
                            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                            "--dashboard-port", str(self.free_port()),
                            "--ray-client-server-port", str(self.free_port()),
                            *self._node_args("head", cpus, {})], "head.log")
        deadline = time.time() + 120
        while time.time() < deadline:  # the GCS listens once the head is up
            assert proc.poll() is None, (self.logs / "head.log").read_text()[-3000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return proc
            time.sleep(0.5)
        raise AssertionError("head did not start: " + (self.logs / "head.log").read_text()[-3000:])

    def start_worker(self, name: str, cpus: int, resources: dict[str, float]) -> subprocess.Popen:
        return self.spawn([RAY, "start", "--address", self.address,
                            *self._node_args(name, cpus, resources)], f"{name}.log")

    @staticmethod
    def tree(proc: subprocess.Popen) -> list[psutil.Process]:
        """``proc`` and every live descendant (for a node: raylet, agents, Ray workers)."""
        try:
            root = psutil.Process(proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @classmethod
    def titles(cls, proc: subprocess.Popen) -> list[str]:
        """Command lines (Ray workers: their ``ray::Actor.method`` titles) under ``proc``."""
        out = []
        for p in cls.tree(proc):
            try:
                out.append(" ".join(p.cmdline()))
            except psutil.Error:
                continue
        return out

    @staticmethod
    def kill(victims: list[psutil.Process]) -> None:
        """SIGKILL each process by PID and reap what is ours."""
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(victims, timeout=15)

    def kill_node(self, proc: subprocess.Popen) -> list[int]:
        """Lose a machine: kill a node's whole process tree at once. Returns the PIDs."""
        victims = self.tree(proc)
        self.kill(victims)
        proc.wait(timeout=15)
        return [p.pid for p in victims]

    def leftovers(self) -> list[psutil.Process]:
        """Processes still carrying this cluster's token (Ray re-parents some to init)."""
        found = []
        for p in psutil.process_iter():
            if p.pid == os.getpid():
                continue
            try:
                if p.environ().get("RAY_AUTH_TOKEN") == self.token:
                    found.append(p)
            except psutil.Error:
                continue
        return found

    def cleanup(self) -> None:
        """Kill every process tree this test started, then any process left with our token."""
        victims = [p for proc in reversed(self.procs) for p in self.tree(proc)]
        self.kill(victims)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        self.kill(self.leftovers())
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path: Path, no_shared_ray: None) -> Iterator[LocalCluster]:
    """Nodes of this test's own (``ray start``), never beside the session's shared cluster."""
    nodes = LocalCluster(tmp_path)
    try:
        yield nodes
    finally:
        nodes.cleanup()
        assert not nodes.leftovers(), "Ray processes of this test survived its cleanup"


def held_trial(study: Path, lam: float) -> Path | None:
    """The trial folder whose config has λ = ``lam``, once it exists."""
    for tdir in sorted((study / "trials").glob("*")):
        config = read_json(tdir / "config.json")
        if config is not None and abs(float(config["lambda_"]) - lam) < 1e-12:
            return tdir
    return None


def running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed process not reaped yet)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def fail(msg: str, log: Path) -> NoReturn:
    pytest.fail(f"{msg}\n--- study log (tail) ---\n{log.read_text()[-6000:]}")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_trials_train_on_the_worker_node_and_survive_its_loss(
        tmp_path: Path, cluster: LocalCluster) -> None:
    """Train workers run on node_a, checkpoints land in the storage URI, and losing node_a
    mid-trial costs nothing: the trial finishes on node_b from its checkpoint.

    Storage is laid out as on a cloud cluster with a bucket: ``--storage-path`` is a URI
    (``file://`` here, read and written through pyarrow's filesystem layer exactly as
    ``s3://`` would be), Ray's files (Tune snapshots, checkpoints) live there, and the
    records live in ``--local-dir`` on the head, mirrored to the URI."""
    bucket = tmp_path / "bucket"  # what the URI names (one filesystem here)
    uri = f"file://{bucket}"
    local = tmp_path / "head-records"
    settings = {**TINY_SETTINGS, **NO_FRONTIER, "worker_resources": {"trainer_node": 1},
                "max_failures": 2,  # the frontier sweep is advisory here: nothing reads it
                # evaluated on the Train worker's node, the samples stored with the final
                # checkpoint at the URI and copied by the trial on the head
                "eval_placement": "worker"}
    space = write_space(tmp_path / "multinode.yaml", settings=settings,
                        points=[{"lambda_": 0.5}], num_trials=2,
                        # both trials at once, however many CPUs Ray has seen when it starts
                        max_concurrent_trials=2)
    marker = tmp_path / "held"
    fault = {"kind": "kill", "step": 2, "lambda_": 0.5, "marker": str(marker), "delay_s": 600}
    t0 = time.time()

    cluster.start_head(cpus=2)
    # no need to wait for node_a to join: Train waits for the trainer_node resource
    node_a = cluster.start_worker("node_a", cpus=3, resources={"trainer_node": 2})
    log = tmp_path / "study.log"
    study_proc = cluster.spawn(
        [sys.executable, str(ROOT / "study" / "run.py"), "--space", str(space),
         "--storage-path", uri, "--local-dir", str(local), "--name", "multinode",
         "--no-wandb", "--address", cluster.address],
        "study.log", {"POLYCHROMIC_FAULT": json.dumps(fault)})
    study = local / "multinode"

    # --- the λ=0.5 trial reported step 2 (checkpoint registered) and now holds at step 2 ---
    on_a: set[str] = set()
    deadline = time.time() + 420
    tdir = None
    while True:
        if study_proc.poll() is not None:
            fail(f"study exited ({study_proc.returncode}) before the node was killed", log)
        if node_a.poll() is not None:
            fail("node_a stopped: " + (tmp_path / "node_a.log").read_text()[-3000:], log)
        if time.time() > deadline:
            fail("the λ=0.5 trial never reached its step-2 checkpoint", log)
        on_a.update(t for t in cluster.titles(node_a) if TRAIN_WORKER in t)
        tdir = tdir or held_trial(study, 0.5)
        if tdir is not None and marker.exists() and any(
                h.get("step") == 2 for h in read_jsonl(tdir / "history.jsonl")):
            break
        time.sleep(1)
    on_a.update(t for t in cluster.titles(node_a) if TRAIN_WORKER in t)
    assert on_a, f"no Ray Train worker ran on the worker node: {cluster.titles(node_a)}"
    elsewhere = [t for p in cluster.procs if p is not node_a for t in cluster.titles(p)]
    assert not any(TRAIN_WORKER in t for t in elsewhere), "a Train worker ran off node_a"
    assert tdir is not None
    in_bucket = bucket / "multinode" / "trials" / tdir.name / "train"
    assert sorted(in_bucket.glob("checkpoint_*")), f"no checkpoint at the URI: {in_bucket}"
    assert not (tdir / "train").exists(), "Train wrote into the head's record folder"

    # --- lose node_a mid-trial, bring up a replacement with the same resource -------------
    killed = cluster.kill_node(node_a)
    assert not any(running(pid) for pid in killed), "node_a survived its kill"
    t_kill = time.time()
    node_b = cluster.start_worker("node_b", cpus=3, resources={"trainer_node": 2})

    on_b: set[str] = set()
    deadline = time.time() + 420
    while study_proc.poll() is None:
        if time.time() > deadline:
            fail("the study did not finish after the node loss", log)
        on_b.update(t for t in cluster.titles(node_b) if TRAIN_WORKER in t)
        time.sleep(1)
    if study_proc.returncode != 0:
        fail(f"study failed ({study_proc.returncode})", log)
    print(f"multi-node study: {t_kill - t0:.0f}s to the kill, "
          f"{time.time() - t_kill:.0f}s from the kill to the end")

    # --- the interrupted trial finished on node_b from its step-2 checkpoint ----------------
    assert on_b, "the restarted trial did not train on the replacement node"
    df = pd.read_parquet(study / "leaderboard.parquet").set_index("lambda_")
    assert len(df) == 2 and (df["status"] == "finished").all(), df[["status", "error"]]
    row = df.loc[0.5]
    history = read_jsonl(study / "trials" / row["trial_id"] / "history.jsonl")
    assert [h["step"] for h in history] == [2, 4], history
    assert "restored_from_step" not in history[0]
    assert history[-1]["restored_from_step"] == 2  # continued, did not start over at 0
    assert row["steps"] == TINY_SETTINGS["steps"]
    for _, trial in df.iterrows():  # every final checkpoint lies at the URI, named by it
        assert trial["checkpoint_path"].startswith(f"{uri}/multinode/trials/"), trial
        assert (Path(trial["checkpoint_path"].removeprefix("file://")) / "adapter").is_dir()
        # the records are mirrored next to Ray's files, so a new head can --resume from there
        mirrored = bucket / "multinode" / "trials" / trial["trial_id"]
        assert read_json(mirrored / "result.json")["status"] == "finished"
        assert read_json(mirrored / "result.json")["evaluated_in"] == "worker"
        assert (mirrored / "generations.parquet").is_file()
    assert (bucket / "multinode" / "leaderboard.parquet").is_file()
    assert (bucket / "multinode" / "tune").is_dir() and not (study / "tune").exists()

    # --- the best trial's adapter is exported from the URI (downloaded, reloaded, generates) -
    # export.py through main(argv) in this process (it starts no Ray)
    assert load_cli("export").main([str(study), "--out", str(tmp_path / "export")]) == 0
    best = read_json(tmp_path / "export" / "trial.json")["trial_id"]
    source = df.reset_index().set_index("trial_id").loc[best, "checkpoint_path"]
    from safetensors.torch import load_file

    weights = "adapter_model.safetensors"
    got = load_file(str(tmp_path / "export" / weights))
    want = load_file(str(Path(source.removeprefix("file://")) / "adapter" / weights))
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)


def test_unusable_storage_uri_is_refused_before_ray_starts(tmp_path: Path) -> None:
    """A URI that cannot be listed (unknown scheme here; no credentials or no bucket on a
    cluster) is the CLI's one-line error with exit status 2, and nothing is written."""
    proc = subprocess.run([sys.executable, str(ROOT / "study" / "run.py"), "--space", "smoke",
                           "--storage-path", "nosuchfs://bucket/studies",
                           "--local-dir", str(tmp_path / "records")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: command line: --storage-path: "), lines
    assert "nosuchfs://bucket/studies" in lines[0]
    assert not (tmp_path / "records").exists()
