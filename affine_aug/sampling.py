"""Keyed, vectorized sampling: config + sample keys → parameters → (N, 3, 3) matrices.

Randomness is counter-based: every random number is a hash of (seed, key, stream), where
``stream`` names the parameter. The transform drawn for sample key ``k`` under seed
``s`` therefore depends on ``(s, k)`` alone, never on batch size, order, worker count
or process. There is no global RNG and no state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .config import AffineConfig, Dist, load_config
from .matrix import _compose_steps, _size

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
}
PARAMS = ("rotate", "scale_x", "scale_y", "shear_x", "shear_y", "translate_x", "translate_y",
          "center_x", "center_y", "flip_x", "flip_y", "applied")  # fmt: skip

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: a bijective 64-bit hash (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform_keyed(seed: int, keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in the open interval (0, 1), one per key, a pure function of (seed, key, stream)."""
    with np.errstate(over="ignore"):
        s = _mix(np.array([seed], dtype=np.uint64) ^ (np.uint64(stream) * _GOLDEN))
        h = _mix(_mix(keys.astype(np.uint64) ^ s) + _GOLDEN)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


# ----------------------------------------------------------------------------- distributions


def _phi(x: float) -> float:
    """Standard normal CDF (scalar), accurate in the tails."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_mass(d: Dist) -> float:
    """Probability mass of N(mean, std) inside the truncation [low, high]."""
    a = -math.inf if d.low is None else (d.low - d.mean) / d.std
    b = math.inf if d.high is None else (d.high - d.mean) / d.std
    if a > 0:  # upper tail: use the mirror image for precision
        a, b = -b, -a
    return _phi(b) - _phi(a)


# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)


def _ndtri(p: np.ndarray) -> np.ndarray:
    """Inverse standard normal CDF for p in (0, 1), vectorized."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    low = p < 0.02425
    high = p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
    den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1
    out[mid] = num / den
    for mask, sign in ((low, 1.0), (high, -1.0)):
        pt = p[mask] if sign > 0 else 1 - p[mask]
        q = np.sqrt(-2 * np.log(pt))
        num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
        den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
        out[mask] = sign * num / den
    return out


def draw(d: Dist, u: np.ndarray) -> np.ndarray:
    """Values of distribution ``d`` from uniforms ``u`` in (0, 1) (inverse-CDF sampling)."""
    if d.kind == "constant":
        return np.full(u.shape, d.value)
    if d.kind == "uniform":
        return d.low + u * (d.high - d.low)
    if d.kind == "loguniform":
        lo, hi = math.log(d.low), math.log(d.high)
        return np.exp(lo + u * (hi - lo))
    if d.kind == "choice":
        w = np.ones(len(d.values)) if d.weights is None else np.asarray(d.weights, dtype=np.float64)
        cdf = np.cumsum(w) / w.sum()
        idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(d.values) - 1)
        return np.asarray(d.values, dtype=np.float64)[idx]
    # normal, truncated by inverse CDF between Phi(a) and Phi(b); upper tails mirrored
    a = -math.inf if d.low is None else (d.low - d.mean) / d.std
    b = math.inf if d.high is None else (d.high - d.mean) / d.std
    sign = 1.0
    if a > 0:
        a, b, sign = -b, -a, -1.0
    pa, pb = _phi(a), _phi(b)
    z = _ndtri(pa + u * (pb - pa))
    x = d.mean + sign * d.std * z
    if d.low is not None or d.high is not None:  # guard the approximation's last bits
        x = np.clip(x, -np.inf if d.low is None else d.low, np.inf if d.high is None else d.high)
    return x


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


def _keys(keys) -> np.ndarray:
    k = np.asarray(keys)
    if k.ndim == 0:
        k = k.reshape(1)
    if k.ndim != 1:
        raise ValueError(f"keys must be a 1-D sequence of sample ids, got shape {k.shape}")
    if k.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if k.dtype == bool or not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"keys must be non-negative integers, got dtype {k.dtype}")
    if np.issubdtype(k.dtype, np.signedinteger) and k.min() < 0:
        raise ValueError(f"keys must be non-negative integers, got {int(k.min())}")
    return k.astype(np.uint64)


def _seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


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
    """
    cfg = config if isinstance(config, AffineConfig) else load_config(config)
    h, w = _size(size, "size")
    keys = _keys(keys)
    seed = _seed(seed if seed is not None else (cfg.seed if cfg.seed is not None else 0))

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
    m = _compose_steps(p["rotate"], p["scale_x"], p["scale_y"], p["shear_x"], p["shear_y"], p["translate_x"],
                       p["translate_y"], p["center_x"], p["center_y"], p["flip_x"], p["flip_y"], cfg.order)
    matrices = np.array(np.broadcast_to(m, (n, 3, 3)))
    params = {k: np.array(np.broadcast_to(p[k], (n,))) for k in PARAMS}
    if not np.all(applied):
        matrices[~params["applied"]] = np.eye(3)
    return AffineBatch(matrices, params, keys, seed, (h, w))
