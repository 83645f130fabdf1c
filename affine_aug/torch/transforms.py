"""torchvision-compatible random affine transform: it samples, its kernels warp.

``RandomAffine`` is a ``torchvision.transforms.v2.Transform``: it takes PIL images,
plain tensors, numpy arrays ``(H, W[, C])`` and tv_tensors (Image, Video, Mask,
BoundingBoxes in every format, KeyPoints); every input of one call shares one transform
per sample, and a batched tensor ``(N, C, H, W)`` gets one transform *per sample*. It
draws the matrices (keyed, see :mod:`affine_aug.conventions`), then hands each input to
the kernel of its type (:mod:`affine_aug.torch.kernels`).

Conventions: matrices are forward pixel matrices (source → destination, pixel centres
on integers); boxes are on pixel edges (torchvision's), keypoints on pixel centres
(torchvision's: a horizontal flip maps x to W - 1 - x).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform

from .._checks import as_seed, check_cubic_a, check_fill_arg
from ..config import AffineConfig, load_config
from ..matrix import invert
from .._checks import BORDERS, INTERPOLATIONS, check_choice
from ..reference import CUBIC_A
from ..sampling import _splitmix64, sample
from .kernels import WarpOptions, enclosing_rectangles, kernel_for

if TYPE_CHECKING:  # at run time __getattr__ below provides it (affine_aug.torch.dataset imports this module)
    from .dataset import AugmentedDataset

__all__ = ["AugmentedDataset", "RandomAffine", "enclosing_rectangles"]

_BLOCK = 256  # sample keys drawn ahead per vectorized sampler call


def _combine(*values: int) -> int:
    """A 64-bit seed from several integers (SplitMix64 chaining)."""
    h = np.array([0x6A09E667F3BCC908], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in values:
            h = _splitmix64(h ^ np.array([v & (2**64 - 1)], dtype=np.uint64))
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
        fill: fill value(s) for images with ``border="constant"``: a number, or one per
            channel (a video's: per channel ``C``, the same for every frame); masks use
            ``mask_fill``. Checked here, as torchvision checks it (a finite number or a flat
            sequence of them); the count and range are checked against each input.
        clamp_boxes: ``None`` (default) follows each box tensor's own ``clamping_mode``
            as torchvision 0.29 does: ``"soft"`` / ``"hard"`` clamp axis-aligned boxes to the
            canvas, ``None`` leaves them unclamped. ``True`` / ``False`` override it (this
            argument wins). Degenerate boxes are kept, for ``v2.SanitizeBoundingBoxes``.
        cubic_a: Keys' parameter of ``"bicubic"``, in ``[-1, 0]``: -0.5 (PIL's, the default)
            or -0.75 (torch's and OpenCV's).

    Examples:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> t = RandomAffine({"rotate": [-10, 10]}, seed=0)
        >>> boxes = tv_tensors.BoundingBoxes([[2, 2, 6, 6]], format="XYXY", canvas_size=(8, 8))
        >>> img, boxes = t(tv_tensors.Image(torch.zeros(3, 8, 8)), boxes)  # one transform for both
        >>> img.shape, boxes.shape
        (torch.Size([3, 8, 8]), torch.Size([1, 4]))
    """

    _transformed_types = (torch.Tensor, PIL.Image.Image, np.ndarray)

    def __init__(
        self,
        config,
        *,
        seed: int | None = None,
        interpolation: str = "bilinear",
        border: str = "constant",
        fill=0,
        mask_fill=0,
        clamp_boxes: bool | None = None,
        antialias: bool = False,
        cubic_a: float = CUBIC_A,
    ) -> None:
        super().__init__()
        self.config: AffineConfig = load_config(config)
        self.seed = None if seed is None else as_seed(seed)
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
        self.border = check_choice(border, BORDERS, "border")
        self.fill = check_fill_arg(fill, "fill")
        self.mask_fill = check_fill_arg(mask_fill, "mask_fill")
        if not (clamp_boxes is None or isinstance(clamp_boxes, (bool, np.bool_))):
            raise ValueError(f"clamp_boxes must be None, True or False, got {clamp_boxes!r}")
        self.clamp_boxes = None if clamp_boxes is None else bool(clamp_boxes)
        if not isinstance(antialias, bool):
            raise ValueError(f"antialias must be True or False, got {antialias!r}")
        self.antialias = antialias
        self.cubic_a = check_cubic_a(cubic_a)
        self._counter = 0
        self._stream: tuple[int, int] | None = None  # (pid, seed) of the current process
        self._block: dict | None = None  # parameters drawn ahead (see make_params)

    @classmethod
    def from_config(cls, config, **kwargs) -> RandomAffine:
        return cls(config, **kwargs)

    def extra_repr(self) -> str:
        src = self.config.source or "mapping"
        return (
            f"config={src!r}, seed={self.seed}, interpolation={self.interpolation!r}, border={self.border!r}, "
            f"fill={self.fill}, antialias={self.antialias}"
        )

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
        if (
            b is None
            or b["seed"] != seed
            or b["size"] != size
            or not b["start"] <= start <= start + n <= b["start"] + len(b["m"])
        ):
            # Draw the next keys ahead in one vectorized call; keyed draws make this
            # identical to drawing per call, and per-sample overhead small.
            keys = np.arange(start, start + max(n, _BLOCK), dtype=np.uint64)
            m = sample(self.config, keys, size=size, seed=seed).matrices
            b = self._block = {"seed": seed, "size": size, "start": start, "m": m, "inv": invert(m)}
        i = start - b["start"]
        self._counter += n
        keys = np.arange(start, start + n, dtype=np.uint64)
        return {
            "matrices": b["m"][i : i + n],
            "inverses": b["inv"][i : i + n],
            "size": size,
            "batched": _is_batched(flat_inputs),
            "keys": keys,
        }

    def params_for(self, keys, size, seed: int, batched: bool) -> dict[str, Any]:
        """Parameters for explicit sample keys (used by :class:`AugmentedDataset`)."""
        batch = sample(self.config, keys, size=size, seed=seed)
        return {
            "matrices": batch.matrices,
            "inverses": invert(batch.matrices),
            "size": size,
            "batched": batched,
            "keys": batch.keys,
        }

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_block"] = None  # drawn-ahead parameters are a cache, not state
        return state

    def apply_keyed(self, inputs: Any, key: int) -> Any:
        """``inputs`` (one sample: an image, or a tuple / dict of an image and its targets)
        transformed by the draw of sample key ``key`` under this transform's seed. The
        call-order stream is left alone. Inputs are chosen as :meth:`forward` chooses them.

        Examples:
            >>> import torch
            >>> t = RandomAffine({"rotate": [-10, 10]}, seed=0)
            >>> img = torch.rand(1, 8, 8)
            >>> torch.equal(t.apply_keyed(img, 7), t.apply_keyed(img, 7))
            True
        """
        if self.seed is None:
            raise ValueError("apply_keyed needs a transform with a seed: RandomAffine(config, seed=...)")
        flat, spec = tree_flatten(inputs)
        needs = self._needs_transform_list(flat)
        chosen = [x for x, nd in zip(flat, needs) if nd]
        if not chosen:
            return inputs
        _, size = _batch_and_size(chosen)
        params = self.params_for(np.array([key], dtype=np.uint64), size, self.seed, batched=False)
        return tree_unflatten([self.transform(x, params) if nd else x for x, nd in zip(flat, needs)], spec)

    def options(self) -> WarpOptions:
        """The settings the kernels read, as they stand now."""
        return WarpOptions(
            interpolation=self.interpolation,
            border=self.border,
            fill=self.fill,
            mask_fill=self.mask_fill,
            clamp_boxes=self.clamp_boxes,
            antialias=self.antialias,
            cubic_a=self.cubic_a,
        )

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if len(params["matrices"]) == 0:  # an empty batch: nothing to warp (torchvision returns the input)
            return inpt.clone() if isinstance(inpt, torch.Tensor) else inpt
        kernel = kernel_for(inpt)
        return inpt if kernel is None else kernel(inpt, params, self.options())


def _is_batched(flat_inputs) -> bool:
    for x in flat_inputs:
        if isinstance(x, tv_tensors.Video):
            return x.ndim > 4
        if isinstance(x, torch.Tensor) and not isinstance(
            x, (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)
        ):
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
        if isinstance(x, torch.Tensor) and not isinstance(
            x, (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)
        ):
            if x.ndim < 3:
                raise ValueError(
                    f"image tensors must be (..., C, H, W), got shape {tuple(x.shape)}; "
                    "give a single-channel image as (1, H, W)"
                )
            return (int(np.prod(x.shape[:-3])) if x.ndim > 3 else 1), tuple(x.shape[-2:])
    for x in flat_inputs:
        if isinstance(x, tv_tensors.Mask):
            return 1, tuple(x.shape[-2:])
        if isinstance(x, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            return 1, tuple(x.canvas_size)
    raise TypeError("RandomAffine found no image, video, mask, boxes or keypoints in its input")


def __getattr__(name: str):
    if name == "AugmentedDataset":  # it lives in affine_aug.torch.dataset (which imports this module)
        from .dataset import AugmentedDataset

        return AugmentedDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
