"""The real all-MiniLM-L6-v2 encoder: shapes, normalization, caching, OOM back-off."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polychromic.core.errors import MetricError
from polychromic.metrics import semantic_diversity
from polychromic.metrics.encoder import Encoder, get_encoder

TEXTS = [
    f"message number {i}: {'how are you doing today' if i % 3 else 'lol ok'}" for i in range(37)
]


class FailingModel:
    """The real SentenceTransformer, failing like a GPU would for batches above ``limit``."""

    def __init__(self, model, limit: int, error: BaseException | None = None) -> None:
        self.model = model
        self.limit = limit
        self.error = error or RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batch_sizes: list[int] = []

    def get_embedding_dimension(self) -> int:
        return self.model.get_embedding_dimension()

    def encode(self, texts, **kwargs):
        self.batch_sizes.append(len(texts))
        if len(texts) > self.limit:
            raise self.error
        return self.model.encode(texts, **kwargs)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return get_encoder(device="cpu")


def test_shapes_norms_and_cache(encoder: Encoder) -> None:
    assert get_encoder(device="cpu") is encoder
    emb = encoder.encode(TEXTS[:5])
    assert emb.dtype == np.float32 and emb.shape == (5, encoder.dim) and encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("one string")


def test_batching_does_not_change_embeddings(encoder: Encoder) -> None:
    a = encoder.encode(TEXTS, batch_size=64)
    b = encoder.encode(TEXTS, batch_size=5)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_oom_halves_batch_and_still_returns_correct_embeddings(encoder: Encoder) -> None:
    expected = encoder.encode(TEXTS)
    flaky = FailingModel(encoder.model, limit=6)
    enc = Encoder(flaky, device="cpu", batch_size=32)
    got = enc.encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert flaky.batch_sizes[:3] == [32, 16, 8]  # halved twice, then 4 fits
    assert enc.batch_size == 4  # remembered for the rest of the process
    assert max(flaky.batch_sizes[3:]) <= 4
    # a torch OOM error type and MemoryError are handled the same way
    import torch

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory")
    got2 = Encoder(FailingModel(encoder.model, 3, oom), "cpu", 16).encode(TEXTS[:10])
    np.testing.assert_allclose(got2, expected[:10], atol=1e-5)
    got3 = Encoder(FailingModel(encoder.model, 2, MemoryError()), "cpu", 16).encode(TEXTS[:5])
    np.testing.assert_allclose(got3, expected[:5], atol=1e-5)


def test_permanent_oom_raises_metric_error_not_zero(encoder: Encoder) -> None:
    enc = Encoder(FailingModel(encoder.model, limit=0), device="cpu", batch_size=8)
    with pytest.raises(MetricError, match="out of memory at batch size 1"):
        enc.encode(TEXTS[:3])
    with pytest.raises(MetricError):
        semantic_diversity(TEXTS[:3], encoder=enc)


def test_other_errors_propagate(encoder: Encoder) -> None:
    enc = Encoder(FailingModel(encoder.model, 0, ValueError("bad input")), "cpu", 8)
    with pytest.raises(ValueError, match="bad input"):
        enc.encode(TEXTS[:3])


def test_semantic_diversity_from_texts(encoder: Encoder) -> None:
    value = semantic_diversity(TEXTS, encoder=encoder)
    emb = encoder.encode(TEXTS)
    sim = emb.astype(np.float64) @ emb.T.astype(np.float64)
    n = len(TEXTS)
    assert value == pytest.approx(1 - (sim.sum() - np.trace(sim)) / (n * (n - 1)), abs=1e-6)
    assert 0 < value < 1
    assert math.isnan(semantic_diversity(TEXTS[:1], encoder=encoder))
