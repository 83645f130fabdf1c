"""Glue for offline jobs: image files in and out, ragged batches, anti-aliased resampling.

Matrices here follow the library convention (forward, source pixel → output pixel,
``(x, y)``, pixel centres on integers; boxes on pixel edges).
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import AffineAugError
from ._checks import BORDERS, check_choice, check_fill, check_matrices, check_ragged, check_size
from ._deprecated import renamed
from .files import write_atomic
from .matrix import invert
from .reference import CUBIC_A
from .warp import _bound_sigmas, _resolve_backend, _warp_dst_to_src, prefilter, prefilter_sigma

__all__ = [
    "MAX_PIXELS",
    "BadImage",
    "box_to_size_matrix",
    "load_image",
    "output_reduction",
    "prefilter_sigma",
    "read_source",
    "reduce_factor",
    "reduced_matrices",
    "save_image",
    "warp_ragged",
]

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp")


class BadImage(AffineAugError):
    """An image file that cannot be read (missing, corrupt, truncated, not an image)."""


def load_image(path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB, decoding it fully (truncation is an error).

    16-bit and 32-bit integer images (Pillow modes ``I;16*`` and ``I``) are scaled down to
    8 bits with rounding (``round(v * 255 / 65535)``), never clipped; :func:`_read_image`
    also says whether that happened.
    """
    return _read_image(path)[0]


def _scale_to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535) as uint8: ``round(v * 255 / 65535)``, half up. Scaled, never
    clipped: the rule for every source with more than 8 bits per channel."""
    return np.floor(np.asarray(values, dtype=np.float64) * (255.0 / 65535.0) + 0.5).astype(np.uint8)


def _read_image(path, keep_16bit: bool = False, max_pixels: int | None = None) -> tuple[np.ndarray, bool]:
    """``(H, W, 3)`` uint8 RGB and whether the source had more than 8 bits per channel.

    With ``keep_16bit`` a 16-bit (or 32-bit integer, within 0..65535) greyscale source comes
    back as ``(H, W, 1)`` uint16 instead, unscaled (for outputs that hold 16 bits: PNG).
    A source of more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`) is refused
    before it is decoded."""
    img, deep, _ = read_source(path, keep_16bit, max_pixels)
    return img, deep


# Sources above this many pixels are refused before decoding: Pillow's own bomb limit
# (it refuses twice Image.MAX_IMAGE_PIXELS, and only warns between the two). A decoded
# RGB source takes 3 bytes per pixel: at most 537 MB here.
MAX_PIXELS = 178_956_970
# A reduced decode keeps at least this many source pixels per output pixel on every axis,
# so that the antialiasing blur, not the reduction, shapes the output.
REDUCE_MARGIN = 2.0
_DRAFT_SCALES = (8, 4, 2)  # the reduced sizes a JPEG decoder can produce (libjpeg's DCT scaling)


def reduce_factor(matrices, margin: float = REDUCE_MARGIN) -> int:
    """The largest integer ``f`` by which a source may be shrunk before it is warped with
    every one of ``matrices`` (forward, ``(N, 3, 3)``): each matrix shrinks each source
    axis by at least ``margin * f``. 1 where nothing shrinks that much."""
    m = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    steps = np.linalg.norm(m[:, :2, :2], axis=-2)  # how far a unit source step moves, per axis
    if not len(steps) or not np.all(np.isfinite(steps)) or steps.max() <= 0:
        return 1
    return max(1, int(1.0 / (margin * steps.max())))


def output_reduction(size, augment, margin: float = REDUCE_MARGIN):
    """A ``factor_for`` for :func:`read_source`: the factor of a source whose whole image is
    fitted to ``size`` ``(H, W)`` and then warped by each of ``augment()`` (a function giving
    the forward augmentation matrices, called only for sources large enough to shrink).
    The source's full ``(width, height)`` is kept as ``factor_for.size``."""

    def factor_for(w: int, h: int) -> int:
        factor_for.size = (w, h)
        fit = box_to_size_matrix([0, 0, w, h], size)
        if w * h < 16 * size[0] * size[1] or reduce_factor(fit, margin / 2) < 2:  # too small to gain
            return 1
        return reduce_factor(np.asarray(augment()) @ fit, margin)

    factor_for.size = None
    return factor_for


def reduced_matrices(matrices, factor: int) -> np.ndarray:
    """Forward matrices for a source reduced by ``factor``: reduced pixel centre ``x`` is at
    ``factor * (x + 0.5) - 0.5`` in the full source, so ``M' = M @ [[f, 0, (f - 1) / 2], ...]``."""
    f = float(factor)
    up = np.array([[f, 0.0, (f - 1.0) / 2.0], [0.0, f, (f - 1.0) / 2.0], [0.0, 0.0, 1.0]])
    return np.asarray(matrices, dtype=np.float64) @ up


def read_source(
    path, keep_16bit: bool = False, max_pixels: int | None = None, factor_for=None
) -> tuple[np.ndarray, bool, int]:
    """:func:`_read_image` that may decode only what the output needs: ``(image, deep, f)``.

    ``factor_for(width, height)`` gives the integer factor the source may be shrunk by (see
    :func:`reduce_factor`); the image comes back shrunk by ``f`` (its pixel ``x`` covering
    full pixels ``[f x, f (x + 1))``: a box average, the last row and column over what is
    left). JPEGs shrink in the decoder (Pillow's ``draft``: 1/2, 1/4, 1/8), then by box
    averaging for the rest; other formats decode fully, then are box-averaged once.
    """
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise BadImage(f"{path}: not a regular file")
        if str(path)[-4:].lower() in (".ppm", ".pgm"):
            fast = _read_netpbm(path, limit)
            if fast is not None:
                f = factor_for(fast.shape[1], fast.shape[0]) if factor_for else 1
                return (_box_reduce(fast, f) if f > 1 else fast), False, f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > limit:
                raise BadImage(
                    f"{path}: {w}x{h} is {w * h:,} pixels, above the limit of {limit:,} "
                    "(--max-pixels; a decoded RGB source takes 3 bytes per pixel)"
                )
            f = factor_for(w, h) if factor_for else 1
            return _decode(path, im, keep_16bit, f)
    except FileNotFoundError:
        raise BadImage(f"{path}: file not found") from None
    except PermissionError:
        raise BadImage(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise BadImage(f"{path}: is a folder, not an image file") from None
    except Image.DecompressionBombError as e:
        raise BadImage(f"{path}: refused as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise BadImage(f"{path}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImage(f"{path}: corrupt or truncated image ({e})") from None


def _decode(path, im: Image.Image, keep_16bit: bool, f: int) -> tuple[np.ndarray, bool, int]:
    """Decode an opened image shrunk by at most ``f``: ``(H, W, 3)`` uint8 (or kept 16-bit
    grey), whether it was deep, and the factor used (JPEGs: the decoder's scale, 1/2, 1/4
    or 1/8, times the box average that divides what is left)."""
    deep = _deep_png_rawmode(im)
    if deep is not None:
        return _box_reduce(_read_deep_png(path, im, deep), f), True, f
    done = 1
    if f > 1 and im.format == "JPEG":
        w, h = im.size
        scale = next((d for d in _DRAFT_SCALES if d <= f), 1)
        drafted = im.draft(None, (w // scale, h // scale))
        done = 1 if drafted is None else round(w / drafted[1][2])  # the scale the decoder will use
    rest = f // done
    im.load()
    if im.mode.startswith("I") or im.mode == "F":
        grey = np.asarray(im, dtype=np.float64)
        if im.mode == "F" or grey.min() < 0 or grey.max() > 65535:
            raise BadImage(f"{path}: unsupported pixel format (mode {im.mode}, values {grey.min():g}..{grey.max():g})")
        grey = _box_reduce(grey[..., None], rest)[..., 0]
        if rest > 1:
            grey = np.floor(grey + 0.5)
        if keep_16bit:
            return grey.astype(np.uint16)[..., None], True, done * rest
        v = _scale_to_8bit(grey)
        return np.repeat(v[..., None], 3, axis=2), True, done * rest
    if rest > 1:
        im = im.reduce(rest) if im.mode in ("L", "RGB", "RGBA", "LA") else im.convert("RGB").reduce(rest)
    return np.array(im.convert("RGB")), False, done * rest  # a writable copy, as the fast path gives


def _box_reduce(a: np.ndarray, f: int) -> np.ndarray:
    """``(H, W, C)`` shrunk by ``f``: each output pixel the mean of its ``f x f`` block (of
    what is left, at the last row and column), rounded half up for integer images."""
    if f <= 1:
        return a
    h, w = a.shape[:2]
    acc = np.float64 if a.dtype.kind == "f" or a.dtype.itemsize > 1 else np.uint32
    rows = np.add.reduceat(a, np.arange(0, h, f), axis=0, dtype=acc)
    blocks = np.add.reduceat(rows, np.arange(0, w, f), axis=1, dtype=acc)
    count_y = np.minimum(f, h - np.arange(0, h, f)).astype(np.float64)
    count_x = np.minimum(f, w - np.arange(0, w, f)).astype(np.float64)
    mean = blocks / (count_y[:, None, None] * count_x[None, :, None])
    return mean if a.dtype.kind == "f" else np.floor(mean + 0.5).astype(a.dtype)


# 16-bit colour PNGs: Pillow decodes them to 8 bits by keeping each sample's high byte
# (truncation). Decoding the same data a second time with the little-endian raw mode
# gives the low bytes, and the two make the 16-bit samples.
_DEEP_PNG_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def _deep_png_rawmode(im: Image.Image) -> str | None:
    """The raw mode of a 16-bit RGB or RGBA PNG (one decoded to 8 bits by truncation), else None."""
    if im.format != "PNG" or len(im.tile) != 1:
        return None
    rawmode = im.tile[0].args if isinstance(im.tile[0].args, str) else None
    return rawmode if rawmode in _DEEP_PNG_RAWMODES else None


def _read_deep_png(path, im: Image.Image, rawmode: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 of a 16-bit RGB(A) PNG, scaled with rounding as 16-bit grey is
    (``round(v * 255 / 65535)``); alpha is dropped, as ``convert("RGB")`` drops it."""
    im.load()
    high = np.asarray(im)[..., :3].astype(np.uint16)
    with Image.open(path) as again:
        again.tile = [again.tile[0]._replace(args=_DEEP_PNG_RAWMODES[rawmode])]
        again.load()
        low = np.asarray(again)[..., :3]
    v = (high << 8) | low
    return _scale_to_8bit(v)


_NETPBM = re.compile(rb"P([56])[ \t\r\n]+([0-9]{1,9})[ \t\r\n]+([0-9]{1,9})[ \t\r\n]+255[ \t\r\n]")


def _read_netpbm(path, limit: int = MAX_PIXELS) -> np.ndarray | None:
    """Binary 8-bit PPM (P6) and PGM (P5) read directly: GTSRB's format, where Pillow's
    plugin takes about four times as long (26 against 99 µs for a GTSRB image here).
    ``None`` for anything else (comments in the header,
    another maxval, a size Pillow would call a decompression bomb): Pillow reads those.
    Same pixels as Pillow (tested); fewer bytes than the header promises is truncation."""
    with open(path, "rb") as f:
        head = _NETPBM.match(f.read(64))  # the header first: a huge file is not read whole
        if head is None:
            return None
        w, h = int(head.group(2)), int(head.group(3))
        if w < 1 or h < 1 or w * h > (Image.MAX_IMAGE_PIXELS or w * h):
            return None
        if w * h > limit:
            raise BadImage(
                f"{path}: {w}x{h} is {w * h:,} pixels, above the limit of {limit:,} "
                "(--max-pixels; a decoded RGB source takes 3 bytes per pixel)"
            )
        c = 3 if head.group(1) == b"6" else 1
        f.seek(head.end())
        data = f.read(w * h * c)
    if len(data) < w * h * c:
        raise BadImage(f"{path}: corrupt or truncated image ({len(data)} bytes of pixels, {w}x{h}x{c} expected)")
    img = np.frombuffer(data, np.uint8).reshape(h, w, c)
    return np.repeat(img, 3, axis=2) if c == 1 else img.copy()


def save_image(array: np.ndarray, path) -> None:
    """Write an image atomically (temporary name, then rename), format from the suffix."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    write_atomic(path, lambda f: Image.fromarray(array).save(f, format=fmt))


def box_to_size_matrix(box, out_size) -> np.ndarray:
    """Matrix taking the box ``(x1, y1, x2, y2)`` (pixel edges) onto a whole ``(H, W)`` output.

    Edge ``x1`` goes to output edge 0 and ``x2`` to ``W``; in pixel-centre coordinates
    ``x_out = (x + 0.5 - x1) * W / (x2 - x1) - 0.5``. ``box`` may be ``(N, 4)`` → ``(N, 3, 3)``.
    """
    b = np.asarray(box, dtype=np.float64)
    h, w = out_size
    sx = w / (b[..., 2] - b[..., 0])
    sy = h / (b[..., 3] - b[..., 1])
    m = np.zeros(b.shape[:-1] + (3, 3))
    m[..., 0, 0], m[..., 0, 2] = sx, (0.5 - b[..., 0]) * sx - 0.5
    m[..., 1, 1], m[..., 1, 2] = sy, (0.5 - b[..., 1]) * sy - 0.5
    m[..., 2, 2] = 1.0
    return m


def warp_ragged(
    images: Sequence[np.ndarray],
    matrices,
    out_size,
    *,
    border: str = "edge",
    fill=0,
    antialias: bool = True,
    reduced=None,
) -> np.ndarray:
    """Warp images of different sizes to one ``out_size``: ``(N, H_out, W_out, C)``.

    ``images[i]`` is ``(H_i, W_i, C)`` (one dtype and channel count for all) and
    ``matrices[i]`` its forward matrix; the same array may appear several times (copies
    of one source). Each output is exactly what :func:`warp_affine` gives for its image
    alone (bilinear, ``border`` any mode). With ``antialias`` each image is prefiltered
    by the kernel's Gaussian (:func:`affine_aug.warp.prefilter`) with the
    :func:`prefilter_sigma` of its matrix rounded to 1/4 pixel, so that the copies of one
    image share their blurs. With the compiled kernel the whole batch is two calls (the
    distinct blurs, then the warps), spread over the kernel's threads.
    """
    border = check_choice(border, BORDERS, "border")
    n = len(images)
    m = check_matrices(matrices, n)
    ho, wo = check_size(out_size, "out_size")
    c, dtype = check_ragged(images)
    out = np.empty((n, ho, wo, c), dtype=dtype)
    if n == 0:
        return out
    fill_values = check_fill(fill, c, dtype)
    inv = invert(m)
    sigmas = _sigmas(m, reduced) if antialias else np.zeros((n, 2))
    sigmas = _bound_sigmas(sigmas, [(im.shape[1], im.shape[0]) for im in images])
    which, srcs, sig = _distinct_blurs(images, sigmas)
    if _resolve_backend("auto") == "numpy":
        blurred = [prefilter(im[None], s[None], border, fill_values, "numpy")[0] for im, s in zip(srcs, sig)]
        for i, k in enumerate(which):
            out[i] = _warp_dst_to_src(
                blurred[k][None], inv[i : i + 1], (ho, wo), "bilinear", border, fill_values, "numpy"
            )[0]
        return out
    from .kernel import prefilter_ragged, warp_ragged_into

    blurred = prefilter_ragged(srcs, sig, border, fill_values) if np.any(sig > 0) else srcs
    warp_ragged_into(blurred, which, inv, out, "bilinear", border, fill_values, CUBIC_A)
    return out


def _distinct_blurs(images: Sequence[np.ndarray], sigmas: np.ndarray) -> tuple[list, list, np.ndarray]:
    """The distinct (image, sigma) pairs: copies of one source with equal rounded sigmas
    share a blur. Returns which pair each image is, the pairs' C-contiguous sources and
    their sigmas ``(K, 2)``."""
    sources = {}
    for im in images:
        sources.setdefault(id(im), np.ascontiguousarray(im))
    pairs: dict = {}
    which = [pairs.setdefault((id(im), sigmas[i, 0], sigmas[i, 1]), len(pairs)) for i, im in enumerate(images)]
    first = {}
    for i, k in enumerate(which):
        first.setdefault(k, i)
    srcs = [sources[id(images[i])] for i in first.values()]
    return which, srcs, np.array([sigmas[i] for i in first.values()]).reshape(-1, 2)


def _sigmas(m: np.ndarray, reduced) -> np.ndarray:
    """Prefilter sigmas rounded to 1/4 pixel. For an image box-reduced by ``f`` (``reduced``:
    one factor per image, or None) they complete the blur the full source would get: the
    box of ``f`` pixels has a variance of ``(f^2 - 1) / 12`` full pixels, and the Gaussian
    adds the rest, so the two together blur as the full source's Gaussian alone would."""
    if reduced is None:
        return np.round(prefilter_sigma(m) * 4) / 4
    f = np.asarray(reduced, dtype=np.float64).reshape(-1, 1)
    full = prefilter_sigma(
        m / np.concatenate([f, f, np.ones_like(f)], axis=1)[:, None, :]
    )  # M' / f: the full source's scale
    rest = np.sqrt(np.maximum(full**2 - (f**2 - 1.0) / 12.0, 0.0)) / f
    return np.round(rest * 4) / 4


def _augment_images(
    images: Sequence[np.ndarray],
    keys,
    config,
    *,
    seed: int = 0,
    size=None,
    border: str = "edge",
    boxes=None,
    plain=None,
    reduced=None,
) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
    """Keyed augmentation of (possibly differently sized) images: the offline engines' core.

    ``images[i]`` is ``(H_i, W_i, C)`` (uint8, or uint16 for kept 16-bit sources; images of
    another dtype or channel count are warped as their own batch, and a list comes back)
    and gets the transform drawn for ``keys[i]``.
    With ``size=(H, W)`` every image is resized to it and augmented in one resampling
    (the resize composed with a transform sampled for ``(H, W)``, prefiltered when it
    shrinks) and the result is one ``(N, H, W, C)`` array; without, each image keeps its
    size (transform sampled for its own size) and a list is returned. Also returns the
    ``(N, 3, 3)`` forward matrices applied. The local and the Ray engine both call this,
    so their outputs are equal array for array.

    With ``size``: ``boxes`` ``(N, 4)`` (pixel edges, default the whole image) is the part
    of each source that fills the output (GTSRB's ROI), and rows where ``plain`` is true
    get the resize alone (no random transform: GTSRB's originals, validation and test).
    ``reduced`` ``(N,)``: the factor each image was shrunk by when read (:func:`read_source`;
    ``boxes`` stay in full-source pixels): it is warped with :func:`reduced_matrices` and
    prefiltered for the rest of the shrink. The matrices returned are always full-source ones.
    """
    keys = np.asarray(keys, dtype=np.uint64)
    kinds = list(dict.fromkeys((im.dtype.str, im.shape[2]) for im in images))
    if size is not None and len(kinds) > 1:  # e.g. 16-bit grey next to RGB: one ragged batch per kind
        return _augment_by_kind(images, keys, config, kinds, seed, size, border, boxes, plain, reduced)
    if size is not None:
        return _augment_resized(images, keys, config, seed, size, border, boxes, plain, reduced)
    from .sampling import sample

    out, mats = [], []
    for im, key in zip(images, keys):
        m = sample(config, [key], size=im.shape[:2], seed=seed).matrices
        out.append(warp_ragged([im], m, im.shape[:2], border=border, antialias=False)[0])
        mats.append(m[0])
    return out, np.array(mats).reshape(-1, 3, 3)


def _augment_by_kind(images, keys, config, kinds, seed, size, border, boxes, plain, reduced):
    """:func:`_augment_images` with ``size`` of images of several kinds (dtype, channels):
    one ragged batch per kind, the results in the images' order."""
    out, mats = [None] * len(images), np.empty((len(images), 3, 3))
    for kind in kinds:
        idx = [k for k, im in enumerate(images) if (im.dtype.str, im.shape[2]) == kind]
        warped, m = _augment_images(
            [images[k] for k in idx],
            keys[idx],
            config,
            seed=seed,
            size=size,
            border=border,
            boxes=None if boxes is None else [boxes[k] for k in idx],
            plain=None if plain is None else np.asarray(plain)[idx],
            reduced=None if reduced is None else np.asarray(reduced)[idx],
        )
        for j, k in enumerate(idx):
            out[k], mats[k] = warped[j], m[j]
    return out, mats


def _augment_resized(images, keys, config, seed, size, border, boxes, plain, reduced):
    """:func:`_augment_images` with ``size`` of images of one kind: each box fitted to
    ``size`` and augmented in one ragged warp."""
    from .matrix import compose
    from .sampling import sample

    h, w = size
    if boxes is None:
        boxes = [[0, 0, im.shape[1], im.shape[0]] for im in images]
    aug = sample(config, keys, size=(h, w), seed=seed).matrices
    if plain is not None:
        aug[np.asarray(plain, dtype=bool)] = np.eye(3)
    m = compose(box_to_size_matrix(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), (h, w)), aug)
    if reduced is None or np.all(np.asarray(reduced) == 1):
        return warp_ragged(images, m, (h, w), border=border), m
    f = np.asarray(reduced, dtype=np.float64)
    up = np.zeros((len(f), 3, 3))
    up[:, 0, 0] = up[:, 1, 1] = f
    up[:, 0, 2] = up[:, 1, 2] = (f - 1.0) / 2.0
    up[:, 2, 2] = 1.0
    return warp_ragged(images, m @ up, (h, w), border=border, reduced=f), m


__getattr__ = renamed(
    __name__,
    {
        "IMAGE_EXTENSIONS": "affine_aug.pipeline._IMAGE_EXTENSIONS",
        "augment_images": "affine_aug.pipeline._augment_images",
        "read_image": "affine_aug.pipeline._read_image",
    },
)
