"""``replies``: the user's own message → reply pairs, read from a JSONL, Parquet or CSV file.

Settings (``TrialConfig``):

* ``data``: the file; the format comes from the extension (``.jsonl``/``.ndjson``,
  ``.parquet``/``.pq``, ``.csv``).
* ``prompt_field`` / ``response_field`` (default ``prompt`` / ``response``): the message and the
  reply the model should learn to write.
* ``split_field``: a field holding ``train``/``validation``/``test`` for each row. Without it,
  rows are split 80/10/10 by a stable hash (SHA-256) of ``group_field`` (a conversation or author
  id: all rows of one group land in one split, so near-duplicates never cross splits), or of the
  prompt text when there is no group field either.
* ``max_train_examples``: keep the first N training rows (file order).
* ``max_length``: values longer than ``max_length * CHARS_PER_TOKEN`` characters are truncated
  (counted in ``truncated``, a warning, not an error).
* ``skip_bad_rows``: skip (and count in ``skipped_rows``) rows with an empty or non-text value,
  invalid JSON or a bad split value, instead of refusing the file.
* ``quality_threshold``: pass threshold of the reply checker (the chitchat ``ReplyChecker``).

The whole file is validated when the task is constructed, streaming (files larger than memory are
fine), so every problem is a one-line ``ConfigError`` naming the file, the field and the row before
any model is loaded. ``examples(split)`` streams the file again and materializes only that split.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path
from polychromic.tasks.base import SPLITS, Check, Example, chat_prompt, split_of
from polychromic.tasks.files import MISSING, Row, field_names, iter_rows, text_columns
from polychromic.tasks.quality import ReplyChecker

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 8
"""Character budget per token of ``max_length``: generous (English averages ~4), so truncation
only hits values that could never fit the model's context anyway."""
SPLIT_FRACTIONS = (0.8, 0.1)
"""train, validation; test gets the rest."""
MAX_LISTED = 20
_SKIP_HINT = "fix the row, or set skip_bad_rows: true to skip such rows"




class _BadRow(Exception):
    """One row is unusable: ``column`` is the field at fault (or ``data``)."""

    def __init__(self, column: str, what: str) -> None:
        super().__init__(what)
        self.column, self.what = column, what


class RepliesTask:
    """Message → reply pairs from the user's file; quality from the chitchat ``ReplyChecker``."""

    name = "replies"

    def __init__(self, cfg: TrialConfig) -> None:
        if not cfg.data:
            raise ConfigError("data", "the replies task needs a data file "
                              "(data: path/to/replies.jsonl|.parquet|.csv)", "config")
        self.cfg = cfg
        self.path = expand_path(cfg.data, "data", "config")  # ~user, NUL, ENAMETOOLONG
        self.max_chars = cfg.max_length * CHARS_PER_TOKEN
        self.skipped_rows = 0
        """Rows skipped by ``skip_bad_rows``."""
        self.skipped: list[str] = []
        """Why, for the first ``MAX_LISTED`` of them (``row 7: prompt: empty value``)."""
        self.truncated = 0
        """Values cut to ``max_chars`` characters."""
        self.counts: dict[str, int] = {}
        """Usable rows per split (before ``max_train_examples``)."""
        self._cache: dict[str, list[Example]] = {}
        self._checker: Any = None
        self.validate()

    # --- validation ----------------------------------------------------------------------

    def _columns(self) -> list[tuple[str, str]]:
        """(setting, field) pairs this task reads."""
        cfg = self.cfg
        pairs = [("prompt_field", cfg.prompt_field), ("response_field", cfg.response_field)]
        if cfg.split_field:
            pairs.append(("split_field", cfg.split_field))
        elif cfg.group_field:
            pairs.append(("group_field", cfg.group_field))
        return pairs

    def validate(self) -> dict[str, int]:
        """Read the whole file once (streaming) and refuse it with a ``ConfigError`` naming file,
        field and row for the first problem; with ``skip_bad_rows`` bad rows are counted instead.
        Returns the usable rows per split."""
        source = str(self.path)
        names = field_names(self.path)
        for setting, column in self._columns():
            if column not in names:
                shown = ", ".join(map(str, names[:40])) + (", …" if len(names) > 40 else "")
                raise ConfigError(setting, f"no field {column!r} in the file "
                                  f"(its fields: {shown})", source)
            if names.count(column) > 1:  # which of the columns would be the prompt?
                raise ConfigError(setting, f"the file has {names.count(column)} columns named "
                                  f"{column!r}; rename all but one", source)
        text = [c for s, c in self._columns() if s != "group_field"]
        not_text = text_columns(self.path, text)
        if not_text:
            column, kind = next(iter(not_text.items()))
            raise ConfigError(column, f"field holds {kind} values, not text", source)

        counts = dict.fromkeys(SPLITS, 0)
        self.skipped_rows, self.skipped, self.truncated = 0, [], 0
        for row in iter_rows(self.path, [c for _, c in self._columns()]):
            try:
                split, _, cut = self._parse(row)
            except _BadRow as bad:
                if not self.cfg.skip_bad_rows:
                    raise ConfigError(bad.column, f"{row.where}: {bad.what} ({_SKIP_HINT})",
                                      source) from None
                self.skipped_rows += 1
                if len(self.skipped) < MAX_LISTED:
                    self.skipped.append(f"{row.where}: {bad.column}: {bad.what}")
                continue
            counts[split] += 1
            self.truncated += cut
        if not any(counts.values()):
            raise ConfigError("data", f"no usable rows ({self.skipped_rows} skipped as bad; "
                              f"first: {self.skipped[0] if self.skipped else '-'})", source)
        if not counts["train"]:
            raise ConfigError("data", f"no rows in the train split (rows per split: {counts})",
                              source)
        if self.skipped_rows:
            log.warning("%s: skipped %d bad rows (first: %s)", source, self.skipped_rows,
                        self.skipped[0])
        if self.truncated:
            log.warning("%s: truncated %d values to %d characters (max_length=%d × %d)", source,
                        self.truncated, self.max_chars, self.cfg.max_length, CHARS_PER_TOKEN)
        self.counts = counts
        return counts

    def _text(self, row: Row, column: str) -> tuple[str, int]:
        value = row.values[column]
        if value is MISSING:
            raise _BadRow(column, "no value")
        if value is None:
            raise _BadRow(column, "empty value (null)")
        if not isinstance(value, str):
            raise _BadRow(column, f"non-text value ({type(value).__name__})")
        if not value.strip():
            raise _BadRow(column, "empty text")
        if len(value) > self.max_chars:
            return value[: self.max_chars], 1
        return value, 0

    def _parse(self, row: Row) -> tuple[str, Example, int]:
        """(split, example, values truncated) of a row; ``_BadRow`` when unusable."""
        cfg = self.cfg
        if row.problem:
            raise _BadRow("data", row.problem)
        prompt, cut_p = self._text(row, cfg.prompt_field)
        response, cut_r = self._text(row, cfg.response_field)
        digest = hashlib.sha1(f"{prompt}\0{response}".encode()).hexdigest()
        group = hashlib.sha1(prompt.encode()).hexdigest()[:12]
        if cfg.split_field:
            value = row.values[cfg.split_field]
            split = value.strip().lower() if isinstance(value, str) else value
            if split not in SPLITS:
                raise _BadRow(cfg.split_field, f"split value {value!r} is not one of "
                              f"{', '.join(SPLITS)}")
        else:
            if cfg.group_field:
                value = row.values[cfg.group_field]
                if value is MISSING or value is None or str(value).strip() == "":
                    raise _BadRow(cfg.group_field, "no group value")
                group = str(value)
            split = split_of(group if cfg.group_field else prompt, SPLIT_FRACTIONS)
        example = Example(id=f"row{row.number}-{digest[:8]}", prompt=prompt, target=response,
                          group=group, meta={"row": row.number})
        return split, example, cut_p + cut_r

    # --- Task protocol -------------------------------------------------------------------

    def examples(self, split: str) -> list[Example]:
        """The split's rows in file order (streamed; only this split is kept in memory)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self._cache:
            cap = self.cfg.max_train_examples if split == "train" else None
            out: list[Example] = []
            for row in iter_rows(self.path, [c for _, c in self._columns()]):
                try:
                    row_split, example, _ = self._parse(row)
                except _BadRow:
                    continue  # only reachable with skip_bad_rows (validate refused otherwise)
                if row_split == split:
                    out.append(example)
                    if cap and len(out) >= cap:
                        break
            self._cache[split] = out
        return self._cache[split]

    def format_prompt(self, tokenizer: Any, example: Example) -> str:
        """The message in the model's chat template; no system prompt (the data sets the style)."""
        return chat_prompt(tokenizer, example.prompt)

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        """The chitchat reply checker (well-formedness gate, then message–reply relevance)."""
        if self._checker is None:

            self._checker = ReplyChecker(self.cfg.quality_threshold)
        return self._checker.check(examples, completions)
