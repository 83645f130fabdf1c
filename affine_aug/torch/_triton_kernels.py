"""Triton kernels of the fused torch warp and of the antialias prefilter.

Imported only through :mod:`affine_aug.torch._triton_warp`, which checks and prepares
the arguments. ``triton.jit`` reads ``TRITON_INTERPRET`` when this module runs, so the
kernels here are compiled for the GPU or interpreted on the CPU as the environment
said at import time (``INTERPRETED``); the caller reloads the module when it changed.

Conventions (those of :mod:`affine_aug.warp`): images ``(N, C, H, W)`` addressed through
their strides; ``dst_to_src`` ``(N, 2, 3)`` contiguous, output pixel ``(x, y)`` → source
pixel, pixel centres on integer coordinates; outputs and gradient buffers contiguous.
Codes: border 0 constant, 1 edge, 2 reflect, 3 mirror, 4 wrap; interpolation
0 nearest, 1 bilinear, 2 bicubic. Coordinates are computed in the matrices' dtype,
values in the fill's dtype (the work type), so the caller picks both precisions.
"""

import triton
import triton.language as tl

INTERPRETED = bool(triton.knobs.runtime.interpret)

# Shape and stride arguments are never specialised on their values (a size of 1 would
# otherwise turn into a compile-time constant, and every new size into a new kernel).
_SHAPES = ["C", "H", "W", "HO", "WO", "sxn", "sxc", "sxh", "sxw", "blocks", "T"]


@triton.jit
def _source_coordinate(s, size, BORDER: tl.constexpr):
    """A source coordinate made safe for integer conversion, and where it carries gradient.

    constant / edge: clamped to [-2, size + 1], exact (beyond two pixels out every tap,
    bicubic's included, is fill / the edge pixel). Periodic modes: reduced modulo the
    period, exact (the fraction is kept); the derivative stays 1.
    """
    if BORDER <= 1:
        hi = size + 1.0
        live = (s > -2.0) & (s < hi)
        s = tl.minimum(tl.maximum(s, -2.0), hi)
    else:
        if BORDER == 4:
            period = size * 1.0
        elif BORDER == 2:
            period = size * 2.0
        else:
            period = tl.maximum(size * 2.0 - 2.0, 1.0)
        s = s - period * tl.floor(s / period)
        live = s == s
    return s, live


@triton.jit
def _map_index(i, size, BORDER: tl.constexpr):
    """Integer index → index into [0, size) by the border mode, and whether it lies inside
    (always, except for constant, whose outside taps read the fill). Indices are at least
    -(size + 1) here, so the remainders below only ever see non-negative operands."""
    inside = i == i
    if BORDER == 0:
        inside = (i >= 0) & (i < size)
        i = tl.minimum(tl.maximum(i, 0), size - 1)
    elif BORDER == 1:
        i = tl.minimum(tl.maximum(i, 0), size - 1)
    elif BORDER == 4:
        i = (i + 4 * size) % size
    elif BORDER == 2:  # abc|cba, period 2 size
        i = (i + 8 * size) % (2 * size)
        i = tl.where(i >= size, 2 * size - 1 - i, i)
    else:  # mirror dcb|abcd|cba, period 2 size - 2 (a single pixel maps to itself)
        period = tl.maximum(2 * size - 2, 1)
        i = (i + 4 * period) % period
        i = tl.where(i >= size, 2 * size - 2 - i, i)
    return i, inside


@triton.jit
def _cubic_weights(t, a):
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 (warp.cubic_weights)."""
    d0 = 1.0 + t
    d1 = t
    d2 = 1.0 - t
    d3 = 2.0 - t
    w0 = ((a * d0 - 5.0 * a) * d0 + 8.0 * a) * d0 - 4.0 * a
    w1 = ((a + 2.0) * d1 - (a + 3.0)) * d1 * d1 + 1.0
    w2 = ((a + 2.0) * d2 - (a + 3.0)) * d2 * d2 + 1.0
    w3 = ((a * d3 - 5.0 * a) * d3 + 8.0 * a) * d3 - 4.0 * a
    return w0, w1, w2, w3


@triton.jit
def _cubic_slopes(t, a):
    """Derivatives of :func:`_cubic_weights` with respect to ``t``."""
    d0 = 1.0 + t
    d1 = t
    d2 = 1.0 - t
    d3 = 2.0 - t
    g0 = (3.0 * a * d0 - 10.0 * a) * d0 + 8.0 * a
    g1 = (3.0 * (a + 2.0) * d1 - 2.0 * (a + 3.0)) * d1
    g2 = -(3.0 * (a + 2.0) * d2 - 2.0 * (a + 3.0)) * d2
    g3 = -((3.0 * a * d3 - 10.0 * a) * d3 + 8.0 * a)
    return g0, g1, g2, g3


@triton.jit
def _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK: tl.constexpr):
    """The block of output pixels of program ``pid``: image, flat offsets, mask, the
    pixel coordinates and their source coordinates (in the matrices' dtype)."""
    n = pid // blocks
    offs = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < HO * WO
    m = m_ptr + n * 6
    a00 = tl.load(m)
    xo = (offs % WO).to(a00.dtype)
    yo = (offs // WO).to(a00.dtype)
    sx = a00 * xo + (tl.load(m + 1) * yo + tl.load(m + 2))
    sy = tl.load(m + 3) * xo + (tl.load(m + 4) * yo + tl.load(m + 5))
    return n, offs, valid, xo, yo, sx, sy


@triton.jit
def _tap(plane, offset, ok, fill):
    """One neighbour's value in the work type: the image where ``ok``, else the fill."""
    return tl.where(ok, tl.load(plane + offset, mask=ok, other=0).to(fill.dtype), fill)


@triton.jit
def _store(y_ptr, offset, value, valid, INTEGER: tl.constexpr, TOP: tl.constexpr):
    """Store in the output's dtype; integers rounded half up and clipped to [0, TOP]."""
    if INTEGER:
        value = tl.minimum(tl.maximum(tl.floor(value + 0.5), 0.0), TOP)
    tl.store(y_ptr + offset, value.to(y_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _cubic_row(plane, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, fill):
    """Σ_i w_i · v(row, c_i), summed from the left as the reference does."""
    v = w0 * _tap(plane, row + c0, rok & k0, fill)
    v += w1 * _tap(plane, row + c1, rok & k1, fill)
    v += w2 * _tap(plane, row + c2, rok & k2, fill)
    v += w3 * _tap(plane, row + c3, rok & k3, fill)
    return v


@triton.jit(do_not_specialize=_SHAPES)
def warp_forward_kernel(x_ptr, m_ptr, fill_ptr, y_ptr, C, H, W, HO, WO, sxn, sxc, sxh, sxw, blocks, cubic_a,
                        INTERP: tl.constexpr, BORDER: tl.constexpr, INTEGER: tl.constexpr, TOP: tl.constexpr,
                        BLOCK: tl.constexpr):
    """y[n, c, p] = the source sampled at dst_to_src[n] · p, every channel from one
    coordinate computation; one program per block of output pixels of one image."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, _ = _source_coordinate(sx, W, BORDER)
    sy, _ = _source_coordinate(sy, H, BORDER)
    image = x_ptr + n.to(tl.int64) * sxn
    out = y_ptr + n.to(tl.int64) * C * HO * WO
    if INTERP == 0:
        ix, okx = _map_index(tl.floor(sx + 0.5).to(tl.int32), W, BORDER)
        iy, oky = _map_index(tl.floor(sy + 0.5).to(tl.int32), H, BORDER)
        at = iy * sxh + ix * sxw
        ok = valid & okx & oky
        for c in range(C):
            v = _tap(image + c * sxc, at, ok, tl.load(fill_ptr + c))
            _store(out + c * HO * WO, offs, v, valid, INTEGER, TOP)
    elif INTERP == 1:
        x0f = tl.floor(sx)
        y0f = tl.floor(sy)
        fx = (sx - x0f).to(fill_ptr.dtype.element_ty)
        fy = (sy - y0f).to(fill_ptr.dtype.element_ty)
        xa, oka = _map_index(x0f.to(tl.int32), W, BORDER)
        xb, okb = _map_index(x0f.to(tl.int32) + 1, W, BORDER)
        ya, oya = _map_index(y0f.to(tl.int32), H, BORDER)
        yb, oyb = _map_index(y0f.to(tl.int32) + 1, H, BORDER)
        ra = ya * sxh
        rb = yb * sxh
        ca = xa * sxw
        cb = xb * sxw
        ra_ok = valid & oya
        rb_ok = valid & oyb
        for c in range(C):
            plane = image + c * sxc
            fill = tl.load(fill_ptr + c)
            v00 = _tap(plane, ra + ca, ra_ok & oka, fill)
            v01 = _tap(plane, ra + cb, ra_ok & okb, fill)
            v10 = _tap(plane, rb + ca, rb_ok & oka, fill)
            v11 = _tap(plane, rb + cb, rb_ok & okb, fill)
            top = v00 + fx * (v01 - v00)
            bottom = v10 + fx * (v11 - v10)
            _store(out + c * HO * WO, offs, top + fy * (bottom - top), valid, INTEGER, TOP)
    else:
        x0f = tl.floor(sx)
        y0f = tl.floor(sy)
        a = cubic_a
        wx0, wx1, wx2, wx3 = _cubic_weights((sx - x0f).to(fill_ptr.dtype.element_ty), a)
        wy0, wy1, wy2, wy3 = _cubic_weights((sy - y0f).to(fill_ptr.dtype.element_ty), a)
        x0 = x0f.to(tl.int32)
        y0 = y0f.to(tl.int32)
        c0, k0 = _map_index(x0 - 1, W, BORDER)
        c1, k1 = _map_index(x0, W, BORDER)
        c2, k2 = _map_index(x0 + 1, W, BORDER)
        c3, k3 = _map_index(x0 + 2, W, BORDER)
        r0, q0 = _map_index(y0 - 1, H, BORDER)
        r1, q1 = _map_index(y0, H, BORDER)
        r2, q2 = _map_index(y0 + 1, H, BORDER)
        r3, q3 = _map_index(y0 + 2, H, BORDER)
        c0 = c0 * sxw
        c1 = c1 * sxw
        c2 = c2 * sxw
        c3 = c3 * sxw
        for c in range(C):
            plane = image + c * sxc
            fill = tl.load(fill_ptr + c)
            v = wy0 * _cubic_row(plane, r0 * sxh, valid & q0, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, fill)
            v += wy1 * _cubic_row(plane, r1 * sxh, valid & q1, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, fill)
            v += wy2 * _cubic_row(plane, r2 * sxh, valid & q2, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, fill)
            v += wy3 * _cubic_row(plane, r3 * sxh, valid & q3, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, fill)
            _store(out + c * HO * WO, offs, v, valid, INTEGER, TOP)


@triton.jit
def _scatter(gplane, offset, ok, value):
    """Transpose of one tap: the weighted output gradient added to its source pixel."""
    tl.atomic_add(gplane + offset, value, mask=ok, sem="relaxed")


@triton.jit
def _store_matrix_grad(part_ptr, pid, gsx, gsy, xo, yo, valid):
    """This program's share of d loss / d dst_to_src[n] (6 entries, row-major)."""
    gsx = tl.where(valid, gsx, 0.0)
    gsy = tl.where(valid, gsy, 0.0)
    p = part_ptr + pid * 6
    tl.store(p, tl.sum(gsx * xo.to(gsx.dtype), axis=0))
    tl.store(p + 1, tl.sum(gsx * yo.to(gsx.dtype), axis=0))
    tl.store(p + 2, tl.sum(gsx, axis=0))
    tl.store(p + 3, tl.sum(gsy * xo.to(gsy.dtype), axis=0))
    tl.store(p + 4, tl.sum(gsy * yo.to(gsy.dtype), axis=0))
    tl.store(p + 5, tl.sum(gsy, axis=0))


@triton.jit(do_not_specialize=_SHAPES)
def warp_backward_nearest_kernel(gy_ptr, m_ptr, gx_ptr, C, H, W, HO, WO, blocks, BORDER: tl.constexpr,
                                 BLOCK: tl.constexpr):
    """grad_x of nearest: each output gradient added to the pixel it copied."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, _ = _source_coordinate(sx, W, BORDER)
    sy, _ = _source_coordinate(sy, H, BORDER)
    ix, okx = _map_index(tl.floor(sx + 0.5).to(tl.int32), W, BORDER)
    iy, oky = _map_index(tl.floor(sy + 0.5).to(tl.int32), H, BORDER)
    ok = valid & okx & oky
    gout = gy_ptr + n.to(tl.int64) * C * HO * WO
    gimage = gx_ptr + n.to(tl.int64) * C * H * W
    for c in range(C):
        g = tl.load(gout + c * HO * WO + offs, mask=valid, other=0).to(gx_ptr.dtype.element_ty)
        _scatter(gimage + c * H * W, iy * W + ix, ok, g)


@triton.jit(do_not_specialize=_SHAPES)
def warp_backward_bilinear_kernel(gy_ptr, x_ptr, m_ptr, fill_ptr, gx_ptr, part_ptr, C, H, W, HO, WO,
                                  sxn, sxc, sxh, sxw, blocks, BORDER: tl.constexpr, NEED_X: tl.constexpr,
                                  NEED_M: tl.constexpr, BLOCK: tl.constexpr):
    """Bilinear backward: grad_x by scattering the four weighted taps (atomics), and the
    per-program partial sums of d loss / d dst_to_src through the fractions."""
    pid = tl.program_id(0)
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK)
    sx, livex = _source_coordinate(sx, W, BORDER)
    sy, livey = _source_coordinate(sy, H, BORDER)
    x0f = tl.floor(sx)
    y0f = tl.floor(sy)
    fx = (sx - x0f).to(fill_ptr.dtype.element_ty)
    fy = (sy - y0f).to(fill_ptr.dtype.element_ty)
    xa, oka = _map_index(x0f.to(tl.int32), W, BORDER)
    xb, okb = _map_index(x0f.to(tl.int32) + 1, W, BORDER)
    ya, oya = _map_index(y0f.to(tl.int32), H, BORDER)
    yb, oyb = _map_index(y0f.to(tl.int32) + 1, H, BORDER)
    ok00 = valid & oya & oka
    ok01 = valid & oya & okb
    ok10 = valid & oyb & oka
    ok11 = valid & oyb & okb
    gsx = tl.zeros([BLOCK], dtype=fill_ptr.dtype.element_ty)
    gsy = tl.zeros([BLOCK], dtype=fill_ptr.dtype.element_ty)
    n64 = n.to(tl.int64)
    for c in range(C):
        g = tl.load(gy_ptr + n64 * C * HO * WO + c * HO * WO + offs, mask=valid, other=0).to(fill_ptr.dtype.element_ty)
        if NEED_X:
            gplane = gx_ptr + n64 * C * H * W + c * H * W
            _scatter(gplane, ya * W + xa, ok00, g * ((1.0 - fx) * (1.0 - fy)))
            _scatter(gplane, ya * W + xb, ok01, g * (fx * (1.0 - fy)))
            _scatter(gplane, yb * W + xa, ok10, g * ((1.0 - fx) * fy))
            _scatter(gplane, yb * W + xb, ok11, g * (fx * fy))
        if NEED_M:
            plane = x_ptr + n64 * sxn + c * sxc
            fill = tl.load(fill_ptr + c)
            v00 = _tap(plane, ya * sxh + xa * sxw, ok00, fill)
            v01 = _tap(plane, ya * sxh + xb * sxw, ok01, fill)
            v10 = _tap(plane, yb * sxh + xa * sxw, ok10, fill)
            v11 = _tap(plane, yb * sxh + xb * sxw, ok11, fill)
            gsx += g * ((1.0 - fy) * (v01 - v00) + fy * (v11 - v10))
            gsy += g * ((v10 + fx * (v11 - v10)) - (v00 + fx * (v01 - v00)))
    if NEED_M:
        _store_matrix_grad(part_ptr, pid, tl.where(livex, gsx, 0.0), tl.where(livey, gsy, 0.0), xo, yo, valid)


@triton.jit
def _cubic_row_values(plane, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, s0, s1, s2, s3, fill):
    """(Σ_i w_i v_i, Σ_i s_i v_i) over one row of four taps (weights and their slopes)."""
    v0 = _tap(plane, row + c0, rok & k0, fill)
    v1 = _tap(plane, row + c1, rok & k1, fill)
    v2 = _tap(plane, row + c2, rok & k2, fill)
    v3 = _tap(plane, row + c3, rok & k3, fill)
    return w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3, s0 * v0 + s1 * v1 + s2 * v2 + s3 * v3


@triton.jit
def _cubic_row_scatter(gplane, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, g):
    _scatter(gplane, row + c0, rok & k0, g * w0)
    _scatter(gplane, row + c1, rok & k1, g * w1)
    _scatter(gplane, row + c2, rok & k2, g * w2)
    _scatter(gplane, row + c3, rok & k3, g * w3)


@triton.jit(do_not_specialize=_SHAPES)
def warp_backward_bicubic_kernel(gy_ptr, x_ptr, m_ptr, fill_ptr, gx_ptr, part_ptr, C, H, W, HO, WO,
                                 sxn, sxc, sxh, sxw, blocks, cubic_a, BORDER: tl.constexpr, NEED_X: tl.constexpr,
                                 NEED_M: tl.constexpr, BLOCK: tl.constexpr):
    """Bicubic backward: grad_x by scattering the 16 weighted taps (atomics), and the
    per-program partial sums of d loss / d dst_to_src through Keys' weights' slopes."""
    pid = tl.program_id(0)
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK)
    sx, livex = _source_coordinate(sx, W, BORDER)
    sy, livey = _source_coordinate(sy, H, BORDER)
    x0f = tl.floor(sx)
    y0f = tl.floor(sy)
    a = cubic_a
    tx = (sx - x0f).to(fill_ptr.dtype.element_ty)
    ty = (sy - y0f).to(fill_ptr.dtype.element_ty)
    wx0, wx1, wx2, wx3 = _cubic_weights(tx, a)
    wy0, wy1, wy2, wy3 = _cubic_weights(ty, a)
    dx0, dx1, dx2, dx3 = _cubic_slopes(tx, a)
    dy0, dy1, dy2, dy3 = _cubic_slopes(ty, a)
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    c0, k0 = _map_index(x0 - 1, W, BORDER)
    c1, k1 = _map_index(x0, W, BORDER)
    c2, k2 = _map_index(x0 + 1, W, BORDER)
    c3, k3 = _map_index(x0 + 2, W, BORDER)
    r0, q0 = _map_index(y0 - 1, H, BORDER)
    r1, q1 = _map_index(y0, H, BORDER)
    r2, q2 = _map_index(y0 + 1, H, BORDER)
    r3, q3 = _map_index(y0 + 2, H, BORDER)
    q0 = q0 & valid
    q1 = q1 & valid
    q2 = q2 & valid
    q3 = q3 & valid
    gsx = tl.zeros([BLOCK], dtype=fill_ptr.dtype.element_ty)
    gsy = tl.zeros([BLOCK], dtype=fill_ptr.dtype.element_ty)
    n64 = n.to(tl.int64)
    for c in range(C):
        g = tl.load(gy_ptr + n64 * C * HO * WO + c * HO * WO + offs, mask=valid, other=0).to(fill_ptr.dtype.element_ty)
        if NEED_X:
            gp = gx_ptr + n64 * C * H * W + c * H * W
            _cubic_row_scatter(gp, r0 * W, q0, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, g * wy0)
            _cubic_row_scatter(gp, r1 * W, q1, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, g * wy1)
            _cubic_row_scatter(gp, r2 * W, q2, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, g * wy2)
            _cubic_row_scatter(gp, r3 * W, q3, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, g * wy3)
        if NEED_M:
            p = x_ptr + n64 * sxn + c * sxc
            f = tl.load(fill_ptr + c)
            s0, e0 = _cubic_row_values(p, r0 * sxh, q0, c0 * sxw, c1 * sxw, c2 * sxw, c3 * sxw, k0, k1, k2, k3,
                                       wx0, wx1, wx2, wx3, dx0, dx1, dx2, dx3, f)
            s1, e1 = _cubic_row_values(p, r1 * sxh, q1, c0 * sxw, c1 * sxw, c2 * sxw, c3 * sxw, k0, k1, k2, k3,
                                       wx0, wx1, wx2, wx3, dx0, dx1, dx2, dx3, f)
            s2, e2 = _cubic_row_values(p, r2 * sxh, q2, c0 * sxw, c1 * sxw, c2 * sxw, c3 * sxw, k0, k1, k2, k3,
                                       wx0, wx1, wx2, wx3, dx0, dx1, dx2, dx3, f)
            s3, e3 = _cubic_row_values(p, r3 * sxh, q3, c0 * sxw, c1 * sxw, c2 * sxw, c3 * sxw, k0, k1, k2, k3,
                                       wx0, wx1, wx2, wx3, dx0, dx1, dx2, dx3, f)
            gsx += g * (wy0 * e0 + wy1 * e1 + wy2 * e2 + wy3 * e3)
            gsy += g * (dy0 * s0 + dy1 * s1 + dy2 * s2 + dy3 * s3)
    if NEED_M:
        _store_matrix_grad(part_ptr, pid, tl.where(livex, gsx, 0.0), tl.where(livey, gsy, 0.0), xo, yo, valid)


@triton.jit(do_not_specialize=_SHAPES)
def blur_pass_kernel(src_ptr, dst_ptr, taps_ptr, radius_ptr, fill_ptr, C, H, W, sxn, sxc, sxh, sxw, T, blocks,
                     AXIS: tl.constexpr, BORDER: tl.constexpr, TRANSPOSE: tl.constexpr, INTEGER: tl.constexpr,
                     TOP: tl.constexpr, BLOCK: tl.constexpr):
    """One separable Gaussian pass along x (AXIS 0) or y (AXIS 1), each image with its own
    taps (``taps_ptr`` (N, 2, T), centred, radius ``radius_ptr`` (N, 2)); the destination is
    contiguous. TRANSPOSE: the adjoint, each source value scattered to its taps (atomics)."""
    pid = tl.program_id(0)
    plane = pid // blocks
    n = plane // C
    c = plane % C
    offs = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < H * W
    col = offs % W
    row = offs // W
    if AXIS == 0:
        pos = col
        size = W
        stride = sxw
        fixed = row * sxh
        dst_stride = 1
        dst_fixed = row * W
    else:
        pos = row
        size = H
        stride = sxh
        fixed = col * sxw
        dst_stride = W
        dst_fixed = col
    src = src_ptr + n.to(tl.int64) * sxn + c * sxc
    dst = dst_ptr + plane.to(tl.int64) * H * W
    r = tl.load(radius_ptr + n * 2 + AXIS)
    taps = taps_ptr + (n * 2 + AXIS) * T + T // 2
    fill = tl.load(fill_ptr + c)
    if TRANSPOSE:
        g = tl.load(src + fixed + pos * stride, mask=valid, other=0).to(fill.dtype)
        for k in range(0, 2 * r + 1):
            idx, inside = _map_index(pos + (k - r), size, BORDER)
            _scatter(dst, dst_fixed + idx * dst_stride, valid & inside, tl.load(taps + (k - r)) * g)
    else:
        acc = tl.zeros([BLOCK], dtype=fill.dtype)
        for k in range(0, 2 * r + 1):
            idx, inside = _map_index(pos + (k - r), size, BORDER)
            acc += tl.load(taps + (k - r)) * _tap(src, fixed + idx * stride, valid & inside, fill)
        _store(dst, offs, acc, valid, INTEGER, TOP)
