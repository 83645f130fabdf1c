"""affine_aug: keyed random affine augmentation, correct to the pixel, fast on whole batches.

Importing this package never imports torch; the torch parts live in ``affine_aug.torch``.
"""

from .config import AffineConfig, ConfigError, load_config, save_config
from .dist import Dist
from .matrix import (
    affine_matrix,
    compose,
    from_theta,
    invert,
    to_theta,
    transform_boxes,
    transform_points,
)
from .sampling import AffineBatch, sample
from .warp import warp_affine

__version__ = "0.1.0"

__all__ = [
    "AffineBatch",
    "AffineConfig",
    "ConfigError",
    "Dist",
    "__version__",
    "affine_matrix",
    "compose",
    "from_theta",
    "invert",
    "load_config",
    "sample",
    "save_config",
    "to_theta",
    "transform_boxes",
    "transform_points",
    "warp_affine",
]
