"""tokenize is NLTK TweetTokenizer, lowercased, with no data download."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import TweetTokenizer

from polychromic.metrics import tokenize, tokenize_many


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_is_tweet_tokenizer_lowercased(text: str) -> None:
    assert tokenize(text) == [t.lower() for t in TweetTokenizer().tokenize(text)]


def test_examples() -> None:
    assert tokenize("Hello :) I don't KNOW!!") == ["hello", ":)", "i", "don't", "know", "!", "!"]
    assert tokenize("") == []
    assert tokenize_many(["A b", "A b", "c"]) == [["a", "b"], ["a", "b"], ["c"]]
    with pytest.raises(TypeError):
        tokenize(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tokenize_many("abc")
