"""Benchmark of polychromic.metrics against its references, measured side by side in one run.

Run: ``python bench/metrics.py`` (about 3-4 minutes on 2 CPU cores). Prints a Markdown table.

Texts are chat messages sampled without replacement (seeded) from the Chit Chat Challenge
dataset shipped in ``chitchat-dataset`` (polychromic.core.embedded.chitchat_json()).

Measured:
1. self_bleu vs the NLTK ``sentence_bleu`` loop (method1, BLEU-4) at N = 500 and 1,000: times,
   ratio, max |difference|. Ours is timed from raw texts (tokenization included); the NLTK loop
   gets the tokens for free, so the ratio is conservative.
2. self_bleu vs fast-bleu ``SelfBLEU`` (C++, OpenMP on all cores) at N = 10,000, same tokens.
3. self_bleu at N = 100,000 (tokenization + computation, one core: numpy sorts are serial).
4. semantic_diversity(texts) vs encoding alone (all-MiniLM-L6-v2 on CPU) at ``--encode-n``
   texts, and the O(N·d) reduction at N = 100,000 rows with its tracemalloc peak.
5. distinct_n over >= 10^6 tokens vs a Python set-based count.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from polychromic.core.embedded import chitchat_json  # noqa: E402
from polychromic.metrics import (  # noqa: E402
    clear_token_cache,
    distinct_n,
    mean_pairwise_cosine,
    self_bleu,
    semantic_diversity,
    tokenize_many,
)

SEED = 1234
ROWS: list[tuple[str, str, str, str]] = []


def chat_texts(n: int, seed: int = SEED) -> list[str]:
    """``n`` chat messages sampled without replacement, deterministically."""
    data = json.loads(chitchat_json().read_text())
    msgs = [
        m["text"]
        for conv in data.values()
        for turn in conv["messages"]
        for m in turn
        if isinstance(m.get("text"), str)
    ]
    return random.Random(seed).sample(msgs, n)


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` cold runs (token cache cleared), and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        clear_token_cache()
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def row(what: str, ours: str, reference: str, result: str) -> None:
    ROWS.append((what, ours, reference, result))
    print(f"  {what}: ours {ours} | reference {reference} | {result}", flush=True)


def nltk_loop(tokens: list[list[str]], max_n: int = 4) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smooth = SmoothingFunction().method1
    weights = tuple([1 / max_n] * max_n)
    scores = [
        sentence_bleu(tokens[:i] + tokens[i + 1 :], h, weights=weights, smoothing_function=smooth)
        for i, h in enumerate(tokens)
    ]
    return float(np.mean(scores))


def bench_nltk(texts: list[str]) -> None:
    for n in (500, 1000):
        sample = texts[:n]
        tokens = tokenize_many(sample)
        t_ours, ours = timed(lambda s=sample: self_bleu(s), repeat=3)
        t_nltk, ref = timed(lambda t=tokens: nltk_loop(t))
        row(
            f"self_bleu (BLEU-4) vs NLTK loop, N={n:,}",
            f"{t_ours:.3f} s = {ours:.12f}",
            f"{t_nltk:.1f} s = {ref:.12f}",
            f"{t_nltk / t_ours:,.0f}x faster, max abs diff {abs(ours - ref):.1e}",
        )


FAST_BLEU_CHILD = """
import json, sys, time
import numpy as np
from fast_bleu import SelfBLEU
tokens = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
scores = SelfBLEU(tokens, {4: (0.25, 0.25, 0.25, 0.25)}).get_score()[4]
dt = time.perf_counter() - t0
np.save(sys.argv[2], np.asarray(scores))
print(dt)
"""


def fast_bleu_run(tokens: list[list[str]], threads: int | None) -> tuple[float, np.ndarray]:
    """Run fast-bleu in a child process (OMP_NUM_THREADS must be set before it loads)."""
    import tempfile

    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "tokens.json"), Path(tmp, "scores.npy")
        src.write_text(json.dumps(tokens))
        out = subprocess.run(
            [sys.executable, "-c", FAST_BLEU_CHILD, str(src), str(dst)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip().splitlines()[-1]), np.load(dst)


def bench_fast_bleu(texts: list[str]) -> None:
    from polychromic.metrics.ngrams import encode_corpus
    from polychromic.metrics.self_bleu import self_bleu_scores

    n = 10_000
    sample = texts[:n]
    tokens = tokenize_many(sample)
    t_ours, ours = timed(lambda: self_bleu(sample), repeat=3)
    t_ours_tok, _ = timed(lambda: self_bleu(tokens), repeat=3)
    per_text = self_bleu_scores(encode_corpus(tokens), 4)
    t_fb, fb = fast_bleu_run(tokens, threads=None)
    t_fb1, _ = fast_bleu_run(tokens, threads=1)
    differ = int(np.sum(np.abs(fb - per_text) > 1e-9))
    row(
        f"self_bleu vs fast-bleu SelfBLEU (BLEU-4), N={n:,}",
        f"{t_ours:.2f} s from texts ({t_ours_tok:.2f} s from tokens), 1 core = {ours:.6f}",
        f"{t_fb:.2f} s on 2 threads, {t_fb1:.2f} s on 1 thread = {float(np.mean(fb)):.6f}",
        f"{t_fb / t_ours:.1f}x faster than 2-thread fast-bleu from texts "
        f"({t_fb1 / t_ours_tok:.1f}x vs 1 thread, same tokens); per-text scores differ "
        f"(>1e-9) on {differ} of {n} texts, max {float(np.max(np.abs(fb - per_text))):.3f}",
    )


def bench_100k(texts: list[str]) -> None:
    from polychromic.metrics.ngrams import encode_corpus
    from polychromic.metrics.self_bleu import self_bleu_scores

    n = 100_000
    sample = texts[:n]
    t_total, value = timed(lambda: self_bleu(sample))
    t_tok, tokens = timed(lambda: tokenize_many(sample))
    t_enc, corpus = timed(lambda: encode_corpus(tokens))  # type: ignore[arg-type]
    t_core, _ = timed(lambda: self_bleu_scores(corpus, 4))  # type: ignore[arg-type]
    row(
        f"self_bleu (BLEU-4), N={n:,} ({corpus.tokens.size:,} tokens)",  # type: ignore[attr-defined]
        f"{t_total:.2f} s = {value:.6f}",
        "target < 10 s on one core (NLTK loop: O(N^2), not run)",
        f"tokenize {t_tok:.2f} s + id encoding {t_enc:.2f} s + BLEU maths {t_core:.2f} s",
    )
    from nltk.tokenize import TweetTokenizer

    distinct = list(dict.fromkeys(sample))
    tk = TweetTokenizer()
    clear_token_cache()
    t_ours, ours = timed(lambda: tokenize_many(distinct))
    t_nltk, ref = timed(lambda: [[w.lower() for w in tk.tokenize(x)] for x in distinct])
    row(
        f"tokenize, {len(distinct):,} distinct texts of the N={n:,} sample",
        f"{t_ours:.2f} s",
        f"NLTK TweetTokenizer().tokenize + lower {t_nltk:.2f} s",
        f"**{t_nltk / t_ours:.2f}x faster**, identical tokens: {ours == ref}",
    )


def bench_semantic(texts: list[str], n_encode: int) -> None:
    from polychromic.metrics.encoder import get_encoder

    enc = get_encoder(device="cpu")
    enc.encode(texts[:256])  # warm-up (first-call allocations, thread pools)
    sample = texts[:n_encode]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_enc = t_sem = float("inf")
    for _ in range(2):  # interleaved, best of 2: the machine is shared
        dt, emb = timed(lambda: enc.encode(sample))
        t_enc = min(t_enc, dt)
        dt, value = timed(lambda: semantic_diversity(sample, encoder=enc))
        t_sem = min(t_sem, dt)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_red, _ = timed(lambda: mean_pairwise_cosine(emb), repeat=3)  # type: ignore[arg-type]
    row(
        f"semantic_diversity(texts), N={n_encode:,}, all-MiniLM-L6-v2 on CPU (batch 64)",
        f"{t_sem:.1f} s = {value:.6f}",
        f"encode alone {t_enc:.1f} s ({n_encode / t_enc:,.0f} texts/s)",
        f"total/encode = {t_sem / t_enc:.3f}; the reduction itself takes {t_red * 1e3:.1f} ms "
        f"({100 * t_red / t_enc:.2f}% of encoding); peak RSS grew "
        f"{(rss1 - rss0) / 1024:.0f} MiB (model activations + the (N, 384) output)",
    )
    # reduction at 100,000 rows: the real embeddings tiled (cost does not depend on values)
    big = np.tile(emb, (int(np.ceil(100_000 / len(emb))), 1))[:100_000]  # type: ignore[arg-type]
    t_big, _ = timed(lambda: mean_pairwise_cosine(big), repeat=3)
    tracemalloc.start()
    mean_pairwise_cosine(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row(
        "mean_pairwise_cosine on (100,000 x 384) float32 embeddings",
        f"{t_big * 1e3:.0f} ms, extra peak {peak / 2**20:.1f} MiB (tracemalloc)",
        f"input array {big.nbytes / 2**20:.0f} MiB; an N x N float32 matrix would be "
        f"{100_000**2 * 4 / 2**30:.0f} GiB",
        f"O(N*d) time, O(d) state; encoding 100k texts at the rate above would take "
        f"~{100_000 / (n_encode / t_enc) / 60:.0f} min (not measured)",
    )


def bench_distinct(texts: list[str]) -> None:
    tokens = tokenize_many(texts)
    total, k = 0, 0
    while total < 1_000_000:
        total += len(tokens[k])
        k += 1
    sample, toks = texts[:k], tokens[:k]

    def set_based(n: int) -> float:
        grams = [tuple(t[i : i + n]) for t in toks for i in range(len(t) - n + 1)]
        return len(set(grams)) / len(grams)

    for n in (1, 2):
        t_ours, ours = timed(lambda n=n: distinct_n(sample, n))
        t_ours_tok, _ = timed(lambda n=n: distinct_n(toks, n), repeat=3)
        t_ref, ref = timed(lambda n=n: set_based(n))
        row(
            f"distinct_{n} over {total:,} tokens ({k:,} texts)",
            f"{t_ours:.2f} s from texts, {t_ours_tok:.2f} s from tokens = {ours:.6f}",
            f"Python set over tokens {t_ref:.2f} s = {ref:.6f}",
            f"equal: {ours == ref}; tokenization is {100 * (t_ours - t_ours_tok) / t_ours:.0f}% "
            "of our time",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encode-n", type=int, default=4_000, help="texts to embed")
    parser.add_argument("--only", choices=["nltk", "fast_bleu", "100k", "distinct", "semantic"],
                        action="append", help="run only these parts (repeatable)")
    args = parser.parse_args()
    import torch

    print(
        f"# polychromic.metrics benchmark: Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"seed {SEED}",
        flush=True,
    )
    t0 = time.perf_counter()
    texts = chat_texts(120_000)
    parts = {"nltk": lambda: bench_nltk(texts), "fast_bleu": lambda: bench_fast_bleu(texts),
             "100k": lambda: bench_100k(texts), "distinct": lambda: bench_distinct(texts),
             "semantic": lambda: bench_semantic(texts, args.encode_n)}
    for name, part in parts.items():
        if not args.only or name in args.only:
            part()
    print(f"\n(total {time.perf_counter() - t0:.0f} s)\n")
    print("| measurement | ours | reference | result |")
    print("|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
