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
the four neighbour indices. Nearest takes the pixel at ``floor(coord + 0.5)``. Bicubic is
Keys' cubic convolution with a = -0.5 (PIL's; OpenCV's INTER_CUBIC and torch use -0.75)
over the 4 x 4 neighbours. Integer images are rounded half up and clipped; float images
stay float.

Antialiasing (``antialias=True``): a source axis that the matrix shrinks by ``s < 1`` (the
length of the mapped unit step) is first blurred by a Gaussian of ``sigma = (1/s - 1) / 2``
source pixels (scikit-image's rule), samples outside the image following ``border``; an
axis that is not shrunk is left alone, so matrices that do not shrink give the plain warp.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from . import _checks, outputs, reference
from ._deprecated import renamed
from ._one import warp_one
from .matrix import as_matrices, invert
from .reference import cubic_weights

__all__ = ["cubic_weights", "prefilter", "prefilter_sigma", "warp_affine"]


def _bound_sigmas(sigmas, sizes) -> np.ndarray:
    """Prefilter sigmas ``(N, 2)`` made safe: NaN and infinity become 0 (no blur), and a
    sigma beyond 4 image sizes (``sizes``: ``(W, H)`` per image, or one for all) is
    clipped there (it blurs to the mean whatever it is; this bounds the taps)."""
    sig = np.asarray(sigmas, np.float64)
    if not np.all(np.isfinite(sig)):
        sig = np.nan_to_num(sig, nan=0.0, posinf=0.0)
    return np.minimum(sig, 4.0 * np.asarray(sizes, np.float64))


def warp_affine(
    images,
    matrices,
    *,
    out_size=None,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill=0,
    antialias: bool = False,
    backend: str = "auto",
    out: np.ndarray | None = None,
    cubic_a: float = reference.CUBIC_A,
) -> np.ndarray:
    """Warp a batch of images, each with its own forward matrix, in one call.

    Args:
        images: ``(N, H, W, C)`` or ``(N, H, W)`` array; uint8, uint16, float32, float64.
            Never modified.
        matrices: ``(N, 3, 3)`` / ``(N, 2, 3)`` forward pixel matrices, or one
            ``(3, 3)`` / ``(2, 3)`` for every image (see the module docstring).
        out_size: ``(H_out, W_out)``, default ``(H, W)``.
        interpolation: ``"bilinear"``, ``"nearest"`` or ``"bicubic"``.
        border: ``"constant"``, ``"edge"``, ``"reflect"``, ``"mirror"`` or ``"wrap"``.
        fill: value outside the image for ``border="constant"``: a scalar or one value
            per channel (integer and in range for integer images).
        antialias: prefilter each source axis the matrix shrinks (see the module
            docstring), so that downscaling does not alias.
        backend: ``"auto"`` (the compiled kernel; the numpy path with a warning if it
            was not built), ``"c"`` or ``"numpy"`` (the vectorized reference).
        out: an array to write the result into (C-contiguous, writable, the result's
            shape and dtype, not overlapping ``images``), e.g. one buffer reused batch
            after batch: a fresh large output costs the OS's zeroing of its pages on
            first touch (about a third of the time of a 128x224x224x3 float32 batch).
        cubic_a: Keys' parameter of ``"bicubic"``, in ``[-1, 0]``: -0.5 (PIL's, the
            default) or -0.75 (OpenCV's INTER_CUBIC and torch's bicubic).

    Returns:
        A new array ``(N, H_out, W_out[, C])`` of the input's dtype, or ``out``.

    Examples:
        >>> img = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)  # one 3x4 greyscale image
        >>> warp_affine(img, [[1, 0, 1], [0, 1, 0]], border="edge")[0].tolist()  # one pixel right
        [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]]
    """
    one = warp_one(images, matrices, out_size, interpolation, border, fill, antialias, backend, out, cubic_a)
    if one is not None:  # one image, the plain case: the same bits without the batch checks' cost
        return one
    a = _checked_arguments(images, matrices, out_size, interpolation, border, fill, antialias, backend, out, cubic_a)
    imgs, n = a.images, len(a.images)
    if antialias and n:
        imgs = prefilter(imgs, prefilter_sigma(a.matrices), a.border, a.fill, a.backend)
    inv = invert(a.matrices) if n else np.zeros((0, 3, 3))  # dst → src
    result = _warp_dst_to_src(imgs, inv, a.out_size, a.interpolation, a.border, a.fill, a.backend, a.cubic_a, a.dst)
    if out is not None:
        return out
    return result[..., 0] if a.grey else result


class _Checked(NamedTuple):
    """The arguments of :func:`warp_affine` once checked."""

    images: np.ndarray  # (N, H, W, C)
    grey: bool  # given as (N, H, W)
    matrices: np.ndarray  # (N, 3, 3) forward
    out_size: tuple[int, int]
    interpolation: str
    border: str
    fill: np.ndarray  # (C,) in the images' dtype
    backend: str  # "c" or "numpy"
    cubic_a: float
    dst: np.ndarray | None  # out as (N, H_out, W_out, C)


def _checked_arguments(images, matrices, out_size, interpolation, border, fill, antialias, backend, out, cubic_a):
    """:func:`warp_affine`'s arguments checked in its order, as a :class:`_Checked`."""
    imgs, grey = _checks.check_images(images)
    n, h, w, c = imgs.shape
    m = _checks.check_matrices(matrices, n)
    interpolation = _checks.check_choice(interpolation, _checks.INTERPOLATIONS, "interpolation")
    border = _checks.check_choice(border, _checks.BORDERS, "border")
    backend = _checks.check_choice(backend, _checks.BACKENDS, "backend")
    ho, wo = (h, w) if out_size is None else _checks.check_size(out_size, "out_size")
    fill_values = _checks.check_fill(fill, c, imgs.dtype)
    cubic_a = _checks.check_cubic_a(cubic_a)
    if not isinstance(antialias, (bool, np.bool_)):
        raise ValueError(f"antialias must be True or False, got {antialias!r}")
    if out is not None:
        _checks.check_out(out, (n, ho, wo) if grey else (n, ho, wo, c), imgs)
    dst = None if out is None else (out[..., None] if grey else out)
    backend = _resolve_backend(backend)
    return _Checked(imgs, grey, m, (ho, wo), interpolation, border, fill_values, backend, cubic_a, dst)


def _resolve_backend(backend: str) -> str:
    """``"auto"`` → ``"c"`` when the compiled kernel was built, else ``"numpy"`` with a
    warning (once); ``"c"`` without the kernel is an error that says how to build it."""
    from . import kernel

    if backend == "numpy" or kernel.available():
        return "c" if backend == "auto" else backend
    if backend == "c":
        raise RuntimeError(kernel._MISSING)
    global _WARNED
    if not _WARNED:
        warnings.warn(kernel._MISSING + "; using the numpy path (several times slower)", RuntimeWarning, stacklevel=3)
        _WARNED = True
    return "numpy"


_WARNED = False


def prefilter_sigma(matrices) -> np.ndarray:
    """Gaussian sigma (source pixels, per source axis) that keeps a warp from aliasing.

    A source axis shrunk by a factor ``s < 1`` (the length of the mapped unit vector)
    gets ``sigma = (1/s - 1) / 2``, the rule scikit-image uses; 0 where nothing shrinks.
    Returns ``(N, 2)`` (sigma_x, sigma_y).
    """
    m = as_matrices(matrices)
    s = np.linalg.norm(m[..., :2, :2], axis=-2)  # column norms: how far a unit step moves
    with np.errstate(divide="ignore"):
        return np.maximum(0.0, (1.0 / s - 1.0) / 2.0)


def prefilter(
    imgs: np.ndarray, sigmas: np.ndarray, border: str, fill_values: np.ndarray, backend: str = "auto"
) -> np.ndarray:
    """Each ``(N, H, W, C)`` image blurred by a Gaussian of its own ``(sigma_x, sigma_y)``
    (``(N, 2)`` source pixels, 0 leaves an axis alone; taps to ``int(3 sigma + 0.5)``,
    float32 sums for uint8 and float32, float64 for uint16 and float64; integers rounded
    half up); samples outside follow ``border``. Images
    with nothing to blur are returned as they are."""
    sig = np.broadcast_to(_bound_sigmas(sigmas, (imgs.shape[2], imgs.shape[1])), (len(imgs), 2))
    if not np.any(sig > 0):
        return imgs
    if _resolve_backend(backend) == "numpy":
        return reference.prefilter(imgs, sig, border, fill_values)
    from .kernel import prefilter as blur

    return blur(imgs, sig, border, fill_values)


def _warp_dst_to_src(
    imgs: np.ndarray,
    dst_to_src: np.ndarray,
    out_size,
    interpolation: str,
    border: str,
    fill_values: np.ndarray,
    backend: str = "auto",
    cubic_a: float = reference.CUBIC_A,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`warp_affine` without validation, given the **inverse** matrices: ``dst_to_src``
    ``(N, 3, 3)`` maps output pixels to source pixels; ``(N, H, W, C)`` images; fill already
    checked. For callers whose inputs are valid by construction. ``cubic_a``: Keys'
    parameter of bicubic (-0.75 gives OpenCV's INTER_CUBIC). ``out``: a checked
    ``(N, H_out, W_out, C)`` array to fill, else a new one."""
    inv = dst_to_src
    n, _, _, c = imgs.shape
    if out is None:
        out = outputs.empty((n, out_size[0], out_size[1], c), imgs.dtype)
    if n:
        if _resolve_backend(backend) == "numpy":
            reference.warp_into(imgs, inv, out, interpolation, border, fill_values, cubic_a)
        else:
            from .kernel import warp_into

            warp_into(imgs, inv, out, interpolation, border, fill_values, cubic_a)
    return out


__getattr__ = renamed(
    __name__,
    {
        "BACKENDS": "affine_aug._checks.BACKENDS",
        "BORDERS": "affine_aug._checks.BORDERS",
        "CUBIC_A": "affine_aug.reference.CUBIC_A",
        "DTYPES": "affine_aug._checks.DTYPES",
        "INTERPOLATIONS": "affine_aug._checks.INTERPOLATIONS",
        "bound_sigmas": "affine_aug.warp._bound_sigmas",
        "check_choice": "affine_aug._checks.check_choice",
        "check_dtype": "affine_aug._checks.check_dtype",
        "check_fill": "affine_aug._checks.check_fill",
        "check_images": "affine_aug._checks.check_images",
        "check_matrices": "affine_aug._checks.check_matrices",
        "check_size": "affine_aug._checks.check_size",
        "resolve_backend": "affine_aug.warp._resolve_backend",
        "warp_dst_to_src": "affine_aug.warp._warp_dst_to_src",
    },
)
