"""Per-sample overhead: affine_aug.torch.RandomAffine vs torchvision v2.RandomAffine.

    python benchmarks/bench_transform.py [--n 2000]

One call per 3x32x32 uint8 tensor (the DataLoader-worker situation), same distribution
(rotate +-15, scale 0.9-1.1, translate +-10%); prints microseconds per call (median of
5 interleaved rounds).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torchvision.transforms import v2

from affine_aug.torch import RandomAffine

CONFIG = {"rotate": [-15, 15], "scale": [0.9, 1.1], "translate": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--json", type=Path, help="also write the medians (us per sample) here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    ours = RandomAffine(CONFIG, seed=0)
    theirs = v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1))
    runs = {"affine_aug.torch.RandomAffine": ours, "torchvision v2.RandomAffine": theirs}
    for t in runs.values():
        for _ in range(50):
            t(x)
    times = {k: [] for k in runs}
    for _ in range(5):
        for k, t in runs.items():
            s = time.perf_counter()
            for _ in range(a.n):
                t(x)
            times[k].append((time.perf_counter() - s) / a.n * 1e6)
    for k, v in times.items():
        print(f"{k:32s} {statistics.median(v):8.1f} us per 3x32x32 uint8 sample")
    if a.json:
        a.json.write_text(
            json.dumps({"us per 3x32x32 uint8 sample": {k: statistics.median(v) for k, v in times.items()}}, indent=2)
        )


if __name__ == "__main__":
    main()
