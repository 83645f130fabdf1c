"""Glue for offline jobs: image files in and out, ragged batches, anti-aliased resampling.

Matrices here follow the library convention (forward, source pixel → output pixel,
``(x, y)``, pixel centres on integers; boxes on pixel edges).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import AffineAugError
from .files import write_atomic
from .matrix import invert
from .warp import (BORDERS, CUBIC_A, bound_sigmas, check_choice, check_dtype, check_fill, check_matrices, check_size,
                   prefilter, prefilter_sigma, resolve_backend, warp_dst_to_src)

__all__ = ["BadImage", "box_to_size_matrix", "load_image", "prefilter_sigma", "save_image", "warp_ragged"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp")


class BadImage(AffineAugError):
    """An image file that cannot be read (missing, corrupt, truncated, not an image)."""


def load_image(path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB, decoding it fully (truncation is an error).

    16-bit and 32-bit integer images (Pillow modes ``I;16*`` and ``I``) are scaled down to
    8 bits with rounding (``round(v * 255 / 65535)``), never clipped; :func:`read_image`
    also says whether that happened.
    """
    return read_image(path)[0]


def _scale_to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535) as uint8: ``round(v * 255 / 65535)``, half up. Scaled, never
    clipped: the rule for every source with more than 8 bits per channel."""
    return np.floor(np.asarray(values, dtype=np.float64) * (255.0 / 65535.0) + 0.5).astype(np.uint8)


def read_image(path, keep_16bit: bool = False) -> tuple[np.ndarray, bool]:
    """``(H, W, 3)`` uint8 RGB and whether the source had more than 8 bits per channel.

    With ``keep_16bit`` a 16-bit (or 32-bit integer, within 0..65535) greyscale source comes
    back as ``(H, W, 1)`` uint16 instead, unscaled (for outputs that hold 16 bits: PNG)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise BadImage(f"{path}: not a regular file")
        if str(path)[-4:].lower() in (".ppm", ".pgm"):
            fast = _read_netpbm(path)
            if fast is not None:
                return fast, False
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I") or im.mode == "F":
                grey = np.asarray(im, dtype=np.float64)
                if im.mode == "F" or grey.min() < 0 or grey.max() > 65535:
                    raise BadImage(f"{path}: unsupported pixel format (mode {im.mode}, values {grey.min():g}..{grey.max():g})")
                if keep_16bit:
                    return grey.astype(np.uint16)[..., None], True
                v = _scale_to_8bit(grey)
                return np.repeat(v[..., None], 3, axis=2), True
            return np.array(im.convert("RGB")), False  # a writable copy, as the fast path gives
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


_NETPBM = re.compile(rb"P([56])[ \t\r\n]+([0-9]{1,9})[ \t\r\n]+([0-9]{1,9})[ \t\r\n]+255[ \t\r\n]")


def _read_netpbm(path) -> np.ndarray | None:
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
    c = images[0].shape[2] if n else 3
    dtype = images[0].dtype if n else np.dtype(np.uint8)
    if any(im.ndim != 3 or im.dtype != dtype or im.shape[2] != c for im in images):
        raise ValueError("a ragged batch needs (H, W, C) images of one dtype and one channel count (augment_images splits mixed ones)")
    check_dtype(dtype)
    empty = next((im.shape for im in images if 0 in im.shape), None)
    if empty is not None:
        raise ValueError(f"images must have non-empty H, W and C, got shape {empty}")
    out = np.empty((n, ho, wo, c), dtype=dtype)
    if n == 0:
        return out
    fill_values = check_fill(fill, c, dtype)
    inv = invert(m)
    sigmas = np.round(prefilter_sigma(m) * 4) / 4 if antialias else np.zeros((n, 2))
    sigmas = bound_sigmas(sigmas, [(im.shape[1], im.shape[0]) for im in images])
    # the distinct (image, sigma) pairs: copies of one source with equal rounded sigmas share a blur
    sources = {}
    for i, im in enumerate(images):
        sources.setdefault(id(im), np.ascontiguousarray(im))
    pairs: dict = {}
    which = [pairs.setdefault((id(im), sigmas[i, 0], sigmas[i, 1]), len(pairs)) for i, im in enumerate(images)]
    first = {}
    for i, k in enumerate(which):
        first.setdefault(k, i)
    srcs = [sources[id(images[i])] for i in first.values()]
    sig = np.array([sigmas[i] for i in first.values()]).reshape(-1, 2)
    if resolve_backend("auto") == "numpy":
        blurred = [prefilter(im[None], s[None], border, fill_values, "numpy")[0] for im, s in zip(srcs, sig)]
        for i, k in enumerate(which):
            out[i] = warp_dst_to_src(blurred[k][None], inv[i : i + 1], (ho, wo), "bilinear", border, fill_values, "numpy")[0]
        return out
    from .kernel import prefilter_ragged, warp_ragged_into

    blurred = prefilter_ragged(srcs, sig, border, fill_values) if np.any(sig > 0) else srcs
    warp_ragged_into(blurred, which, inv, out, "bilinear", border, fill_values, CUBIC_A)
    return out


def augment_images(images: Sequence[np.ndarray], keys, config, *, seed: int = 0, size=None, border: str = "edge",
                   boxes=None, plain=None) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
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
    """
    from .matrix import compose
    from .sampling import sample

    keys = np.asarray(keys, dtype=np.uint64)
    kinds = list(dict.fromkeys((im.dtype.str, im.shape[2]) for im in images))
    if size is not None and len(kinds) > 1:  # e.g. 16-bit grey next to RGB: one ragged batch per kind
        out, mats = [None] * len(images), np.empty((len(images), 3, 3))
        for kind in kinds:
            idx = [k for k, im in enumerate(images) if (im.dtype.str, im.shape[2]) == kind]
            warped, m = augment_images([images[k] for k in idx], keys[idx], config, seed=seed, size=size, border=border,
                                       boxes=None if boxes is None else [boxes[k] for k in idx],
                                       plain=None if plain is None else np.asarray(plain)[idx])
            for j, k in enumerate(idx):
                out[k], mats[k] = warped[j], m[j]
        return out, mats
    if size is not None:
        h, w = size
        if boxes is None:
            boxes = [[0, 0, im.shape[1], im.shape[0]] for im in images]
        aug = sample(config, keys, size=(h, w), seed=seed).matrices
        if plain is not None:
            aug[np.asarray(plain, dtype=bool)] = np.eye(3)
        m = compose(box_to_size_matrix(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), (h, w)), aug)
        return warp_ragged(images, m, (h, w), border=border), m
    out, mats = [], []
    for im, key in zip(images, keys):
        m = sample(config, [key], size=im.shape[:2], seed=seed).matrices
        out.append(warp_ragged([im], m, im.shape[:2], border=border, antialias=False)[0])
        mats.append(m[0])
    return out, np.array(mats).reshape(-1, 3, 3)
