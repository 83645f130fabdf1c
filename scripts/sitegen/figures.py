"""Figures of the Concepts page and the density plots of the Config reference, drawn
with the library itself (every mapped point, box and sample below comes from affine_aug)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import affine_aug as aa

from .common import bare, draw_targets, photo, save, write_text

BLUE, ORANGE, GREY = "#3f51b5", "#ff6d00", "#9e9e9e"


def _pixel_grid(ax, w: int, h: int, color=GREY) -> None:
    for x in range(w):
        for y in range(h):
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec=color, lw=0.6))


def pixel_centres() -> None:
    """A 6x4 image's pixel centres under 90 and 30 degree rotations about the default centre."""
    h, w = 4, 6
    ys, xs = np.mgrid[0:h, 0:w]
    centres = np.stack([xs.ravel(), ys.ravel()], -1).astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, angle in zip(axes, (90, 30)):
        m = aa.affine_matrix((h, w), rotate=angle)
        mapped = aa.transform_points(centres, m)
        _pixel_grid(ax, w, h)
        ax.scatter(centres[:, 0], centres[:, 1], s=18, c=GREY, zorder=2, label="pixel centres (integers)")
        ax.scatter(mapped[:, 0], mapped[:, 1], s=22, c=ORANGE, zorder=3, label="where the matrix sends them")
        ax.annotate("", xy=mapped[0], xytext=centres[0], arrowprops={"arrowstyle": "->", "color": ORANGE})
        c = ((w - 1) / 2, (h - 1) / 2)
        ax.plot(*c, marker="+", ms=12, c=BLUE, mew=2, zorder=4, label="centre ((W-1)/2, (H-1)/2)")
        ax.set_xlim(-2.5, w + 1.5)
        ax.set_ylim(h + 1.5, -2.5)  # y grows downwards, as on screen
        ax.set_aspect("equal")
        ax.set_xticks(range(-2, w + 2))
        ax.set_yticks(range(-2, h + 2))
        ax.tick_params(labelsize=7)
        ax.set_title(f"rotate: {angle}  (counter-clockwise on screen)", fontsize=10)
        ax.set_xlabel("x (right)")
        ax.set_ylabel("y (down)")
    axes[0].legend(loc="lower center", bbox_to_anchor=(1.1, -0.42), ncol=3, fontsize=8, frameon=False)
    save(fig, "concepts_pixel_centres.png")


def box_enclosing() -> None:
    """A box on pixel edges, its mapped corners and the enclosing box transform_boxes returns."""
    img, boxes, points = photo("astronaut", side=160)
    h, w = img.shape[:2]
    m = aa.affine_matrix((h, w), rotate=30, scale=0.8)
    out = aa.warp_affine(img[None], m)[0]  # a batch of one (N, H, W, C)
    box = boxes[:1]
    x1, y1, x2, y2 = box[0]
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) - 0.5  # edges -> centre coordinates
    mapped = aa.transform_points(corners, m)
    enclosing = aa.transform_boxes(box, m)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    axes[0].imshow(img)
    draw_targets(axes[0], box, points)
    axes[0].set_title("source: box (x1, y1, x2, y2) on pixel edges", fontsize=9)
    axes[1].imshow(out)
    axes[1].add_patch(plt.Polygon(mapped, closed=True, fill=False, ec=ORANGE, lw=1.6, ls="--", zorder=4))
    draw_targets(axes[1], enclosing, aa.transform_points(points, m))
    axes[1].set_title("rotate 30, scale 0.8: mapped corners (dashed)\nand transform_boxes' enclosing box", fontsize=9)
    for ax in axes:
        bare(ax)
    save(fig, "concepts_box.png")


def parameter_signs() -> None:
    """Each parameter alone on a photograph: what positive values do."""
    img, boxes, points = photo("chelsea", side=150)
    h, w = img.shape[:2]
    cases = [
        ("identity", {}),
        ("rotate: 30", {"rotate": 30}),
        ("scale: 1.3", {"scale": 1.3}),
        ("shear: {x: 20}", {"shear": 20}),
        ("translate: {x: 0.2}", {"translate": (0.2 * w, 0)}),
        ("flip: {horizontal: 1}", {"flip": (True, False)}),
    ]
    fig, axes = plt.subplots(1, len(cases), figsize=(2.3 * len(cases), 2.2))
    for ax, (title, kw) in zip(axes, cases):
        m = aa.affine_matrix((h, w), **kw)
        ax.imshow(aa.warp_affine(img[None], m)[0])
        draw_targets(ax, aa.transform_boxes(boxes, m), aa.transform_points(points, m))
        ax.set_title(title, fontsize=9)
        bare(ax)
    save(fig, "concepts_parameters.png")


def keyed_workers() -> None:
    """The same keys split three ways (one process, two workers, three workers in shuffled
    batches): every key gets the same transform, so the columns match."""
    img, _, _ = photo("astronaut", side=64)
    keys = np.arange(8)
    cfg = aa.load_config("strong")
    colours = ["#3f51b5", "#e91e63", "#009688"]
    layouts = [
        ("1 process, one batch", [keys]),
        ("2 workers, alternate keys", [keys[0::2], keys[1::2]]),
        ("3 workers, shuffled", [np.array([5, 0, 7]), np.array([2, 6]), np.array([3, 1, 4])]),
    ]
    fig, axes = plt.subplots(len(layouts), len(keys), figsize=(1.25 * len(keys), 1.45 * len(layouts)))
    for r, (title, parts) in enumerate(layouts):
        for worker, part in enumerate(parts):
            batch = aa.sample(cfg, keys=part, size=img.shape[:2], seed=0)  # each worker on its own
            warped = aa.warp_affine(np.repeat(img[None], len(part), 0), batch.matrices)
            for k, im in zip(part, warped):
                ax = axes[r, k]
                ax.imshow(im)
                bare(ax)
                for s in ax.spines.values():
                    s.set_visible(True)
                    s.set_edgecolor(colours[worker])
                    s.set_linewidth(2.5)
                if r == 0:
                    ax.set_title(f"key {k}", fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.08, hspace=0.12)
    save(fig, "concepts_keyed.png")


# ----------------------------------------------------------------------------- densities

DENSITY_EXAMPLES = [
    ("constant", "rotate: 15", 15),
    ("uniform", "rotate: [-15, 15]", [-15, 15]),
    ("normal", "rotate: {dist: normal, mean: 0, std: 10}", {"dist": "normal", "mean": 0, "std": 10}),
    (
        "normal",
        "rotate: {dist: normal, mean: 0, std: 10, low: -15, high: 15}",
        {"dist": "normal", "mean": 0, "std": 10, "low": -15, "high": 15},
    ),
    ("loguniform", "scale: {dist: loguniform, low: 0.5, high: 2}", {"dist": "loguniform", "low": 0.5, "high": 2}),
    (
        "choice",
        "rotate: {dist: choice, values: [0, 90, 180, 270], weights: [4, 1, 2, 1]}",
        {"dist": "choice", "values": [0, 90, 180, 270], "weights": [4, 1, 2, 1]},
    ),
]


def densities(n: int = 20000) -> None:
    """One panel per example, a histogram of ``n`` keyed samples drawn by ``aa.sample``
    from the config line in its title (stems for discrete distributions)."""
    cols = 2
    rows = (len(DENSITY_EXAMPLES) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.5 * rows))
    for ax, (kind, text, value) in zip(axes.flat, DENSITY_EXAMPLES):
        key = "scale" if text.startswith("scale") else "rotate"
        batch = aa.sample({key: value}, keys=np.arange(n), size=(32, 32), seed=0)
        x = batch.params["scale_x" if key == "scale" else "rotate"]
        if kind in ("constant", "choice"):
            vals, counts = np.unique(x, return_counts=True)
            ax.vlines(vals, 0, counts / n, color=BLUE, lw=3)
            ax.plot(vals, counts / n, "o", color=BLUE)
            ax.set_ylim(0, 1.05 * (counts.max() / n))
            pad = max(np.ptp(vals) * 0.1, 10)
            ax.set_xlim(vals.min() - pad, vals.max() + pad)
            ax.set_ylabel("probability", fontsize=8)
        else:
            bins = np.geomspace(x.min(), x.max(), 50) if kind == "loguniform" else 50
            ax.hist(x, bins=bins, density=True, color=BLUE, alpha=0.85)
            if kind == "loguniform":
                ax.set_xscale("log")
            ax.set_ylabel("density", fontsize=8)
        ax.set_xlabel("degrees" if key == "rotate" else "scale", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(
            text.replace(", weights", ",\nweights").replace(", low", ",\nlow"), fontsize=8.5, family="monospace"
        )
    for ax in list(axes.flat)[len(DENSITY_EXAMPLES) :]:
        ax.axis("off")
    fig.suptitle(f"{n:,} keyed samples per distribution (affine_aug.sample, seed 0)", fontsize=10)
    fig.tight_layout()
    save(fig, "config_densities.png")
    lines = [f"* `{text}` ({kind})" for kind, text, _ in DENSITY_EXAMPLES]
    write_text(
        "config_densities.md",
        "\n".join(lines) + "\n\n![Histograms of keyed samples of each "
        "distribution: constant, uniform, normal, truncated normal, log-uniform, weighted choice]"
        "(generated/config_densities.png)",
    )


def render_all() -> None:
    pixel_centres()
    box_enclosing()
    parameter_signs()
    keyed_workers()
    densities()
