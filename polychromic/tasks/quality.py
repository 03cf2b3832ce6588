"""Quality checker for replies (chitchat and the user's reply data).

A reply is scored in two stages, both needed to pass:

1. **Well-formed** (hard gate; score 0 with the reason when it fails): non-empty, 2–60 words,
   not a copy of the message (token Jaccard < 0.8), no degenerate repetition (no token trigram
   three or more times; at least 40% distinct tokens in replies of 8+ tokens), no leaked chat
   markup.
2. **Relevant**: cosine similarity of the message and reply embeddings (all-MiniLM-L6-v2),
   mapped to ``score = clip(cos / RELEVANCE_FULL, 0, 1)``.

``passed = score ≥ threshold``. The default threshold is calibrated so the embedded base model's
pass@1 on the validation split sits well below the ceiling (see README, "Quality checker");
a lenient checker is why the old hand-run study saw pass@10 ≈ 0.998 for every model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from polychromic.metrics import tokenize
from polychromic.metrics.encoder import get_encoder
from polychromic.tasks.base import Check, Example

RELEVANCE_FULL = 0.5
DEFAULT_THRESHOLD = 0.6
MIN_WORDS, MAX_WORDS = 2, 60
_MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "assistant\n", "user\n")


def form_problem(message: str, reply: str) -> str | None:
    """Why ``reply`` is not a well-formed reply to ``message``, or None when it is."""
    text = reply.strip()
    if not text:
        return "empty"
    if any(m in reply for m in _MARKUP):
        return "chat markup"
    words = text.split()
    if len(words) < MIN_WORDS:
        return f"too short ({len(words)} word)"
    if len(words) > MAX_WORDS:
        return f"too long ({len(words)} words)"
    toks, msg = tokenize(text), set(tokenize(message))
    if msg and len(set(toks) & msg) / len(set(toks) | msg) >= 0.8:
        return "copies the message"
    trigrams = Counter(zip(toks, toks[1:], toks[2:]))
    if trigrams and max(trigrams.values()) >= 3:
        return "repetition"
    if len(toks) >= 8 and len(set(toks)) / len(toks) < 0.4:
        return "repetition"
    return None


class ReplyChecker:
    """Scores replies against their messages; embeds in one batch per call."""

    def __init__(self, threshold: float | None = None, encoder: object | None = None) -> None:
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self._encoder = encoder

    @property
    def encoder(self):  # noqa: ANN201 - Encoder, imported lazily
        if self._encoder is None:

            self._encoder = get_encoder()
        return self._encoder

    def check(self, examples: Sequence[Example], completions: Sequence[str]) -> list[Check]:
        if len(examples) != len(completions):
            raise ValueError(f"{len(examples)} examples but {len(completions)} completions")
        problems = [form_problem(e.prompt, c) for e, c in zip(examples, completions)]
        ok = [i for i, p in enumerate(problems) if p is None]
        cos = np.zeros(len(completions), dtype=np.float64)
        if ok:
            emb_m = self.encoder.encode([examples[i].prompt for i in ok])
            emb_r = self.encoder.encode([completions[i] for i in ok])
            cos[ok] = np.einsum("ij,ij->i", emb_m, emb_r)
        checks = []
        for i, problem in enumerate(problems):
            if problem is not None:
                checks.append(Check(0.0, False, problem))
                continue
            score = float(np.clip(cos[i] / RELEVANCE_FULL, 0.0, 1.0))
            passed = score >= self.threshold
            checks.append(Check(score, passed, "ok" if passed else f"off-topic (cos {cos[i]:.2f})"))
        return checks
