"""The task interface: examples, prompt formatting and a quality checker.

A task is one small module that provides a ``Task`` (see ``chitchat.py``) and registers it in
``polychromic/tasks/__init__.py``. Everything else (training, evaluation, metrics) only sees
this interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One prompt with its reference target.

    ``id`` is stable across runs (used as the prompt id in ``generations.parquet``), ``prompt``
    is the raw user text before any chat template, ``target`` the reference completion used
    for SFT, ``group`` what splits are made by (conversation, author, problem), ``meta``
    whatever the checker needs (e.g. HumanEval's test code and entry point).
    """

    id: str
    prompt: str
    target: str
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A quality verdict on one completion: ``score`` in [0, 1], ``passed`` at the task's
    threshold, and a short human-readable ``reason`` (``"ok"`` when it passed)."""

    score: float
    passed: bool
    reason: str


@runtime_checkable
class Task(Protocol):
    """What the trainer and the evaluator need from a task."""

    name: str

    def examples(self, split: str) -> list[Example]:
        """The examples of ``split`` (one of ``SPLITS``), in a deterministic order."""
        ...

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        """The text the model is conditioned on (its chat template when it has one)."""
        ...

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        """Score ``completions[i]`` as an answer to ``examples[i]``; one ``Check`` each.

        Batched so that checkers can embed or execute in parallel. Must never raise for a bad
        completion: a bad completion is a failed ``Check`` with its reason.
        """
        ...


def split_of(key: str, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """Deterministic train/validation/test assignment from a stable hash of ``key``
    (``fractions`` = train, validation; test gets the rest). Same key, same split, always."""
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "validation" if u < fractions[0] + fractions[1] else "test"


def chat_prompt(tokenizer: Any, user_text: str, system: str | None = None) -> str:
    """``user_text`` wrapped in the tokenizer's chat template, ready for the reply.

    Falls back to a plain ``User:/Assistant:`` layout for tokenizers without a template.
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user_text}
    ]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    head = f"{system}\n\n" if system else ""
    return f"{head}User: {user_text}\nAssistant:"
