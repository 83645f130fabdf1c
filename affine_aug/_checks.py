"""Checks shared by the public entry points (numpy, torch, the transforms and shells): sample
keys and seeds, Keys' parameter, fill arguments. Each raises a ValueError (TypeError for a
value of the wrong kind) that names the argument and what it got."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["as_keys", "as_seed", "check_cubic_a", "check_fill_arg"]

CUBIC_A_RANGE = (-1.0, 0.0)  # Keys' family: a = -0.5 is the interpolating cubic; -0.75 OpenCV's; -1 sharpest


def check_cubic_a(cubic_a) -> float:
    """Keys' parameter of bicubic as a float in ``[-1, 0]``, else a ValueError.

    Examples:
        >>> check_cubic_a(-0.75)
        -0.75
    """
    lo, hi = CUBIC_A_RANGE
    if (
        isinstance(cubic_a, (bool, np.bool_))
        or not isinstance(cubic_a, (int, float, np.integer, np.floating))
        or not math.isfinite(cubic_a)
        or not lo <= cubic_a <= hi
    ):
        raise ValueError(
            f"cubic_a (Keys' bicubic parameter) must be a number in [{lo:g}, {hi:g}], "
            f"e.g. -0.5 (PIL) or -0.75 (OpenCV, torch), got {cubic_a!r}"
        )
    return float(cubic_a)


def _is_real(v) -> bool:
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


def check_fill_arg(fill, name: str = "fill"):
    """A fill argument checked at construction, as torchvision checks it: a finite number or
    a non-empty flat sequence of them (one per channel; their count and range are checked
    against each input's channels and dtype)."""
    if _is_real(fill):
        values = [fill]
    elif isinstance(fill, (list, tuple, np.ndarray)):
        values = list(np.asarray(fill, dtype=object).reshape(-1))
        if not all(_is_real(v) for v in values):
            raise TypeError(f"{name} must be a number or a sequence of numbers (one per channel), got {fill!r}")
        if np.ndim(fill) > 1 or not values:
            raise ValueError(
                f"{name} must be a number or a flat, non-empty sequence of numbers (one per channel), got {fill!r}"
            )
    else:
        raise TypeError(f"{name} must be a number or a sequence of numbers (one per channel), got {fill!r}")
    if not all(np.isfinite(float(v)) for v in values):
        raise ValueError(f"{name} must be finite, got {fill!r}")
    return fill


def as_keys(keys, name: str = "keys") -> np.ndarray:
    """``(N,)`` uint64 sample keys from integers in ``[0, 2**64)`` (array, list or scalar).

    Examples:
        >>> as_keys([0, 7]).tolist(), as_keys(5).dtype
        ([0, 7], dtype('uint64'))
    """
    if isinstance(keys, np.ndarray):
        k = keys
    else:
        items = list(keys) if isinstance(keys, (list, tuple, range)) else None
        if items is not None and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
        ):
            values = [int(v) for v in items]
            bad = [v for v in values if not 0 <= v < 2**64]
            if bad:
                raise ValueError(f"{name} must be integers in [0, 2**64), got {bad[0]}")
            return np.array(values, dtype=np.uint64).reshape(-1)
        k = np.asarray(keys)
    if k.ndim == 0:
        k = k.reshape(1)
    if k.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of sample ids, got shape {k.shape}")
    if k.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if k.dtype == bool or not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"{name} must be non-negative integers, got dtype {k.dtype}")
    if np.issubdtype(k.dtype, np.signedinteger) and k.min() < 0:
        raise ValueError(f"{name} must be non-negative integers, got {int(k.min())}")
    return k.astype(np.uint64)


def as_seed(seed, name: str = "seed") -> int:
    """A seed as a Python int in ``[0, 2**64)``.

    Examples:
        >>> as_seed(np.int64(3))
        3
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)
