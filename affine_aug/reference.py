"""The numpy reference warper: the oracle the compiled kernel is tested against, and the
backend where the kernel was not built (``warp_affine(..., backend="numpy")``).

It has the kernel's interface (``kernel.warp_into``, ``kernel.prefilter``) and contract
(the conventions in :mod:`affine_aug.warp`): ``(N, H, W, C)`` images, ``dst_to_src``
``(N, 3, 3)`` matrices (output pixel -> source pixel), inputs already checked.
Vectorized over the batch: no Python loop per image for nearest and bilinear.

Example:
    >>> import numpy as np
    >>> from affine_aug import reference
    >>> imgs = np.arange(12, dtype=np.uint8).reshape(1, 3, 4, 1)
    >>> shift = np.array([[[1.0, 0, 1], [0, 1, 0], [0, 0, 1]]])  # output x samples source x + 1
    >>> out = np.empty_like(imgs)
    >>> reference.warp_into(imgs, shift, out, "nearest", "edge", np.zeros(1, np.uint8))
    >>> out[0, :, :, 0]
    array([[ 1,  2,  3,  3],
           [ 5,  6,  7,  7],
           [ 9, 10, 11, 11]], dtype=uint8)
"""

from __future__ import annotations

import numpy as np

__all__ = ["CUBIC_A", "cubic_weights", "prefilter", "warp_into"]

CUBIC_A = -0.5  # Keys' parameter of "bicubic": PIL's (OpenCV and torch use -0.75)

# Output pixels per chunk of the nearest and bilinear paths: keeps their temporaries
# (~100 bytes per pixel) around the size of the L2 cache.
CHUNK_PIXELS = 1 << 13


def warp_into(
    imgs: np.ndarray,
    dst_to_src: np.ndarray,
    out: np.ndarray,
    interpolation: str,
    border: str,
    fill_values: np.ndarray,
    cubic_a: float = CUBIC_A,
) -> None:
    """Fill ``out`` ``(N, H_out, W_out, C)`` from ``imgs`` ``(N, H, W, C)`` (one dtype);
    ``dst_to_src`` ``(N, 3, 3)`` maps output pixels to source pixels; ``fill_values``
    ``(C,)`` in the images' dtype; ``cubic_a``: Keys' parameter of bicubic."""
    if interpolation == "bicubic":
        _warp_bicubic(imgs, dst_to_src, out, border, fill_values, cubic_a)
    else:
        _warp_linear(imgs, dst_to_src, out, interpolation, border, fill_values)


def _map_index(i: np.ndarray, size: int, border: str) -> np.ndarray:
    """Map integer source indices into ``[0, size - 1]`` for the periodic border modes
    (``constant`` and ``edge`` clamp the coordinates instead, see ``_warp_linear``)."""
    if border == "wrap":
        return np.mod(i, size)
    if border == "reflect":  # period 2*size: abc|cba
        i = np.mod(i, 2 * size)
        return np.where(i >= size, 2 * size - 1 - i, i)
    if size == 1:  # mirror of a single pixel
        return np.zeros_like(i)
    i = np.mod(i, 2 * size - 2)  # mirror, period 2*size-2: abcd|cb
    return np.where(i >= size, 2 * size - 2 - i, i)


def _periodic(s: np.ndarray, size: int, border: str) -> np.ndarray:
    """Coordinates reduced modulo the period of a periodic border mode (wrap, reflect, mirror)."""
    period = float(size) if border == "wrap" else (2.0 * size if border == "reflect" else max(2.0 * size - 2.0, 1.0))
    return s - period * np.floor(s / period)


def _pixel_layout(c: int, itemsize: int) -> tuple[int, np.dtype | None]:
    """Channels to pad to, and the unsigned type one whole pixel is gathered as (or None)."""
    for padded in range(c, c + 4):
        nbytes = padded * itemsize
        if nbytes in (1, 2, 4, 8):
            return padded, np.dtype(f"u{nbytes}")
        if nbytes in (16, 32):
            return padded, None
    return c, None


def _warp_linear(imgs, inv, out, interpolation, border, fill_values) -> None:
    """Nearest and bilinear: vectorized over chunks of images and output rows."""
    n, h, w, c = imgs.shape
    _, ho, wo, _ = out.shape
    work = np.float64 if imgs.dtype == np.float64 else np.float32
    # Bilinear gathers whole pixels already converted to the work type (no conversion
    # per gathered value); nearest gathers them as they are.
    store = imgs.dtype if interpolation == "nearest" else np.dtype(work)
    images_per_chunk = max(1, CHUNK_PIXELS // (ho * wo))
    rows_per_chunk = ho if images_per_chunk > 1 else max(1, CHUNK_PIXELS // wo)
    xs = np.arange(wo, dtype=np.float64)
    for i0 in range(0, n, images_per_chunk):
        i1 = min(n, i0 + images_per_chunk)
        src = _Padded(imgs[i0:i1], fill_values, store, border)
        for r0 in range(0, ho, rows_per_chunk):
            r1 = min(ho, r0 + rows_per_chunk)
            sx, sy = _source_coordinates(inv[i0:i1], xs, np.arange(r0, r1, dtype=np.float64), h, w, border)
            if interpolation == "nearest":
                res = src.gather(np.floor(sy + 0.5).astype(np.int64), np.floor(sx + 0.5).astype(np.int64))
            else:
                res = _bilinear(src, sx, sy, work, imgs.dtype)
            out[i0:i1, r0:r1] = res.reshape(i1 - i0, r1 - r0, wo, src.channels)[..., :c]


def _source_coordinates(a, xs, ys, h: int, w: int, border: str):
    """Source coordinates ``(nb, rows, wo)`` of every output pixel, made safe for integers.

    Clamping the coordinates is exact for constant and edge: beyond -1 / size (constant)
    or 0 / size - 1 (edge) every neighbour that gets weight is a fill / edge pixel, and at
    the clamp value the fraction is 0. The periodic modes reduce coordinates modulo their
    period instead (exact: the fraction is kept), so far-away coordinates never overflow
    an integer."""
    sx = a[:, 0, 0, None, None] * xs + (a[:, 0, 1, None] * ys + a[:, 0, 2, None])[:, :, None]
    sy = a[:, 1, 0, None, None] * xs + (a[:, 1, 1, None] * ys + a[:, 1, 2, None])[:, :, None]
    if border in ("constant", "edge"):
        lo, hi_x, hi_y = (-1.0, w, h) if border == "constant" else (0.0, w - 1, h - 1)
        np.clip(sx, lo, hi_x, out=sx)
        np.clip(sy, lo, hi_y, out=sy)
        return sx, sy
    return _periodic(sx, w, border), _periodic(sy, h, border)


class _Padded:
    """A chunk of images in the store type, padded by one pixel of fill before and two
    after each axis (indices -1 .. size + 1), its channels padded so that one pixel is
    gathered as one word where possible."""

    def __init__(self, imgs, fill_values, store: np.dtype, border: str):
        nb, h, w, c = imgs.shape
        cp, word = _pixel_layout(c, store.itemsize)
        self.h, self.w, self.wp, self.channels, self.store, self.border = h, w, w + 3, cp, store, border
        pad = np.empty((nb, h + 3, w + 3, cp), dtype=store)
        pad[...] = np.concatenate([fill_values.astype(store), np.zeros(cp - c, store)])
        pad[:, 1 : h + 1, 1 : w + 1, :c] = imgs
        self.pixels = pad.reshape(-1).view(word) if word is not None else pad.reshape(-1, cp)
        self.index = np.int32 if pad.size // cp < 2**31 else np.int64
        self.base = (np.arange(nb, dtype=self.index) * ((h + 3) * (w + 3)))[:, None, None]

    def rows(self, iy):  # flat offset of each (padded) source row
        iy = iy if self.border in ("constant", "edge") else _map_index(iy, self.h, self.border)
        return self.base + ((iy + 1) * self.wp).astype(self.index)

    def cols(self, ix):
        return ((ix if self.border in ("constant", "edge") else _map_index(ix, self.w, self.border)) + 1).astype(
            self.index
        )

    def gather(self, iy, ix):  # (pixels, channels) in the store type; padding channels included
        return self.gather_at(self.rows(iy), self.cols(ix))

    def gather_at(self, rows, cols):
        return self.pixels.take((rows + cols).reshape(-1), axis=0).view(self.store).reshape(-1, self.channels)


def _bilinear(src: _Padded, sx, sy, work, dtype):
    """The three lerps of every pixel in the work type (in place), rounded and clipped for
    integer images."""
    x0f, y0f = np.floor(sx), np.floor(sy)
    fx = (sx - x0f).astype(work).reshape(-1, 1)
    fy = (sy - y0f).astype(work).reshape(-1, 1)
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    ra, rb = src.rows(y0), src.rows(y0 + 1)
    ca, cb = src.cols(x0), src.cols(x0 + 1)
    v00, v01 = src.gather_at(ra, ca), src.gather_at(ra, cb)
    v10, v11 = src.gather_at(rb, ca), src.gather_at(rb, cb)
    v01 -= v00
    v01 *= fx
    v00 += v01  # top row
    v11 -= v10
    v11 *= fx
    v10 += v11  # bottom row
    v10 -= v00
    v10 *= fy
    v00 += v10
    if np.issubdtype(dtype, np.integer):
        v00 += 0.5
        np.floor(v00, out=v00)
        np.clip(v00, 0.0, float(np.iinfo(dtype).max), out=v00)
    return v00


def _mapped(i: np.ndarray, size: int, border: str) -> np.ndarray:
    """Integer indices mapped into ``[0, size)`` by the border mode; -1 for constant's fill."""
    if border == "constant":
        return np.where((i >= 0) & (i < size), i, -1)
    if border == "edge":
        return np.clip(i, 0, size - 1)
    return _map_index(i, size, border)


def cubic_weights(t, a: float = CUBIC_A) -> list:
    """Keys' cubic convolution weights of the neighbours at offsets -1, 0, 1, 2 of a
    coordinate with fraction ``t`` (numpy arrays or torch tensors; differentiable)."""

    def near(d):
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0

    def far(d):
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a

    return [far(1.0 + t), near(t), near(1.0 - t), far(2.0 - t)]


def _warp_bicubic(imgs, inv, out, border, fill_values, a) -> None:
    """Bicubic reference: float64 sums over the 4 x 4 neighbours, row by row of output."""
    n, h, w, c = imgs.shape
    _, ho, wo, _ = out.shape
    xs = np.arange(wo, dtype=np.float64)
    fill = fill_values.astype(np.float64)
    integer = np.issubdtype(imgs.dtype, np.integer)
    top = float(np.iinfo(imgs.dtype).max) if integer else 0.0
    for i in range(n):
        src = imgs[i].astype(np.float64)
        for y in range(ho):
            sx = inv[i, 0, 0] * xs + (inv[i, 0, 1] * y + inv[i, 0, 2])
            sy = inv[i, 1, 0] * xs + (inv[i, 1, 1] * y + inv[i, 1, 2])
            if border in ("constant", "edge"):  # beyond 2 pixels out every neighbour is fill / edge
                sx, sy = np.clip(sx, -2.0, w + 1.0), np.clip(sy, -2.0, h + 1.0)
            else:
                sx, sy = _periodic(sx, w, border), _periodic(sy, h, border)
            x0, y0 = np.floor(sx), np.floor(sy)
            wx, wy = cubic_weights(sx - x0, a), cubic_weights(sy - y0, a)
            x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
            v = np.zeros((wo, c))
            for jy in range(4):
                yi = _mapped(y0 - 1 + jy, h, border)
                row = np.zeros((wo, c))
                for jx in range(4):
                    xi = _mapped(x0 - 1 + jx, w, border)
                    ok = (xi >= 0) & (yi >= 0)
                    vals = np.where(ok[:, None], src[np.maximum(yi, 0), np.maximum(xi, 0)], fill)
                    row += wx[jx][:, None] * vals
                v += wy[jy][:, None] * row
            if integer:
                v = np.clip(np.floor(v + 0.5), 0.0, top)
            out[i, y] = v


def prefilter(imgs: np.ndarray, sigmas: np.ndarray, border: str, fill_values: np.ndarray) -> np.ndarray:
    """Each image blurred by its own ``(sigma_x, sigma_y)`` (``(N, 2)``), a new array:
    separable Gaussian, x then y, summed in float32 for uint8 and float32 images and in
    float64 for uint16 and float64 ones (the kernel's working types); taps computed in
    float64 (summed in order) and rounded once."""
    out = np.empty_like(imgs)
    work = np.float32 if imgs.dtype in (np.uint8, np.float32) else np.float64
    fill = fill_values.astype(work)
    integer = np.issubdtype(imgs.dtype, np.integer)
    for i, img in enumerate(imgs):
        v = img.astype(work)
        for axis, s in ((1, sigmas[i, 0]), (0, sigmas[i, 1])):
            if not s > 0:
                continue
            size = v.shape[axis]
            r = min(int(3.0 * s + 0.5), size + 1)
            k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
            total = 0.0
            for t in k:  # in order, as the kernel sums them
                total += t
            k = (k / total).astype(work)
            acc = np.zeros_like(v)
            for j in range(-r, r + 1):
                idx = _mapped(np.arange(size) + j, size, border)
                taken = np.take(v, np.maximum(idx, 0), axis=axis)
                shape = [1, 1, 1]
                shape[axis] = size
                taken = np.where((idx >= 0).reshape(shape), taken, fill)
                acc += k[j + r] * taken
            v = acc
        out[i] = np.clip(np.floor(v.astype(np.float64) + 0.5), 0, np.iinfo(imgs.dtype).max) if integer else v
    return out
