"""The HumanEval reward cannot be gamed: a pass means every assertion of the problem's test ran
and held. Each class of cheat (exiting early, returning objects that compare equal to anything,
running code while the module is defined, tampering with the test's helpers or builtins, forging
the verdict) is scored as a fail with a recorded reason. Real sandboxed processes, no mocks."""

from __future__ import annotations

import json
import math
import os
import re

import pytest

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import humaneval_jsonl
from polychromic.tasks.base import Example
from polychromic.tasks.humaneval import (
    HumanEvalTask,
    _dec,
    _enc,
    _Malformed,
    _NonPlain,
    candidate_source,
    problems,
    program_for,
    refusal,
    stdin_for,
    verdict,
)
from polychromic.tasks.sandbox import Limits, run_program


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    return HumanEvalTask(TrialConfig(task="humaneval"), limits=Limits(timeout=3.0), workers=2)


def _problem(entry_point: str) -> Example:
    return next(p for p in problems() if p.meta["entry_point"] == entry_point)


FIRST = problems()[0]  # has_close_elements(numbers, threshold) -> bool
HEADER = "from typing import List\n\n\ndef has_close_elements(numbers: List[float], " \
         "threshold: float) -> bool:\n"
WRONG = HEADER + "    return True\n"  # fails the test on its own


def _indent(code: str) -> str:
    return "".join("    " + line + "\n" for line in code.strip("\n").split("\n"))


# --- exits: every way out of the process before check() returns ------------------------------

EXIT_BODIES = {
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "raise SystemExit": "raise SystemExit",
    "raise SystemExit(0)": "raise SystemExit(0)",
    "os._exit(0)": "import os\nos._exit(0)",
    "posix._exit(0)": "import posix\nposix._exit(0)",
    "KeyboardInterrupt": "raise KeyboardInterrupt",
    "own BaseException": "class Stop(BaseException):\n    pass\nraise Stop()",
    "GeneratorExit": "raise GeneratorExit",
    "excepthook exits": "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\n"
                        "raise ValueError('boom')",
    "excepthook + SystemExit": "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\n"
                               "raise SystemExit(0)",
    "atexit hook": "import atexit, os\natexit.register(os._exit, 0)\nraise SystemExit(0)",
    "atexit, exit later": "import atexit, sys\natexit.register(sys.exit, 0)\nreturn True",
    "thread exits": "import threading, os, time\n"
                    "threading.Thread(target=lambda: os._exit(0)).start()\ntime.sleep(2)",
    "kill self": "import posix\nposix.kill(posix.getpid(), 9)",
    "SIGTERM self": "import posix, signal\nposix.kill(posix.getpid(), signal.SIGTERM)",
    "kill parent then exit": "import posix\nposix.kill(posix.getppid(), 9)\nposix._exit(0)",
    "close channels": "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n"
                      "    except OSError:\n        pass\nimport time\ntime.sleep(0.2)\n"
                      "os._exit(0)",
}


@pytest.mark.parametrize("body", list(EXIT_BODIES.values()), ids=list(EXIT_BODIES))
def test_exiting_from_the_function_fails(task: HumanEvalTask, body: str) -> None:
    [check] = task.check([FIRST], [_indent(body)])
    assert not check.passed and check.score == 0.0, check
    assert check.reason not in ("ok", ""), check


def test_exit_reasons_say_what_happened(task: HumanEvalTask) -> None:
    bodies = ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise KeyboardInterrupt",
              "import posix\nposix.kill(posix.getpid(), 9)"]
    reasons = [c.reason for c in task.check([FIRST] * 4, [_indent(b) for b in bodies])]
    assert reasons == ["cheat: exited before check() returned (SystemExit)",
                       "cheat: exited before check() returned (exit status 0)",
                       "cheat: exited before check() returned (KeyboardInterrupt)",
                       "killed: SIGKILL"]


# --- code that would run while the module is defined: refused before anything runs -----------

TOP_LEVEL = {
    "sys.exit after the function": "import sys; sys.exit(0)",
    "os._exit after the function": "import os; os._exit(0)",
    "excepthook at top level": "import sys, os; sys.excepthook = lambda *a: os._exit(0)",
    "atexit at top level": "import atexit, os; atexit.register(os._exit, 0)",
    "decorator exits": "@(lambda f: __import__('os')._exit(0))\ndef helper():\n    pass",
    "decorator from os": "import os\n@os._exit\ndef helper():\n    pass",
    "call decorator": "import sys\n@sys.exit\ndef helper():\n    pass",
    "decorator with a computed argument": "from functools import lru_cache\n"
                                          "@lru_cache(__import__('os')._exit(0))\n"
                                          "def helper():\n    pass",
    "shadowed staticmethod": "from os import _exit as staticmethod\nclass A:\n"
                             "    @staticmethod\n    def f():\n        pass",
    "own lru_cache": "def lru_cache(f):\n    raise SystemExit\n@lru_cache\ndef helper():\n"
                     "    pass",
    "default value": "def helper(x=__import__('os')._exit(0)):\n    pass",
    "kw-only default": "def helper(*, x=exit(0)):\n    pass",
    "annotation": "def helper(x: __import__('sys').exit(0)):\n    pass",
    "return annotation": "def helper() -> __import__('sys').exit(0):\n    pass",
    "walrus default": "def helper(x=(y := 1)):\n    pass",
    "lambda default": "def helper(x=(lambda: 0)()):\n    pass",
    "class body statement": "class A:\n    __import__('sys').exit(0)",
    "class body assignment": "class A:\n    x = __import__('os')._exit(0)",
    "class body loop": "class A:\n    for i in range(3):\n        pass",
    "metaclass": "class M(type):\n    pass\nclass A(metaclass=M):\n    pass",
    "__init_subclass__": "class A:\n    def __init_subclass__(cls):\n        import os\n"
                         "        os._exit(0)\nclass B(A):\n    pass",
    "__class_getitem__": "class A:\n    def __class_getitem__(cls, k):\n        raise SystemExit\n"
                         "def helper(x: A[int]):\n    pass",
    "computed base": "class A(__import__('os')._exit(0)):\n    pass",
    "class decorator": "import sys\n@sys.exit\nclass A:\n    pass",
    "shadowed float": "def float(x):\n    raise SystemExit\ndef helper(x=float('inf')):\n    pass",
}


@pytest.mark.parametrize("tail", list(TOP_LEVEL.values()), ids=list(TOP_LEVEL))
def test_code_at_definition_time_is_refused_with_a_reason(task: HumanEvalTask, tail: str) -> None:
    completion = WRONG + "\n\n" + tail + "\n"
    why = refusal(candidate_source(FIRST, completion))
    [check] = task.check([FIRST], [completion])
    assert why is not None and why.startswith("cheat: "), why
    assert (check.passed, check.score, check.reason) == (False, 0.0, why)


def test_top_level_statements_other_than_definitions_are_dropped(task: HumanEvalTask) -> None:
    """(As before: example calls after the function never run; so neither does an exit.)"""
    completion = WRONG + "\nraise SystemExit\nif True:\n    import os; os._exit(0)\n"
    assert refusal(candidate_source(FIRST, completion)) is None
    [check] = task.check([FIRST], [completion])
    assert (check.passed, check.reason) == (False, "AssertionError")


def test_refusal_reasons_name_the_statement() -> None:
    source = candidate_source(FIRST, WRONG + "\nimport sys; sys.exit(0)\n")
    assert re.fullmatch(r"cheat: top level statement Expr runs at definition time \(line \d+\)",
                        refusal(source))
    source = candidate_source(FIRST, WRONG + "\n@(lambda f: f)\ndef g():\n    pass\n")
    assert refusal(source).startswith("cheat: decorator @lambda f: f runs at definition time")
    assert refusal("def f(:\n") == "SyntaxError"
    assert refusal("x = 1\0") == "SyntaxError"


ACCEPTED = [
    "from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef g(n):\n    return n\n",
    "import functools\n\n@functools.cache\ndef g(n):\n    return n\n",
    "class Node:\n    '''A node.'''\n    count = 0\n    limit: int = -1\n\n"
    "    def __init__(self, v=None):\n        self.v = v\n\n    @staticmethod\n"
    "    def make():\n        return Node()\n\n    @property\n    def value(self):\n"
    "        return self.v\n",
    "from typing import Dict, List, Optional\n\n"
    "def g(x: List[int] = [], y: Optional[Dict[str, int]] = None, z: int | None = -1,\n"
    "      w=float('inf'), *args: int, k: tuple = (1, 'a'), n=10**9 + 7, **kw) -> 'List[int]':\n"
    "    return x\n",
    "class E(ValueError):\n    pass\n",
    "async def g():\n    pass\n",
]


@pytest.mark.parametrize("tail", ACCEPTED)
def test_definitions_that_run_nothing_are_accepted(tail: str) -> None:
    assert refusal(candidate_source(FIRST, WRONG + "\n\n" + tail)) is None


def test_every_prompt_with_its_canonical_solution_is_accepted() -> None:
    refused = {p.id: r for p in problems() if (r := refusal(candidate_source(p, p.target)))}
    assert refused == {}


def test_a_memoized_solution_passes(task: HumanEvalTask) -> None:
    fib = _problem("fib")
    completion = ("from functools import lru_cache\n\n\n@lru_cache(maxsize=None)\n"
                  "def fib(n: int):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")
    [check] = task.check([fib], [completion])
    assert check.passed and check.reason == "ok", check


# --- return values: plain data of exact builtin types only ----------------------------------

NON_PLAIN = {
    "__eq__ always True": ("class Eq:\n    def __eq__(self, other):\n        return True\n"
                           "    __hash__ = object.__hash__\nreturn Eq()", "Eq"),
    "__ne__ always False": ("class Ne:\n    def __eq__(self, o):\n        return True\n"
                            "    def __ne__(self, o):\n        return False\nreturn Ne()", "Ne"),
    "int subclass": ("class I(int):\n    def __eq__(self, o):\n        return True\n"
                     "return I(0)", "I"),
    "float subclass": ("class F(float):\n    __eq__ = lambda s, o: True\nreturn F(0)", "F"),
    "str subclass": ("class S(str):\n    __eq__ = lambda s, o: True\nreturn S()", "S"),
    "list subclass": ("class L(list):\n    __eq__ = lambda s, o: True\nreturn L()", "L"),
    "tuple subclass": ("class T(tuple):\n    __eq__ = lambda s, o: True\nreturn T()", "T"),
    "dict subclass": ("class D(dict):\n    __eq__ = lambda s, o: True\nreturn D()", "D"),
    "set subclass": ("class St(set):\n    __eq__ = lambda s, o: True\nreturn St()", "St"),
    "nested in a list": ("class Eq:\n    __eq__ = lambda s, o: True\nreturn [Eq()]", "Eq"),
    "dict value": ("class Eq:\n    __eq__ = lambda s, o: True\nreturn {1: Eq()}", "Eq"),
    "fake __class__": ("class B:\n    __class__ = bool\n    __eq__ = lambda s, o: True\n"
                       "return B()", "B"),
    "mock.ANY": ("from unittest import mock\nreturn mock.ANY", "_ANY"),
    "NotImplemented": ("return NotImplemented", "NotImplementedType"),
    "generator": ("return (x for x in numbers)", "generator"),
    "self-referencing list": ("x = []\nx.append(x)\nreturn x", "nesting deeper than 100"),
}


@pytest.mark.parametrize(("body", "type_name"), list(NON_PLAIN.values()), ids=list(NON_PLAIN))
def test_non_plain_return_values_fail(task: HumanEvalTask, body: str, type_name: str) -> None:
    [check] = task.check([FIRST], [_indent(body)])
    assert (check.passed, check.reason) == (False, f"non-plain return value of type {type_name}")


# --- the test's own names and the verdict are out of the candidate's reach -------------------

def test_redefining_the_tests_helper_does_not_help(task: HumanEvalTask) -> None:
    # HumanEval/32's test checks poly(coeffs, candidate(coeffs)) ≈ 0 with the prompt's poly
    find_zero = _problem("find_zero")
    completion = ("```python\nimport math\n\n\ndef poly(xs: list, x: float):\n    return 0\n\n\n"
                  "def find_zero(xs: list):\n    return 0.0\n```")
    [check] = task.check([find_zero], [completion])
    assert (check.passed, check.reason) == (False, "AssertionError")


def test_patching_builtins_or_frames_does_not_reach_the_test(task: HumanEvalTask) -> None:
    truncate = _problem("truncate_number")  # assert abs(candidate(3.5) - 0.5) < 1e-6
    bodies = ["import builtins\nbuiltins.abs = lambda x: 0\nreturn 99.0",
              "import sys\nf = sys._getframe(1)\nwhile f is not None:\n"
              "    f.f_globals['abs'] = lambda x: 0\n    f = f.f_back\nreturn 99.0",
              "import gc\nfor o in gc.get_objects():\n    if callable(o) and getattr(o, "
              "'__name__', '') == 'check':\n        o.__code__ = (lambda c: None).__code__\n"
              "return 99.0"]
    checks = task.check([truncate] * 3, [_indent(b) for b in bodies])
    assert [(c.passed, c.reason) for c in checks] == [(False, "AssertionError")] * 3


def test_forged_verdicts_and_replies_fail(task: HumanEvalTask) -> None:
    bodies = [
        # a verdict on every fd it has, then a clean exit
        "import os\nfor fd in range(64):\n    try:\n"
        "        os.write(fd, b'{\"proof\": \"x\"}\\n')\n    except OSError:\n        pass\n"
        "os._exit(0)",
        # the harness's fds through /proc (it is non-dumpable: refused)
        "import os\nfor p in ('/proc/1/fd/1', '/proc/1/fd/0', '/proc/1/mem', '/proc/1/environ'):\n"
        "    try:\n        open(p, 'wb').write(b'{\"proof\": \"x\"}\\n')\n    except OSError:\n"
        "        pass\nos._exit(0)",
        # the candidate's own encoder replaced: replies are decoded strictly by the harness
        "import sys\nsys._getframe(1).f_globals['_enc'] = lambda x, depth=0: {'proof': 1}\n"
        "return True",
    ]
    checks = task.check([FIRST] * 3, [_indent(b) for b in bodies])
    assert [c.reason for c in checks] == [
        "cheat: malformed reply from the candidate's process",  # it wrote on the reply pipe too
        "cheat: exited before check() returned (exit status 0)",
        "cheat: malformed reply from the candidate's process"]


def test_an_exception_named_ok_does_not_read_as_a_pass(task: HumanEvalTask) -> None:
    [check] = task.check([FIRST], [_indent("class ok(Exception):\n    pass\nraise ok()")])
    assert (check.passed, check.reason) == (False, "raised ok")


def test_the_secret_and_the_test_are_invisible_to_the_candidate() -> None:
    """The candidate looks everywhere it can for the run's secret and the test's text: its
    memory, its files, the harness's /proc entries. It finds neither."""
    secret = "0123456789abcdef" * 2
    body = _indent(
        "import gc, os, re, sys\n"
        "found = set()\n"
        "def look(text):\n"
        "    found.update(re.findall(r'[0-9a-f]{32}', text))\n"
        "    if 'def check(' + 'candidate)' in text:\n"
        "        found.add('TEST')\n"
        "for o in gc.get_objects():\n"
        "    for v in (o if isinstance(o, (list, tuple, set, dict)) else [o]):\n"
        "        if isinstance(v, (str, bytes)):\n"
        "            look(v if isinstance(v, str) else v.decode('latin-1'))\n"
        "for path in ['program.py', '/proc/1/fd/0', '/proc/1/environ', '/proc/1/cmdline',\n"
        "             '/proc/self/fd/0', '/proc/1/mem']:\n"
        "    try:\n"
        "        look(open(path, 'rb').read(1 << 20).decode('latin-1'))\n"
        "    except Exception as e:\n"
        "        print('no', path, type(e).__name__, file=sys.stderr)\n"
        "print('FOUND', sorted(found), file=sys.stderr, flush=True)\n"
        "return False")
    r = run_program(program_for(FIRST, body), Limits(timeout=10.0), stdin_for(FIRST, secret))
    report = next(ln for ln in r.stderr.splitlines() if ln.startswith("FOUND"))
    assert secret not in r.stderr and "TEST" not in report, r.stderr
    assert "no /proc/1/fd/0 PermissionError" in r.stderr, r.stderr
    assert verdict(r, secret) == (False, "AssertionError")


def test_the_answer_key_is_hidden(task: HumanEvalTask) -> None:
    """The dataset (canonical solutions, tests) is on this machine; the candidate cannot read it."""
    if "mountns" not in task.isolation:
        pytest.skip("hiding a path needs the mount namespace")
    path = str(humaneval_jsonl())
    body = _indent(f"import os, sys\nfor p in ({path!r}, {os.path.dirname(path)!r}):\n"
                   "    try:\n        print(len(open(p, 'rb').read()), file=sys.stderr)\n"
                   "    except OSError as e:\n        print('no', type(e).__name__, file=sys.stderr)\n"
                   "return 0")
    limits = task.limits
    secret = "d" * 32
    r = run_program(program_for(FIRST, body), limits, stdin_for(FIRST, secret))
    # hidden (PermissionError), or not mounted in the sandbox at all (FileNotFoundError: a
    # virtualenv under /tmp, which the sandbox replaces with its own)
    refused = r.stderr.count("no PermissionError") + r.stderr.count("no FileNotFoundError")
    assert refused == 2, r
    assert "hidden 1" in r.isolation or r.stderr.count("no FileNotFoundError") == 2, r
    assert verdict(r, secret) == (False, "AssertionError")


def test_a_proof_needs_this_runs_secret() -> None:
    r = run_program(program_for(FIRST, FIRST.target), stdin=stdin_for(FIRST, "a" * 32))
    assert verdict(r, "a" * 32) == (True, "ok")
    assert verdict(r, "b" * 32) == (False, "cheat: exited 0 without proof that check() returned")
    assert json.loads(r.stdout) == {"proof": "a" * 32}


@pytest.mark.parametrize("tail", [
    "@(lambda f: __import__('os')._exit(0))\ndef helper():\n    pass",
    "import sys; sys.exit(0)",
    "class A:\n    def __init_subclass__(cls):\n        __import__('os')._exit(0)\n"
    "class B(A):\n    pass",
])
def test_without_the_static_refusal_the_run_still_fails(tail: str) -> None:
    """Defense in depth: what ``refusal`` refuses also fails when run, since the candidate's
    process cannot print the proof."""
    completion = WRONG.replace("return True", "return False") + "\n\n" + tail + "\n"
    secret = "c" * 32
    r = run_program(program_for(FIRST, completion), Limits(timeout=5.0), stdin_for(FIRST, secret))
    passed, reason = verdict(r, secret)
    assert not passed and reason.startswith("cheat: exited before check() returned"), reason


def test_limits_still_give_their_reasons(task: HumanEvalTask) -> None:
    bodies = ["while True:\n    pass", "x = []\nwhile True:\n    x.append(bytearray(10**7))",
              "import sys\nwhile True:\n    sys.stdout.write('x' * 10000)", "return undefined"]
    reasons = [c.reason for c in task.check([FIRST] * 4, [_indent(b) for b in bodies])]
    assert reasons == ["timeout", "memory limit", "output limit", "NameError"]


# --- the plain-data codec (runs in the sandbox; pure, so tested here too) --------------------

@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**62, -(2**200), 2**20000, 1.5, -0.0, math.inf, "", "é\ud800",
    1 + 2j, [1, [2, (3, None)]], (), {1: "a", (1, 2): [3.0], "k": {"n": frozenset({1})}},
    {1, "a", (2, 3)}, frozenset(), [[[[[]]]]],
], ids=lambda v: type(v).__name__)
def test_plain_values_round_trip_with_exact_types(value: object) -> None:
    out = _dec(json.loads(json.dumps(_enc(value))))
    assert out == value and type(out) is type(value)
    if isinstance(value, dict):
        assert [type(k) for k in out] == [type(k) for k in value]
    assert math.isnan(_dec(json.loads(json.dumps(_enc(math.nan)))))


@pytest.mark.parametrize("bad", [
    {"q": 1}, {"l": 1}, {"s": [{"l": []}]}, {"d": [[1]]}, {"c": [1, "x"]}, {"c": [True, 1]},
    {"x": "zz"}, [1, 2], {"l": [], "t": []}, {"d": [[{"l": []}, 1]]}, "depth 101",
])
def test_the_decoder_refuses_anything_else(bad: object) -> None:
    if bad == "depth 101":
        bad = {"l": []}
        for _ in range(101):
            bad = {"l": [bad]}
    with pytest.raises(_Malformed):
        _dec(bad)


def test_the_encoder_refuses_non_plain_values() -> None:
    class Int(int):
        pass

    for value in (Int(1), [Int(1)], {Int(1): 1}, b"bytes", bytearray(), range(3), object(), len):
        with pytest.raises(_NonPlain):
            _enc(value)
    assert re.fullmatch(r"nesting deeper than \d+", str(pytest.raises(
        _NonPlain, _enc, _nest_list(200)).value))


def _nest_list(depth: int) -> list:
    node: list = []
    for _ in range(depth):
        node = [node]
    return node
