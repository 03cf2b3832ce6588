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


#: characters that drive TweetTokenizer's special cases: entities, runs, phone numbers, URLs,
#: emoticons, handles, hashtags, a Greek final sigma, a dotted capital I
TRICKY = "&#x;amp lt3<>:;-)(DPpo!?.…·@#/_'’1234567890+ \nΣσİAaZz"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=TRICKY, max_size=60))
def test_fast_path_matches_tweet_tokenizer_on_tricky_text(text: str) -> None:
    assert tokenize(text) == [t.lower() for t in TweetTokenizer().tokenize(text)]


def test_fast_path_edge_cases() -> None:
    from polychromic.metrics.tokenize import UNGUARDED_CHARS

    cases = ["&amp; &lt;3 &#128512; &#x41; &#150; &bogus; & &;", "!!!!!!! ????? ....... :))))))",
             "call 555-123-4567 or +1 (800) 555 0199", "@user #tag http://x.com/a?b=1 :-P <3",
             "ΣΊΣΥΦΟΣ İstanbul", "x" * (UNGUARDED_CHARS + 5) + " 1" * 400, "12 " * 1000]
    for text in cases:
        assert tokenize(text) == [t.lower() for t in TweetTokenizer().tokenize(text)], text[:40]


def test_examples() -> None:
    assert tokenize("Hello :) I don't KNOW!!") == ["hello", ":)", "i", "don't", "know", "!", "!"]
    assert tokenize("") == []
    assert tokenize_many(["A b", "A b", "c"]) == [["a", "b"], ["a", "b"], ["c"]]
    with pytest.raises(TypeError):
        tokenize(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tokenize_many("abc")
