"""Keyed, vectorized sampling: config + sample keys → parameters → (N, 3, 3) matrices.

Randomness is counter-based: every random number is a hash of (seed, key, stream), where
``stream`` names the parameter. The transform drawn for sample key ``k`` under seed
``s`` therefore depends on ``(s, k)`` alone, never on batch size, order, worker count
or process. There is no global RNG and no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .config import AffineConfig, load_config
from .conventions import as_keys, as_seed
from .dist import Dist, draw
from .matrix import compose_steps, check_size

__all__ = ["AffineBatch", "sample", "uniform_keyed"]

# One stream per parameter: adding a parameter never changes the draws of the others.
STREAMS = {
    "applied": 1,
    "flip_x": 2,
    "flip_y": 3,
    "rotate": 4,
    "scale_x": 5,
    "scale_y": 6,
    "shear_x": 7,
    "shear_y": 8,
    "translate_x": 9,
    "translate_y": 10,
    "center_x": 11,
    "center_y": 12,
    "track_split": 101,  # GTSRB: which tracks are held out for validation
}
PARAMS = ("rotate", "scale_x", "scale_y", "shear_x", "shear_y", "translate_x", "translate_y",
          "center_x", "center_y", "flip_x", "flip_y", "applied")  # fmt: skip

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: a bijective 64-bit hash (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform_keyed(seed: int, keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in the open interval (0, 1), one per key, a pure function of (seed, key, stream)."""
    with np.errstate(over="ignore"):
        s = splitmix64(np.array([seed], dtype=np.uint64) ^ (np.uint64(stream) * _GOLDEN))
        h = splitmix64(splitmix64(keys.astype(np.uint64) ^ s) + _GOLDEN)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True, eq=False)
class AffineBatch:
    """A batch of sampled transforms.

    Attributes:
        matrices: ``(N, 3, 3)`` float64 forward pixel matrices (source → destination,
            ``(x, y)``, pixel centres on integers).
        params: mapping of ``(N,)`` arrays: ``rotate`` (deg), ``scale_x``, ``scale_y``,
            ``shear_x``, ``shear_y`` (deg), ``translate_x``, ``translate_y`` (pixels),
            ``center_x``, ``center_y`` (pixels), ``flip_x``, ``flip_y``, ``applied`` (bool).
            Samples that were not applied hold identity values.
        keys: ``(N,)`` uint64 sample keys; seed: the seed used; size: ``(H, W)``.
    """

    matrices: np.ndarray
    params: Mapping[str, np.ndarray]
    keys: np.ndarray
    seed: int
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.matrices)


def sample(config, keys, size, seed: int | None = None) -> AffineBatch:
    """Draw one transform per sample key.

    Args:
        config: an :class:`AffineConfig`, a mapping, or a path to a YAML file.
        keys: ``(N,)`` non-negative integer sample ids. The transform for key ``k``
            depends only on ``(seed, k)``.
        size: ``(H, W)`` of the images the matrices are for (centre, fraction units).
        seed: overrides the config's ``seed``; default ``config.seed``, else 0.

    Returns:
        :class:`AffineBatch` with ``(N, 3, 3)`` forward pixel matrices and their params.

    Example:
        >>> batch = sample({"rotate": [-10, 10]}, keys=[0, 1, 2], size=(32, 32), seed=0)
        >>> batch.matrices.shape
        (3, 3, 3)
        >>> again = sample({"rotate": [-10, 10]}, keys=[1], size=(32, 32), seed=0)  # key 1 alone
        >>> bool((again.matrices[0] == batch.matrices[1]).all())
        True
    """
    cfg = config if isinstance(config, AffineConfig) else load_config(config)
    h, w = check_size(size, "size")
    keys = as_keys(keys)
    seed = as_seed(seed if seed is not None else (cfg.seed if cfg.seed is not None else 0))

    n = len(keys)

    def u(name):
        return uniform_keyed(seed, keys, STREAMS[name])

    def value(name, d: Dist):  # constants need no random numbers (scalars broadcast below)
        return float(d.value) if d.kind == "constant" else draw(d, u(name))

    def coin(name, prob: float):
        return np.bool_(prob >= 1.0) if prob <= 0.0 or prob >= 1.0 else u(name) < prob

    applied = coin("applied", cfg.p)
    p = {
        "rotate": value("rotate", cfg.rotate),
        "scale_x": value("scale_x", cfg.scale_x),
        "shear_x": value("shear_x", cfg.shear_x),
        "shear_y": value("shear_y", cfg.shear_y),
        "translate_x": value("translate_x", cfg.translate_x),
        "translate_y": value("translate_y", cfg.translate_y),
    }
    p["scale_y"] = p["scale_x"] if cfg.scale_y is None else value("scale_y", cfg.scale_y)
    if cfg.translate_unit == "fraction":
        p["translate_x"] = p["translate_x"] * w
        p["translate_y"] = p["translate_y"] * h
    if not np.all(applied):
        neutral = {"scale_x": 1.0, "scale_y": 1.0}
        p = {k: np.where(applied, v, neutral.get(k, 0.0)) for k, v in p.items()}
    p["center_x"] = value("center_x", cfg.center_x) * (w - 1)
    p["center_y"] = value("center_y", cfg.center_y) * (h - 1)
    p["flip_x"] = applied & coin("flip_x", cfg.flip_horizontal)
    p["flip_y"] = applied & coin("flip_y", cfg.flip_vertical)
    p["applied"] = applied
    m = compose_steps(p["rotate"], p["scale_x"], p["scale_y"], p["shear_x"], p["shear_y"], p["translate_x"],
                       p["translate_y"], p["center_x"], p["center_y"], p["flip_x"], p["flip_y"], cfg.order)
    matrices = np.array(np.broadcast_to(m, (n, 3, 3)))
    params = {k: np.array(np.broadcast_to(p[k], (n,))) for k in PARAMS}
    if not np.all(applied):
        matrices[~params["applied"]] = np.eye(3)
    return AffineBatch(matrices, params, keys, seed, (h, w))
