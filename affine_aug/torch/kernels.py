"""RandomAffine's kernels: one free function per input type, looked up by type.

As torchvision's ``transforms/v2/functional/_geometry.py``: the transform draws the
parameters, then hands each input to the kernel of its type. A kernel is a pure function
``kernel(inpt, params, options) -> output of the same type``:

    params   ``{"matrices": (N, 3, 3), "inverses": (N, 3, 3), "size": (H, W),
             "batched": bool, "keys": (N,)}``, forward matrices (source pixel →
             destination pixel, pixel centres on integers) and their inverses
    options  :class:`WarpOptions`, the transform's settings

Boxes lie on pixel edges (torchvision's), keypoints on pixel centres (torchvision's: a
horizontal flip maps x to W - 1 - x). Frames of a video, and channels of a mask, share
their sample's matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ..matrix import invert, transform_boxes, transform_points
from .._checks import DTYPES, check_fill
from ..reference import CUBIC_A
from ..warp import _warp_dst_to_src, prefilter, prefilter_sigma
from .functional import warp_affine

__all__ = [
    "KERNELS",
    "WarpOptions",
    "affine_array",
    "affine_boxes",
    "affine_image",
    "affine_keypoints",
    "affine_mask",
    "affine_pil",
    "affine_video",
    "enclosing_rectangles",
    "kernel_for",
]

_ROTATED = {"XYWHR", "CXCYWHR", "XYXYXYXY"}
_FILLS: dict = {}  # validated fill values per (fill, dtype, channels)
_FILLS_KEPT = 256


@dataclass(frozen=True)
class WarpOptions:
    """The settings of a :class:`~affine_aug.torch.RandomAffine` that its kernels read."""

    interpolation: str = "bilinear"
    border: str = "constant"
    fill: Any = 0
    mask_fill: Any = 0
    clamp_boxes: bool | None = None
    antialias: bool = False
    cubic_a: float = CUBIC_A


def _fill_values(fill, dtype: np.dtype, channels: int) -> np.ndarray:
    key = (repr(fill), dtype.str, channels)
    values = _FILLS.get(key)
    if values is None:  # checked once per (fill, dtype, channels); safe when DataLoader threads share it
        values = check_fill(fill, channels, dtype)
        if len(_FILLS) >= _FILLS_KEPT:
            _FILLS.clear()
        _FILLS[key] = values
    return values


def _warp_np(arr: np.ndarray, inv: np.ndarray, interpolation: str, fill, options: WarpOptions) -> np.ndarray:
    """Compiled-kernel warp of (N, H, W, C) arrays with trusted inverse matrices."""
    if arr.dtype not in DTYPES:
        raise ValueError(f"images dtype must be one of uint8, uint16, float32, float64, got {arr.dtype}")
    fill_values = _fill_values(fill, arr.dtype, arr.shape[3])
    if options.antialias and interpolation != "nearest":
        arr = prefilter(arr, prefilter_sigma(invert(inv)), options.border, fill_values)
    return _warp_dst_to_src(
        arr, inv, arr.shape[1:3], interpolation, options.border, fill_values, cubic_a=options.cubic_a
    )


def _warp_tensor(
    x: torch.Tensor, sample_dims: int, interpolation: str, fill, params, options: WarpOptions
) -> torch.Tensor:
    """Warp a tensor whose last ``sample_dims`` dims are one sample (C,H,W / T,C,H,W / H,W)."""
    m = params["matrices"]
    lead = x.shape[: x.ndim - sample_dims]
    n = int(np.prod(lead)) if lead else 1
    h, w = x.shape[-2:]
    if sample_dims == 2 and params["batched"] and x.ndim == 3 and x.shape[0] == len(m) and len(m) > 1:
        lead, n = x.shape[:1], x.shape[0]  # (N, H, W) masks next to an (N, C, H, W) batch
    if len(m) not in (1, n):
        raise ValueError(f"an input of shape {tuple(x.shape)} does not match the batch of {len(m)} samples")
    per = x.reshape(n, -1, h, w)  # (samples, channels-or-frames*channels, H, W)
    if x.numel() == 0:  # an empty batch (or no channels) comes back empty
        return x.clone()
    # every device and dtype: the torch warper reads (N, C, H, W) in place (the CPU's planar kernel)
    mats = torch.as_tensor(np.array(np.broadcast_to(m, (n, 3, 3))))
    out = warp_affine(
        per,
        mats,
        interpolation=interpolation,
        border=options.border,
        fill=fill,
        antialias=options.antialias and interpolation != "nearest",
        cubic_a=options.cubic_a,
    )
    return out.reshape(x.shape)


def affine_image(image: torch.Tensor, params: dict, options: WarpOptions) -> torch.Tensor:
    """A ``tv_tensors.Image`` or a plain image tensor ``(..., C, H, W)``."""
    out = _warp_tensor(image.as_subclass(torch.Tensor), 3, options.interpolation, options.fill, params, options)
    return tv_tensors.wrap(out, like=image) if isinstance(image, tv_tensors.Image) else out


def _frames_fill(fill, channels: int, frames: int):
    """A video's fill, checked against its channels, repeated for each of its frames."""
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    if f.size not in (1, channels):
        raise ValueError(
            f"fill has {f.size} values but the video has {channels} channel{'s' if channels != 1 else ''} per frame"
        )
    return np.tile(f, frames) if f.size > 1 else fill


def affine_video(video: tv_tensors.Video, params: dict, options: WarpOptions) -> tv_tensors.Video:
    """A ``tv_tensors.Video`` ``(..., T, C, H, W)``: its frames share their sample's matrix; one
    fill value per channel ``C``, as torchvision."""
    fill = _frames_fill(options.fill, video.shape[-3], video.shape[-4])
    out = _warp_tensor(video.as_subclass(torch.Tensor), 4, options.interpolation, fill, params, options)
    return tv_tensors.wrap(out, like=video)


def affine_mask(mask: tv_tensors.Mask, params: dict, options: WarpOptions) -> tv_tensors.Mask:
    """A ``tv_tensors.Mask`` ``(..., H, W)``: nearest, filled with ``mask_fill``."""
    out = _warp_tensor(mask.as_subclass(torch.Tensor), 2, "nearest", options.mask_fill, params, options)
    return tv_tensors.wrap(out, like=mask)


def affine_array(array: np.ndarray, params: dict, options: WarpOptions) -> np.ndarray:
    """A numpy image ``(H, W)`` or ``(H, W, C)`` (the compiled kernel's dtypes)."""
    if array.ndim not in (2, 3):
        raise ValueError(f"numpy images must be (H, W) or (H, W, C), got shape {array.shape}")
    out = _warp_np(
        array.reshape(1, array.shape[0], array.shape[1], -1),
        params["inverses"][:1],
        options.interpolation,
        options.fill,
        options,
    )
    return out.reshape(array.shape)


def _pil_fill(fill, arr: np.ndarray):
    c = arr.shape[2] if arr.ndim == 3 else 1
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    return f if f.size in (1, c) else f[:c]


def affine_pil(image: PIL.Image.Image, params: dict, options: WarpOptions) -> PIL.Image.Image:
    """A PIL image, warped keeping its mode (and palette, info), as torchvision does.

    Palette ("P", "PA") and bilevel ("1") images are warped with nearest (indices are
    not intensities); "I" (int32) is interpolated in float64, rounded and clipped;
    "I;16*" and "F" use the uint16 / float32 kernels; every 8-bit mode (L, LA, RGB,
    RGBA, CMYK, YCbCr, LAB, HSV, ...) is warped channel by channel.
    """
    arr = np.asarray(image)
    interpolation = "nearest" if image.mode in ("1", "P", "PA") else options.interpolation
    fill = _pil_fill(options.fill, arr)
    if image.mode == "1":
        arr, fill = arr.astype(np.uint8), (np.asarray(fill) != 0).astype(np.float64)
    int32 = arr.dtype.kind == "i" and arr.dtype.itemsize == 4
    work = arr.astype(np.float64) if int32 else arr.astype(arr.dtype.newbyteorder("="), copy=False)
    out = _warp_np(
        work.reshape(1, arr.shape[0], arr.shape[1], -1), params["inverses"][:1], interpolation, fill, options
    ).reshape(arr.shape)
    if image.mode == "1":
        return PIL.Image.fromarray(out.astype(bool))
    if int32:
        out = np.clip(np.floor(out + 0.5), -(2**31), 2**31 - 1)
    res = image.copy()  # keeps the mode, palette and info
    res.frombytes(np.ascontiguousarray(out, dtype=arr.dtype).tobytes())
    return res


def affine_keypoints(points: tv_tensors.KeyPoints, params: dict, options: WarpOptions) -> tv_tensors.KeyPoints:
    """``tv_tensors.KeyPoints`` (pixel centres); integer keypoints are rounded and stay integer."""
    pts = transform_points(points.detach().cpu().numpy().reshape(-1, 2).astype(np.float64), params["matrices"][0])
    if not points.is_floating_point():
        pts = np.round(pts)
    out = torch.as_tensor(pts).to(points.dtype).reshape(points.shape)
    return tv_tensors.wrap(out.to(points.device), like=points)


def _clamping_mode(boxes: tv_tensors.BoundingBoxes, clamp_boxes: bool | None):
    """The boxes' own ``clamping_mode``, unless ``clamp_boxes`` overrides it."""
    mode = getattr(boxes, "clamping_mode", "soft")
    if clamp_boxes is not None:
        mode = (mode or "soft") if clamp_boxes else None
    return mode


def _rotated_boxes(
    boxes: tv_tensors.BoundingBoxes, m: np.ndarray, clamp_boxes: bool | None
) -> tv_tensors.BoundingBoxes:
    raw = boxes.as_subclass(torch.Tensor)
    corners = F.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXYXYXY)
    pts = corners.as_subclass(torch.Tensor).detach().cpu().double().numpy().reshape(-1, 4, 2) - 0.5
    mapped = transform_points(pts, m) + 0.5
    if np.linalg.det(m[:2, :2]) < 0:  # a reflection reverses the winding: restore it, as torchvision's flips do
        mapped = mapped[:, [1, 0, 3, 2]]
    mapped = enclosing_rectangles(mapped)  # a shear makes parallelograms: the tight rectangle around each
    dtype = raw.dtype if raw.is_floating_point() else torch.float32
    out = tv_tensors.wrap(torch.as_tensor(mapped.reshape(-1, 8), dtype=dtype), like=corners)
    out = F.convert_bounding_box_format(out, new_format=boxes.format)
    mode = _clamping_mode(boxes, clamp_boxes)
    if mode is not None:  # torchvision's own clamping of rotated boxes, so both agree
        out = tv_tensors.wrap(
            F.clamp_bounding_boxes(
                out.as_subclass(torch.Tensor), format=boxes.format, canvas_size=boxes.canvas_size, clamping_mode=mode
            ),
            like=out,
        )
    return out.to(raw.device)


def affine_boxes(boxes: tv_tensors.BoundingBoxes, params: dict, options: WarpOptions) -> tv_tensors.BoundingBoxes:
    """``tv_tensors.BoundingBoxes`` in every format (pixel edges). Axis-aligned boxes become the
    boxes around their mapped corners; rotated ones the tightest rectangle around them.
    ``options.clamp_boxes`` (``None``: each tensor's ``clamping_mode``) clamps to the canvas."""
    m = params["matrices"][0]
    fmt = boxes.format.value if hasattr(boxes.format, "value") else str(boxes.format)
    if fmt in _ROTATED:
        return _rotated_boxes(boxes, m, options.clamp_boxes)
    h, w = boxes.canvas_size
    raw = boxes.as_subclass(torch.Tensor)
    xyxy = F.convert_bounding_box_format(raw, old_format=boxes.format, new_format=tv_tensors.BoundingBoxFormat.XYXY)
    out = transform_boxes(xyxy.detach().cpu().double().numpy().reshape(-1, 4), m)
    clamp = options.clamp_boxes
    if clamp is None:
        clamp = getattr(boxes, "clamping_mode", "soft") is not None
    if clamp:
        out[:, 0::2] = out[:, 0::2].clip(0, w)
        out[:, 1::2] = out[:, 1::2].clip(0, h)
    t = torch.as_tensor(out, dtype=raw.dtype if raw.is_floating_point() else torch.float64)
    if not raw.is_floating_point():
        t = t.round().to(raw.dtype)
    t = F.convert_bounding_box_format(t, old_format=tv_tensors.BoundingBoxFormat.XYXY, new_format=boxes.format)
    return tv_tensors.wrap(t.reshape(raw.shape).to(raw.device), like=boxes)


def enclosing_rectangles(corners: np.ndarray) -> np.ndarray:
    """The minimum-area rectangle around each quadrilateral ``(K, 4, 2)`` → ``(K, 4, 2)``.

    For the parallelograms an affine map makes of rectangles (and any convex quadrilateral)
    the minimum-area enclosing rectangle has a side along one of the polygon's edges; both
    edge directions are tried and the smaller rectangle kept. Corners keep the input's
    order and winding: corner 0 lies on the side through the input's corner 0, and
    0→1 runs along the input's 0→1 as closely as the chosen direction allows. A
    rectangle comes back unchanged (to rounding), so pure rotations, scales and flips are
    exact; a sheared box gets the tightest rectangle that covers all of it.
    """
    p = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
    best, best_area = p.copy(), np.full(len(p), np.inf)
    e01, e03 = p[:, 1] - p[:, 0], p[:, 3] - p[:, 0]
    for edge, other in ((e01, e03), (e03, e01)):
        length = np.linalg.norm(edge, axis=1, keepdims=True)
        d = np.divide(edge, length, out=np.zeros_like(edge), where=length > 0)
        n = np.stack([-d[:, 1], d[:, 0]], axis=1)
        n *= np.where(np.sum(n * other, axis=1, keepdims=True) < 0, -1.0, 1.0)
        u, v = (d, n) if edge is e01 else (n, d)  # u along 0→1, v along 0→3 in both cases
        rel = p - p[:, :1]
        s, t = np.einsum("kij,kj->ki", rel, u), np.einsum("kij,kj->ki", rel, v)
        s0, s1, t0, t1 = s.min(1), s.max(1), t.min(1), t.max(1)
        area = np.where(length[:, 0] > 0, (s1 - s0) * (t1 - t0), np.inf)  # a zero-length edge gives no direction
        along, across = np.stack([s0, s1, s1, s0], 1), np.stack([t0, t0, t1, t1], 1)
        rect = p[:, :1] + along[..., None] * u[:, None] + across[..., None] * v[:, None]
        take = area < best_area * (1 - 1e-9)  # on a tie (a rectangle) keep the first: the input itself
        best[take], best_area[take] = rect[take], area[take]
    return best.reshape(np.shape(corners))


# The kernel of each input type; a subclass finds its nearest registered base (torchvision's rule).
KERNELS: dict[type, Callable[[Any, dict, WarpOptions], Any]] = {
    PIL.Image.Image: affine_pil,
    np.ndarray: affine_array,
    torch.Tensor: affine_image,
    tv_tensors.Image: affine_image,
    tv_tensors.Video: affine_video,
    tv_tensors.Mask: affine_mask,
    tv_tensors.BoundingBoxes: affine_boxes,
    tv_tensors.KeyPoints: affine_keypoints,
}


def kernel_for(inpt) -> Callable[[Any, dict, WarpOptions], Any] | None:
    """The kernel registered for ``type(inpt)`` or its nearest base class; ``None`` if none.

    Examples:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> kernel_for(tv_tensors.Mask(torch.zeros(4, 4))).__name__, kernel_for("a label")
        ('affine_mask', None)
    """
    for cls in type(inpt).__mro__:
        kernel = KERNELS.get(cls)
        if kernel is not None:
            return kernel
    return None
