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
def _source_pixels(m_ptr, pid, blocks, H, W, HO, WO, BORDER: tl.constexpr, BLOCK: tl.constexpr):
    """:func:`_output_pixels` with the source coordinates made safe by
    :func:`_source_coordinate`, and where each carries gradient (``live_x``, ``live_y``)."""
    n, offs, valid, xo, yo, sx, sy = _output_pixels(m_ptr, pid, blocks, HO, WO, BLOCK)
    sx, live_x = _source_coordinate(sx, W, BORDER)
    sy, live_y = _source_coordinate(sy, H, BORDER)
    return n, offs, valid, xo, yo, sx, sy, live_x, live_y


@triton.jit
def _planes(ptr, n, c0, C, stride, CB: tl.constexpr):
    """The planes of channels c0 .. c0 + CB - 1 of image n of a contiguous (N, C, ...)
    tensor whose planes hold ``stride`` elements, as a (CB, 1) pointer block."""
    return ptr + n.to(tl.int64) * C * stride + (c0 + tl.arange(0, CB)[:, None]) * stride


@triton.jit
def _channels(c0, C, CB: tl.constexpr):
    """Channels c0 .. c0 + CB - 1 as a (CB, 1) block, and which of them exist."""
    chan = c0 + tl.arange(0, CB)[:, None]
    return chan, chan < C


@triton.jit
def _source(x_ptr, fill_ptr, n, chan, cm, sxn, sxc):
    """The planes of channels ``chan`` of image n of the strided source, as a (CB, 1)
    pointer block, and their fill values in the work type."""
    return x_ptr + n.to(tl.int64) * sxn + chan * sxc, tl.load(fill_ptr + chan, mask=cm, other=0)


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
    chan, cm = _channels(c0, C, CB)
    gplanes = _planes(gy_ptr, n, c0, C, HO * WO, CB)
    return tl.load(gplanes + offs[None, :], mask=cm & valid[None, :], other=0).to(dtype), chan, cm


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


# ----------------------------------------------------------------------------- the taps
# Each interpolation's taps (border-mapped indices, whether each reads the image) and
# weights, shared by the forward and the backward kernel.


@triton.jit
def _nearest_tap(sx, sy, H, W, valid, BORDER: tl.constexpr):
    """The one tap of nearest, the pixel at floor(s + 0.5): indices and whether it reads the image."""
    ix, okx = _map_index(tl.floor(sx + 0.5).to(tl.int32), W, BORDER)
    iy, oky = _map_index(tl.floor(sy + 0.5).to(tl.int32), H, BORDER)
    return ix, iy, valid & okx & oky


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


@triton.jit
def _bilinear_values(planes, xa, xb, ya, yb, ok00, ok01, ok10, ok11, sxh, sxw, cm, fill):
    """The four neighbours' values, (CB, BLOCK) each: top left, top right, bottom left, bottom right."""
    v00 = _tap(planes, ya * sxh + xa * sxw, ok00, cm, fill)
    v01 = _tap(planes, ya * sxh + xb * sxw, ok01, cm, fill)
    v10 = _tap(planes, yb * sxh + xa * sxw, ok10, cm, fill)
    v11 = _tap(planes, yb * sxh + xb * sxw, ok11, cm, fill)
    return v00, v01, v10, v11


@triton.jit
def _bicubic_axis(s, size, valid, cubic_a, fdtype, BORDER: tl.constexpr):
    """The four taps of bicubic along one axis (offsets -1, 0, 1, 2 from floor(s)), as
    tuples: border-mapped indices, whether each reads the image (and the pixel exists),
    Keys' weights and their slopes (in ``fdtype``)."""
    i0 = tl.floor(s).to(tl.int32)
    i_0, k_0 = _map_index(i0 - 1, size, BORDER)
    i_1, k_1 = _map_index(i0, size, BORDER)
    i_2, k_2 = _map_index(i0 + 1, size, BORDER)
    i_3, k_3 = _map_index(i0 + 2, size, BORDER)
    t = (s - tl.floor(s)).to(fdtype)
    oks = (k_0 & valid, k_1 & valid, k_2 & valid, k_3 & valid)
    return (i_0, i_1, i_2, i_3), oks, _cubic_weights(t, cubic_a), _cubic_slopes(t, cubic_a)


@triton.jit
def _bicubic_values(planes, rows, ky, cols, kx, sxh, sxw, cm, fill):
    """The 4 x 4 neighbours' values, a tuple of rows of four (CB, BLOCK) values each."""
    xs = (cols[0] * sxw, cols[1] * sxw, cols[2] * sxw, cols[3] * sxw)
    return (
        _row_values(planes, rows[0] * sxh, ky[0], xs, kx, cm, fill),
        _row_values(planes, rows[1] * sxh, ky[1], xs, kx, cm, fill),
        _row_values(planes, rows[2] * sxh, ky[2], xs, kx, cm, fill),
        _row_values(planes, rows[3] * sxh, ky[3], xs, kx, cm, fill),
    )


@triton.jit
def _row_values(planes, row, rok, xs, kx, cm, fill):
    return (
        _tap(planes, row + xs[0], rok & kx[0], cm, fill),
        _tap(planes, row + xs[1], rok & kx[1], cm, fill),
        _tap(planes, row + xs[2], rok & kx[2], cm, fill),
        _tap(planes, row + xs[3], rok & kx[3], cm, fill),
    )


@triton.jit
def _dot4(w, v):
    """Σ_i w_i · v_i over four (BLOCK,) weights and (CB, BLOCK) values, summed from the left."""
    return w[0][None, :] * v[0] + w[1][None, :] * v[1] + w[2][None, :] * v[2] + w[3][None, :] * v[3]


@triton.jit
def _separable_sum(wy, wx, values):
    """Σ_j wy_j Σ_i wx_i · values[j][i]: the rows summed first, as the reference does."""
    rows = (_dot4(wx, values[0]), _dot4(wx, values[1]), _dot4(wx, values[2]), _dot4(wx, values[3]))
    return _dot4(wy, rows)


@triton.jit
def _bicubic_scatter(gplanes, rows, ky, cols, kx, wy, wx, W, cm, g):
    """Transpose of the 4 x 4 taps: ``g`` (CB, BLOCK) times each tap's weight, scattered."""
    for j in tl.static_range(4):
        g_row = g * wy[j][None, :]
        for i in tl.static_range(4):
            _scatter(gplanes, rows[j] * W + cols[i], ky[j] & kx[i], cm, g_row * wx[i][None, :])


@triton.jit
def _taps(sx, sy, H, W, valid, cubic_a, fdtype, INTERP: tl.constexpr, BORDER: tl.constexpr):
    """The taps of interpolation ``INTERP`` at the source coordinates, as a tuple: nearest's
    one pixel, bilinear's four neighbours and fractions, or bicubic's x and y axes."""
    if INTERP == 0:
        taps = _nearest_tap(sx, sy, H, W, valid, BORDER)
    elif INTERP == 1:
        taps = _bilinear_taps(sx, sy, H, W, valid, fdtype, BORDER)
    else:
        taps = (
            _bicubic_axis(sx, W, valid, cubic_a, fdtype, BORDER),
            _bicubic_axis(sy, H, valid, cubic_a, fdtype, BORDER),
        )
    return taps


@triton.jit
def _interpolate(planes, fill, cm, taps, sxh, sxw, INTERP: tl.constexpr):
    """The interpolated values of one channel group, (CB, BLOCK), in the work type."""
    if INTERP == 0:
        ix, iy, ok = taps
        v = _tap(planes, iy * sxh + ix * sxw, ok, cm, fill)
    elif INTERP == 1:
        fx, fy, xa, xb, ya, yb, ok00, ok01, ok10, ok11 = taps
        v00, v01, v10, v11 = _bilinear_values(planes, xa, xb, ya, yb, ok00, ok01, ok10, ok11, sxh, sxw, cm, fill)
        top = v00 + fx[None, :] * (v01 - v00)
        bottom = v10 + fx[None, :] * (v11 - v10)
        v = top + fy[None, :] * (bottom - top)
    else:
        cols, kx, wx, dx = taps[0]
        rows, ky, wy, dy = taps[1]
        v = _separable_sum(wy, wx, _bicubic_values(planes, rows, ky, cols, kx, sxh, sxw, cm, fill))
    return v


@triton.jit
def _scatter_taps(gplanes, taps, W, cm, g, INTERP: tl.constexpr):
    """Transpose of :func:`_interpolate` for the images: each tap's weighted output
    gradient added to its source pixel of the contiguous gradient planes."""
    if INTERP == 0:
        ix, iy, ok = taps
        _scatter(gplanes, iy * W + ix, ok, cm, g)
    elif INTERP == 1:
        fx, fy, xa, xb, ya, yb, ok00, ok01, ok10, ok11 = taps
        ex = fx[None, :]
        ey = fy[None, :]
        _scatter(gplanes, ya * W + xa, ok00, cm, g * ((1.0 - ex) * (1.0 - ey)))
        _scatter(gplanes, ya * W + xb, ok01, cm, g * (ex * (1.0 - ey)))
        _scatter(gplanes, yb * W + xa, ok10, cm, g * ((1.0 - ex) * ey))
        _scatter(gplanes, yb * W + xb, ok11, cm, g * (ex * ey))
    else:
        cols, kx, wx, dx = taps[0]
        rows, ky, wy, dy = taps[1]
        _bicubic_scatter(gplanes, rows, ky, cols, kx, wy, wx, W, cm, g)


@triton.jit
def _coordinate_grads(planes, fill, cm, taps, sxh, sxw, g, INTERP: tl.constexpr):
    """d loss / d (source x, source y) of one channel group, summed over its channels:
    two (BLOCK,) values, through bilinear's fractions or the slopes of Keys' weights
    (nearest has none: its output is piecewise constant in the coordinates)."""
    if INTERP == 1:
        fx, fy, xa, xb, ya, yb, ok00, ok01, ok10, ok11 = taps
        ex = fx[None, :]
        ey = fy[None, :]
        v00, v01, v10, v11 = _bilinear_values(planes, xa, xb, ya, yb, ok00, ok01, ok10, ok11, sxh, sxw, cm, fill)
        gsx = tl.sum(g * ((1.0 - ey) * (v01 - v00) + ey * (v11 - v10)), axis=0)
        gsy = tl.sum(g * ((v10 + ex * (v11 - v10)) - (v00 + ex * (v01 - v00))), axis=0)
    else:
        cols, kx, wx, dx = taps[0]
        rows, ky, wy, dy = taps[1]
        values = _bicubic_values(planes, rows, ky, cols, kx, sxh, sxw, cm, fill)
        gsx = tl.sum(g * _separable_sum(wy, dx, values), axis=0)
        gsy = tl.sum(g * _separable_sum(dy, wx, values), axis=0)
    return gsx, gsy


# ----------------------------------------------------------------------------- the kernels


@triton.jit(do_not_specialize=_SHAPES)
def warp_kernel(
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
    INTERP: tl.constexpr,
    BORDER: tl.constexpr,
    INTEGER: tl.constexpr,
    TOP: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """y[n, c, p] = the source interpolated at dst_to_src[n] · p: nearest (the pixel at
    floor(s + 0.5)), bilinear (the four neighbours blended by the fractions of the
    unclamped coordinate) or bicubic (Keys, parameter ``cubic_a``, over the 4 x 4
    neighbours, rows summed first); taps border-mapped."""
    n, offs, valid, xo, yo, sx, sy, live_x, live_y = _source_pixels(
        m_ptr, tl.program_id(0), blocks, H, W, HO, WO, BORDER, BLOCK
    )
    taps = _taps(sx, sy, H, W, valid, cubic_a, fill_ptr.dtype.element_ty, INTERP, BORDER)
    for c0 in range(0, C, CB):
        chan, cm = _channels(c0, C, CB)
        planes, fill = _source(x_ptr, fill_ptr, n, chan, cm, sxn, sxc)
        v = _interpolate(planes, fill, cm, taps, sxh, sxw, INTERP)
        _store(_planes(y_ptr, n, c0, C, HO * WO, CB), offs, v, valid, cm, INTEGER, TOP)


@triton.jit(do_not_specialize=_SHAPES)
def warp_backward_kernel(
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
    INTERP: tl.constexpr,
    BORDER: tl.constexpr,
    NEED_X: tl.constexpr,
    NEED_M: tl.constexpr,
    CB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Backward of :func:`warp_kernel` for float images: grad_x (``NEED_X``) by scattering
    each tap's weighted output gradient, and (``NEED_M``, not for nearest) per program the
    partial sums of d loss / d dst_to_src through the source coordinates."""
    pid = tl.program_id(0)
    n, offs, valid, xo, yo, sx, sy, livex, livey = _source_pixels(m_ptr, pid, blocks, H, W, HO, WO, BORDER, BLOCK)
    work = fill_ptr.dtype.element_ty
    taps = _taps(sx, sy, H, W, valid, cubic_a, work, INTERP, BORDER)
    gsx = tl.zeros([BLOCK], dtype=work)
    gsy = tl.zeros([BLOCK], dtype=work)
    for c0 in range(0, C, CB):
        g, chan, cm = _grad_out(gy_ptr, n, c0, C, HO, WO, offs, valid, work, CB)
        if NEED_X:
            _scatter_taps(_planes(gx_ptr, n, c0, C, H * W, CB), taps, W, cm, g, INTERP)
        if NEED_M:
            planes, fill = _source(x_ptr, fill_ptr, n, chan, cm, sxn, sxc)
            dsx, dsy = _coordinate_grads(planes, fill, cm, taps, sxh, sxw, g, INTERP)
            gsx += dsx
            gsy += dsy
    if NEED_M:
        _store_matrix_grad(part_ptr, pid, gsx, gsy, xo, yo, livex, livey, valid)


@triton.jit
def _blur_line(offs, H, W, sxh, sxw, AXIS: tl.constexpr):
    """Where each pixel lies along the blur's axis, and the offsets that do not move with
    it: position, size and source stride along the axis, the source's fixed offset, then
    the contiguous destination's stride and fixed offset."""
    col = offs % W
    row = offs // W
    if AXIS == 0:
        pos, size, stride, fixed, dst_stride, dst_fixed = col, W, sxw, row * sxh, 1, row * W
    else:
        pos, size, stride, fixed, dst_stride, dst_fixed = row, H, sxh, col * sxw, W, col
    return pos, size, stride, fixed, dst_stride, dst_fixed


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
    pos, size, stride, fixed, dst_stride, dst_fixed = _blur_line(offs, H, W, sxh, sxw, AXIS)
    r = tl.load(radius_ptr + n * 2 + AXIS)
    taps = taps_ptr + (n * 2 + AXIS) * T + T // 2
    for c0 in range(0, C, CB):
        chan, cm = _channels(c0, C, CB)
        src, fill = _source(src_ptr, fill_ptr, n, chan, cm, sxn, sxc)
        dst = _planes(dst_ptr, n, c0, C, H * W, CB)
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
