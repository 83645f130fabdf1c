"""Batched affine warping of numpy images.

Convention:
    images    ``(N, H, W, C)`` or ``(N, H, W)``; uint8, uint16, float32 or float64.
    matrices  ``(N, 3, 3)`` / ``(N, 2, 3)``, or one ``(3, 3)`` / ``(2, 3)`` for all images.
              Forward: source pixel ``(x, y)`` → destination pixel, pixel centres on
              integer coordinates (OpenCV's ``warpAffine`` matrix). The warper inverts it.
    out_size  ``(H_out, W_out)``; default the input size. Output pixel ``(x, y)`` takes the
              source value at ``M^-1 (x, y)``.

Border modes (what lies outside the source image):
    constant  the image extended by ``fill``, then interpolated: edges blend into the
              fill (OpenCV BORDER_CONSTANT, scipy ``grid-constant``)
    edge      replicate the edge pixel (OpenCV BORDER_REPLICATE, scipy ``nearest``)
    reflect   mirror, edge pixel repeated: ``cba|abc|cba`` (OpenCV BORDER_REFLECT, scipy ``reflect``)
    mirror    mirror about the edge pixel: ``dcb|abcd|cba`` (OpenCV BORDER_REFLECT_101, scipy ``mirror``)
    wrap      periodic (OpenCV BORDER_WRAP, scipy ``grid-wrap``)

Bilinear weights come from the unclamped source coordinates; border handling only maps
the four neighbour indices. Nearest takes the pixel at ``floor(coord + 0.5)``.
Integer images are rounded half up and clipped; float images stay float.
"""

from __future__ import annotations

import difflib

import numpy as np

from .matrix import as_matrices, check_size, invert

__all__ = ["warp_affine"]

BORDERS = ("constant", "edge", "reflect", "mirror", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")
DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))
BACKENDS = ("auto", "numba", "numpy")

# Output pixels per chunk of the numpy path: keeps its temporaries (~100 bytes per
# pixel) around the size of the L2 cache.
CHUNK_PIXELS = 1 << 13


def check_choice(value, allowed, name: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {name} {value!r}{hint}; expected one of {', '.join(allowed)}")
    return value


def check_images(images) -> tuple[np.ndarray, bool]:
    """Validate a batch; return it as ``(N, H, W, C)`` and whether it was ``(N, H, W)``."""
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape} (ndim {images.ndim})")
    if images.dtype not in DTYPES:
        raise ValueError(f"images dtype must be one of uint8, uint16, float32, float64, got {images.dtype}")
    grey = images.ndim == 3
    imgs = images[..., None] if grey else images
    if 0 in imgs.shape[1:]:
        raise ValueError(f"images must have non-empty H, W and C, got shape {images.shape}")
    return imgs, grey


def check_matrices(matrices, n: int) -> np.ndarray:
    """Validate forward matrices for ``n`` images; return ``(n, 3, 3)`` float64."""
    m = as_matrices(matrices)
    if m.ndim == 2:
        return np.broadcast_to(m, (n, 3, 3))
    if m.ndim != 3:
        raise ValueError(f"matrices must have shape (N, 3, 3), (N, 2, 3), (3, 3) or (2, 3), got {np.shape(matrices)}")
    if len(m) != n:
        raise ValueError(f"got {len(m)} matrices for {n} images; give one matrix per image or a single matrix")
    return m


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


def warp_affine(
    images,
    matrices,
    *,
    out_size=None,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill=0,
    backend: str = "auto",
) -> np.ndarray:
    """Warp a batch of images, each with its own forward matrix, in one call.

    Args:
        images: ``(N, H, W, C)`` or ``(N, H, W)`` array; uint8, uint16, float32, float64.
            Never modified.
        matrices: ``(N, 3, 3)`` / ``(N, 2, 3)`` forward pixel matrices, or one
            ``(3, 3)`` / ``(2, 3)`` for every image (see the module docstring).
        out_size: ``(H_out, W_out)``, default ``(H, W)``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        border: ``"constant"``, ``"edge"``, ``"reflect"``, ``"mirror"`` or ``"wrap"``.
        fill: value outside the image for ``border="constant"``: a scalar or one value
            per channel (integer and in range for integer images).
        backend: ``"auto"`` (the compiled kernel), ``"numba"`` or ``"numpy"`` (the
            vectorized reference implementation).

    Returns:
        A new array ``(N, H_out, W_out[, C])`` of the input's dtype.
    """
    imgs, grey = check_images(images)
    n, h, w, c = imgs.shape
    m = check_matrices(matrices, n)
    interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
    border = check_choice(border, BORDERS, "border")
    backend = check_choice(backend, BACKENDS, "backend")
    ho, wo = (h, w) if out_size is None else check_size(out_size, "out_size")
    fill_values = check_fill(fill, c, imgs.dtype)
    inv = invert(m) if n else np.zeros((0, 3, 3))
    out = warp_dst_to_src(imgs, inv, (ho, wo), interpolation, border, fill_values, backend)  # inv: dst → src
    return out[..., 0] if grey else out


def warp_dst_to_src(imgs: np.ndarray, dst_to_src: np.ndarray, out_size, interpolation: str, border: str,
                    fill_values: np.ndarray, backend: str = "auto") -> np.ndarray:
    """:func:`warp_affine` without validation, given the **inverse** matrices: ``dst_to_src``
    ``(N, 3, 3)`` maps output pixels to source pixels; ``(N, H, W, C)`` images; fill already
    checked. For callers whose inputs are valid by construction."""
    inv = dst_to_src
    n, _, _, c = imgs.shape
    out = np.empty((n, out_size[0], out_size[1], c), dtype=imgs.dtype)
    if n:
        if backend == "numpy":
            _warp_numpy(imgs, inv, out, interpolation, border, fill_values)
        else:
            from .kernel import warp_into

            warp_into(imgs, inv, out, interpolation, border, fill_values)
    return out


# ----------------------------------------------------------------------------- numpy path


def _map_index(i: np.ndarray, size: int, border: str) -> np.ndarray:
    """Map integer source indices into ``[0, size - 1]`` for the periodic border modes
    (``constant`` and ``edge`` clamp the coordinates instead, see ``_warp_numpy``)."""
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


def _warp_numpy(imgs, inv, out, interpolation, border, fill_values) -> None:
    n, h, w, c = imgs.shape
    _, ho, wo, _ = out.shape
    dtype = imgs.dtype
    work = np.float64 if dtype == np.float64 else np.float32
    # Bilinear gathers whole pixels already converted to the work type (no conversion
    # per gathered value); nearest gathers them as they are.
    store = dtype if interpolation == "nearest" else np.dtype(work)
    cp, word = _pixel_layout(c, store.itemsize)
    # padded by one pixel of fill before and two after each axis: indices -1 .. size + 1
    hp, wp = h + 3, w + 3
    per_image = ho * wo
    images_per_chunk = max(1, CHUNK_PIXELS // per_image)
    rows_per_chunk = ho if images_per_chunk > 1 else max(1, CHUNK_PIXELS // wo)
    xs = np.arange(wo, dtype=np.float64)
    integer = np.issubdtype(dtype, np.integer)
    clamped = border in ("constant", "edge")
    top = float(np.iinfo(dtype).max) if integer else 0.0

    for i0 in range(0, n, images_per_chunk):
        i1 = min(n, i0 + images_per_chunk)
        nb = i1 - i0
        pad = np.empty((nb, hp, wp, cp), dtype=store)
        pad[...] = np.concatenate([fill_values.astype(store), np.zeros(cp - c, store)])
        pad[:, 1 : h + 1, 1 : w + 1, :c] = imgs[i0:i1]
        pixels = pad.reshape(-1).view(word) if word is not None else pad.reshape(-1, cp)
        index = np.int32 if nb * hp * wp < 2**31 else np.int64
        base = (np.arange(nb, dtype=index) * (hp * wp))[:, None, None]
        a = inv[i0:i1]
        for r0 in range(0, ho, rows_per_chunk):
            r1 = min(ho, r0 + rows_per_chunk)
            ys = np.arange(r0, r1, dtype=np.float64)
            # source coordinates (nb, rows, wo) of every output pixel
            sx = a[:, 0, 0, None, None] * xs + (a[:, 0, 1, None] * ys + a[:, 0, 2, None])[:, :, None]
            sy = a[:, 1, 0, None, None] * xs + (a[:, 1, 1, None] * ys + a[:, 1, 2, None])[:, :, None]
            # Clamping the coordinates is exact for these two modes: beyond -1 / size
            # (constant) or 0 / size - 1 (edge) every neighbour that gets weight is a
            # fill / edge pixel, and at the clamp value the fraction is 0.
            # The periodic modes reduce coordinates modulo their period instead (exact:
            # the fraction is kept), so far-away coordinates never overflow an integer.
            if clamped:
                lo, hi_x, hi_y = (-1.0, w, h) if border == "constant" else (0.0, w - 1, h - 1)
                np.clip(sx, lo, hi_x, out=sx)
                np.clip(sy, lo, hi_y, out=sy)
            else:
                sx = _periodic(sx, w, border)
                sy = _periodic(sy, h, border)

            def gather(rows, cols):  # (pixels, cp) in the store type; padding channels included
                return pixels.take((rows + cols).reshape(-1), axis=0).view(store).reshape(-1, cp)

            def row_offsets(iy):  # flat offset of each (padded) source row
                iy = iy if clamped else _map_index(iy, h, border)
                return base + ((iy + 1) * wp).astype(index)

            def col_offsets(ix):
                return ((ix if clamped else _map_index(ix, w, border)) + 1).astype(index)

            if interpolation == "nearest":
                ix = np.floor(sx + 0.5).astype(np.int64)
                iy = np.floor(sy + 0.5).astype(np.int64)
                res = gather(row_offsets(iy), col_offsets(ix))
            else:
                x0f, y0f = np.floor(sx), np.floor(sy)
                fx = (sx - x0f).astype(work).reshape(-1, 1)
                fy = (sy - y0f).astype(work).reshape(-1, 1)
                x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
                ra, rb = row_offsets(y0), row_offsets(y0 + 1)
                ca, cb = col_offsets(x0), col_offsets(x0 + 1)
                v00, v01 = gather(ra, ca), gather(ra, cb)
                v10, v11 = gather(rb, ca), gather(rb, cb)
                v01 -= v00
                v01 *= fx
                v00 += v01  # top row
                v11 -= v10
                v11 *= fx
                v10 += v11  # bottom row
                v10 -= v00
                v10 *= fy
                v00 += v10
                res = v00
                if integer:
                    res += 0.5
                    np.floor(res, out=res)
                    np.clip(res, 0.0, top, out=res)
            out[i0:i1, r0:r1] = res.reshape(nb, r1 - r0, wo, cp)[..., :c]

