"""The ``replies`` task: the user's JSONL/Parquet/CSV files, splits, and every bad input refused
(or skipped) with one line naming file, field and row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polychromic.core.config import TrialConfig
from polychromic.core.errors import ConfigError
from polychromic.tasks.base import SPLITS, Check, Task
from polychromic.tasks.replies import CHARS_PER_TOKEN, RepliesTask


def _rows(n: int = 60) -> list[dict]:
    return [{"prompt": f"how was day {i}?", "response": f"day {i} was fine, thanks",
             "conv": f"c{i // 3}", "author": i % 7} for i in range(n)]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _task(path: Path, **settings) -> RepliesTask:
    return RepliesTask(TrialConfig.from_dict({"task": "replies", "data": str(path), **settings}))


def _all(task: RepliesTask) -> dict[str, list]:
    return {s: task.examples(s) for s in SPLITS}


def test_jsonl_parquet_and_csv_give_the_same_examples(tmp_path: Path) -> None:
    rows = _rows()
    tasks = [_task(_jsonl(tmp_path / "r.jsonl", rows)),
             _task(_parquet(tmp_path / "r.parquet", rows)),
             _task(_csv(tmp_path / "r.csv", rows))]
    first = _all(tasks[0])
    assert sum(len(v) for v in first.values()) == len(rows)
    assert first["train"] and first["validation"] and first["test"]
    for task in tasks[1:]:
        assert _all(task) == first  # same ids, texts, groups and splits
    assert isinstance(tasks[0], Task) and tasks[0].name == "replies"
    ids = [e.id for v in first.values() for e in v]
    assert len(set(ids)) == len(ids)


def test_group_field_keeps_a_group_in_one_split(tmp_path: Path) -> None:
    task = _task(_parquet(tmp_path / "r.parquet", _rows(300)), group_field="conv")
    split_of_group: dict[str, set[str]] = {}
    for split, examples in _all(task).items():
        for e in examples:
            split_of_group.setdefault(e.group, set()).add(split)
    assert len(split_of_group) == 100
    assert all(len(s) == 1 for s in split_of_group.values())
    # a non-text group id (int) works too, and is stable across formats
    by_author = _task(_jsonl(tmp_path / "a.jsonl", _rows(70)), group_field="author")
    assert {e.group for e in by_author.examples("train")} <= {str(i) for i in range(7)}


def test_split_field_and_max_train_examples(tmp_path: Path) -> None:
    rows = [dict(r, split=["train", "validation", "test"][i % 3]) for i, r in enumerate(_rows())]
    task = _task(_jsonl(tmp_path / "r.jsonl", rows), split_field="split", max_train_examples=5)
    assert task.counts == {"train": 20, "validation": 20, "test": 20}
    train = task.examples("train")
    assert [e.meta["row"] for e in train] == [1, 4, 7, 10, 13]
    assert [e.meta["row"] for e in task.examples("test")][:2] == [3, 6]


def test_custom_field_names(tmp_path: Path) -> None:
    rows = [{"message": r["prompt"], "reply": r["response"]} for r in _rows(20)]
    task = _task(_csv(tmp_path / "r.csv", rows), prompt_field="message", response_field="reply")
    e = task.examples("train")[0]
    assert e.prompt.startswith("how was day") and e.target.startswith("day")


def _error(path: Path, **settings) -> str:
    with pytest.raises(ConfigError) as info:
        _task(path, **settings)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))  # names the file
    return message


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    assert "file not found" in _error(tmp_path / "nope.jsonl")
    assert "unknown data format '.txt'" in _error(tmp_path / "r.txt")
    with pytest.raises(ConfigError, match="data: the replies task needs a data file"):
        RepliesTask(TrialConfig(task="replies"))


def test_missing_field_lists_the_fields(tmp_path: Path) -> None:
    rows = _rows(5)
    for path in (_jsonl(tmp_path / "r.jsonl", rows), _parquet(tmp_path / "r.parquet", rows),
                 _csv(tmp_path / "r.csv", rows)):
        message = _error(path, prompt_field="text")
        assert "prompt_field: no field 'text'" in message
        assert "its fields: prompt, response, conv, author" in message
    assert "group_field: no field 'thread'" in _error(tmp_path / "r.jsonl", group_field="thread")


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n\n")
    (tmp_path / "e.csv").write_text("")
    (tmp_path / "h.csv").write_text("prompt,response\n")
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()),
                             "response": pa.array([], pa.string())}), tmp_path / "e.parquet")
    for name in ("e.jsonl", "e.csv", "h.csv", "e.parquet"):
        assert "data: empty file (no rows)" in _error(tmp_path / name)


def test_bad_rows_are_refused_with_row_number(tmp_path: Path) -> None:
    rows = _rows(10)
    rows[3]["prompt"] = "   "
    path = _jsonl(tmp_path / "r.jsonl", rows)
    message = _error(path)
    assert f"{path}: prompt: row 4: empty text" in message and "skip_bad_rows" in message

    rows = _rows(10)
    rows[6]["response"] = 42
    assert "response: row 7: non-text value (int)" in _error(_jsonl(tmp_path / "n.jsonl", rows))

    rows = _rows(10)
    del rows[2]["prompt"]
    assert "prompt: row 3: no value" in _error(_jsonl(tmp_path / "m.jsonl", rows))

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_rows(1)[0]) + "\n\n{not json\n")
    assert "data: row 2 (line 3): invalid JSON" in _error(path)

    rows = _rows(10)
    rows[5]["response"] = None
    assert "response: row 6: empty value (null)" in _error(_parquet(tmp_path / "r.parquet", rows))

    rows = _rows(10)
    rows[1]["prompt"] = ""
    assert "prompt: row 2: empty text" in _error(_csv(tmp_path / "r.csv", rows))

    rows = [dict(r, split="dev") for r in _rows(3)]
    assert "split: row 1: split value 'dev' is not one of train, validation, test" in _error(
        _jsonl(tmp_path / "s.jsonl", rows), split_field="split")


def test_non_text_parquet_column(tmp_path: Path) -> None:
    rows = [{"prompt": i, "response": "ok"} for i in range(5)]
    assert "prompt: field holds int64 values, not text" in _error(
        _parquet(tmp_path / "r.parquet", rows))


def test_skip_bad_rows_counts_them(tmp_path: Path) -> None:
    rows = _rows(40)
    rows[3]["prompt"] = ""
    rows[8]["response"] = ["a", "list"]
    del rows[9]["response"]
    task = _task(_jsonl(tmp_path / "r.jsonl", rows), skip_bad_rows=True)
    assert task.skipped_rows == 3
    assert task.skipped[0] == "row 4: prompt: empty text"
    assert sum(task.counts.values()) == 37
    assert sum(len(v) for v in _all(task).values()) == 37

    all_bad = [{"prompt": "", "response": "x"}] * 3
    message = _error(_jsonl(tmp_path / "b.jsonl", all_bad), skip_bad_rows=True)
    assert "data: no usable rows (3 skipped as bad" in message


def test_megabyte_values_are_truncated_not_refused(tmp_path: Path) -> None:
    rows = _rows(20)
    rows[2]["response"] = "word " * 600_000  # 3 MB
    for path in (_jsonl(tmp_path / "r.jsonl", rows), _csv(tmp_path / "r.csv", rows),
                 _parquet(tmp_path / "r.parquet", rows)):
        task = _task(path, max_length=64)
        assert task.truncated == 1
        limit = 64 * CHARS_PER_TOKEN
        longest = max(len(e.target) for v in _all(task).values() for e in v)
        assert longest == limit


def test_format_prompt_without_chat_template(tmp_path: Path) -> None:
    task = _task(_jsonl(tmp_path / "r.jsonl", _rows(10)))

    class PlainTokenizer:  # a tokenizer without a chat template (base.chat_prompt's fallback)
        chat_template = None

    e = task.examples("train")[0]
    assert task.format_prompt(PlainTokenizer(), e) == f"User: {e.prompt}\nAssistant:"


def test_check_uses_the_reply_checker(tmp_path: Path) -> None:
    pytest.importorskip("polychromic.tasks.quality")
    task = _task(_jsonl(tmp_path / "r.jsonl", _rows(30)))
    examples = task.examples("train")[:2]
    checks = task.check(examples, ["", examples[1].target])
    assert all(isinstance(c, Check) for c in checks)
    assert not checks[0].passed and checks[0].reason == "empty"
    assert 0.0 <= checks[1].score <= 1.0
