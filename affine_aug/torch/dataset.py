"""Keyed augmentation of a map-style dataset: item ``i`` of epoch ``e`` gets the draw keyed by
``(seed, epoch_key(e, i))`` alone, whatever the workers, batching or shuffling."""

from __future__ import annotations

import operator

import torch

from .._epoch import SharedEpoch
from ..conventions import MAX_ITEMS, epoch_key
from .transforms import RandomAffine

__all__ = ["AugmentedDataset"]


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

    Examples:
        >>> import torch
        >>> data = [(torch.rand(3, 8, 8), 0), (torch.rand(3, 8, 8), 1)]
        >>> ds = AugmentedDataset(data, {"rotate": [-10, 10]}, seed=0)
        >>> img, label = ds[1]
        >>> img.shape, label
        (torch.Size([3, 8, 8]), 1)
        >>> ds.set_epoch(1)  # call before each epoch's loop; running workers see it
    """

    def __init__(self, dataset, config, seed: int = 0, **transform_kwargs) -> None:
        self.dataset = dataset
        self.transform = RandomAffine(config, seed=seed, **transform_kwargs)
        self.seed = self.transform.seed  # checked there
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
        key = int(epoch_key(self.epoch, [operator.index(index)])[0])
        return self.transform.apply_keyed(self.dataset[index], key)
