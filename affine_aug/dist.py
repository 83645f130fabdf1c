"""Scalar distributions of config values: the one home of each distribution.

A distribution is a frozen :class:`Dist`. Everything about a kind lives in this module:
its keys (``KINDS``), its checks (:func:`check`), the interval of values it can reach
(:func:`Dist.support`) and its inverse-CDF draw (:func:`draw`). Adding a distribution
means one entry in ``KINDS`` and one branch in each of those three functions, here.

    constant    value
    uniform     low, high
    normal      mean, std, optional low / high (truncated: inverse CDF, never clipped)
    loguniform  low, high (both > 0)
    choice      values, optional weights (>= 0, normalised safely)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Dist", "KINDS", "check", "draw", "normal_mass"]

# kind → (required keys, optional keys)
KINDS = {
    "constant": (("value",), ()),
    "uniform": (("low", "high"), ()),
    "normal": (("mean", "std"), ("low", "high")),
    "loguniform": (("low", "high"), ()),
    "choice": (("values",), ("weights",)),
}

# The uniforms of uniform_keyed lie in [2**-54, 1 - 2**-54], so an untruncated normal
# draw never leaves mean +- NORMAL_REACH * std (|ndtri(2**-54)| = 8.28).
NORMAL_REACH = 8.3


@dataclass(frozen=True)
class Dist:
    """One scalar distribution. ``kind`` is one of :data:`KINDS`."""

    kind: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] | None = None

    @staticmethod
    def constant(value: float) -> Dist:
        return Dist("constant", value=float(value))

    def support(self) -> tuple[float, float]:
        """Smallest closed interval holding every value a draw can return.

        For a normal without truncation that is ``mean +- 8.3 std`` (what the keyed
        uniforms can reach), clipped to ``low`` / ``high`` where given.
        """
        if self.kind == "constant":
            return self.value, self.value
        if self.kind == "choice":
            return min(self.values), max(self.values)
        if self.kind == "normal":
            reach = NORMAL_REACH * self.std
            lo = self.mean - reach if self.low is None else max(self.low, self.mean - reach)
            hi = self.mean + reach if self.high is None else min(self.high, self.mean + reach)
            return lo, hi
        return self.low, self.high

    def to_yaml_value(self):
        """Plain data that the config loader reads back to an equal ``Dist``."""
        if self.kind == "constant":
            return self.value
        if self.kind == "uniform":
            return [self.low, self.high]
        out: dict[str, Any] = {"dist": self.kind}
        for key in KINDS[self.kind][0] + KINDS[self.kind][1]:
            v = getattr(self, key)
            if v is not None:
                out[key] = list(v) if isinstance(v, tuple) else v
        return out


def check(d: Dist) -> tuple[str, str] | None:
    """The first problem of a distribution's parameters as ``(key, message)``, or None."""
    if d.kind in ("uniform", "loguniform", "normal") and d.low is not None and d.high is not None and d.low > d.high:
        return "", f"low > high ({d.low} > {d.high})"
    if d.kind == "loguniform" and d.low <= 0:
        return "low", f"loguniform needs low > 0, got {d.low}"
    if d.kind == "normal":
        if d.std <= 0:
            return "std", f"std must be > 0, got {d.std}"
        if normal_mass(d) < 1e-9:
            return (
                "",
                f"truncation [{d.low}, {d.high}] leaves almost no probability mass around mean {d.mean} (std {d.std})",
            )
    if d.kind == "choice" and d.weights is not None and (any(w < 0 for w in d.weights) or max(d.weights) <= 0):
        return "weights", f"weights must be >= 0 with a positive sum, got {list(d.weights)}"
    return None


# ----------------------------------------------------------------------------- normal


def _phi(x: float) -> float:
    """Standard normal CDF (scalar), accurate in the tails."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _standard_bounds(d: Dist) -> tuple[float, float, float]:
    """Truncation bounds of a normal in standard units, mirrored into the lower tail
    for precision: ``(a, b, sign)`` with draws ``mean + sign * std * z``, z in [a, b]."""
    a = -math.inf if d.low is None else (d.low - d.mean) / d.std
    b = math.inf if d.high is None else (d.high - d.mean) / d.std
    return (-b, -a, -1.0) if a > 0 else (a, b, 1.0)


def normal_mass(d: Dist) -> float:
    """Probability mass of N(mean, std) inside the truncation [low, high]."""
    a, b, _ = _standard_bounds(d)
    return _phi(b) - _phi(a)


# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9).
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
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


# ----------------------------------------------------------------------------- drawing


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
        w = w / w.max()  # scaled first: a cumulative sum of huge weights would overflow
        cdf = np.cumsum(w) / w.sum()
        idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(d.values) - 1)
        return np.asarray(d.values, dtype=np.float64)[idx]
    a, b, sign = _standard_bounds(d)
    pa, pb = _phi(a), _phi(b)
    x = d.mean + sign * d.std * _ndtri(pa + u * (pb - pa))
    lo, hi = d.support()
    return np.clip(x, lo, hi)  # guards the approximation's last bits only
