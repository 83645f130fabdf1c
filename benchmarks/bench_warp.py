"""Numpy reference warper vs the STN blog algorithm, in one interleaved run.

    python benchmarks/bench_warp.py [--rounds 5] [--json out.json]

Cases: A = 4096x32x32x3 uint8, B = 128x224x224x3 uint8; per-image random rotate +-15,
scale 0.9-1.1, translate +-10%, bilinear, zero fill. Reports images/s (median of
interleaved rounds) and the speed-up over the blog algorithm. Optionally also times the
compiled kernel (``--kernel``).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import affine_aug as aa  # noqa: E402
from blog import blog_warp  # noqa: E402

CONFIG = {"rotate": [-15, 15], "scale": [0.9, 1.1], "translate": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}}
CASES = {"A": (4096, 32, 32, 3), "B": (128, 224, 224, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kernel", action="store_true", help="also time the compiled kernel")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {}
    for case, shape in CASES.items():
        n, h, w, _ = shape
        imgs = rng.integers(0, 256, shape, dtype=np.uint8)
        batch = aa.sample(CONFIG, np.arange(n), size=(h, w))
        theta = aa.to_theta(batch.matrices, (h, w))
        runs = {
            "affine_aug numpy": lambda imgs=imgs, n=n, h=h, w=w: aa.warp_affine(
                imgs, aa.sample(CONFIG, np.arange(n), size=(h, w)).matrices, backend="numpy"
            ),
            "blog algorithm": lambda imgs=imgs, theta=theta: blog_warp(imgs, theta),
        }
        if args.kernel:
            runs["affine_aug c"] = lambda imgs=imgs, n=n, h=h, w=w: aa.warp_affine(
                imgs, aa.sample(CONFIG, np.arange(n), size=(h, w)).matrices, backend="c"
            )
        for f in runs.values():
            f()  # warm-up (and compile)
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for name, f in runs.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        ips = {k: n / statistics.median(v) for k, v in times.items()}
        results[case] = ips
        base = ips["blog algorithm"]
        print(f"case {case} {shape}")
        for k, v in ips.items():
            print(f"  {k:20s} {v:12,.0f} img/s   {v / base:6.2f}x blog")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
