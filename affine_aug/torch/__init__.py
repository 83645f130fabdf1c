"""Torch and torchvision integration (install the ``torch`` extra).

    warp_affine      the warper on (N, C, H, W) tensors, CPU/CUDA, differentiable
    RandomAffine     a torchvision.transforms.v2.Transform drawing from a config
    AugmentedDataset keyed (seed, epoch, index) augmentation for DataLoaders
    SpatialTransformer the STN layer (localisation net + our warper), identity at start

Modules: ``functional`` (the warper), ``transforms`` (RandomAffine: it samples),
``kernels`` (one kernel per input type, looked up by type), ``dataset``
(AugmentedDataset), ``stn``.
"""

from .functional import warp_affine
from .stn import SpatialTransformer
from .dataset import AugmentedDataset
from .transforms import RandomAffine

__all__ = ["AugmentedDataset", "RandomAffine", "SpatialTransformer", "warp_affine"]
