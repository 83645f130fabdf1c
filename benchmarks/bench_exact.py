"""Nearest against bilinear, and exact permutations (flips, quarter turns) against numpy
and OpenCV, one image per call, one thread, in one interleaved run.

    python benchmarks/bench_exact.py [--rounds 7] [--size 375 500]

Prints microseconds per image (the best of each round's median, over the rounds) and
the ratios the project's targets are stated in:
  * affine_aug nearest / affine_aug bilinear per dtype and channel count (target <= 1),
    and both against cv2.warpAffine (INTER_NEAREST / INTER_LINEAR) for uint8 RGB;
  * flips and turns through warp_affine (and through the kernel alone, without the
    per-call checks) against np.flip(...).copy() / np.rot90(...).copy() and cv2.flip /
    cv2.rotate (target: warp_affine <= np.flip(...).copy()).
OpenCV is optional (the bench extra); without it its columns are left out.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import affine_aug as aa
from affine_aug import kernel

try:
    import cv2
except ImportError:  # the bench extra
    cv2 = None

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def _image(shape, dtype, rng):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    return rng.random(shape).astype(dtype)


def _time(fns: dict, rounds: int, calls: int) -> dict:
    """Each function timed in turn, round after round: the best of the rounds' medians (us)."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            best[name] = min(best[name], statistics.median(times) * 1e6)
    return best


def _inverse_call(img, m, interpolation):
    """The kernel alone (kernel.warp_into, without warp_affine's checks): the inverse
    matrix and the output made once."""
    imgs = img[None] if img.ndim == 3 else img[None, ..., None]
    inv = np.linalg.inv(m)[None]
    out = np.empty_like(imgs)
    fill = np.zeros(imgs.shape[-1], imgs.dtype)
    return lambda: kernel.warp_into(imgs, inv, out, interpolation, "constant", fill, -0.5)


def nearest_vs_bilinear(h, w, rounds, rng):
    m = aa.affine_matrix((h, w), rotate=30.0, scale=1.1)
    print(f"\nnearest vs bilinear, {h}x{w}, rotate 30 + scale 1.1, constant border (us per image)")
    print(f"{'dtype':8s} {'C':>2s} {'nearest':>9s} {'bilinear':>9s} {'ratio':>6s}")
    for dtype in DTYPES:
        for c in (1, 2, 3, 4):
            img = _image((h, w, c), dtype, rng)
            t = _time(
                {
                    "nearest": lambda img=img: aa.warp_affine(img[None], m, interpolation="nearest"),
                    "bilinear": lambda img=img: aa.warp_affine(img[None], m, interpolation="bilinear"),
                },
                rounds,
                5,
            )
            print(
                f"{np.dtype(dtype).name:8s} {c:2d} {t['nearest']:9.0f} "
                f"{t['bilinear']:9.0f} {t['nearest'] / t['bilinear']:6.2f}"
            )
    img = _image((h, w, 3), np.uint8, rng)
    fns = {
        "aa nearest": lambda: aa.warp_affine(img[None], m, interpolation="nearest"),
        "aa bilinear": lambda: aa.warp_affine(img[None], m, interpolation="bilinear"),
        "kernel nearest": _inverse_call(img, m, "nearest"),
        "kernel bilinear": _inverse_call(img, m, "bilinear"),
    }
    if cv2 is not None:
        m23 = m[:2].astype(np.float64)
        fns["cv2 nearest"] = lambda: cv2.warpAffine(img, m23, (w, h), flags=cv2.INTER_NEAREST)
        fns["cv2 bilinear"] = lambda: cv2.warpAffine(img, m23, (w, h), flags=cv2.INTER_LINEAR)
    t = _time(fns, rounds, 5)
    print("uint8 RGB: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()))
    if cv2 is not None:
        print(
            f"  affine_aug / OpenCV time, warp_affine (kernel alone): nearest {t['aa nearest'] / t['cv2 nearest']:.2f} "
            f"({t['kernel nearest'] / t['cv2 nearest']:.2f}), bilinear {t['aa bilinear'] / t['cv2 bilinear']:.2f} "
            f"({t['kernel bilinear'] / t['cv2 bilinear']:.2f})"
        )


def permutations(h, w, rounds, rng):
    print(f"\nexact permutations, {h}x{w} (us per image; ratio: warp_affine time / np copy time)")
    square = min(h, w)
    cases = [
        (
            "hflip",
            (h, w),
            aa.affine_matrix((h, w), flip=(True, False)),
            lambda a: np.flip(a, 1).copy(),
            (lambda a: cv2.flip(a, 1)) if cv2 else None,
        ),
        (
            "vflip",
            (h, w),
            aa.affine_matrix((h, w), flip=(False, True)),
            lambda a: np.flip(a, 0).copy(),
            (lambda a: cv2.flip(a, 0)) if cv2 else None,
        ),
        (
            "rot180",
            (h, w),
            aa.affine_matrix((h, w), rotate=180),
            lambda a: np.rot90(a, 2).copy(),
            (lambda a: cv2.rotate(a, cv2.ROTATE_180)) if cv2 else None,
        ),
        (
            "rot90",
            (square, square),
            aa.affine_matrix((square, square), rotate=90),
            lambda a: np.rot90(a, 1).copy(),
            (lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)) if cv2 else None,
        ),
    ]
    print(
        f"{'case':7s} {'dtype':8s} {'C':>2s} {'warp_affine':>11s} "
        f"{'kernel':>7s} {'np copy':>8s} {'cv2':>6s} {'ratio':>6s}"
    )
    for name, (ch, cw), m, np_fn, cv_fn in cases:
        for dtype, c in [(np.uint8, 3), (np.uint8, 1), (np.float32, 3)]:
            img = _image((ch, cw, c), dtype, rng)
            fns = {
                "warp_affine": lambda img=img, m=m: aa.warp_affine(img[None], m, interpolation="nearest"),
                "kernel": _inverse_call(img, m, "nearest"),
                "np": lambda img=img, np_fn=np_fn: np_fn(img),
            }
            if cv_fn is not None:
                fns["cv2"] = lambda img=img, cv_fn=cv_fn: cv_fn(img)
            t = _time(fns, rounds, 9)
            cv = f"{t['cv2']:6.0f}" if "cv2" in t else "     -"
            print(
                f"{name:7s} {np.dtype(dtype).name:8s} {c:2d} "
                f"{t['warp_affine']:11.0f} {t['kernel']:7.0f} {t['np']:8.0f} "
                f"{cv} {t['warp_affine'] / t['np']:6.2f}"
            )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--size", type=int, nargs=2, default=[375, 500], metavar=("H", "W"))
    a = ap.parse_args()
    aa.set_num_threads(1)
    if cv2 is not None:
        cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    h, w = a.size
    nearest_vs_bilinear(h, w, a.rounds, rng)
    permutations(h, w, a.rounds, rng)


if __name__ == "__main__":
    main()
