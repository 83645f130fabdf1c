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
def _planes(ptr, n, c0, C, stride, CB: tl.constexpr):
    """The planes of channels c0 .. c0 + CB - 1 of image n of a contiguous (N, C, ...)
    tensor whose planes hold ``stride`` elements, as a (CB, 1) pointer block."""
    return ptr + n.to(tl.int64) * C * stride + (c0 + tl.arange(0, CB)[:, None]) * stride


@triton.jit
def _tap(planes, offset, ok, cm, fill):
    """One neighbour of every pixel (``offset``, ``ok``: (BLOCK,)) in each channel plane
    (``planes``, ``cm``, ``fill``: (CB, 1)), in the work type: the image where ``ok``,
    else the fill. Returns (CB, BLOCK)."""
    mask = cm & ok[None, :]
    return tl.where(mask, tl.load(planes + offset[None, :], mask=mask, other=0).to(fill.dtype), fill)


@triton.jit
def _store(outs, offs, value, valid, cm, INTEGER: tl.constexpr, TOP: tl.constexpr):
    """Store (CB, BLOCK) values in the output's dtype; integers rounded half up and
    clipped to [0, TOP]."""
    if INTEGER:
        value = tl.minimum(tl.maximum(tl.floor(value + 0.5), 0.0), TOP)
    if outs.dtype.element_ty == tl.bfloat16:
        # rounded to nearest even by hand, the same in both modes (the interpreter's own
        # float32 → bfloat16 conversion truncates)
        bits = value.to(tl.float32).to(tl.uint32, bitcast=True)
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
        value = bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    tl.store(outs + offs[None, :], value.to(outs.dtype.element_ty), mask=cm & valid[None, :])


@triton.jit
def _scatter(gplanes, offset, ok, cm, value):
    """Transpose of one tap: the weighted output gradients (CB, BLOCK) added to their
    source pixels (atomics: several outputs can share a source pixel)."""
    tl.atomic_add(gplanes + offset[None, :], value, mask=cm & ok[None, :], sem="relaxed")


@triton.jit
def _grad_out(gy_ptr, n, c0, C, HO, WO, offs, valid, dtype, CB: tl.constexpr):
    """The output gradient of a channel group, (CB, BLOCK), in ``dtype``."""
    chan = c0 + tl.arange(0, CB)[:, None]
    cm = chan < C
    gplanes = _planes(gy_ptr, n, c0, C, HO * WO, CB)
    return tl.load(gplanes + offs[None, :], mask=cm & valid[None, :], other=0).to(dtype), chan, cm


@triton.jit
def _cubic_row(planes, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, cm, fill):
    """Σ_i w_i · v(row, c_i) over one row of four taps, summed from the left as the
    reference does. Returns (CB, BLOCK)."""
    v = w0[None, :] * _tap(planes, row + c0, rok & k0, cm, fill)
    v += w1[None, :] * _tap(planes, row + c1, rok & k1, cm, fill)
    v += w2[None, :] * _tap(planes, row + c2, rok & k2, cm, fill)
    v += w3[None, :] * _tap(planes, row + c3, rok & k3, cm, fill)
    return v


@triton.jit(do_not_specialize=_SHAPES)
def warp_nearest_kernel(
    x_ptr,
    m_ptr,
    fill_ptr,
    y_ptr,
    C,
    H,
    W,
    HO,
    WO,
    sxn,
    sxc,
    sxh,
    sxw,
    blocks,
    BORDER: tl.constexpr,
    INTEGER: tl.constexpr,
    TOP: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """y[n, c, p] = the source pixel at floor(dst_to_src[n] · p + 0.5), border-mapped."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, live_x = _source_coordinate(sx, W, BORDER)
    sy, live_y = _source_coordinate(sy, H, BORDER)
    ix, okx = _map_index(tl.floor(sx + 0.5).to(tl.int32), W, BORDER)
    iy, oky = _map_index(tl.floor(sy + 0.5).to(tl.int32), H, BORDER)
    at = iy * sxh + ix * sxw
    ok = valid & okx & oky
    for c0 in range(0, C, CB):
        chan = c0 + tl.arange(0, CB)[:, None]
        cm = chan < C
        planes = x_ptr + n.to(tl.int64) * sxn + chan * sxc
        v = _tap(planes, at, ok, cm, tl.load(fill_ptr + chan, mask=cm, other=0))
        outs = _planes(y_ptr, n, c0, C, HO * WO, CB)
        _store(outs, offs, v, valid, cm, INTEGER, TOP)


@triton.jit
def _bilinear_taps(sx, sy, H, W, valid, fdtype, BORDER: tl.constexpr):
    """The four neighbours of bilinear: fractions (in ``fdtype``), border-mapped indices
    and, per tap, whether it reads the image."""
    x0f = tl.floor(sx)
    y0f = tl.floor(sy)
    xa, oka = _map_index(x0f.to(tl.int32), W, BORDER)
    xb, okb = _map_index(x0f.to(tl.int32) + 1, W, BORDER)
    ya, oya = _map_index(y0f.to(tl.int32), H, BORDER)
    yb, oyb = _map_index(y0f.to(tl.int32) + 1, H, BORDER)
    ok00 = valid & oya & oka
    ok01 = valid & oya & okb
    ok10 = valid & oyb & oka
    ok11 = valid & oyb & okb
    return (sx - x0f).to(fdtype), (sy - y0f).to(fdtype), xa, xb, ya, yb, ok00, ok01, ok10, ok11


@triton.jit(do_not_specialize=_SHAPES)
def warp_bilinear_kernel(
    x_ptr,
    m_ptr,
    fill_ptr,
    y_ptr,
    C,
    H,
    W,
    HO,
    WO,
    sxn,
    sxc,
    sxh,
    sxw,
    blocks,
    BORDER: tl.constexpr,
    INTEGER: tl.constexpr,
    TOP: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Bilinear: the four neighbours blended by the fractions of the unclamped coordinate."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, live_x = _source_coordinate(sx, W, BORDER)
    sy, live_y = _source_coordinate(sy, H, BORDER)
    fx, fy, xa, xb, ya, yb, ok00, ok01, ok10, ok11 = _bilinear_taps(
        sx, sy, H, W, valid, fill_ptr.dtype.element_ty, BORDER
    )
    fx = fx[None, :]
    fy = fy[None, :]
    for c0 in range(0, C, CB):
        chan = c0 + tl.arange(0, CB)[:, None]
        cm = chan < C
        planes = x_ptr + n.to(tl.int64) * sxn + chan * sxc
        fill = tl.load(fill_ptr + chan, mask=cm, other=0)
        v00 = _tap(planes, ya * sxh + xa * sxw, ok00, cm, fill)
        v01 = _tap(planes, ya * sxh + xb * sxw, ok01, cm, fill)
        v10 = _tap(planes, yb * sxh + xa * sxw, ok10, cm, fill)
        v11 = _tap(planes, yb * sxh + xb * sxw, ok11, cm, fill)
        top = v00 + fx * (v01 - v00)
        bottom = v10 + fx * (v11 - v10)
        outs = _planes(y_ptr, n, c0, C, HO * WO, CB)
        _store(outs, offs, top + fy * (bottom - top), valid, cm, INTEGER, TOP)


@triton.jit
def _bicubic_taps(s, size, valid, BORDER: tl.constexpr):
    """The four taps of bicubic along one axis: border-mapped indices and whether each
    reads the image (and the pixel exists)."""
    i0 = tl.floor(s).to(tl.int32)
    i_0, k_0 = _map_index(i0 - 1, size, BORDER)
    i_1, k_1 = _map_index(i0, size, BORDER)
    i_2, k_2 = _map_index(i0 + 1, size, BORDER)
    i_3, k_3 = _map_index(i0 + 2, size, BORDER)
    return i_0, i_1, i_2, i_3, k_0 & valid, k_1 & valid, k_2 & valid, k_3 & valid


@triton.jit(do_not_specialize=_SHAPES)
def warp_bicubic_kernel(
    x_ptr,
    m_ptr,
    fill_ptr,
    y_ptr,
    C,
    H,
    W,
    HO,
    WO,
    sxn,
    sxc,
    sxh,
    sxw,
    blocks,
    cubic_a,
    BORDER: tl.constexpr,
    INTEGER: tl.constexpr,
    TOP: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Bicubic (Keys, parameter ``cubic_a``) over the 4 x 4 neighbours, rows summed first."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, live_x = _source_coordinate(sx, W, BORDER)
    sy, live_y = _source_coordinate(sy, H, BORDER)
    wx0, wx1, wx2, wx3 = _cubic_weights((sx - tl.floor(sx)).to(fill_ptr.dtype.element_ty), cubic_a)
    wy0, wy1, wy2, wy3 = _cubic_weights((sy - tl.floor(sy)).to(fill_ptr.dtype.element_ty), cubic_a)
    c0, c1, c2, c3, k0, k1, k2, k3 = _bicubic_taps(sx, W, valid, BORDER)
    r0, r1, r2, r3, q0, q1, q2, q3 = _bicubic_taps(sy, H, valid, BORDER)
    c0 = c0 * sxw
    c1 = c1 * sxw
    c2 = c2 * sxw
    c3 = c3 * sxw
    for g0 in range(0, C, CB):
        chan = g0 + tl.arange(0, CB)[:, None]
        cm = chan < C
        p = x_ptr + n.to(tl.int64) * sxn + chan * sxc
        f = tl.load(fill_ptr + chan, mask=cm, other=0)
        v = wy0[None, :] * _cubic_row(p, r0 * sxh, q0, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, f)
        v += wy1[None, :] * _cubic_row(p, r1 * sxh, q1, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, f)
        v += wy2[None, :] * _cubic_row(p, r2 * sxh, q2, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, f)
        v += wy3[None, :] * _cubic_row(p, r3 * sxh, q3, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, f)
        outs = _planes(y_ptr, n, g0, C, HO * WO, CB)
        _store(outs, offs, v, valid, cm, INTEGER, TOP)


@triton.jit
def _store_matrix_grad(part_ptr, pid, gsx, gsy, xo, yo, livex, livey, valid):
    """This program's share of d loss / d dst_to_src[n] (6 entries, row-major) from the
    gradients with respect to the source coordinates (zero where they were clamped)."""
    gsx = tl.where(valid & livex, gsx, 0.0)
    gsy = tl.where(valid & livey, gsy, 0.0)
    p = part_ptr + pid * 6
    tl.store(p, tl.sum(gsx * xo.to(gsx.dtype), axis=0))
    tl.store(p + 1, tl.sum(gsx * yo.to(gsx.dtype), axis=0))
    tl.store(p + 2, tl.sum(gsx, axis=0))
    tl.store(p + 3, tl.sum(gsy * xo.to(gsy.dtype), axis=0))
    tl.store(p + 4, tl.sum(gsy * yo.to(gsy.dtype), axis=0))
    tl.store(p + 5, tl.sum(gsy, axis=0))


@triton.jit(do_not_specialize=_SHAPES)
def warp_nearest_backward_kernel(
    gy_ptr, m_ptr, gx_ptr, C, H, W, HO, WO, blocks, BORDER: tl.constexpr, CB: tl.constexpr, BLOCK: tl.constexpr
):
    """grad_x of nearest: each output gradient added to the pixel it copied."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, tl.program_id(0), blocks, HO, WO, BLOCK)
    sx, live_x = _source_coordinate(sx, W, BORDER)
    sy, live_y = _source_coordinate(sy, H, BORDER)
    ix, okx = _map_index(tl.floor(sx + 0.5).to(tl.int32), W, BORDER)
    iy, oky = _map_index(tl.floor(sy + 0.5).to(tl.int32), H, BORDER)
    for c0 in range(0, C, CB):
        g, chan, cm = _grad_out(gy_ptr, n, c0, C, HO, WO, offs, valid, gx_ptr.dtype.element_ty, CB)
        gplanes = _planes(gx_ptr, n, c0, C, H * W, CB)
        _scatter(gplanes, iy * W + ix, valid & okx & oky, cm, g)


@triton.jit(do_not_specialize=_SHAPES)
def warp_bilinear_backward_kernel(
    gy_ptr,
    x_ptr,
    m_ptr,
    fill_ptr,
    gx_ptr,
    part_ptr,
    C,
    H,
    W,
    HO,
    WO,
    sxn,
    sxc,
    sxh,
    sxw,
    blocks,
    BORDER: tl.constexpr,
    NEED_X: tl.constexpr,
    NEED_M: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Bilinear backward: grad_x by scattering the four weighted taps, and per program
    the partial sums of d loss / d dst_to_src through the fractions."""
    pid = tl.program_id(0)
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK)
    sx, livex = _source_coordinate(sx, W, BORDER)
    sy, livey = _source_coordinate(sy, H, BORDER)
    work = fill_ptr.dtype.element_ty
    fx, fy, xa, xb, ya, yb, ok00, ok01, ok10, ok11 = _bilinear_taps(sx, sy, H, W, valid, work, BORDER)
    gsx = tl.zeros([BLOCK], dtype=work)
    gsy = tl.zeros([BLOCK], dtype=work)
    ex = fx[None, :]
    ey = fy[None, :]
    for c0 in range(0, C, CB):
        g, chan, cm = _grad_out(gy_ptr, n, c0, C, HO, WO, offs, valid, work, CB)
        if NEED_X:
            gp = _planes(gx_ptr, n, c0, C, H * W, CB)
            _scatter(gp, ya * W + xa, ok00, cm, g * ((1.0 - ex) * (1.0 - ey)))
            _scatter(gp, ya * W + xb, ok01, cm, g * (ex * (1.0 - ey)))
            _scatter(gp, yb * W + xa, ok10, cm, g * ((1.0 - ex) * ey))
            _scatter(gp, yb * W + xb, ok11, cm, g * (ex * ey))
        if NEED_M:
            planes = x_ptr + n.to(tl.int64) * sxn + chan * sxc
            fill = tl.load(fill_ptr + chan, mask=cm, other=0)
            v00 = _tap(planes, ya * sxh + xa * sxw, ok00, cm, fill)
            v01 = _tap(planes, ya * sxh + xb * sxw, ok01, cm, fill)
            v10 = _tap(planes, yb * sxh + xa * sxw, ok10, cm, fill)
            v11 = _tap(planes, yb * sxh + xb * sxw, ok11, cm, fill)
            gsx += tl.sum(g * ((1.0 - ey) * (v01 - v00) + ey * (v11 - v10)), axis=0)
            gsy += tl.sum(g * ((v10 + ex * (v11 - v10)) - (v00 + ex * (v01 - v00))), axis=0)
    if NEED_M:
        _store_matrix_grad(part_ptr, pid, gsx, gsy, xo, yo, livex, livey, valid)


@triton.jit
def _cubic_row_values(planes, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, s0, s1, s2, s3, cm, fill):
    """(Σ_i w_i v_i, Σ_i s_i v_i) over one row of four taps: weights and their slopes."""
    v0 = _tap(planes, row + c0, rok & k0, cm, fill)
    v1 = _tap(planes, row + c1, rok & k1, cm, fill)
    v2 = _tap(planes, row + c2, rok & k2, cm, fill)
    v3 = _tap(planes, row + c3, rok & k3, cm, fill)
    value = w0[None, :] * v0 + w1[None, :] * v1 + w2[None, :] * v2 + w3[None, :] * v3
    return value, s0[None, :] * v0 + s1[None, :] * v1 + s2[None, :] * v2 + s3[None, :] * v3


@triton.jit
def _cubic_row_scatter(gplanes, row, rok, c0, c1, c2, c3, k0, k1, k2, k3, w0, w1, w2, w3, cm, g):
    """Transpose of one row of four taps: ``g`` (CB, BLOCK) times each weight, scattered."""
    _scatter(gplanes, row + c0, rok & k0, cm, g * w0[None, :])
    _scatter(gplanes, row + c1, rok & k1, cm, g * w1[None, :])
    _scatter(gplanes, row + c2, rok & k2, cm, g * w2[None, :])
    _scatter(gplanes, row + c3, rok & k3, cm, g * w3[None, :])


@triton.jit(do_not_specialize=_SHAPES)
def warp_bicubic_backward_kernel(
    gy_ptr,
    x_ptr,
    m_ptr,
    fill_ptr,
    gx_ptr,
    part_ptr,
    C,
    H,
    W,
    HO,
    WO,
    sxn,
    sxc,
    sxh,
    sxw,
    blocks,
    cubic_a,
    BORDER: tl.constexpr,
    NEED_X: tl.constexpr,
    NEED_M: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Bicubic backward: grad_x by scattering the 16 weighted taps, and per program the
    partial sums of d loss / d dst_to_src through the slopes of Keys' weights."""
    pid = tl.program_id(0)
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK)
    sx, livex = _source_coordinate(sx, W, BORDER)
    sy, livey = _source_coordinate(sy, H, BORDER)
    work = fill_ptr.dtype.element_ty
    tx = (sx - tl.floor(sx)).to(work)
    ty = (sy - tl.floor(sy)).to(work)
    wx0, wx1, wx2, wx3 = _cubic_weights(tx, cubic_a)
    wy0, wy1, wy2, wy3 = _cubic_weights(ty, cubic_a)
    dx0, dx1, dx2, dx3 = _cubic_slopes(tx, cubic_a)
    dy0, dy1, dy2, dy3 = _cubic_slopes(ty, cubic_a)
    c0, c1, c2, c3, k0, k1, k2, k3 = _bicubic_taps(sx, W, valid, BORDER)
    r0, r1, r2, r3, q0, q1, q2, q3 = _bicubic_taps(sy, H, valid, BORDER)
    gsx = tl.zeros([BLOCK], dtype=work)
    gsy = tl.zeros([BLOCK], dtype=work)
    for g0 in range(0, C, CB):
        g, chan, cm = _grad_out(gy_ptr, n, g0, C, HO, WO, offs, valid, work, CB)
        if NEED_X:
            gp = _planes(gx_ptr, n, g0, C, H * W, CB)
            _cubic_row_scatter(gp, r0 * W, q0, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, g * wy0[None, :])
            _cubic_row_scatter(gp, r1 * W, q1, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, g * wy1[None, :])
            _cubic_row_scatter(gp, r2 * W, q2, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, g * wy2[None, :])
            _cubic_row_scatter(gp, r3 * W, q3, c0, c1, c2, c3, k0, k1, k2, k3, wx0, wx1, wx2, wx3, cm, g * wy3[None, :])
        if NEED_M:
            p = x_ptr + n.to(tl.int64) * sxn + chan * sxc
            f = tl.load(fill_ptr + chan, mask=cm, other=0)
            a0, b0 = _cubic_row_values(
                p,
                r0 * sxh,
                q0,
                c0 * sxw,
                c1 * sxw,
                c2 * sxw,
                c3 * sxw,
                k0,
                k1,
                k2,
                k3,
                wx0,
                wx1,
                wx2,
                wx3,
                dx0,
                dx1,
                dx2,
                dx3,
                cm,
                f,
            )
            a1, b1 = _cubic_row_values(
                p,
                r1 * sxh,
                q1,
                c0 * sxw,
                c1 * sxw,
                c2 * sxw,
                c3 * sxw,
                k0,
                k1,
                k2,
                k3,
                wx0,
                wx1,
                wx2,
                wx3,
                dx0,
                dx1,
                dx2,
                dx3,
                cm,
                f,
            )
            a2, b2 = _cubic_row_values(
                p,
                r2 * sxh,
                q2,
                c0 * sxw,
                c1 * sxw,
                c2 * sxw,
                c3 * sxw,
                k0,
                k1,
                k2,
                k3,
                wx0,
                wx1,
                wx2,
                wx3,
                dx0,
                dx1,
                dx2,
                dx3,
                cm,
                f,
            )
            a3, b3 = _cubic_row_values(
                p,
                r3 * sxh,
                q3,
                c0 * sxw,
                c1 * sxw,
                c2 * sxw,
                c3 * sxw,
                k0,
                k1,
                k2,
                k3,
                wx0,
                wx1,
                wx2,
                wx3,
                dx0,
                dx1,
                dx2,
                dx3,
                cm,
                f,
            )
            gsx += tl.sum(g * (wy0[None, :] * b0 + wy1[None, :] * b1 + wy2[None, :] * b2 + wy3[None, :] * b3), axis=0)
            gsy += tl.sum(g * (dy0[None, :] * a0 + dy1[None, :] * a1 + dy2[None, :] * a2 + dy3[None, :] * a3), axis=0)
    if NEED_M:
        _store_matrix_grad(part_ptr, pid, gsx, gsy, xo, yo, livex, livey, valid)


@triton.jit(do_not_specialize=_SHAPES)
def blur_pass_kernel(
    src_ptr,
    dst_ptr,
    taps_ptr,
    radius_ptr,
    fill_ptr,
    C,
    H,
    W,
    sxn,
    sxc,
    sxh,
    sxw,
    T,
    blocks,
    AXIS: tl.constexpr,
    BORDER: tl.constexpr,
    TRANSPOSE: tl.constexpr,
    INTEGER: tl.constexpr,
    TOP: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One separable Gaussian pass along x (AXIS 0) or y (AXIS 1), each image with its own
    taps (``taps_ptr`` (N, 2, T), centred; radius ``radius_ptr`` (N, 2)) into a contiguous
    destination. TRANSPOSE: the adjoint, each value scattered to its taps (atomics)."""
    pid = tl.program_id(0)
    n = pid // blocks
    offs = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < H * W
    col = offs % W
    row = offs // W
    if AXIS == 0:  # where each pixel lies along the axis, and the offsets that do not move with it
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
    r = tl.load(radius_ptr + n * 2 + AXIS)
    taps = taps_ptr + (n * 2 + AXIS) * T + T // 2
    for c0 in range(0, C, CB):
        chan = c0 + tl.arange(0, CB)[:, None]
        cm = chan < C
        src = src_ptr + n.to(tl.int64) * sxn + chan * sxc
        dst = _planes(dst_ptr, n, c0, C, H * W, CB)
        fill = tl.load(fill_ptr + chan, mask=cm, other=0)
        if TRANSPOSE:
            g = tl.load(src + (fixed + pos * stride)[None, :], mask=cm & valid[None, :], other=0).to(fill.dtype)
            for k in range(0, 2 * r + 1):
                idx, inside = _map_index(pos + (k - r), size, BORDER)
                _scatter(dst, dst_fixed + idx * dst_stride, valid & inside, cm, tl.load(taps + (k - r)) * g)
        else:
            acc = tl.zeros([CB, BLOCK], dtype=fill.dtype)
            for k in range(0, 2 * r + 1):
                idx, inside = _map_index(pos + (k - r), size, BORDER)
                acc += tl.load(taps + (k - r)) * _tap(src, fixed + idx * stride, valid & inside, cm, fill)
            _store(dst, offs, acc, valid, cm, INTEGER, TOP)
