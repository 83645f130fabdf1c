"""The one-image call of :func:`affine_aug.warp.warp_affine`, without numpy's cost per call.

A DataLoader worker warps one image per call. The batch path validates and inverts its
matrices with numpy operations on ``(1, 3, 3)`` arrays, each costing about a microsecond
whatever its size; here the one matrix is read into Python floats, checked and inverted
with the same operations in the same order (so the inverse has the same bits as
:func:`affine_aug.matrix.invert`), and the kernel is called at once.

:func:`warp_one` takes only the plain case (one C-contiguous image, a float64 matrix,
no antialias, no ``out``, the compiled kernel) and returns None for anything else, which
then goes the general way, with its checks and its error messages.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernel, outputs
from ._checks import check_size
from .matrix import _MAX_CONDITION

__all__ = ["invert_one", "warp_one"]

_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))
_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
_BORDERS = ("constant", "edge", "reflect", "mirror", "wrap")
_ZERO_FILLS: dict = {}


def invert_one(a: float, b: float, tx: float, c: float, d: float, ty: float) -> tuple | None:
    """Inverse of ``[[a, b, tx], [c, d, ty]]`` as six floats, as ``invert`` computes it,
    or None where ``invert`` would refuse the matrix (singular, ill-conditioned, or an
    inverse beyond float64)."""
    scale = max(abs(a), abs(b), abs(c), abs(d))
    scale = scale if scale > 0 else 1.0
    sa, sb, sc, sd = a / scale, b / scale, c / scale, d / scale
    p, q = math.hypot(sa + sd, sc - sb), math.hypot(sa - sd, sc + sb)
    if p == q or not (p + q) / abs(p - q) <= _MAX_CONDITION:
        return None
    det = a * d - b * c
    if det == 0.0:  # underflowed: numpy's division gives inf, which invert refuses
        return None
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    inv = (ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty))
    return inv if math.isfinite(sum(inv)) else None  # a sum that overflows: the general path decides


def _entries(matrices) -> tuple | None:
    """The six entries of one affine float64 matrix ((3, 3), (2, 3), (1, 3, 3), (1, 2, 3)), or None."""
    if type(matrices) is not np.ndarray or matrices.dtype != np.float64 or matrices.shape[-1:] != (3,):
        return None
    shape = matrices.shape[-2:] if matrices.ndim in (2, 3) and (matrices.ndim == 2 or len(matrices) == 1) else None
    if shape not in ((3, 3), (2, 3)):
        return None
    e = matrices.reshape(-1).tolist()
    if shape == (3, 3) and e[6:] != [0.0, 0.0, 1.0]:
        return None
    e = e[:6]
    return tuple(e) if math.isfinite(sum(e)) else None  # NaN or inf anywhere makes the sum so


def _fill(fill, c: int, dtype: np.dtype):
    if type(fill) is int and fill == 0:
        key = (c, dtype)
        if key not in _ZERO_FILLS:
            _ZERO_FILLS[key] = np.zeros(c, dtype)
        return _ZERO_FILLS[key]
    from ._checks import check_fill

    return check_fill(fill, c, dtype)


def warp_one(images, matrices, out_size, interpolation, border, fill, antialias, backend, out, cubic_a=-0.5):
    """``warp_affine(images, matrices, ...)`` for one image in the plain case, else None."""
    if (
        out is not None
        or antialias is not False
        or backend not in ("auto", "c")
        or type(images) is not np.ndarray
        or images.ndim not in (3, 4)
        or len(images) != 1
        or images.dtype not in _DTYPES
        or not images.flags.c_contiguous
        or interpolation not in _INTERPOLATIONS
        or border not in _BORDERS
        or not kernel.available()
        or 0 in images.shape
    ):
        return None
    e = _entries(matrices)
    inv = None if e is None else invert_one(*e)
    if inv is None:
        return None
    grey = images.ndim == 3
    _, h, w = images.shape[:3]
    c = 1 if grey else images.shape[3]
    ho, wo = (h, w) if out_size is None else check_size(out_size, "out_size")
    fill_values = _fill(fill, c, images.dtype)
    dst_to_src = np.array(inv + (0.0, 0.0, 1.0)).reshape(1, 3, 3)
    shape = (1, ho, wo, c)
    small = ho * wo * c * images.itemsize < outputs.SMALLEST
    result = np.empty(shape, images.dtype) if small else outputs.empty(shape, images.dtype)
    if cubic_a != -0.5:
        from ._checks import check_cubic_a

        cubic_a = check_cubic_a(cubic_a)
    kernel.warp_into(images.reshape(1, h, w, c), dst_to_src, result, interpolation, border, fill_values, cubic_a)
    return result[..., 0] if grey else result
