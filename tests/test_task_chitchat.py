"""The ``chitchat`` task: splits by conversation, and the parsed pairs cached once per dataset
file (``polychromic.tasks.chitchat.parsed_cache``): the cache gives exactly what parsing gives,
and a missing, truncated or stale cache is parsed again, never served."""

from __future__ import annotations

from pathlib import Path

import pytest

from polychromic.core.config import TrialConfig
from polychromic.core.embedded import chitchat_json
from polychromic.tasks import chitchat


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path))
    chitchat._pairs.cache_clear()
    chitchat._split.cache_clear()
    yield tmp_path
    chitchat._pairs.cache_clear()  # the next user parses (or reads its own cache) again
    chitchat._split.cache_clear()


def test_the_cache_gives_what_parsing_gives_and_a_bad_cache_is_parsed_again(
        fresh_cache: Path) -> None:
    parsed = chitchat._pairs()
    cached = chitchat.parsed_cache(chitchat_json())
    assert cached.is_file() and cached.is_relative_to(fresh_cache)
    chitchat._pairs.cache_clear()
    assert chitchat._pairs() == parsed  # read back from the cache
    # splits by conversation: no conversation in two splits, every split non-empty
    groups = {s: {group for *_, group in parsed[s]} for s in parsed}
    assert all(groups.values())
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]
    for damage in (cached.read_bytes()[:1000], b"", b"\x00garbage", b"N"):  # N: None
        cached.write_bytes(damage)
        chitchat._pairs.cache_clear()
        assert chitchat._pairs() == parsed, damage[:10]
        assert len(cached.read_bytes()) > 1000  # rewritten whole
    assert not list(cached.parent.glob("*.tmp"))


def test_a_changed_parse_rule_or_dataset_gets_its_own_cache(
        fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = chitchat.parsed_cache(chitchat_json())
    monkeypatch.setattr(chitchat, "PARSE_VERSION", chitchat.PARSE_VERSION + 1)
    assert chitchat.parsed_cache(chitchat_json()) != before
    task = chitchat.ChitchatTask(TrialConfig.from_dict({"task": "chitchat",
                                                        "max_train_examples": 5}))
    assert len(task.examples("train")) == 5
