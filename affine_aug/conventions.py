"""The conventions of affine_aug, written once. Every other module points here.

Frames
    A matrix maps **source pixel coordinates to destination pixel coordinates**
    (``src_to_dst``, forward), ``(x, y)``, origin at the top-left, **pixel centres on
    integer coordinates** (pixel ``(0, 0)`` covers ``[-0.5, 0.5)²``): OpenCV's and
    kornia's convention. Warpers invert it themselves; a function that takes the inverse
    says ``dst_to_src`` in its argument name. Matrices are ``(N, 3, 3)`` float64;
    ``(N, 2, 3)`` is accepted everywhere. Sizes are ``(H, W)``.
Boxes and keypoints
    Boxes ``(x1, y1, x2, y2)`` lie on pixel *edges* (torchvision): a box over the whole
    image is ``(0, 0, W, H)``; they are shifted by -0.5 into centre coordinates, mapped,
    and shifted back. Keypoints lie on pixel centres.
Angles
    ``rotate`` in degrees, positive = counter-clockwise on screen (``np.rot90``,
    ``PIL.Image.rotate``, ``cv2.getRotationMatrix2D``). x-shear moves x by
    ``tan(angle) * (y - cy)``.
Sample keys (the key layout)
    The transform for key ``k`` under seed ``s`` depends on ``(s, k)`` alone.
    * offline jobs (generate, gtsrb): copy ``j`` of source image ``i`` →
      :func:`copy_key` ``(i << 20) | j``; ``j < 2**20``, ``i < 2**44``.
    * training time (AugmentedDataset, hf.OnTheFly with ``per_epoch``): item ``i`` of
      epoch ``e`` → :func:`epoch_key` ``(e << 40) | i``; ``i < 2**40``, ``e < 2**23``.
    * RandomAffine without explicit keys: 0, 1, 2, ... in call order of its stream.
    The random streams of each parameter are listed in ``sampling.STREAMS``.
Default border per entry point, and why
    * ``warp_affine`` (numpy and torch), ``RandomAffine``, ``preview``: ``"constant"``
      (fill 0), as OpenCV, torchvision and kornia: the extent of the transform stays
      visible, and a user who composes with other transforms gets what peers give.
    * offline jobs (``generate``, ``gtsrb``, Ray ``AffineAugment``, Hugging Face
      helpers): ``"edge"``: training images made offline should not carry black
      corners a model can learn from; GTSRB crops come from larger photos whose
      surroundings continue the edge.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_keys, as_seed

__all__ = [
    "BORDER_OFFLINE",
    "BORDER_WARP",
    "COPY_BITS",
    "EPOCH_BITS",
    "MAX_COPIES",
    "MAX_EPOCHS",
    "MAX_ITEMS",
    "MAX_SOURCES",
    "as_keys",
    "as_seed",
    "check_epoch",
    "copy_key",
    "epoch_key",
]

COPY_BITS = 20
MAX_COPIES = 1 << COPY_BITS
MAX_SOURCES = 1 << (64 - COPY_BITS)
EPOCH_BITS = 40
MAX_EPOCHS = 1 << 23
MAX_ITEMS = 1 << EPOCH_BITS

BORDER_WARP = "constant"
BORDER_OFFLINE = "edge"


def copy_key(index, copy) -> np.ndarray:
    """Key of copy ``copy`` of source image ``index``: ``(index << 20) | copy``.

    Examples:
        >>> copy_key(3, 1).tolist(), copy_key([0, 0], [0, 1]).tolist()
        (3145729, [0, 1])
    """
    i = np.asarray(index, dtype=np.int64)
    j = np.asarray(copy, dtype=np.int64)
    if i.size and (i.min() < 0 or i.max() >= MAX_SOURCES):
        raise ValueError(
            f"source index must be in [0, 2**{64 - COPY_BITS}), got {int(i.min() if i.min() < 0 else i.max())}"
        )
    if j.size and (j.min() < 0 or j.max() >= MAX_COPIES):
        raise ValueError(f"copy must be in [0, {MAX_COPIES}), got {int(j.min() if j.min() < 0 else j.max())}")
    return (i.astype(np.uint64) << np.uint64(COPY_BITS)) | j.astype(np.uint64)


def check_epoch(epoch) -> int:
    """``epoch`` as a Python int in ``[0, 2**23)`` (the epoch field of :func:`epoch_key`).

    Examples:
        >>> check_epoch(3)
        3
    """
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)) or not 0 <= epoch < MAX_EPOCHS:
        raise ValueError(f"epoch must be an integer in [0, 2**23), got {epoch!r}")
    return int(epoch)


def epoch_key(epoch: int, index) -> np.ndarray:
    """Key of item ``index`` in epoch ``epoch``: ``(epoch << 40) | index``.

    Examples:
        >>> epoch_key(2, [0, 5]).tolist()
        [2199023255552, 2199023255557]
    """
    epoch = check_epoch(epoch)
    i = as_keys(index, "index")
    if i.size and int(i.max()) >= MAX_ITEMS:
        raise ValueError(f"index must be in [0, 2**{EPOCH_BITS}) for keyed augmentation, got {int(i.max())}")
    return (np.uint64(epoch) << np.uint64(EPOCH_BITS)) | i
