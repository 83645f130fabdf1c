"""Checks shared by the public entry points (numpy, torch and the transforms)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_cubic_a"]

CUBIC_A_RANGE = (-1.0, 0.0)  # Keys' family: a = -0.5 is the interpolating cubic; -0.75 OpenCV's; -1 sharpest


def check_cubic_a(cubic_a) -> float:
    """Keys' parameter of bicubic as a float in ``[-1, 0]``, else a ValueError."""
    lo, hi = CUBIC_A_RANGE
    if isinstance(cubic_a, (bool, np.bool_)) or not isinstance(cubic_a, (int, float, np.integer, np.floating)) \
            or not math.isfinite(cubic_a) or not lo <= cubic_a <= hi:
        raise ValueError(f"cubic_a (Keys' bicubic parameter) must be a number in [{lo:g}, {hi:g}], "
                         f"e.g. -0.5 (PIL) or -0.75 (OpenCV, torch), got {cubic_a!r}")
    return float(cubic_a)
