"""Shared pieces of the documentation build: where generated files go, the photographs,
drawing boxes and keypoints, and saving figures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt  # the build sets MPLBACKEND=Agg (no display needed)
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "docs" / "generated"

# Photographs that ship inside the scikit-image wheel (skimage/data/*.png): read from the
# package folder, never fetched. Each has a box (pixel edges) and keypoints (pixel centres).
PHOTOS = {
    "astronaut": {
        "file": "astronaut.png",
        "boxes": [(168, 48, 272, 196), (384, 4, 468, 212)],
        "points": [(202, 104), (242, 102), (224, 150)],
    },
    "chelsea": {"file": "chelsea.png", "boxes": [(140, 92, 378, 288)], "points": [(180, 130), (335, 160), (285, 250)]},
    "coffee": {"file": "coffee.png", "boxes": [(150, 10, 420, 250)], "points": [(330, 120)]},
}


def photo(name: str, side: int = 192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, boxes (K, 4), points (P, 2)) of a bundled photograph,
    shrunk so that its longer side is ``side`` (boxes and points scaled with it)."""
    import skimage

    spec = PHOTOS[name]
    path = Path(skimage.__file__).parent / "data" / spec["file"]
    if not path.is_file():
        raise SystemExit(f"{path}: not in the installed scikit-image; the docs use only its bundled images")
    im = Image.open(path).convert("RGB")
    f = side / max(im.size)
    w, h = round(im.size[0] * f), round(im.size[1] * f)
    small = np.asarray(im.resize((w, h), Image.Resampling.LANCZOS))
    fx, fy = w / im.size[0], h / im.size[1]
    # boxes on edges scale about the edge origin; centres about the centre origin (-0.5)
    boxes = np.asarray(spec["boxes"], dtype=np.float64) * [fx, fy, fx, fy]
    points = (np.asarray(spec["points"], dtype=np.float64) + 0.5) * [fx, fy] - 0.5
    return small, boxes, points


def draw_targets(ax, boxes=None, points=None, color="#ffeb3b") -> None:
    """Boxes (x1, y1, x2, y2 on pixel edges) and keypoints (pixel centres) over an imshow.

    imshow puts pixel (0, 0)'s centre at (0, 0), so an edge coordinate e is drawn at e - 0.5.
    """
    for x1, y1, x2, y2 in [] if boxes is None else boxes:
        ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=color))
    if points is not None and len(points):
        ax.scatter(points[:, 0], points[:, 1], s=20, c="#ff1744", edgecolors="white", linewidths=0.6, zorder=3)


def bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def save(fig, name: str) -> Path:
    """Write a figure under docs/generated/ (PNG, fixed metadata so rebuilds are stable)."""
    path = GENERATED / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=int(os.environ.get("DOCS_DPI", "96")), bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def write_text(name: str, text: str) -> Path:
    path = GENERATED / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path
