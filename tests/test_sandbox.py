"""The code sandbox: hostile programs are contained, each with a one-line reason, and the calling
process (this test) is unharmed. Real processes throughout, no mocks."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from polychromic.tasks.sandbox import (
    HEAD_BYTES,
    Limits,
    isolation_report,
    run_program,
    run_programs,
)

ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(not ROOT, reason="full isolation (namespaces, own uid) needs root")


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except FileNotFoundError:
                pass
    return pids


@needs_root
def test_isolation_in_place() -> None:
    report = isolation_report()
    for part in ("pidns", "netns", "mountns", "readonly-fs"):
        assert part in report, report
    assert any(r.startswith("uid ") for r in report)


def test_ok_assertion_and_syntax_error() -> None:
    batch = run_programs(["print('hello')", "assert 1 + 1 == 3", "def f(:\n  pass"], workers=2)
    ok, wrong, syntax = batch
    assert ok.passed and ok.reason == "ok" and ok.stdout == "hello\n"
    assert not wrong.passed and wrong.reason == "AssertionError"
    assert not syntax.passed and syntax.reason == "SyntaxError"
    assert batch.checks_per_second > 0 and batch.workers == 2


def test_results_keep_input_order_in_parallel() -> None:
    batch = run_programs([f"print({i})" for i in range(6)], workers=2)
    assert [r.stdout for r in batch] == [f"{i}\n" for i in range(6)]


def test_environment_has_no_inherited_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYCHROMIC_TEST_SECRET", "hunter2")
    r = run_program("import os, json; print(json.dumps(dict(os.environ)))")
    assert r.passed, r
    assert "hunter2" not in r.stdout
    assert set(eval(r.stdout)) <= {"PATH", "LANG", "HOME", "TMPDIR", "OMP_NUM_THREADS", "LC_CTYPE"}


def test_temp_directory_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = run_program("open('left_behind.txt', 'w').write('x' * 1000)")
    assert r.passed, r
    assert list(tmp_path.iterdir()) == []


def test_infinite_loop_times_out() -> None:
    start = time.perf_counter()
    r = run_program("while True:\n    pass", Limits(timeout=1.0))
    assert r.reason == "timeout" and not r.passed
    assert time.perf_counter() - start < 5


def test_cpu_burn_hits_the_cpu_limit_before_the_wall_clock() -> None:
    r = run_program("while True:\n    pass", Limits(timeout=20.0, cpu_seconds=1))
    assert r.reason == "cpu limit", r
    assert r.duration < 10


@needs_root
def test_fork_bomb_is_contained_and_leaves_no_process() -> None:
    bomb = (
        "import posix, time\n"  # posix.fork: the guard's os.fork = None is no boundary
        "ok = failed = 0\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        if posix.fork() == 0:\n"
        "            time.sleep(600)\n"
        "        ok += 1\n"
        "    except OSError:\n"
        "        failed += 1\n"
        "print(ok, failed, flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        posix.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    limits = Limits(timeout=2.0, processes=16)
    r = run_program(bomb, limits)
    assert r.reason == "timeout", r
    ok, failed = map(int, r.stdout.split())
    assert ok < limits.processes and failed > 0  # RLIMIT_NPROC held
    assert r.uid is not None and _processes_of(r.uid) == []  # pid namespace took them all down


def test_memory_bomb_hits_the_memory_limit() -> None:
    r = run_program("x = []\nwhile True:\n    x.append(bytearray(10**7))",
                    Limits(memory_bytes=256 * 2**20))
    assert r.reason == "memory limit", r


@needs_root
def test_writes_outside_the_sandbox_do_not_land() -> None:
    tag = uuid.uuid4().hex
    targets = [f"/tmp/pwned_{tag}", str(REPO / f"pwned_{tag}"), f"/var/tmp/pwned_{tag}",
               f"{Path.home()}/pwned_{tag}"]
    program = (
        "import sys\n"
        f"for path in {targets!r}:\n"
        "    try:\n"
        "        open(path, 'w').write('pwned')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.errno)\n"
    )
    r = run_program(program)
    assert r.passed, r
    assert f"refused {targets[1]}" in r.stdout  # the repo is read-only for the program
    for path in targets:  # /tmp writes go to the program's private tmpfs, gone with it
        assert not os.path.exists(path), path


def test_killing_the_parent_or_other_processes_fails() -> None:
    victim = subprocess.Popen(["sleep", "30"])
    try:
        program = (
            "import posix\n"
            f"for pid in (posix.getppid(), {os.getpid()}, {victim.pid}, -1):\n"
            "    try:\n"
            "        posix.kill(pid, 9)\n"
            "    except OSError as e:\n"
            "        print(pid, type(e).__name__)\n"
            "print('done')\n"
        )
        r = run_program(program)
        assert r.reason in ("ok", "killed: SIGKILL"), r
        assert victim.poll() is None  # a process of ours, not killable from the sandbox
        os.kill(os.getpid(), 0)  # and so are we
    finally:
        victim.kill()
        victim.wait()


@needs_root
def test_network_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        r = run_program(
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'leak')\n"
        )
        assert r.reason == "network unreachable", r
        with pytest.raises(TimeoutError):
            listener.accept()


def test_huge_output_is_capped() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run_program("import sys\nfor _ in range(100_000):\n    sys.stdout.write('x' * 1000 + '\\n')",
                    Limits(output_bytes=2**20))
    assert r.reason == "output limit", r
    assert len(r.stdout) <= HEAD_BYTES and len(r.stderr) <= HEAD_BYTES
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50


def test_require_isolation_refuses_without_namespaces_or_runs_with_them() -> None:
    r = run_program("pass", Limits(require_isolation=True))
    if "mountns" in r.isolation and "pidns" in r.isolation:
        assert r.passed
    else:
        assert r.reason.startswith("sandbox error: isolation unavailable")


def test_stdin_reaches_the_program_only_as_its_open_fd_0() -> None:
    program = ("import os, sys\nprint(sys.stdin.read())\nprint(os.fstat(0).st_nlink)\n"
               "try:\n    os.write(0, b'x')\nexcept OSError as e:\n    print(type(e).__name__)\n")
    batch = run_programs([program, program, "import sys\nprint(repr(sys.stdin.read()))"],
                         workers=2, stdins=[b"secret-1", b"secret-2" * 10**5, None])
    first, big, default = batch
    assert first.passed and first.stdout == "secret-1\n0\nOSError\n", first  # unlinked, read-only
    assert big.passed and big.stdout.startswith("secret-2secret-2"), big
    assert default.stdout == "''\n"  # no stdin: /dev/null
    with pytest.raises(ValueError, match="stdins"):
        run_programs(["pass"], stdins=[b"", b""])


@needs_root
def test_hidden_paths_cannot_be_read() -> None:
    folder, file = str(REPO / "polychromic"), str(REPO / "README.md")
    seen = run_program(f"import os\nprint(os.path.exists({file!r}))\n")
    if seen.stdout.strip() != "True":  # e.g. a checkout under /tmp: the sandbox has its own
        pytest.skip("the checkout is not visible inside the sandbox at all (its folder is not "
                    "mounted there), so there is nothing to hide")
    program = (f"import os\ntry:\n    os.listdir({folder!r})\nexcept OSError as e:\n"
               f"    print(type(e).__name__)\nprint(len(open({file!r}).read()))\n"
               f"print(len(open({str(REPO / 'pyproject.toml')!r}).read()) > 0)\n")
    r = run_program(program, Limits(hide=(folder, file, "/no/such/path")))
    assert r.passed and r.stdout == "PermissionError\n0\nTrue\n", r
    assert "hidden 2" in r.isolation
    assert os.path.getsize(file) > 0  # hidden from the program only
