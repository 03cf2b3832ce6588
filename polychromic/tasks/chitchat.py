"""``chitchat``: message → reply pairs from the Chit Chat Challenge dataset (MIT, embedded).

Each pair is one turn and the other speaker's next turn (a turn's utterances joined by a
space). Splits are by conversation (a stable hash of its id: 80/10/10), so no conversation
contributes to two splits. Pairs with a message or reply outside 2–300 characters are dropped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import cache_root, chitchat_json
from polychromic.tasks.base import SPLITS, Check, Example, chat_prompt, split_of
from polychromic.tasks.quality import ReplyChecker

SYSTEM = "You are chatting with a friend. Reply to their message in one or two short sentences."




#: bump when ``_parse`` changes what it keeps: the parsed pairs cached under the old rules are
#: then parsed again
PARSE_VERSION = 1


def _parse(data: dict[str, Any]) -> dict[str, list[tuple[str, str, str, str]]]:
    """(id, message, reply, conversation) per pair, by split, from the dataset's JSON."""
    out: dict[str, list[tuple[str, str, str, str]]] = {s: [] for s in SPLITS}
    for conv_id in sorted(data):
        turns = [" ".join(u["text"].strip() for u in m) for m in data[conv_id]["messages"]]
        split = split_of(conv_id)
        for i in range(len(turns) - 1):
            msg, reply = turns[i], turns[i + 1]
            if 2 <= len(msg) <= 300 and 2 <= len(reply) <= 300:
                out[split].append((f"{conv_id}:{i}", msg, reply, conv_id))
    return out


def parsed_cache(source: Path) -> Path:
    """Where the pairs parsed from ``source`` are cached (``marshal``: plain data, read in
    ~0.05 s against ~1 s to parse the 40 MB JSON, paid by every process that reads the task:
    each Train worker, evaluation and the driver). Named by the source's size and mtime, the
    parse rules' version and the Python version (marshal's format is per version), so a
    changed dataset or rule is never served stale."""
    st = source.stat()
    key = (f"{st.st_size}-{st.st_mtime_ns}-v{PARSE_VERSION}-"
           f"py{sys.version_info.major}{sys.version_info.minor}")
    return cache_root() / "data" / f"chitchat-pairs-{key}.marshal"


@functools.lru_cache(maxsize=1)
def _pairs() -> dict[str, list[tuple[str, str, str, str]]]:
    """The parsed pairs by split, from the cache when it holds them (else parsed and cached)."""
    source = chitchat_json()
    cached = parsed_cache(source)
    try:
        rows = marshal.loads(cached.read_bytes())
        if not (isinstance(rows, dict) and all(isinstance(rows.get(s), list) for s in SPLITS)):
            raise ValueError("not the parsed pairs")
    except (OSError, EOFError, ValueError, TypeError):  # absent, truncated or foreign: parse
        rows = _parse(json.loads(source.read_text()))
        with contextlib.suppress(OSError):  # a read-only cache: parse every time, as before
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(rows))
            tmp.replace(cached)  # whole or not at all
    return rows


@functools.lru_cache(maxsize=len(SPLITS))
def _split(split: str) -> list[Example]:
    """One split's pairs as examples (built per split: a Train worker needs only ``train``)."""
    return [Example(i, msg, reply, group=conv) for i, msg, reply, conv in _pairs()[split]]


class ChitchatTask:
    """Open-domain chat replies; quality from ``ReplyChecker``."""

    name = "chitchat"

    def __init__(self, cfg: TrialConfig) -> None:
        self.cfg = cfg
        self.checker = ReplyChecker(cfg.quality_threshold)

    def examples(self, split: str) -> list[Example]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        examples = _split(split)
        if split == "train" and self.cfg.max_train_examples:
            examples = examples[: self.cfg.max_train_examples]
        return examples

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        return chat_prompt(tokenizer, example.prompt, SYSTEM)

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        return self.checker.check(examples, completions)
