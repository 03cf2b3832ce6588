"""Task registry. Adding a task = one module with a class implementing ``Task`` + one line here."""

from __future__ import annotations

import importlib

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.tasks.base import SPLITS, Check, Example, Task

#: task name → "module:Class" (imported lazily so a task's heavy deps load only when used)
REGISTRY = {
    "chitchat": "polychromic.tasks.chitchat:ChitchatTask",
    "replies": "polychromic.tasks.replies:RepliesTask",
    "humaneval": "polychromic.tasks.humaneval:HumanEvalTask",
}


def get_task(cfg: TrialConfig) -> Task:
    """Instantiate ``cfg.task``; raises ``ConfigError`` for an unknown name."""
    if cfg.task not in REGISTRY:
        raise ConfigError("task", f"unknown task {cfg.task!r} (known: {', '.join(REGISTRY)})")
    module, cls = REGISTRY[cfg.task].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)


__all__ = ["REGISTRY", "SPLITS", "Check", "Example", "Task", "get_task"]
