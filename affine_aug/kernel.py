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
outside it take the general path, which computes a pixel bit for bit as the interior
would. Coordinates are 32.32 fixed-point integers (float64 for float64 images); uint8
interpolates in integers with 1/2048-pixel weights, uint16/float32 in float32, float64
in float64. Agreement with the numpy reference: within one level for integer images,
1e-5 relative for float32, exact on identity, integer shifts, flips and 90° rotations.

Compiled code is cached on disk (``cache=True``); when the package directory is not
writable numba falls back to its user-wide cache directory (``NUMBA_CACHE_DIR``
overrides both).
"""

from __future__ import annotations

import math
import os

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
def _coordinate(s, n, border):
    """A far-away source coordinate made safe: clamped for constant / edge (exact: far
    outside, every neighbour is fill or the edge), reduced modulo the period for the
    periodic modes (exact: the fraction is kept), so that integer conversion never overflows."""
    if border == WRAP or border == REFLECT or border == MIRROR:
        period = float(n) if border == WRAP else (2.0 * n if border == REFLECT else max(2.0 * n - 2.0, 1.0))
        return s - period * math.floor(s / period)
    return min(max(s, -_LIMIT), _LIMIT)


@nb.njit(inline="always")
def _span(p, q, lo, hi, wo, grow):
    """Integer interval [j0, j1) of j in [0, wo) where lo <= p + q*j < hi.

    Rounding-safe: shrunk by one pixel on each side (every j returned satisfies the
    bounds), or grown by one pixel when ``grow`` (every j outside fails them).
    """
    pad = -1.0 if grow else 1.0
    j0, j1 = 0.0, float(wo)
    if q > 0:
        j0 = max(j0, math.ceil((lo - p) / q) + pad)
        j1 = min(j1, math.floor((hi - p) / q) + 1.0 - pad)
    elif q < 0:
        j0 = max(j0, math.ceil((hi - p) / q) + pad)
        j1 = min(j1, math.floor((lo - p) / q) + 1.0 - pad)
    else:
        eps = -1e-9 if grow else 1e-9
        if not (lo + eps <= p < hi - eps):
            return 0, 0
    j0 = min(max(j0, 0.0), float(wo))
    j1 = min(max(j1, j0), float(wo))
    return int(j0), int(j1)


# Fast-math without reassociation or contraction: the same formula gives the same bits
# on every code path (interior or border), so results never depend on the canvas.
_FASTMATH = {"nnan", "ninf", "nsz", "arcp"}
UINT8_FIXED_POINT = None  # the arithmetic of uint8 bilinear: integers, no float type
_ONE_FIXED = 2048  # uint8 fixed point: coordinates and weights in 1/2048 pixel
_SHIFT = 11


def _make_border(arithmetic):
    """The general-path pixel of the bilinear kernels for one arithmetic (see _make_bilinear).

    A module-level function per arithmetic, not a closure of the kernel: a compiled
    function held in a kernel's closure would change its on-disk cache key every run.
    """
    double = arithmetic is np.float64
    fixed = arithmetic is UINT8_FIXED_POINT
    wt = np.float64 if fixed else arithmetic  # float type of the border path (uint8 rows far outside: float64)

    @nb.njit(inline="always", fastmath=_FASTMATH)
    def border_pixel(src, o, ok, fill, border, top, i, x, row, c):
        """Output pixel ``x`` of a row whose neighbours may lie outside the image: written at
        ``o[ok:ok + c]``; ``row`` is the row's geometry (see the kernel)."""
        row_x, row_y, step_x, step_y, gx0, gy0, ga, gd, far = row
        h, w = src.shape[1], src.shape[2]
        if fixed and not far:
            qx = (gx0 + x * ga + (1 << 20)) >> 21
            qy = (gy0 + x * gd + (1 << 20)) >> 21
            x0, y0 = qx >> _SHIFT, qy >> _SHIFT
            wx, wy = qx & (_ONE_FIXED - 1), qy & (_ONE_FIXED - 1)
            xa, xb = _map(x0, w, border), _map(x0 + 1, w, border)
            ya, yb = _map(y0, h, border), _map(y0 + 1, h, border)
            for ch in range(c):
                fv = np.int64(fill[ch])
                v00 = np.int64(src[i, ya, xa, ch]) if xa >= 0 and ya >= 0 else fv
                v01 = np.int64(src[i, ya, xb, ch]) if xb >= 0 and ya >= 0 else fv
                v10 = np.int64(src[i, yb, xa, ch]) if xa >= 0 and yb >= 0 else fv
                v11 = np.int64(src[i, yb, xb, ch]) if xb >= 0 and yb >= 0 else fv
                tp = v00 * _ONE_FIXED + wx * (v01 - v00)
                bt = v10 * _ONE_FIXED + wx * (v11 - v10)
                v = tp * _ONE_FIXED + wy * (bt - tp)
                o[ok + np.uint64(ch)] = (v + (1 << (2 * _SHIFT - 1))) >> (2 * _SHIFT)
            return
        if not double and not far:
            gx = gx0 + x * ga
            gy = gy0 + x * gd
            x0, y0 = gx >> 32, gy >> 32
            fx = wt(gx & 0xFFFFFFFF) * wt(2.0**-32)
            fy = wt(gy & 0xFFFFFFFF) * wt(2.0**-32)
        else:  # float64 images, and rows so far outside that fixed point would overflow
            sx = _coordinate(row_x + step_x * x, w, border)
            sy = _coordinate(row_y + step_y * x, h, border)
            fx0, fy0 = math.floor(sx), math.floor(sy)
            x0, y0 = int(fx0), int(fy0)
            fx, fy = wt(sx - fx0), wt(sy - fy0)  # one type on both branches: no silent float64 math
        xa, xb = _map(x0, w, border), _map(x0 + 1, w, border)
        ya, yb = _map(y0, h, border), _map(y0 + 1, h, border)
        for ch in range(c):
            fv = wt(fill[ch])
            v00 = wt(src[i, ya, xa, ch]) if xa >= 0 and ya >= 0 else fv
            v01 = wt(src[i, ya, xb, ch]) if xb >= 0 and ya >= 0 else fv
            v10 = wt(src[i, yb, xa, ch]) if xa >= 0 and yb >= 0 else fv
            v11 = wt(src[i, yb, xb, ch]) if xb >= 0 and yb >= 0 else fv
            tp = v00 + fx * (v01 - v00)
            bt = v10 + fx * (v11 - v10)
            v = tp + fy * (bt - tp)
            if top > 0:
                v = min(max(math.floor(v + wt(0.5)), wt(0)), wt(top))
            o[ok + np.uint64(ch)] = v

    return border_pixel


_border_fixed = _make_border(UINT8_FIXED_POINT)
_border_f32 = _make_border(np.float32)
_border_f64 = _make_border(np.float64)


def _make_bilinear(channels: int, arithmetic, parallel: bool = True):
    """Bilinear kernel for a known channel count (0: any) and arithmetic.

    ``arithmetic`` UINT8_FIXED_POINT (None; uint8 images): coordinates rounded to 1/2048 pixel (at most 1/4096 pixel
    off, well under one grey level; exact for integer coordinates) and integer
    interpolation. np.float32 (uint16, float32): 32.32 fixed-point coordinates, float32
    interpolation. np.float64: float64 coordinates and interpolation, as the reference.
    ``top`` > 0 means integer output, rounded half up and clipped.

    Every pixel is computed the same way whichever path (interior or border) takes it,
    so a result never depends on the canvas an image sits in (ragged batches pad images
    to a common size) nor on where a row's interior begins.
    """
    double = arithmetic is np.float64
    fixed = arithmetic is UINT8_FIXED_POINT

    @nb.njit(parallel=parallel, cache=True, nogil=True, fastmath=_FASTMATH)
    def kernel(src, dst_to_src, out, fill, border, top):
        _ = parallel  # a free variable of the body, so it is part of the on-disk cache key
        n, h, w, c_any = src.shape
        c = channels if channels else c_any
        ho, wo = out.shape[1], out.shape[2]
        s = src.reshape(src.size)
        o = out.reshape(out.size)
        stride = w * c  # elements per source row
        cu = np.uint64(c)
        strideu = np.uint64(stride)
        for t in nb.prange(n * ho):
            i = t // ho
            y = t - i * ho
            # Output pixel (x, y) samples the source at (row_x + step_x * x, row_y + step_y * x).
            step_x, step_y = dst_to_src[i, 0, 0], dst_to_src[i, 1, 0]
            row_x = dst_to_src[i, 0, 1] * y + dst_to_src[i, 0, 2]
            row_y = dst_to_src[i, 1, 1] * y + dst_to_src[i, 1, 2]
            # Coordinates as 32.32 fixed-point integers anchored at x = 0: pixel x sits at
            # gx0 + x * ga (drift < 2**-32 pixel per step; exact for integer coordinates).
            far = max(abs(row_x), abs(row_x + step_x * wo), abs(row_y), abs(row_y + step_y * wo)) >= 2.0**30
            gx0 = np.int64(0) if far else np.int64(math.floor(row_x * 4294967296.0 + 0.5))
            gy0 = np.int64(0) if far else np.int64(math.floor(row_y * 4294967296.0 + 0.5))
            ga = np.int64(0) if far else np.int64(math.floor(step_x * 4294967296.0 + 0.5))
            gd = np.int64(0) if far else np.int64(math.floor(step_y * 4294967296.0 + 0.5))
            # Row layout: [0, t0) fill | [t0, j0) border | [j0, j1) interior | [j1, t1) border | [t1, wo) fill
            margin = 1.0 / 1024.0  # keeps x0 + 1 <= w - 1 whatever the rounding
            jx0, jx1 = _span(row_x, step_x, 0.0, w - 1.0 - margin, wo, False)
            jy0, jy1 = _span(row_y, step_y, 0.0, h - 1.0 - margin, wo, False)
            t0, t1 = 0, wo
            if border == CONSTANT:  # beyond (-1, size) every neighbour is fill
                tx0, tx1 = _span(row_x, step_x, -1.0, float(w), wo, True)
                ty0, ty1 = _span(row_y, step_y, -1.0, float(h), wo, True)
                t0, t1 = max(tx0, ty0), min(tx1, ty1)
                if t1 < t0:
                    t0 = t1 = wo
            j0, j1 = max(jx0, jy0, t0), min(jx1, jy1, t1)
            if j1 <= j0 or far:  # no interior: the whole span takes the general path
                j0 = j1 = t1
            row = (row_x, row_y, step_x, step_y, gx0, gy0, ga, gd, far)  # what border_pixel needs
            ibase = np.uint64(i * h * stride)
            obase = np.uint64((i * ho + y) * wo * c)
            for x in range(t0):
                for ch in range(c):
                    o[obase + np.uint64(x * c + ch)] = fill[ch]
            for x in range(t1, wo):
                for ch in range(c):
                    o[obase + np.uint64(x * c + ch)] = fill[ch]
            left = j0 - t0
            for q in range(left + t1 - j1):  # [t0, j0) then [j1, t1)
                x = t0 + q if q < left else j1 + q - left
                ok = obase + np.uint64(x * c)
                if fixed:
                    _border_fixed(src, o, ok, fill, border, top, i, x, row, c)
                elif double:
                    _border_f64(src, o, ok, fill, border, top, i, x, row, c)
                else:
                    _border_f32(src, o, ok, fill, border, top, i, x, row, c)
            # interior: the four neighbours are inside the image, no border logic
            gx = gx0 + j0 * ga
            gy = gy0 + j0 * gd
            for xx in range(j0, j1):
                ok = obase + np.uint64(xx * c)
                if fixed:
                    qx = (gx + (1 << 20)) >> 21
                    qy = (gy + (1 << 20)) >> 21
                    gx += ga
                    gy += gd
                    wx = qx & (_ONE_FIXED - 1)
                    wy = qy & (_ONE_FIXED - 1)
                    k = ibase + np.uint64((qy >> _SHIFT) * stride + (qx >> _SHIFT) * c)
                    k1 = k + strideu
                    for ch in range(c):
                        cc = np.uint64(ch)
                        v00 = np.int64(s[k + cc])
                        v01 = np.int64(s[k + cu + cc])
                        v10 = np.int64(s[k1 + cc])
                        v11 = np.int64(s[k1 + cu + cc])
                        tp = v00 * _ONE_FIXED + wx * (v01 - v00)
                        bt = v10 * _ONE_FIXED + wx * (v11 - v10)
                        v = tp * _ONE_FIXED + wy * (bt - tp)
                        o[ok + cc] = (v + (1 << (2 * _SHIFT - 1))) >> (2 * _SHIFT)
                else:
                    if double:
                        sx = row_x + step_x * xx
                        sy = row_y + step_y * xx
                        x0 = int(sx)  # sx, sy >= 0 here, so truncation is floor
                        y0 = int(sy)
                        fx = sx - x0
                        fy = sy - y0
                    else:
                        x0 = gx >> 32
                        y0 = gy >> 32
                        fx = arithmetic(gx & 0xFFFFFFFF) * arithmetic(2.0**-32)
                        fy = arithmetic(gy & 0xFFFFFFFF) * arithmetic(2.0**-32)
                        gx += ga
                        gy += gd
                    k = ibase + np.uint64(y0 * stride + x0 * c)
                    k1 = k + strideu
                    for ch in range(c):
                        cc = np.uint64(ch)
                        v00 = arithmetic(s[k + cc])
                        v01 = arithmetic(s[k + cu + cc])
                        v10 = arithmetic(s[k1 + cc])
                        v11 = arithmetic(s[k1 + cu + cc])
                        tp = v00 + fx * (v01 - v00)
                        bt = v10 + fx * (v11 - v10)
                        v = tp + fy * (bt - tp)
                        if top > 0:
                            v = min(max(math.floor(v + arithmetic(0.5)), arithmetic(0)), arithmetic(top))
                        o[ok + cc] = v
        return

    return kernel


def _make_nearest(parallel: bool = True):
    """Nearest-neighbour kernel: the pixel at floor(coord + 0.5), copied unchanged."""

    @nb.njit(parallel=parallel, cache=True, nogil=True)
    def kernel(src, dst_to_src, out, fill, border):
        _ = parallel  # a free variable of the body, so it is part of the on-disk cache key
        n, h, w, c = src.shape
        ho, wo = out.shape[1], out.shape[2]
        s = src.reshape(src.size)
        o = out.reshape(out.size)
        for t in nb.prange(n * ho):
            i = t // ho
            y = t - i * ho
            # output pixel (x, y) samples (row_x + step_x * x, row_y + step_y * x), + 0.5 to round
            step_x, step_y = dst_to_src[i, 0, 0], dst_to_src[i, 1, 0]
            row_x = dst_to_src[i, 0, 1] * y + dst_to_src[i, 0, 2] + 0.5
            row_y = dst_to_src[i, 1, 1] * y + dst_to_src[i, 1, 2] + 0.5
            obase = np.uint64((i * ho + y) * wo * c)
            for x in range(wo):
                sx = _coordinate(row_x + step_x * x, w, border)
                sy = _coordinate(row_y + step_y * x, h, border)
                xi = _map(int(math.floor(sx)), w, border)
                yi = _map(int(math.floor(sy)), h, border)
                ok = obase + np.uint64(x * c)
                if xi < 0 or yi < 0:
                    for ch in range(c):
                        o[ok + np.uint64(ch)] = fill[ch]
                else:
                    k = np.uint64(((i * h + yi) * w + xi) * c)
                    for ch in range(c):
                        o[ok + np.uint64(ch)] = s[k + np.uint64(ch)]

    return kernel


# Bilinear kernels specialised for 1, 3 and 4 channels (unrolled channel loop) and one
# for any count; nearest (a plain copy) is not worth the extra compile time.
_SPECIALISED = (1, 3, 4)
_ARITHMETIC = {np.uint8: UINT8_FIXED_POINT, np.uint16: np.float32, np.float32: np.float32, np.float64: np.float64}
_BILINEAR = {(c, a, par): _make_bilinear(c, a, par) for c in _SPECIALISED + (0,)
             for a in (UINT8_FIXED_POINT, np.float32, np.float64) for par in (True, False)}
_NEAREST = {par: _make_nearest(par) for par in (True, False)}

# GNU OpenMP (numba's usual threading layer on Linux) cannot be used in a process forked
# from one that already started it (DataLoader workers, multiprocessing pools): such
# children get the serial kernels (compiled on first use and cached like the others).
_PARALLEL_PID: int | None = None


def _parallel_allowed() -> bool:
    global _PARALLEL_PID
    if _PARALLEL_PID is None:
        _PARALLEL_PID = os.getpid()
    return _PARALLEL_PID == os.getpid()


def cache_is_warm() -> bool:
    """Whether compiled kernels for this source are cached on disk. When not, the first warp
    of each kind compiles (seconds each); the CLI says so before it starts."""
    try:
        return bool(_BILINEAR[3, UINT8_FIXED_POINT, True]._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - numba internals moved: say nothing rather than fail
        return True


def warp_into(imgs: np.ndarray, dst_to_src: np.ndarray, out: np.ndarray, interpolation: str, border: str,
              fill_values: np.ndarray) -> None:
    """Fill ``out`` (N, Ho, Wo, C) from ``imgs`` (N, H, W, C); ``dst_to_src`` (N, 3, 3) maps
    output pixels to source pixels (the inverse of the library's forward matrices)."""
    code = BORDER_CODES[border]
    inv = np.ascontiguousarray(dst_to_src, dtype=np.float64)
    imgs = np.ascontiguousarray(imgs)  # a copy only for non-contiguous views
    c = imgs.shape[3] if imgs.shape[3] in _SPECIALISED else 0
    parallel = _parallel_allowed()
    if interpolation == "nearest":
        _NEAREST[parallel](imgs, inv, out, fill_values, code)
        return
    top = float(np.iinfo(imgs.dtype).max) if np.issubdtype(imgs.dtype, np.integer) else 0.0
    _BILINEAR[c, _ARITHMETIC[imgs.dtype.type], parallel](imgs, inv, out, fill_values, code, top)
