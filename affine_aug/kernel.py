"""Compiled (numba) batched warp kernels: the default backend of :func:`warp_affine`.

Same contract as the numpy reference in ``warp.py`` (see its docstring): inverse
matrices map output pixel ``(x, y)`` to source coordinates, pixel centres on integers,
bilinear weights from the unclamped coordinates, border modes applied to the neighbour
indices. One parallel loop runs over all (image, output row) pairs of the batch, so
small and large images both keep every thread busy; the thread count follows numba
(``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``). Nothing is allocated besides the
output.

Along a row, source coordinates advance by a constant step. The pixels whose four
neighbours all lie inside the image form one interval of the row; it is computed per
row, and the loop over it reads pixels with no border logic at all. Only the few pixels
outside it take the general path. Arithmetic is float32 for uint8/uint16/float32
images and float64 for float64 images, like the numpy reference.

Compiled code is cached on disk (``cache=True``); when the package directory is not
writable numba falls back to its user-wide cache directory (``NUMBA_CACHE_DIR``
overrides both).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["warp_into"]

CONSTANT, EDGE, REFLECT, MIRROR, WRAP = range(5)
BORDER_CODES = {"constant": CONSTANT, "edge": EDGE, "reflect": REFLECT, "mirror": MIRROR, "wrap": WRAP}
_LIMIT = float(2**40)


@nb.njit(inline="always")
def _map(i, n, border):
    """Index ``i`` mapped into ``[0, n)`` per border mode; -1 means "the fill value"."""
    if 0 <= i < n:
        return i
    if border == CONSTANT:
        return -1
    if border == EDGE:
        return 0 if i < 0 else n - 1
    if border == WRAP:
        return i % n
    if border == REFLECT:
        i = i % (2 * n)
        return i if i < n else 2 * n - 1 - i
    if n == 1:
        return 0
    i = i % (2 * n - 2)
    return i if i < n else 2 * n - 2 - i


@nb.njit(inline="always")
def _interior(p, q, lo, hi, wo):
    """Integer interval [j0, j1) of j in [0, wo) where lo <= p + q*j < hi (conservative)."""
    j0, j1 = 0.0, float(wo)
    if q > 0:
        j0 = max(j0, math.ceil((lo - p) / q) + 1.0)
        j1 = min(j1, math.floor((hi - p) / q) - 1.0)
    elif q < 0:
        j0 = max(j0, math.ceil((hi - p) / q) + 1.0)
        j1 = min(j1, math.floor((lo - p) / q) - 1.0)
    elif not (lo + 1e-9 <= p < hi - 1e-9):
        return 0, 0
    j0 = min(max(j0, 0.0), float(wo))
    j1 = min(max(j1, j0), float(wo))
    return int(j0), int(j1)


@nb.njit(parallel=True, cache=True, nogil=True)
def _bilinear(src, inv, out, fill, border, top, one):
    """Bilinear warp. ``one`` is 1.0 as the work type (float32 or float64);
    ``top`` > 0 means integer output (round half up, clip to [0, top])."""
    n, h, w, c = src.shape
    ho, wo = out.shape[1], out.shape[2]
    for t in nb.prange(n * ho):
        i = t // ho
        y = t - i * ho
        a, b, e = inv[i, 0, 0], inv[i, 0, 1], inv[i, 0, 2]
        d, g, f = inv[i, 1, 0], inv[i, 1, 1], inv[i, 1, 2]
        px = b * y + e  # source x of output pixel (0, y); advances by a per pixel
        py = g * y + f
        jx0, jx1 = _interior(px, a, 0.0, w - 1.0, wo)
        jy0, jy1 = _interior(py, d, 0.0, h - 1.0, wo)
        j0, j1 = max(jx0, jy0), min(jx1, jy1)
        if j1 < j0:
            j0 = j1 = 0
        for x in range(wo):
            if x == j0 and j1 > j0:  # interior: every neighbour inside, no border logic
                for xx in range(j0, j1):
                    sx = px + a * xx
                    sy = py + d * xx
                    x0 = int(math.floor(sx))
                    y0 = int(math.floor(sy))
                    fx = (sx - x0) * one
                    fy = (sy - y0) * one
                    for ch in range(c):
                        v00 = src[i, y0, x0, ch] * one
                        v01 = src[i, y0, x0 + 1, ch] * one
                        v10 = src[i, y0 + 1, x0, ch] * one
                        v11 = src[i, y0 + 1, x0 + 1, ch] * one
                        top_row = v00 + fx * (v01 - v00)
                        bottom = v10 + fx * (v11 - v10)
                        v = top_row + fy * (bottom - top_row)
                        if top > 0:
                            v = min(max(math.floor(v + 0.5), 0.0), top)
                        out[i, y, xx, ch] = v
                continue
            if j0 <= x < j1:
                continue
            sx = min(max(px + a * x, -_LIMIT), _LIMIT)
            sy = min(max(py + d * x, -_LIMIT), _LIMIT)
            fx0 = math.floor(sx)
            fy0 = math.floor(sy)
            fx = (sx - fx0) * one
            fy = (sy - fy0) * one
            x0, y0 = int(fx0), int(fy0)
            xa, xb = _map(x0, w, border), _map(x0 + 1, w, border)
            ya, yb = _map(y0, h, border), _map(y0 + 1, h, border)
            for ch in range(c):
                fv = fill[ch] * one
                v00 = src[i, ya, xa, ch] * one if xa >= 0 and ya >= 0 else fv
                v01 = src[i, ya, xb, ch] * one if xb >= 0 and ya >= 0 else fv
                v10 = src[i, yb, xa, ch] * one if xa >= 0 and yb >= 0 else fv
                v11 = src[i, yb, xb, ch] * one if xb >= 0 and yb >= 0 else fv
                top_row = v00 + fx * (v01 - v00)
                bottom = v10 + fx * (v11 - v10)
                v = top_row + fy * (bottom - top_row)
                if top > 0:
                    v = min(max(math.floor(v + 0.5), 0.0), top)
                out[i, y, x, ch] = v


@nb.njit(parallel=True, cache=True, nogil=True)
def _nearest(src, inv, out, fill, border):
    """Nearest-neighbour warp: the pixel at floor(coord + 0.5), copied unchanged."""
    n, h, w, c = src.shape
    ho, wo = out.shape[1], out.shape[2]
    for t in nb.prange(n * ho):
        i = t // ho
        y = t - i * ho
        a, b, e = inv[i, 0, 0], inv[i, 0, 1], inv[i, 0, 2]
        d, g, f = inv[i, 1, 0], inv[i, 1, 1], inv[i, 1, 2]
        px = b * y + e + 0.5
        py = g * y + f + 0.5
        for x in range(wo):
            sx = min(max(px + a * x, -_LIMIT), _LIMIT)
            sy = min(max(py + d * x, -_LIMIT), _LIMIT)
            xi = _map(int(math.floor(sx)), w, border)
            yi = _map(int(math.floor(sy)), h, border)
            if xi < 0 or yi < 0:
                for ch in range(c):
                    out[i, y, x, ch] = fill[ch]
            else:
                for ch in range(c):
                    out[i, y, x, ch] = src[i, yi, xi, ch]


def warp_into(imgs: np.ndarray, inv: np.ndarray, out: np.ndarray, interpolation: str, border: str, fill_values: np.ndarray) -> None:
    """Fill ``out`` (N, Ho, Wo, C) from ``imgs`` (N, H, W, C) given inverse matrices (N, 3, 3)."""
    code = BORDER_CODES[border]
    inv = np.ascontiguousarray(inv, dtype=np.float64)
    if interpolation == "nearest":
        _nearest(imgs, inv, out, fill_values, code)
        return
    work = np.float64 if imgs.dtype == np.float64 else np.float32
    top = float(np.iinfo(imgs.dtype).max) if np.issubdtype(imgs.dtype, np.integer) else 0.0
    _bilinear(imgs, inv, out, fill_values.astype(np.float64), code, top, work(1.0))
