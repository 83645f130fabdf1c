"""The compiled kernel (``csrc/``): the default backend of :func:`warp_affine`.

``pip install`` builds the C files of ``affine_aug/csrc/`` into one shared library next
to this file (setup.py); it is called through ctypes, which releases the GIL for the whole
call. Its conventions and arithmetic are written at the top of ``csrc/common.h``: the
same contract as the numpy reference in ``reference.py``, within one level for integer
images, 1e-5 relative for float32, exact on identity, integer shifts, flips and 90°
rotations.

Threads: each call hands out its output rows, in steps, to ``get_num_threads()`` threads,
started for the call and joined before it returns (nothing outlives a call, so forked children, such
as DataLoader workers, are safe). The count defaults to the CPUs this process may run on;
``AFFINE_AUG_NUM_THREADS`` or :func:`set_num_threads` change it.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path

import numpy as np

from . import outputs
from ._deprecated import renamed

__all__ = [
    "available",
    "get_num_threads",
    "set_num_threads",
    "warp_into",
    "prefilter",
    "warp_ragged_into",
    "prefilter_ragged",
]

BORDER_CODES = {"constant": 0, "edge": 1, "reflect": 2, "mirror": 3, "wrap": 4}
DTYPE_CODES = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 1, np.dtype(np.float32): 2, np.dtype(np.float64): 3}
INTERPOLATION_CODES = {"nearest": 0, "bilinear": 1, "bicubic": 2}


def _open_library(stem: str):
    """The package's compiled extension ``affine_aug/<stem>*.so`` opened with ctypes, or None if not built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"{stem}{suffix}"
        if path.exists():
            return ctypes.CDLL(str(path))
    return None


def _load():
    lib = _open_library("_kernel")
    if lib is None:
        return None
    i64, dbl, ptr, cint = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int
    lib.aa_warp.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64, i64, cint, cint, cint, dbl, cint]
    lib.aa_warp.restype = cint
    lib.aa_blur.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, cint, cint, cint]
    lib.aa_blur.restype = cint
    lib.aa_warp_ragged.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, cint, cint, cint, dbl, cint]
    lib.aa_warp_ragged.restype = cint
    lib.aa_blur_ragged.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, cint, cint, cint]
    lib.aa_blur_ragged.restype = cint
    lib.aa_last_exact_count.argtypes = []
    lib.aa_last_exact_count.restype = i64
    lib.aa_set_permutation_copies.argtypes = [cint]
    lib.aa_set_permutation_copies.restype = cint
    return lib


_LIB = _load()
_MISSING = (
    "affine_aug's compiled kernel is missing: the package was not installed with pip, or building "
    "affine_aug/csrc failed (it needs a C compiler). Reinstall with `pip install -e .`, or pass backend='numpy'"
)


def available() -> bool:
    """Whether the compiled kernel was built (``pip install`` builds it)."""
    return _LIB is not None


def _default_threads() -> int:
    env = os.environ.get("AFFINE_AUG_NUM_THREADS", "")
    if env.strip():
        if not env.strip().isdigit() or int(env) < 1:
            raise ValueError(f"AFFINE_AUG_NUM_THREADS must be a positive integer, got {env!r}")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_THREADS: int | None = None


def get_num_threads() -> int:
    """Threads each kernel call uses."""
    global _THREADS
    if _THREADS is None:
        _THREADS = _default_threads()
    return _THREADS


def set_num_threads(n: int) -> None:
    """Set the threads each kernel call uses (1: the calling thread only)."""
    global _THREADS
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 256:
        raise ValueError(f"the number of threads must be an integer in [1, 256], got {n!r}")
    _THREADS = int(n)


def _lib():
    if _LIB is None:
        raise RuntimeError(_MISSING)
    return _LIB


def _last_exact_count() -> int:
    """How many images (or ragged outputs) of this process's last warp call were exact pixel
    permutations executed as copies (flips, quarter turns, integer shifts: see
    ``csrc/permute.c``). A debugging aid, for tests: not safe across threads."""
    return int(_lib().aa_last_exact_count())


def _set_permutation_copies(on: bool) -> bool:
    """Turn the copy path of exact permutations on or off for later calls (off: every
    image takes its interpolation's warp, with the same bytes); returns the old setting.
    For tests and benchmarks."""
    return bool(_lib().aa_set_permutation_copies(1 if on else 0))


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def warp_into(
    imgs: np.ndarray,
    dst_to_src: np.ndarray,
    out: np.ndarray,
    interpolation: str,
    border: str,
    fill_values: np.ndarray,
    cubic_a: float,
) -> None:
    """Fill ``out`` (N, Ho, Wo, C) from ``imgs`` (N, H, W, C); ``dst_to_src`` (N, 3, 3) maps
    output pixels to source pixels (the inverse of the library's forward matrices);
    ``cubic_a``: Keys' parameter for bicubic."""
    lib = _lib()
    if out.size == 0 or imgs.size == 0:  # no pixels or no channels: nothing to compute
        return
    inv = np.ascontiguousarray(dst_to_src, dtype=np.float64)
    imgs = np.ascontiguousarray(imgs)  # a copy only for non-contiguous views
    fill = np.ascontiguousarray(fill_values, dtype=np.float64)
    assert out.flags.c_contiguous and out.dtype == imgs.dtype and inv.shape == (len(imgs), 3, 3)
    n, h, w, c = imgs.shape
    rc = lib.aa_warp(
        _ptr(imgs),
        _ptr(out),
        _ptr(inv),
        _ptr(fill),
        n,
        h,
        w,
        c,
        out.shape[1],
        out.shape[2],
        DTYPE_CODES[imgs.dtype],
        INTERPOLATION_CODES[interpolation],
        BORDER_CODES[border],
        float(cubic_a),
        get_num_threads(),
    )
    if rc:
        raise ValueError(f"the kernel refused shapes {imgs.shape} -> {out.shape}")


def prefilter(imgs: np.ndarray, sigmas: np.ndarray, border: str, fill_values: np.ndarray) -> np.ndarray:
    """Each image blurred by a Gaussian of its own ``(sigma_x, sigma_y)`` (source pixels;
    0 leaves an axis alone), samples outside the image following ``border``; a new array."""
    lib = _lib()
    if imgs.size == 0:
        return imgs.copy()
    imgs = np.ascontiguousarray(imgs)
    sig = np.ascontiguousarray(sigmas, dtype=np.float64)
    fill = np.ascontiguousarray(fill_values, dtype=np.float64)
    out = outputs.empty(imgs.shape, imgs.dtype)
    n, h, w, c = imgs.shape
    rc = lib.aa_blur(
        _ptr(imgs),
        _ptr(out),
        _ptr(sig),
        _ptr(fill),
        n,
        h,
        w,
        c,
        DTYPE_CODES[imgs.dtype],
        BORDER_CODES[border],
        get_num_threads(),
    )
    if rc:
        raise ValueError(f"the kernel refused shape {imgs.shape}")
    return out


def _pointers(images) -> np.ndarray:
    """Addresses of C-contiguous arrays (the callers keep the arrays alive)."""
    assert all(im.flags.c_contiguous for im in images)
    return np.array([im.__array_interface__["data"][0] for im in images], dtype=np.uintp)


def _sizes(images) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([im.shape[0] for im in images], dtype=np.int64),
        np.array([im.shape[1] for im in images], dtype=np.int64),
    )


def warp_ragged_into(
    images,
    which,
    dst_to_src: np.ndarray,
    out: np.ndarray,
    interpolation: str,
    border: str,
    fill_values: np.ndarray,
    cubic_a: float,
) -> None:
    """:func:`warp_into` for images of different sizes: ``out[i]`` (Ho, Wo, C) from
    ``images[which[i]]`` (H, W, C), C-contiguous, one dtype and channel count (copies of
    a source share its entry). Each output gets the bytes a batch of one gives."""
    lib = _lib()
    which = np.asarray(which, dtype=np.intp)
    n = len(which)
    if n == 0 or out.size == 0:
        return
    c = out.shape[3]
    assert out.flags.c_contiguous and all(im.dtype == out.dtype and im.shape[2] == c for im in images)
    inv = np.ascontiguousarray(dst_to_src, dtype=np.float64)
    fill = np.ascontiguousarray(fill_values, dtype=np.float64)
    ptrs = _pointers(images)[which]
    hs, ws = (a[which] for a in _sizes(images))
    rc = lib.aa_warp_ragged(
        _ptr(ptrs),
        _ptr(out),
        _ptr(inv),
        _ptr(fill),
        _ptr(hs),
        _ptr(ws),
        n,
        c,
        out.shape[1],
        out.shape[2],
        DTYPE_CODES[out.dtype],
        INTERPOLATION_CODES[interpolation],
        BORDER_CODES[border],
        float(cubic_a),
        get_num_threads(),
    )
    if rc:
        raise ValueError(f"the kernel refused a ragged batch of {n} images -> {out.shape}")


def prefilter_ragged(images, sigmas: np.ndarray, border: str, fill_values: np.ndarray) -> list:
    """:func:`prefilter` for images of different sizes (C-contiguous, one dtype and channel
    count): new arrays, one per image, in one call."""
    lib = _lib()
    n = len(images)
    if n == 0:
        return []
    sizes = np.array([im.size for im in images], dtype=np.int64)
    flat = np.empty(int(sizes.sum()), dtype=images[0].dtype)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    outs = [flat[a : a + k].reshape(im.shape) for a, k, im in zip(starts.tolist(), sizes.tolist(), images)]
    sig = np.ascontiguousarray(sigmas, dtype=np.float64)
    fill = np.ascontiguousarray(fill_values, dtype=np.float64)
    src, dst = _pointers(images), (flat.ctypes.data + starts * flat.itemsize).astype(np.uintp)
    hs, ws = _sizes(images)
    rc = lib.aa_blur_ragged(
        _ptr(src),
        _ptr(dst),
        _ptr(sig),
        _ptr(fill),
        _ptr(hs),
        _ptr(ws),
        n,
        images[0].shape[2],
        DTYPE_CODES[images[0].dtype],
        BORDER_CODES[border],
        get_num_threads(),
    )
    if rc:
        raise ValueError(f"the kernel refused a ragged prefilter of {n} images")
    return outs


__getattr__ = renamed(__name__, {"MISSING": "affine_aug.kernel._MISSING"})
