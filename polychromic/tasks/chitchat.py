"""``chitchat``: message → reply pairs from the Chit Chat Challenge dataset (MIT, embedded).

Each pair is one turn and the other speaker's next turn (a turn's utterances joined by a
space). Splits are by conversation (a stable hash of its id: 80/10/10), so no conversation
contributes to two splits. Pairs with a message or reply outside 2–300 characters are dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import chitchat_json
from polychromic.tasks.base import SPLITS, Check, Example, chat_prompt, split_of
from polychromic.tasks.quality import ReplyChecker

SYSTEM = "You are chatting with a friend. Reply to their message in one or two short sentences."




@functools.lru_cache(maxsize=1)
def _pairs() -> dict[str, list[Example]]:
    data = json.loads(chitchat_json().read_text())
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for conv_id in sorted(data):
        turns = [" ".join(u["text"].strip() for u in m) for m in data[conv_id]["messages"]]
        split = split_of(conv_id)
        for i in range(len(turns) - 1):
            msg, reply = turns[i], turns[i + 1]
            if 2 <= len(msg) <= 300 and 2 <= len(reply) <= 300:
                out[split].append(Example(f"{conv_id}:{i}", msg, reply, group=conv_id))
    return out


class ChitchatTask:
    """Open-domain chat replies; quality from ``ReplyChecker``."""

    name = "chitchat"

    def __init__(self, cfg: TrialConfig) -> None:
        self.cfg = cfg
        self.checker = ReplyChecker(cfg.quality_threshold)

    def examples(self, split: str) -> list[Example]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        examples = _pairs()[split]
        if split == "train" and self.cfg.max_train_examples:
            examples = examples[: self.cfg.max_train_examples]
        return examples

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        return chat_prompt(tokenizer, example.prompt, SYSTEM)

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        return self.checker.check(examples, completions)
