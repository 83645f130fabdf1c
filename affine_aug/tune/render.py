"""One grid for the page: config + image + keys → warped tiles (JPEG), transformed boxes
and keypoints, and histograms of the sampled parameters. A pure function of its request.

Coordinates follow the library: forward matrices (source pixel → output pixel), ``(x, y)``,
pixel centres on integers; boxes ``(x1, y1, x2, y2)`` on pixel edges. Boxes and points are
given and returned in the pixels of the working image (the source shrunk to ``size``).
"""

from __future__ import annotations

import base64
import io
import math
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..config import AffineConfig
from ..matrix import transform_boxes, transform_points
from .._checks import BORDERS, INTERPOLATIONS
from ..sampling import _PARAMS, sample
from ..warp import warp_affine
from .sources import BadInput

__all__ = ["Request", "render"]

MAX_TILES = 64
MAX_MARKS = 64  # boxes and points each
HIST_DRAWS = 4096
HIST_BINS = 32
SIZES = (64, 96, 128, 160, 224, 320, 448)
QUALITY = 85
BOOL_PARAMS = ("flip_x", "flip_y", "applied")


@dataclass(frozen=True)
class Request:
    """What one grid needs besides the config and the image (already validated)."""

    seed: int = 0
    key_start: int = 0
    n: int = 16
    size: int = 224
    border: str = "constant"
    interpolation: str = "bilinear"
    antialias: bool = False
    fill: int = 0
    boxes: tuple = ()
    points: tuple = ()

    @classmethod
    def from_json(cls, d: dict) -> Request:
        def integer(key, lo, hi, default):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise BadInput(f"{key}: expected an integer in [{lo}, {hi}], got {v!r}")
            return v

        def choice(key, allowed, default):
            v = d.get(key, default)
            if v not in allowed:
                raise BadInput(f"{key}: expected one of {', '.join(map(str, allowed))}, got {v!r}")
            return v

        antialias = d.get("antialias", False)
        if not isinstance(antialias, bool):
            raise BadInput(f"antialias: expected true or false, got {antialias!r}")
        return cls(
            seed=integer("seed", 0, 2**63 - 1, 0),
            key_start=integer("key_start", 0, 2**40, 0),
            n=integer("n", 1, MAX_TILES, 16),
            size=choice("size", SIZES, 224),
            border=choice("border", BORDERS, "constant"),
            interpolation=choice("interpolation", INTERPOLATIONS, "bilinear"),
            antialias=antialias,
            fill=integer("fill", 0, 255, 0),
            boxes=_marks(d.get("boxes", []), 4, "boxes"),
            points=_marks(d.get("points", []), 2, "points"),
        )


def _marks(value, width: int, what: str) -> tuple:
    if not isinstance(value, list) or len(value) > MAX_MARKS:
        raise BadInput(f"{what}: expected a list of at most {MAX_MARKS} items")
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != width
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e6
                for v in item
            )
        ):
            raise BadInput(f"{what}: each item must be a list of {width} finite numbers, got {item!r}")
    return tuple(tuple(float(v) for v in item) for item in value)


def _corners(boxes: np.ndarray) -> np.ndarray:
    """``(K * 4, 2)`` corners of edge-coordinate boxes in pixel-centre coordinates, box by box
    (top-left, top-right, bottom-right, bottom-left): mapped, +0.5, they outline the box."""
    x1, y1, x2, y2 = (boxes[:, i] - 0.5 for i in range(4))
    return np.stack([np.stack(c, -1) for c in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], 1).reshape(-1, 2)


def encode_jpeg(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def histograms(cfg: AffineConfig, req: Request, size) -> dict:
    """Per parameter: bin edges and counts over the transformed samples among HIST_DRAWS
    keyed draws (keys from ``key_start``; samples that ``p`` leaves alone hold identity
    values and are left out), or the fraction that is true for the flips and ``applied``."""
    keys = np.arange(req.key_start, req.key_start + HIST_DRAWS, dtype=np.uint64)
    params = sample(cfg, keys, size=size, seed=req.seed).params
    applied = params["applied"]
    out = {}
    for name in _PARAMS:
        v = params[name]
        if name in BOOL_PARAMS:
            out[name] = {"fraction": float(np.mean(v))}
            continue
        if not applied.any():
            out[name] = {"constant": float(v[0])}
            continue
        v = v[applied].astype(np.float64)
        lo, hi = float(v.min()), float(v.max())
        if hi - lo <= 1e-12 * max(1.0, abs(lo)):
            out[name] = {"constant": lo}
            continue
        counts, edges = np.histogram(v, bins=HIST_BINS, range=(lo, hi))
        out[name] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def render(cfg: AffineConfig, img: np.ndarray, req: Request) -> dict:
    """The page's grid for one request: tiles, marks, parameters, histograms, timings (ms).

    ``img`` is the working image ``(H, W, 3)`` uint8 (the source shrunk to ``req.size``)."""
    t0 = time.perf_counter()
    h, w = img.shape[:2]
    keys = np.arange(req.key_start, req.key_start + req.n, dtype=np.uint64)
    batch = sample(cfg, keys, size=(h, w), seed=req.seed)
    t1 = time.perf_counter()
    warped = warp_affine(
        np.broadcast_to(img, (req.n, h, w, 3)),
        batch.matrices,
        border=req.border,
        interpolation=req.interpolation,
        antialias=req.antialias,
        fill=req.fill,
    )
    t2 = time.perf_counter()
    tiles = [encode_jpeg(t) for t in warped]
    t3 = time.perf_counter()
    boxes = np.array(req.boxes, np.float64).reshape(-1, 4)
    points = np.array(req.points, np.float64).reshape(-1, 2)
    corners = _corners(boxes)
    marks = [
        {
            "boxes": transform_boxes(boxes, m).tolist(),
            "quads": (transform_points(corners, m) + 0.5).tolist(),
            "points": transform_points(points, m).tolist(),
        }
        for m in batch.matrices
    ]
    params = {k: batch.params[k].tolist() for k in _PARAMS}
    hist = histograms(cfg, req, (h, w))
    t4 = time.perf_counter()
    ms = {
        "sample": 1e3 * (t1 - t0),
        "warp": 1e3 * (t2 - t1),
        "encode": 1e3 * (t3 - t2),
        "stats": 1e3 * (t4 - t3),
        "total": 1e3 * (t4 - t0),
    }
    return {
        "tiles": tiles,
        "keys": keys.tolist(),
        "width": w,
        "height": h,
        "marks": marks,
        "params": params,
        "hist": hist,
        "ms": ms,
    }
