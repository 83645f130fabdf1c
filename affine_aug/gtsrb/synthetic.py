"""A synthetic GTSRB in the official layout: drawn sign-like shapes on noisy backgrounds,
in tracks that grow as the sign approaches, with the real class imbalance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .layouts import NUM_CLASSES

__all__ = ["make_synthetic"]

# Images per class in the real GTSRB training (39,209) and test (12,630) sets.
TRAIN_COUNTS = (210, 2220, 2250, 1410, 1980, 1860, 420, 1440, 1410, 1470, 2010, 1320, 2100, 2160, 780,
                630, 420, 1110, 1200, 210, 360, 330, 390, 510, 270, 1500, 600, 240, 540, 270, 450, 780,
                240, 689, 420, 1200, 390, 210, 2070, 300, 360, 240, 240)  # fmt: skip
TEST_COUNTS = (60, 720, 750, 450, 660, 630, 150, 450, 450, 480, 660, 420, 690, 720, 270, 210, 150, 360,
               390, 60, 90, 90, 120, 150, 90, 480, 180, 60, 150, 90, 150, 270, 60, 210, 120, 390, 120,
               60, 690, 90, 90, 60, 90)  # fmt: skip
_SYNTHETIC_MARKER = "affine_aug_synthetic.json"  # written last by make_synthetic
_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"

_RED, _BLUE, _WHITE, _YELLOW, _BLACK = (200, 20, 30), (20, 60, 180), (245, 245, 245), (250, 200, 20), (20, 20, 20)


def _draw_sign(label: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A sign-like drawing for class ``label`` on an RGBA canvas of ``size`` pixels."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    s = size - 1
    shape = label % 5
    if shape == 0:  # round, red ring
        d.ellipse([0, 0, s, s], fill=_RED)
        d.ellipse([s * 0.15, s * 0.15, s * 0.85, s * 0.85], fill=_WHITE)
    elif shape == 1:  # triangle, red border
        d.polygon([(s / 2, 0), (s, s), (0, s)], fill=_RED)
        d.polygon([(s / 2, s * 0.25), (s * 0.83, s * 0.9), (s * 0.17, s * 0.9)], fill=_WHITE)
    elif shape == 2:  # blue disc
        d.ellipse([0, 0, s, s], fill=_BLUE)
    elif shape == 3:  # diamond, yellow
        d.polygon([(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)], fill=_WHITE)
        d.polygon([(s / 2, s * 0.15), (s * 0.85, s / 2), (s / 2, s * 0.85), (s * 0.15, s / 2)], fill=_YELLOW)
    else:  # octagon, red
        r = s / 2
        pts = [(r + r * np.cos(np.pi / 8 + k * np.pi / 4), r + r * np.sin(np.pi / 8 + k * np.pi / 4)) for k in range(8)]
        d.polygon(pts, fill=_RED)
    # class-specific glyph: bars encoding label // 5 (0..8)
    ink = _WHITE if shape in (2, 4) else _BLACK
    code = label // 5
    for k in range(4):
        if code >> k & 1 or k == 3:
            x0 = s * (0.3 + 0.1 * k)
            d.rectangle([x0, s * (0.42 - 0.05 * (k % 2)), x0 + max(1, s * 0.06), s * 0.68], fill=ink)
    return im


def _render(label: int, sign: int, r: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One image: the sign of ``sign`` pixels on a noisy background with a 10% (>= 5 px) margin; its ROI."""
    margin = max(5, int(round(sign * 0.1)))
    w = sign + 2 * margin + int(r.integers(0, 3))
    h = sign + 2 * margin + int(r.integers(0, 3))
    bg = r.integers(40, 200, 3)
    noise = r.normal(0, 12, (h, w, 3))
    grad = np.linspace(-20, 20, w)[None, :, None]
    canvas = Image.fromarray(np.clip(bg + noise + grad, 0, 255).astype(np.uint8))
    x1, y1 = (
        margin + int(r.integers(0, w - sign - 2 * margin + 1)),
        margin + int(r.integers(0, h - sign - 2 * margin + 1)),
    )
    sign_image = _draw_sign(label, sign, r)
    canvas.paste(sign_image, (x1, y1), sign_image)
    return canvas, (x1, y1, x1 + sign, y1 + sign)


def _save(folder: Path, name: str, label: int, sign: int, rng: np.random.Generator) -> str:
    """Render and write one image; its CSV line."""
    img, roi = _render(label, sign, rng)
    img.save(folder / name, format="PPM")
    return f"{name};{img.width};{img.height};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{label}\n"


def _write_class(class_dir: Path, label: int, count: int, n_frames: int, rng: np.random.Generator) -> None:
    """``count`` training images of one class, in tracks of ``n_frames``, and the class's CSV."""
    class_dir.mkdir(exist_ok=True)
    lines = [_HEADER]
    for track in range((count + n_frames - 1) // n_frames):
        start = float(np.clip(rng.lognormal(np.log(28), 0.45), 12, 150))  # size at the first frame
        for frame in range(min(n_frames, count - track * n_frames)):
            sign = int(np.clip(round(start * (1 + 1.2 * frame / max(1, n_frames - 1))), 12, 205))
            lines.append(_save(class_dir, f"{track:05d}_{frame:05d}.ppm", label, sign, rng))
    (class_dir / f"GT-{label:05d}.csv").write_text("".join(lines))


def _write_test(test_dir: Path, per_class, rng: np.random.Generator) -> int:
    """``per_class(label)`` test images of each class, numbered in order, and their CSV; their count."""
    lines, index = [_HEADER], 0
    for label in range(NUM_CLASSES):
        for _ in range(per_class(label)):
            sign = int(np.clip(rng.lognormal(np.log(40), 0.5), 12, 205))
            lines.append(_save(test_dir, f"{index:05d}.ppm", label, sign, rng))
            index += 1
    (test_dir / "GT-final_test.csv").write_text("".join(lines))
    return index


def make_synthetic(
    root, *, tracks_per_class: int = 2, frames: int = 30, test_per_class: int = 10, full: bool = False, seed: int = 0
) -> dict[str, int]:
    """Write a synthetic GTSRB in the official layout under ``root``.

    43 classes of drawn sign-like shapes on noisy backgrounds; tracks of ``frames``
    images growing in size as the sign approaches; sizes 15-250 px, not square, with a
    10% (>= 5 px) margin around the sign; per-class CSVs with exclusive X2/Y2.
    ``full`` gives the real counts (39,209 training, 12,630 test images, real class
    imbalance, tracks of 30). Otherwise each class gets ``tracks_per_class`` tracks of
    ``frames`` frames (and class sizes still follow the real imbalance, at least one
    track each). Returns the number of images per split.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    train_dir = root / "GTSRB" / "Final_Training" / "Images"
    test_dir = root / "GTSRB" / "Final_Test" / "Images"
    train_dir.mkdir(parents=True, exist_ok=True)
    test_dir.mkdir(parents=True, exist_ok=True)
    biggest = max(TRAIN_COUNTS)
    n_train = 0
    for label in range(NUM_CLASSES):
        if full:
            count = TRAIN_COUNTS[label]
        else:
            count = max(1, round(tracks_per_class * TRAIN_COUNTS[label] / biggest)) * frames
        _write_class(train_dir / f"{label:05d}", label, count, 30 if full else frames, rng)
        n_train += count
    n_test = _write_test(test_dir, lambda label: TEST_COUNTS[label] if full else test_per_class, rng)
    counts = {"train": n_train, "test": n_test}
    settings = {"seed": seed, "full": full, "tracks_per_class": tracks_per_class, "frames": frames}
    (root / _SYNTHETIC_MARKER).write_text(json.dumps({**settings, "test_per_class": test_per_class, **counts}))
    return counts
