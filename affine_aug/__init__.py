"""affine_aug: keyed random affine augmentation, correct to the pixel, fast on whole batches.

Importing this package never imports torch; the torch parts live in ``affine_aug.torch``.
"""

from .config import AffineConfig, ConfigError, load_config, save_config
from .errors import AffineAugError
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
from .kernel import get_num_threads, set_num_threads
from .outputs import get_output_cache, set_output_cache
from .warp import prefilter_sigma, warp_affine
from .augment import Augment

__version__ = "0.1.0"

__all__ = [
    "AffineAugError",
    "Augment",
    "AffineBatch",
    "AffineConfig",
    "ConfigError",
    "Dist",
    "__version__",
    "affine_matrix",
    "compose",
    "from_theta",
    "get_num_threads",
    "get_output_cache",
    "invert",
    "load_config",
    "sample",
    "prefilter_sigma",
    "save_config",
    "set_num_threads",
    "set_output_cache",
    "to_theta",
    "transform_boxes",
    "transform_points",
    "warp_affine",
]
