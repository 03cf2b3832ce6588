"""The ``humaneval`` task: splits, completion → program, and checks run in the sandbox."""

from __future__ import annotations

from collections import Counter

import pytest

from polychromic.core.config import TrialConfig
from polychromic.tasks.base import SPLITS, Task
from polychromic.tasks.humaneval import HumanEvalTask, extract_code, problems, program_for
from polychromic.tasks.sandbox import Limits


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    return HumanEvalTask(TrialConfig(task="humaneval"), workers=2)


def test_splits_are_deterministic_disjoint_and_complete(task: HumanEvalTask) -> None:
    splits = {s: [e.id for e in task.examples(s)] for s in SPLITS}
    assert Counter({s: len(v) for s, v in splits.items()}) == {"train": 103, "validation": 33,
                                                                  "test": 28}
    ids = [i for v in splits.values() for i in v]
    assert sorted(ids) == sorted(p.id for p in problems()) and len(problems()) == 164
    assert HumanEvalTask(TrialConfig(task="humaneval", max_train_examples=7)).examples(
        "train") == task.examples("train")[:7]
    assert isinstance(task, Task) and task.name == "humaneval"


@pytest.mark.slow  # 164 sandboxed programs (~16 s on 2 cores)
def test_all_canonical_solutions_pass_in_parallel(task: HumanEvalTask) -> None:
    examples = list(problems())
    checks = task.check(examples, [e.target for e in examples])
    failed = {e.id: c.reason for e, c in zip(examples, checks) if not c.passed}
    assert failed == {}
    assert all(c.score == 1.0 and c.reason == "ok" for c in checks)
    assert task.last_cost["checks"] == 164 and task.last_cost["checks_per_second"] > 0


def _first() -> object:
    return problems()[0]  # has_close_elements(numbers, threshold)


BODY = ("    for i, a in enumerate(numbers):\n"
        "        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n"
        "                return True\n"
        "    return False\n")
FULL = "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + BODY


@pytest.mark.parametrize("completion", [
    BODY,                                                     # plain continuation
    BODY + "```\n\nThis checks every pair.",                  # prefilled block closed, then prose
    "```python\n" + FULL + "```",                             # the whole function, fenced
    "Here is the function:\n```python\n" + FULL + "```\nDone.",  # prose first
    "```python\n" + FULL,                                     # unterminated block
    FULL + "\nprint(has_close_elements([1.0], 0.5))\nassert has_close_elements([], 1) is True\n",
    BODY.replace("\n    ", "\n").lstrip(),                    # body written at column 0
])
def test_completion_shapes_that_should_pass(task: HumanEvalTask, completion: str) -> None:
    [check] = task.check([_first()], [completion])
    assert check.passed, (check, program_for(_first(), completion))


@pytest.mark.parametrize(("completion", "reason"), [
    ("    return True\n", "AssertionError"),
    ("    return (\n", "SyntaxError"),
    ("    return undefined_name\n", "NameError"),
    ("", "AssertionError"),  # the docstring-only function returns None
])
def test_wrong_completions_fail_with_a_reason(task: HumanEvalTask, completion: str,
                                              reason: str) -> None:
    [check] = task.check([_first()], [completion])
    assert (check.passed, check.score, check.reason) == (False, 0.0, reason)


def test_hostile_completion_is_contained_by_the_task() -> None:
    task = HumanEvalTask(TrialConfig(task="humaneval"), limits=Limits(timeout=1.0))
    checks = task.check([_first()] * 2, ["    while True:\n        pass\n",
                                         "    import posix\n    posix.kill(posix.getppid(), 9)\n"])
    assert [c.reason for c in checks] == ["timeout", "AssertionError"]


def test_extract_code_prefers_a_block_defining_the_entry_point() -> None:
    text = "```python\nimport math\n```\nthen\n```python\ndef f(x):\n    return x\n```"
    assert extract_code(text, "f").startswith("def f(x)")
    assert extract_code("    return 1\n```\nmore", "f") == "    return 1\n"


def test_format_prompt_prefills_the_function(task: HumanEvalTask) -> None:
    class PlainTokenizer:  # a tokenizer without a chat template (base.chat_prompt's fallback)
        chat_template = None

    text = task.format_prompt(PlainTokenizer(), _first())
    assert text.startswith("User: Complete the following Python function.")
    assert text.endswith("Assistant:```python\n" + _first().prompt)
