"""One numpy image per call: a config and the warp's settings bound once.

The per-sample path of a DataLoader worker (or any loop over single images) that works
on numpy arrays without torch (``affine_aug.torch.RandomAffine`` is the torchvision
transform)::

    aug = Augment("mild", seed=0)
    out = aug(image, key)           # image (H, W) or (H, W, C); key: the sample id

``aug(image, key)`` is ``warp_affine(image[None], sample(config, [key], (H, W),
seed).matrices, ...)[0]``: the same bits (tested). The settings are checked once, when
the ``Augment`` is made, and the plain case (a C-contiguous image, an integer key, the
compiled kernel) goes from the key to the kernel in one compiled call
(``csrc/fastpath.c``: ``Keyed``), without an ``AffineBatch`` or the batch call's checks:
it draws the coins (applied, flips) itself, and for a config of constants (a flip, a
fixed rotation) keeps the matrix per coin outcome for the last image size. Anything else
goes the general way, with its checks and error messages.
"""

from __future__ import annotations

import functools

import numpy as np

from . import kernel, outputs
from ._checks import BORDERS, INTERPOLATIONS, MAX_SIDE, as_seed, check_choice, check_cubic_a, check_fill_arg, check_size
from ._one import _fill
from .config import AffineConfig, load_config
from .reference import CUBIC_A
from .sampling import _drawn_one, _plan, sample
from .warp import warp_affine

__all__ = ["Augment"]


class Augment:
    """A random affine augmentation of one numpy image per call, keyed by sample id.

    Args:
        config: an :class:`~affine_aug.AffineConfig`, a mapping, a preset name or a YAML path.
        seed: the seed of the draws; default the config's ``seed``, else 0.
        interpolation, border, fill, antialias, cubic_a: as :func:`~affine_aug.warp_affine`.
        out_size: ``(H_out, W_out)``; default the image's size.

    Call ``aug(image, key)`` with an ``(H, W)`` or ``(H, W, C)`` array (uint8, uint16,
    float32, float64) and a sample key in ``[0, 2**64)``: a new array of the image's dtype.
    Key ``k`` always gives the same transform, whatever the process or the order of calls.
    An ``Augment`` pickles (DataLoader workers started by spawn get a copy).

    Examples:
        >>> aug = Augment({"flip": {"horizontal": 1.0}})
        >>> aug(np.arange(6, dtype=np.uint8).reshape(2, 3), key=0).tolist()
        [[2, 1, 0], [5, 4, 3]]
    """

    def __init__(
        self,
        config,
        *,
        seed=None,
        interpolation: str = "bilinear",
        border: str = "constant",
        fill=0,
        antialias: bool = False,
        out_size=None,
        cubic_a: float = CUBIC_A,
    ):
        self.config = config if isinstance(config, AffineConfig) else load_config(config)
        if seed is None:
            seed = self.config.seed if self.config.seed is not None else 0
        self.seed = as_seed(seed)
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
        self.border = check_choice(border, BORDERS, "border")
        self.fill = check_fill_arg(fill)
        if not isinstance(antialias, (bool, np.bool_)):
            raise TypeError(f"antialias must be True or False, got {antialias!r}")
        self.antialias = bool(antialias)
        self.out_size = None if out_size is None else check_size(out_size, "out_size")
        self.cubic_a = check_cubic_a(cubic_a)
        self._bind()

    def _bind(self) -> None:
        """The call: the compiled one where it was built (and no antialias), else the general path."""
        settings = (self.interpolation, self.border, self.fill, self.antialias, self.out_size, self.cubic_a)
        general = functools.partial(_general, self.config, self.seed, settings)
        fast = kernel.FASTPATH
        if fast is None or not hasattr(fast, "Keyed") or not kernel.available() or self.antialias:
            self.__dict__["_call"] = general  # the last attribute set: the settings are fixed from here on
            return
        kernel.get_num_threads()  # sets kernel._THREADS, which the compiled call reads
        plan = _plan(self.config, self.seed)
        coins = tuple((False, float(c[1]), 0) if c[0] == 0 else (True, float(c[1]), int(c[2])) for c in plan.coins)
        zero_fill = type(self.fill) is int and self.fill == 0
        self.__dict__["_call"] = fast.Keyed(
            np.ndarray,
            np.empty,
            outputs.empty,
            outputs.SMALLEST,
            MAX_SIDE,
            vars(kernel),
            general,
            functools.partial(_matrix_of, self.config, plan),
            None if zero_fill else functools.partial(_kernel_fill, self.fill),
            plan.hashes,
            coins,
            plan.matrices is not None,
            kernel.INTERPOLATION_CODES[self.interpolation],
            kernel.BORDER_CODES[self.border],
            self.cubic_a,
            self.out_size,
        )

    def __call__(self, image, key) -> np.ndarray:
        return self._call(image, key)

    def __setattr__(self, name: str, value) -> None:
        if "_call" in self.__dict__:
            raise AttributeError(f"an Augment's settings are fixed when it is made (not {name!r}): make a new Augment")
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_call"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        return (
            f"Augment(seed={self.seed}, interpolation={self.interpolation!r}, border={self.border!r}, "
            f"fill={self.fill!r}, antialias={self.antialias}, out_size={self.out_size}, cubic_a={self.cubic_a})"
        )

    def matrix(self, key: int, size) -> np.ndarray:
        """The ``(3, 3)`` forward matrix that key ``key`` gives an image of ``size`` ``(H, W)``."""
        return sample(self.config, [key], size, self.seed).matrices[0]


def _matrix_of(config: AffineConfig, plan, key: int, h: int, w: int) -> np.ndarray:
    """The ``(1, 3, 3)`` matrix of one key (the plan's own for a config of constants: read only)."""
    return _drawn_one(config, plan, key, h, w)[2]


def _kernel_fill(fill, channels: int, dtype: np.dtype):
    """The fill as the kernel takes it (float64, one value per channel), or False where it
    is not valid for these images (the general path then raises its error)."""
    try:
        return _fill(fill, channels, dtype).astype(np.float64)
    except ValueError:
        return False


def _general(config: AffineConfig, seed: int, settings: tuple, image, key) -> np.ndarray:
    """The call by :func:`sample` and :func:`warp_affine`, with their checks."""
    interpolation, border, fill, antialias, out_size, cubic_a = settings
    image = np.asarray(image)
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise ValueError(f"Augment takes one non-empty image (H, W) or (H, W, C), got shape {image.shape}")
    matrices = sample(config, [as_seed(key, "key")], image.shape[:2], seed).matrices
    return warp_affine(
        image[None],
        matrices,
        out_size=out_size,
        interpolation=interpolation,
        border=border,
        fill=fill,
        antialias=antialias,
        cubic_a=cubic_a,
    )[0]
