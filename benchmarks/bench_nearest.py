"""Nearest against bilinear in the compiled kernel alone, per output pixel, in one
interleaved run.

    python benchmarks/bench_nearest.py [--rounds 5] [--size 375 500] [--border constant]

For every dtype and channel count, one image rotated by 3, 15, 30 and 45 degrees (scale
1.1, about its centre), one thread, the output made once: the kernel's own work
(`kernel.warp_into`, without warp_affine's checks), timed in CPU time of the calling
thread (less sensitive to a loaded machine than wall time), nearest and bilinear in turn
within each round. Prints nanoseconds per output pixel (the best round's median over the
angles) and nearest / bilinear (target: <= 1 for every row).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import affine_aug as aa
from affine_aug import kernel

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
ANGLES = (3.0, 15.0, 30.0, 45.0)


def _image(shape, dtype, rng):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    return rng.random(shape).astype(dtype)


def _call(img, inv, interpolation, border):
    out = np.empty_like(img)
    fill = np.zeros(img.shape[-1], img.dtype)
    return lambda: kernel.warp_into(img, inv, out, interpolation, border, fill, -0.5)


def _cpu_ns(fn, calls):
    times = []
    for _ in range(calls):
        t = time.thread_time_ns()
        fn()
        times.append(time.thread_time_ns() - t)
    return statistics.median(times)


def measure(dtype, c, h, w, border, rounds, rng, calls=7):
    """ns per output pixel of nearest and bilinear: the best round of each, summed over the angles"""
    img = _image((1, h, w, c), dtype, rng)
    invs = [np.linalg.inv(aa.affine_matrix((h, w), rotate=a, scale=1.1))[None] for a in ANGLES]
    fns = {interp: [_call(img, inv, interp, border) for inv in invs] for interp in ("nearest", "bilinear")}
    best = {interp: float("inf") for interp in fns}
    for _ in range(rounds):
        for interp, calls_of in fns.items():
            total = 0.0
            for fn in calls_of:
                fn()
                total += _cpu_ns(fn, calls)
            best[interp] = min(best[interp], total / (len(ANGLES) * h * w))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, nargs=2, default=[375, 500], metavar=("H", "W"))
    ap.add_argument("--border", default="constant", choices=["constant", "edge", "reflect", "mirror", "wrap"])
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 2, 3, 4])
    a = ap.parse_args()
    aa.set_num_threads(1)
    rng = np.random.default_rng(0)
    h, w = a.size
    print(f"kernel alone, {h}x{w}, rotate {ANGLES} + scale 1.1, {a.border} border, 1 thread (ns per output pixel)")
    print(f"{'dtype':8s} {'C':>2s} {'nearest':>8s} {'bilinear':>9s} {'ratio':>6s}")
    for dtype in DTYPES:
        for c in a.channels:
            t = measure(dtype, c, h, w, a.border, a.rounds, rng)
            ratio = t["nearest"] / t["bilinear"]
            print(f"{np.dtype(dtype).name:8s} {c:2d} {t['nearest']:8.2f} {t['bilinear']:9.2f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
