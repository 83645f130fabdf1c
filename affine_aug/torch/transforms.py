"""torchvision-compatible random affine transform, and a keyed dataset wrapper.

``RandomAffine`` is a ``torchvision.transforms.v2.Transform``: it takes PIL images,
plain tensors, numpy arrays ``(H, W[, C])`` and tv_tensors (Image, Video, Mask,
BoundingBoxes in every format, KeyPoints); every input of one call shares one transform
per sample, and a batched tensor ``(N, C, H, W)`` gets one transform *per sample*.

Conventions: matrices are forward pixel matrices (source → destination, pixel centres
on integers); boxes are on pixel edges (torchvision's), keypoints on pixel centres
(torchvision's: a horizontal flip maps x to W - 1 - x).
"""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np
import PIL.Image
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2 import functional as F

from .._epoch import SharedEpoch
from .._checks import check_cubic_a
from ..config import AffineConfig, load_config
from ..conventions import MAX_ITEMS, epoch_key
from ..matrix import invert, transform_boxes, transform_points
from ..sampling import splitmix64, sample
from ..warp import (BORDERS, CUBIC_A, DTYPES, INTERPOLATIONS, check_choice, check_fill, prefilter, prefilter_sigma,
                    warp_dst_to_src)
from .functional import warp_affine

__all__ = ["AugmentedDataset", "RandomAffine", "enclosing_rectangles"]

_ROTATED = {"XYWHR", "CXCYWHR", "XYXYXYXY"}
_KERNEL_DTYPES = (torch.uint8, torch.uint16, torch.float32, torch.float64)  # the compiled kernel's; others: torch
_BLOCK = 256  # sample keys drawn ahead per vectorized sampler call


def _combine(*values: int) -> int:
    """A 64-bit seed from several integers (SplitMix64 chaining)."""
    h = np.array([0x6A09E667F3BCC908], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in values:
            h = splitmix64(h ^ np.array([v & (2**64 - 1)], dtype=np.uint64))
    return int(h[0])


def _is_image_like(x) -> bool:
    return isinstance(x, (tv_tensors.Image, tv_tensors.Video, PIL.Image.Image))


class RandomAffine(Transform):
    """Random affine augmentation drawn from an affine_aug config.

    Args:
        config: a YAML path, a preset name (``"gtsrb"``), a mapping or an AffineConfig.
            Validated here: a bad config raises :class:`affine_aug.ConfigError` at once.
        seed: with a seed, a fresh transform draws the same sequence of transforms
            every time (sample keys 0, 1, 2, ... in call order). Without one, the
            stream derives from ``torch.initial_seed()`` (so ``torch.manual_seed``
            makes it reproducible). Inside a DataLoader worker the stream also mixes in
            the worker's seed, so workers never repeat each other. For results that
            do not depend on workers or batching at all use :class:`AugmentedDataset`.
        interpolation: ``"bilinear"``, ``"nearest"`` or ``"bicubic"`` for images and
            videos (masks are always nearest).
        antialias: prefilter each image along the axes its matrix shrinks (see
            :func:`affine_aug.warp_affine`), so strong zoom-outs do not alias. Not
            applied to nearest warps (masks, palette images).
        border: ``"constant"``, ``"edge"``, ``"reflect"``, ``"mirror"`` or ``"wrap"``.
        fill: fill value(s) for images with ``border="constant"``; masks use ``mask_fill``.
        clamp_boxes: ``None`` (default) follows each box tensor's own ``clamping_mode``
            as torchvision 0.29 does: ``"soft"`` / ``"hard"`` clamp axis-aligned boxes to the
            canvas, ``None`` leaves them unclamped. ``True`` / ``False`` override it (this
            argument wins). Degenerate boxes are kept, for ``v2.SanitizeBoundingBoxes``.
        cubic_a: Keys' parameter of ``"bicubic"``, in ``[-1, 0]``: -0.5 (PIL's, the default)
            or -0.75 (torch's and OpenCV's).
    """

    _transformed_types = (torch.Tensor, PIL.Image.Image, np.ndarray)

    def __init__(self, config, *, seed: int | None = None, interpolation: str = "bilinear", border: str = "constant",
                 fill=0, mask_fill=0, clamp_boxes: bool | None = None, antialias: bool = False,
                 cubic_a: float = CUBIC_A) -> None:
        super().__init__()
        self.config: AffineConfig = load_config(config)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        self.seed = seed
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
        self.border = check_choice(border, BORDERS, "border")
        self.fill = _check_fill_arg(fill, "fill")
        self.mask_fill = _check_fill_arg(mask_fill, "mask_fill")
        self.clamp_boxes = clamp_boxes
        if not isinstance(antialias, bool):
            raise ValueError(f"antialias must be True or False, got {antialias!r}")
        self.antialias = antialias
        self.cubic_a = check_cubic_a(cubic_a)
        self._counter = 0
        self._stream: tuple[int, int] | None = None  # (pid, seed) of the current process
        self._block: dict | None = None  # parameters drawn ahead (see make_params)
        self._fills: dict = {}  # validated fill values per (fill, dtype, channels)

    @classmethod
    def from_config(cls, config, **kwargs) -> "RandomAffine":
        return cls(config, **kwargs)

    def extra_repr(self) -> str:
        src = self.config.source or "mapping"
        return (f"config={src!r}, seed={self.seed}, interpolation={self.interpolation!r}, border={self.border!r}, "
                f"fill={self.fill}, antialias={self.antialias}")

    # ------------------------------------------------------------------ randomness

    def _stream_seed(self) -> int:
        pid = os.getpid()
        if self._stream is None or self._stream[0] != pid:
            info = torch.utils.data.get_worker_info()
            base = self.seed if self.seed is not None else torch.initial_seed()
            seed = base if info is None else _combine(base, info.seed, info.id)
            if self._stream is not None or info is not None:
                self._counter = 0
            self._stream = (pid, seed)
        return self._stream[1]

    def _needs_transform_list(self, flat_inputs: list[Any]) -> list[bool]:
        # As torchvision: plain tensors (and here numpy arrays) are images only when no
        # explicit image/video is present, and then only the first one.
        # numpy arrays never are when the sample holds a PIL image or an image tensor
        # (torchvision never transforms arrays); alone, the first 2-D/3-D array is the image.
        plain_is_image = not any(_is_image_like(x) for x in flat_inputs)
        array_is_image = plain_is_image and not any(type(x) is torch.Tensor for x in flat_inputs)
        out = []
        for x in flat_inputs:
            needs = isinstance(x, self._transformed_types)
            if needs and type(x) is torch.Tensor:
                needs, plain_is_image = plain_is_image, False
            elif needs and isinstance(x, np.ndarray):
                needs = array_is_image and x.ndim in (2, 3)
                array_is_image = array_is_image and not needs
            out.append(needs)
        return out

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        n, size = _batch_and_size(flat_inputs)
        seed = self._stream_seed()
        start = self._counter
        b = self._block
        if b is None or b["seed"] != seed or b["size"] != size or not b["start"] <= start <= start + n <= b["start"] + len(b["m"]):
            # Draw the next keys ahead in one vectorized call; keyed draws make this
            # identical to drawing per call, and per-sample overhead small.
            keys = np.arange(start, start + max(n, _BLOCK), dtype=np.uint64)
            m = sample(self.config, keys, size=size, seed=seed).matrices
            b = self._block = {"seed": seed, "size": size, "start": start, "m": m, "inv": invert(m)}
        i = start - b["start"]
        self._counter += n
        keys = np.arange(start, start + n, dtype=np.uint64)
        return {"matrices": b["m"][i : i + n], "inverses": b["inv"][i : i + n], "size": size,
                "batched": _is_batched(flat_inputs), "keys": keys}

    def params_for(self, keys, size, seed: int, batched: bool) -> dict[str, Any]:
        """Parameters for explicit sample keys (used by :class:`AugmentedDataset`)."""
        batch = sample(self.config, keys, size=size, seed=seed)
        return {"matrices": batch.matrices, "inverses": invert(batch.matrices), "size": size, "batched": batched,
                "keys": batch.keys}

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_block"] = None  # drawn-ahead parameters are a cache, not state
        state["_fills"] = {}
        return state

    def _fill_values(self, fill, dtype: np.dtype, channels: int) -> np.ndarray:
        key = (repr(fill), dtype.str, channels)
        if key not in self._fills:
            self._fills[key] = check_fill(fill, channels, dtype)
        return self._fills[key]

    def _warp_np(self, arr: np.ndarray, inv: np.ndarray, interpolation: str, fill) -> np.ndarray:
        """Compiled-kernel warp of (N, H, W, C) arrays with trusted inverse matrices."""
        if arr.dtype not in DTYPES:
            raise ValueError(f"images dtype must be one of uint8, uint16, float32, float64, got {arr.dtype}")
        fill_values = self._fill_values(fill, arr.dtype, arr.shape[3])
        if self.antialias and interpolation != "nearest":
            arr = prefilter(arr, prefilter_sigma(invert(inv)), self.border, fill_values)
        return warp_dst_to_src(arr, inv, arr.shape[1:3], interpolation, self.border, fill_values, cubic_a=self.cubic_a)

    def _warp_pil(self, im: PIL.Image.Image, inv: np.ndarray) -> PIL.Image.Image:
        """Warp a PIL image keeping its mode (and palette, info), as torchvision does.

        Palette ("P", "PA") and bilevel ("1") images are warped with nearest (indices are
        not intensities); "I" (int32) is interpolated in float64, rounded and clipped;
        "I;16*" and "F" use the uint16 / float32 kernels; every 8-bit mode (L, LA, RGB,
        RGBA, CMYK, YCbCr, LAB, HSV, ...) is warped channel by channel.
        """
        arr = np.asarray(im)
        interpolation = "nearest" if im.mode in ("1", "P", "PA") else self.interpolation
        fill = _pil_fill(self.fill, arr)
        if im.mode == "1":
            arr, fill = arr.astype(np.uint8), (np.asarray(fill) != 0).astype(np.float64)
        work = arr.astype(np.float64) if arr.dtype.kind == "i" and arr.dtype.itemsize == 4 else arr.astype(arr.dtype.newbyteorder("="), copy=False)
        out = self._warp_np(work.reshape(1, arr.shape[0], arr.shape[1], -1), inv, interpolation, fill).reshape(arr.shape)
        if im.mode == "1":
            return PIL.Image.fromarray(out.astype(bool))
        if arr.dtype.kind == "i" and arr.dtype.itemsize == 4:
            out = np.clip(np.floor(out + 0.5), -(2**31), 2**31 - 1)
        res = im.copy()  # keeps the mode, palette and info
        res.frombytes(np.ascontiguousarray(out, dtype=arr.dtype).tobytes())
        return res

    # ------------------------------------------------------------------ kernels

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        m = params["matrices"]
        if len(m) == 0:  # an empty batch: nothing to warp (torchvision returns the input)
            return inpt.clone() if isinstance(inpt, torch.Tensor) else inpt
        if isinstance(inpt, PIL.Image.Image):
            return self._warp_pil(inpt, params["inverses"][:1])
        if isinstance(inpt, np.ndarray):
            if inpt.ndim not in (2, 3):
                raise ValueError(f"numpy images must be (H, W) or (H, W, C), got shape {inpt.shape}")
            out = self._warp_np(inpt.reshape(1, inpt.shape[0], inpt.shape[1], -1), params["inverses"][:1], self.interpolation, self.fill)
            return out.reshape(inpt.shape)
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return self._boxes(inpt, m[0])
        if isinstance(inpt, tv_tensors.KeyPoints):
            pts = transform_points(inpt.detach().cpu().numpy().reshape(-1, 2).astype(np.float64), m[0])
            if not inpt.is_floating_point():  # integer keypoints stay integer: rounded, as boxes are
                pts = np.round(pts)
            out = torch.as_tensor(pts).to(inpt.dtype).reshape(inpt.shape)
            return tv_tensors.wrap(out.to(inpt.device), like=inpt)
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(self._pixels(inpt.as_subclass(torch.Tensor), m, 2, "nearest", self.mask_fill, params), like=inpt)
        if isinstance(inpt, tv_tensors.Video):
            fill = _frames_fill(self.fill, inpt.shape[-3], inpt.shape[-4])
            return tv_tensors.wrap(self._pixels(inpt.as_subclass(torch.Tensor), m, 4, self.interpolation, fill, params), like=inpt)
        if isinstance(inpt, torch.Tensor):  # tv_tensors.Image or a plain tensor
            out = self._pixels(inpt.as_subclass(torch.Tensor), m, 3, self.interpolation, self.fill, params)
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.Image) else out
        return inpt

    def _pixels(self, x: torch.Tensor, m: np.ndarray, sample_dims: int, interpolation: str, fill, params) -> torch.Tensor:
        """Warp a tensor whose last ``sample_dims`` dims are one sample (C,H,W / T,C,H,W / H,W)."""
        lead = x.shape[: x.ndim - sample_dims]
        n = int(np.prod(lead)) if lead else 1
        h, w = x.shape[-2:]
        if sample_dims == 2 and params["batched"] and x.ndim == 3 and x.shape[0] == len(m) and len(m) > 1:
            lead, n = x.shape[:1], x.shape[0]  # (N, H, W) masks next to an (N, C, H, W) batch
        if len(m) not in (1, n):
            raise ValueError(f"an input of shape {tuple(x.shape)} does not match the batch of {len(m)} samples")
        per = x.reshape(n, -1, h, w)  # (samples, channels-or-frames*channels, H, W)
        # a video's frames (and a mask's channels) share their sample's matrix
        if x.device.type == "cpu" and not x.requires_grad and x.dtype in _KERNEL_DTYPES:
            inv = np.broadcast_to(params["inverses"], (n, 3, 3)) if len(m) == 1 else params["inverses"]
            out = self._warp_np(per.permute(0, 2, 3, 1).numpy(), inv, interpolation, fill)
            return torch.from_numpy(out).permute(0, 3, 1, 2).reshape(x.shape).contiguous()
        mats = torch.as_tensor(np.array(np.broadcast_to(m, (n, 3, 3))))
        out = warp_affine(per, mats, interpolation=interpolation, border=self.border, fill=fill,
                          antialias=self.antialias and interpolation != "nearest", cubic_a=self.cubic_a)
        return out.reshape(x.shape)

    def _boxes(self, boxes: tv_tensors.BoundingBoxes, m: np.ndarray) -> tv_tensors.BoundingBoxes:
        fmt = boxes.format.value if hasattr(boxes.format, "value") else str(boxes.format)
        h, w = boxes.canvas_size
        raw = boxes.as_subclass(torch.Tensor)
        if fmt in _ROTATED:
            corners = F.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXYXYXY)
            pts = corners.as_subclass(torch.Tensor).detach().cpu().double().numpy().reshape(-1, 4, 2) - 0.5
            mapped = transform_points(pts, m) + 0.5
            if np.linalg.det(m[:2, :2]) < 0:  # a reflection reverses the winding: restore it, as torchvision's flips do
                mapped = mapped[:, [1, 0, 3, 2]]
            mapped = enclosing_rectangles(mapped)  # a shear makes parallelograms: the tight rectangle around each
            out = tv_tensors.wrap(torch.as_tensor(mapped.reshape(-1, 8), dtype=raw.dtype if raw.is_floating_point() else torch.float32),
                                  like=corners)
            out = F.convert_bounding_box_format(out, new_format=boxes.format)
            mode = getattr(boxes, "clamping_mode", "soft")
            if self.clamp_boxes is not None:  # the argument wins over the boxes' own mode
                mode = (mode or "soft") if self.clamp_boxes else None
            if mode is not None:  # torchvision's own clamping of rotated boxes, so both agree
                out = tv_tensors.wrap(F.clamp_bounding_boxes(out.as_subclass(torch.Tensor), format=boxes.format,
                                                             canvas_size=boxes.canvas_size, clamping_mode=mode), like=out)
            return out.to(raw.device)
        xyxy = F.convert_bounding_box_format(raw, old_format=boxes.format, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        out = transform_boxes(xyxy.detach().cpu().double().numpy().reshape(-1, 4), m)
        clamp = self.clamp_boxes if self.clamp_boxes is not None else getattr(boxes, "clamping_mode", "soft") is not None
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
        rect = p[:, :1] + np.stack([s0, s1, s1, s0], 1)[..., None] * u[:, None] + np.stack([t0, t0, t1, t1], 1)[..., None] * v[:, None]
        take = area < best_area * (1 - 1e-9)  # on a tie (a rectangle) keep the first: the input itself
        best[take], best_area[take] = rect[take], area[take]
    return best.reshape(np.shape(corners))


def _is_real(v) -> bool:
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


def _check_fill_arg(fill, name: str):
    """A fill argument checked at construction, as torchvision checks it: a finite number or
    a non-empty flat sequence of them (one per channel; their count and range are checked
    against each input's channels and dtype)."""
    if _is_real(fill):
        values = [fill]
    elif isinstance(fill, (list, tuple, np.ndarray)):
        values = list(np.asarray(fill, dtype=object).reshape(-1))
        if not all(_is_real(v) for v in values):
            raise TypeError(f"{name} must be a number or a sequence of numbers (one per channel), got {fill!r}")
        if np.ndim(fill) > 1 or not values:
            raise ValueError(f"{name} must be a number or a flat, non-empty sequence of numbers (one per channel), "
                             f"got {fill!r}")
    else:
        raise TypeError(f"{name} must be a number or a sequence of numbers (one per channel), got {fill!r}")
    if not all(np.isfinite(float(v)) for v in values):
        raise ValueError(f"{name} must be finite, got {fill!r}")
    return fill


def _frames_fill(fill, channels: int, frames: int):
    """A video's fill, checked against its channels, repeated for each of its frames."""
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    if f.size not in (1, channels):
        raise ValueError(f"fill has {f.size} values but the video has {channels} channel{'s' if channels != 1 else ''} "
                         "per frame")
    return np.tile(f, frames) if f.size > 1 else fill


def _pil_fill(fill, arr: np.ndarray):
    c = arr.shape[2] if arr.ndim == 3 else 1
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    return f if f.size in (1, c) else f[:c]


def _is_batched(flat_inputs) -> bool:
    for x in flat_inputs:
        if isinstance(x, tv_tensors.Video):
            return x.ndim > 4
        if isinstance(x, torch.Tensor) and not isinstance(x, (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            return x.ndim > 3
    return False


def _batch_and_size(flat_inputs) -> tuple[int, tuple[int, int]]:
    """Number of samples (leading dims of the image/video) and the (H, W) canvas."""
    for x in flat_inputs:
        if isinstance(x, PIL.Image.Image):
            return 1, (x.height, x.width)
        if isinstance(x, np.ndarray):
            if x.ndim not in (2, 3):
                raise ValueError(f"numpy images must be (H, W) or (H, W, C), got shape {x.shape}")
            return 1, x.shape[:2]
        if isinstance(x, tv_tensors.Video):
            return (int(np.prod(x.shape[:-4])) if x.ndim > 4 else 1), tuple(x.shape[-2:])
        if isinstance(x, torch.Tensor) and not isinstance(x, (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            if x.ndim < 3:
                raise ValueError(f"image tensors must be (..., C, H, W), got shape {tuple(x.shape)}; "
                                 "give a single-channel image as (1, H, W)")
            return (int(np.prod(x.shape[:-3])) if x.ndim > 3 else 1), tuple(x.shape[-2:])
    for x in flat_inputs:
        if isinstance(x, tv_tensors.Mask):
            return 1, tuple(x.shape[-2:])
        if isinstance(x, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            return 1, tuple(x.canvas_size)
    raise TypeError("RandomAffine found no image, video, mask, boxes or keypoints in its input")


class AugmentedDataset(torch.utils.data.Dataset):
    """Wrap a map-style dataset: item ``i`` of epoch ``e`` gets the transform keyed by
    ``(seed, e, i)`` alone, so results are identical with 0 or N DataLoader workers,
    any batch size and any shuffling.

    Images, videos, masks, boxes and keypoints found in the item (a tuple, dict, ...)
    all get that one transform; everything else (labels, strings) passes through.
    Sample key of item i in epoch e: :func:`affine_aug.conventions.epoch_key`.

    :meth:`set_epoch` reaches DataLoader workers that are already running
    (``persistent_workers=True``): the epoch lives in memory shared with them. Call it
    before iterating the epoch's loader, as ``DistributedSampler.set_epoch``.
    """

    def __init__(self, dataset, config, seed: int = 0, **transform_kwargs) -> None:
        self.dataset = dataset
        self.transform = RandomAffine(config, seed=seed, **transform_kwargs)
        self.seed = seed
        self._epoch = SharedEpoch(0)

    @property
    def epoch(self) -> int:
        return self._epoch.get()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.set(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if not 0 <= operator.index(index) < MAX_ITEMS:
            raise IndexError(f"index {index} out of range for keyed augmentation (0 <= index < 2**40)")
        item = self.dataset[index]
        t = self.transform
        flat, spec = tree_flatten(item)
        needs = t._needs_transform_list(flat)
        chosen = [x for x, nd in zip(flat, needs) if nd]
        if not chosen:
            return item
        _, size = _batch_and_size(chosen)
        params = t.params_for(epoch_key(self.epoch, [operator.index(index)]), size, self.seed, batched=False)
        return tree_unflatten([t.transform(x, params) if nd else x for x, nd in zip(flat, needs)], spec)
