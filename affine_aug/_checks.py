"""Checks shared by the public entry points (numpy, torch, the transforms and shells): sample
keys and seeds, image batches, matrices, sizes, the names of the modes, fill values and
Keys' parameter. Each raises a ValueError (TypeError for a value of the wrong kind) that
names the argument and what it got."""

from __future__ import annotations

import difflib
import math

import numpy as np

__all__ = [
    "BACKENDS",
    "BORDERS",
    "DTYPES",
    "INTERPOLATIONS",
    "MAX_SIDE",
    "as_keys",
    "as_seed",
    "check_choice",
    "check_cubic_a",
    "check_dtype",
    "check_fill",
    "check_fill_arg",
    "check_images",
    "check_key_column",
    "check_matrices",
    "check_out",
    "check_ragged",
    "check_size",
]

BORDERS = ("constant", "edge", "reflect", "mirror", "wrap")
INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))
BACKENDS = ("auto", "c", "numpy")
MAX_SIDE = 1 << 20  # largest image side (pixels) any entry point accepts

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


def check_choice(value, allowed, name: str) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError suggesting the closest one."""
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {name} {value!r}{hint}; expected one of {', '.join(allowed)}")
    return value


def check_dtype(dtype) -> None:
    """A ValueError unless ``dtype`` is one of :data:`DTYPES`."""
    if dtype not in DTYPES:
        raise ValueError(f"images dtype must be one of uint8, uint16, float32, float64, got {dtype}")


def check_images(images) -> tuple[np.ndarray, bool]:
    """Validate a batch; return it as ``(N, H, W, C)`` and whether it was ``(N, H, W)``."""
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape} (ndim {images.ndim})")
    check_dtype(images.dtype)
    grey = images.ndim == 3
    imgs = images[..., None] if grey else images
    if 0 in imgs.shape[1:]:
        raise ValueError(f"images must have non-empty H, W and C, got shape {images.shape}")
    return imgs, grey


def check_matrices(matrices, n: int) -> np.ndarray:
    """Validate forward matrices for ``n`` images; return ``(n, 3, 3)`` float64."""
    from .matrix import as_matrices  # matrix checks its sizes here: imported when first used

    m = as_matrices(matrices)
    if m.ndim == 2:
        return np.broadcast_to(m, (n, 3, 3))
    if m.ndim != 3:
        raise ValueError(f"matrices must have shape (N, 3, 3), (N, 2, 3), (3, 3) or (2, 3), got {np.shape(matrices)}")
    if len(m) != n:
        raise ValueError(f"got {len(m)} matrices for {n} images; give one matrix per image or a single matrix")
    return m


def check_out(out, expected: tuple, imgs: np.ndarray) -> None:
    """A ValueError unless ``out`` can take the result: the ``expected`` shape and the
    images' dtype, C-contiguous, writable and apart from ``imgs``."""
    if not isinstance(out, np.ndarray) or out.shape != expected or out.dtype != imgs.dtype:
        got = f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a {imgs.dtype} array of shape {expected}, got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writable")
    if np.may_share_memory(out, imgs):
        raise ValueError("out must not overlap the images (the warp reads them while it writes)")


def check_ragged(images) -> tuple[int, np.dtype]:
    """The channel count and dtype that every ``(H_i, W_i, C)`` image of a ragged batch
    (a sequence of arrays) shares."""
    c = images[0].shape[2] if len(images) else 3
    dtype = images[0].dtype if len(images) else np.dtype(np.uint8)
    if any(im.ndim != 3 or im.dtype != dtype or im.shape[2] != c for im in images):
        raise ValueError(
            "a ragged batch needs (H, W, C) images of one dtype and "
            "one channel count (augment_images splits mixed ones)"
        )
    check_dtype(dtype)
    empty = next((im.shape for im in images if 0 in im.shape), None)
    if empty is not None:
        raise ValueError(f"images must have non-empty H, W and C, got shape {empty}")
    return c, dtype


def check_size(size, name: str) -> tuple[int, int]:
    """``(H, W)`` as two positive Python ints, or a ValueError naming ``name``.

    Examples:
        >>> check_size((32.0, 48), "size")
        (32, 48)
    """
    try:
        h, w = (int(v) for v in size)
        ok = all(float(v) == int(v) for v in size)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a pair of positive integers (H, W), got {size!r}") from None
    if not ok or h <= 0 or w <= 0 or max(h, w) > MAX_SIDE:
        raise ValueError(f"{name} must be a pair of positive integers (H, W) up to {MAX_SIDE}, got {size!r}")
    return h, w


def check_fill(fill, channels: int, dtype: np.dtype) -> np.ndarray:
    """Validate ``fill`` (scalar or one value per channel); return ``(C,)`` in ``dtype``."""
    f = np.asarray(fill)
    if f.dtype == object or not (np.issubdtype(f.dtype, np.number) or f.dtype == bool) or f.ndim > 1:
        raise ValueError(f"fill must be a number or a sequence of {channels} numbers, got {fill!r}")
    f = f.astype(np.float64)
    if f.ndim == 1 and len(f) not in (1, channels):
        raise ValueError(f"fill has {len(f)} values but the images have {channels} channels")
    f = np.broadcast_to(f.reshape(-1), (channels,))
    if not np.all(np.isfinite(f)):
        raise ValueError(f"fill must be finite, got {fill!r}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if np.any(f != np.round(f)) or np.any(f < info.min) or np.any(f > info.max):
            raise ValueError(f"fill {fill!r} is not an integer in [{info.min}, {info.max}] as {dtype} images need")
    return f.astype(dtype)


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


def check_key_column(values, column: str) -> np.ndarray:
    """A table column of sample keys as ``(N,)`` uint64; errors name the column (and the row).

    Examples:
        >>> check_key_column(np.array([3, 0]), "key").tolist()
        [3, 0]
    """
    k = np.asarray(values)
    if k.ndim != 1 or k.dtype == bool or not np.issubdtype(k.dtype, np.integer):
        raise ValueError(
            f"column {column!r}: expected non-negative integer sample keys, got dtype {k.dtype} with shape {k.shape}"
        )
    if np.issubdtype(k.dtype, np.signedinteger) and len(k) and k.min() < 0:
        raise ValueError(
            f"column {column!r}, row {int(np.argmin(k))}: sample keys must be non-negative, got {int(k.min())}"
        )
    return k.astype(np.uint64)
