"""The gallery: every preset in configs/ on bundled photographs (boxes and keypoints
drawn as the library maps them), each border mode, each interpolation, and antialias on
against off on a zone plate."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import affine_aug as aa
from affine_aug.config import preset_dir

from .common import bare, draw_targets, photo, save, write_text

SAMPLES = 5  # keyed samples per photograph (keys 0 .. SAMPLES-1, seed 0)
GALLERY_PHOTOS = ("astronaut", "chelsea")


def preset_figure(name: str) -> str:
    cfg = aa.load_config(name)
    fig, axes = plt.subplots(
        len(GALLERY_PHOTOS), SAMPLES + 1, figsize=(1.9 * (SAMPLES + 1), 1.75 * len(GALLERY_PHOTOS))
    )
    for r, which in enumerate(GALLERY_PHOTOS):
        img, boxes, points = photo(which, side=144)
        batch = aa.sample(cfg, keys=np.arange(SAMPLES), size=img.shape[:2], seed=0)
        warped = aa.warp_affine(np.repeat(img[None], SAMPLES, 0), batch.matrices)
        axes[r, 0].imshow(img)
        draw_targets(axes[r, 0], boxes, points)
        axes[r, 0].set_title("original" if r == 0 else "", fontsize=8)
        for k in range(SAMPLES):
            ax = axes[r, k + 1]
            ax.imshow(warped[k])
            draw_targets(
                ax, aa.transform_boxes(boxes, batch.matrices[k]), aa.transform_points(points, batch.matrices[k])
            )
            if r == 0:
                ax.set_title(f"key {k}", fontsize=8)
        for ax in axes[r]:
            bare(ax)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    file = f"gallery_preset_{name}.png"
    save(fig, file)
    return file


def presets_page() -> None:
    """One section per preset file: its YAML, then its samples."""
    parts = []
    for path in sorted(Path(preset_dir()).glob("*.yaml")):
        file = preset_figure(path.stem)
        parts.append(
            f"## `{path.stem}`\n\n```yaml\n{path.read_text(encoding='utf-8').rstrip()}\n```\n\n"
            f"![{path.stem}: {SAMPLES} keyed samples on two photographs](../generated/{file})\n"
        )
    write_text("gallery_presets.md", "\n".join(parts))


def borders() -> None:
    img, _, _ = photo("coffee", side=160)
    h, w = img.shape[:2]
    m = aa.affine_matrix((h, w), rotate=25, scale=0.55)
    modes = ("constant", "edge", "reflect", "mirror", "wrap")
    fig, axes = plt.subplots(2, 3, figsize=(10, 4.7))
    axes = axes.ravel()
    axes[0].imshow(img)
    axes[0].set_title("original", fontsize=9)
    for ax, mode in zip(axes[1:], modes):
        ax.imshow(aa.warp_affine(img[None], m, border=mode, fill=(40, 90, 160))[0])
        ax.set_title(f'border="{mode}"', fontsize=9)
    for ax in axes:
        bare(ax)
    save(fig, "gallery_borders.png")


def interpolations() -> None:
    img, _, points = photo("chelsea", side=300)
    x, y = np.round(points[0]).astype(int)  # the left eye
    crop = img[y - 20 : y + 20, x - 20 : x + 20]
    h, w = crop.shape[:2]
    c_src = ((w - 1) / 2, (h - 1) / 2)
    c_dst = ((4 * w - 1) / 2, (4 * h - 1) / 2)
    # 4x about the crop's centre, rotated 10 degrees, that centre moved to the output's centre
    m = aa.affine_matrix((h, w), rotate=10, scale=4, translate=(c_dst[0] - c_src[0], c_dst[1] - c_src[1]))
    kinds = ("nearest", "bilinear", "bicubic")
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.0 * len(kinds), 3.1))
    for ax, kind in zip(axes, kinds):
        ax.imshow(aa.warp_affine(crop[None], m, out_size=(4 * h, 4 * w), interpolation=kind, border="edge")[0])
        ax.set_title(f'interpolation="{kind}"', fontsize=9)
        bare(ax)
    save(fig, "gallery_interpolation.png")


def zone_plate(n: int = 256) -> np.ndarray:
    """A circular zone plate: frequency grows linearly with the radius (uint8, grey)."""
    y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
    return np.round(127.5 + 127.5 * np.cos(np.pi * (x * x + y * y) / n)).astype(np.uint8)


def antialias() -> None:
    plate = zone_plate()
    n = plate.shape[0]
    # x -> 0.25 x - 0.375 maps the source's pixel edges onto the output's (-0.5 -> -0.5)
    m = aa.affine_matrix((n, n), scale=0.25, center=(0, 0), translate=(-0.375, -0.375))
    small = {
        flag: aa.warp_affine(plate[None], m, out_size=(n // 4, n // 4), antialias=flag, border="mirror")[0]
        for flag in (False, True)
    }
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(plate, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"zone plate {n}x{n}", fontsize=9)
    for ax, flag in zip(axes[1:], (False, True)):
        ax.imshow(small[flag], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"scale 0.25 -> {n // 4}x{n // 4}, antialias={flag}", fontsize=9)
    for ax in axes:
        bare(ax)
    save(fig, "gallery_antialias.png")


def render_all() -> None:
    presets_page()
    borders()
    interpolations()
    antialias()
