"""The one tokenization used by every text metric (distinct-n, self-BLEU).

``tokenize(text)`` = NLTK ``TweetTokenizer()`` (default settings: case preserved while matching,
``reduce_len=False``, ``strip_handles=False``, ``match_phone_numbers=True``) followed by
``str.lower()`` on every token. TweetTokenizer is regex-only, so it needs no NLTK data download
(``word_tokenize`` would need ``punkt``), and it keeps chat tokens such as ``:)``, ``<3``,
``#tag``, ``@user``, URLs and ``don't`` whole.

NLTK is imported on the first tokenization, not with this module: the training step's modules
import the metrics package, and the GPU check (``bench/gpu_check.py``) runs them on a machine
without NLTK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

#: Longest text matched without NLTK's wall-clock regex timeout. The timeout guards against a
#: super-linear match on adversarial input (a ~40 KB run of digits); below this length the
#: worst case is milliseconds, and skipping the guard's per-call set-up saves ~25% of the time.
UNGUARDED_CHARS = 2000


@lru_cache(maxsize=1)
def _tweet_tokens_fn() -> Callable[[str], list[str]]:
    """``TweetTokenizer().tokenize`` (default settings), step for step on NLTK's own compiled
    patterns, minus per-call overheads that cannot change the result: the HTML-entity pass
    only runs on text containing ``&`` (its pattern starts with ``&``), and short texts skip
    the timeout wrapper. Falls back to NLTK's method if its internals ever move. Built once,
    on the first call (NLTK is imported here, not at module import)."""
    from nltk.tokenize import TweetTokenizer, casual

    tokenizer = TweetTokenizer()
    try:
        hang = casual.HANG_RE._rx
        words = tokenizer.PHONE_WORD_RE._rx  # match_phone_numbers=True is the default
        guarded = tokenizer.PHONE_WORD_RE
        unescape = casual._replace_html_entities
        ok = (tokenizer.preserve_case and not tokenizer.reduce_len
              and not tokenizer.strip_handles and tokenizer.match_phone_numbers)
    except AttributeError:
        ok = False
    if not ok:
        return tokenizer.tokenize

    def tweet_tokens(text: str) -> list[str]:
        if "&" in text:
            text = unescape(text)
        safe = hang.sub(r"\1\1\1", text)
        return words.findall(safe) if len(safe) <= UNGUARDED_CHARS else guarded.findall(safe)

    return tweet_tokens


#: Texts whose tokens are remembered between calls. The evaluation computes several metrics on
#: the same samples (corpus and per prompt); TweetTokenizer (~50 µs per chat message) dominates
#: their cost, so each text is tokenized once. Bounded: at most this many entries are kept.
TOKEN_CACHE_SIZE = 65536


@lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(tok.lower() for tok in _tweet_tokens_fn()(text))


def clear_token_cache() -> None:
    """Forget remembered tokenizations (benchmarks use it to time cold calls)."""
    _tokens.cache_clear()


def tokenize(text: str) -> list[str]:
    """Tokens of ``text``: NLTK ``TweetTokenizer().tokenize(text)``, each token lowercased.

    Whitespace-only or empty text gives ``[]``. ``text`` must be a ``str`` (``TypeError``
    otherwise: a ``None`` from a failed generation must not silently count as empty).
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() needs a str, got {type(text).__name__}")
    return list(_tokens(text))


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    """``[tokenize(t) for t in texts]``; each distinct text is tokenized once (chat repeats).

    Equal texts share one list object in the result: treat the lists as read-only.
    """
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got a single str")
    cache: dict[str, list[str]] = {}
    out: list[list[str]] = []
    for text in texts:
        toks = cache.get(text) if isinstance(text, str) else None
        if toks is None:
            toks = tokenize(text)
            cache[text] = toks
        out.append(toks)
    return out


def as_token_lists(texts: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """Texts (``str``) are tokenized; already tokenized texts (lists of ``str``) pass through."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got a single str")
    items = list(texts)
    if all(isinstance(t, str) for t in items):
        return tokenize_many(items)  # type: ignore[arg-type]
    out: list[list[str]] = []
    for i, t in enumerate(items):
        if isinstance(t, str):
            out.append(tokenize(t))
        elif isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t):
            out.append(list(t))
        else:
            raise TypeError(f"text {i} is neither a str nor a list of str: {type(t).__name__}")
    return out
