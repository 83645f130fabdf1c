#!/usr/bin/env python
"""Write a synthetic GTSRB in the official layout (43 classes of drawn sign-like shapes).

    python scripts/make_synthetic_gtsrb.py OUT [--full] [--tracks-per-class 2] [--frames 30]
        [--test-per-class 10] [--seed 0]

``--full`` gives the real sizes: 39,209 training and 12,630 test images with GTSRB's
class imbalance and tracks of 30 frames.
"""

import argparse

from affine_aug.gtsrb import make_synthetic


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--full", action="store_true")
    p.add_argument("--tracks-per-class", type=int, default=2)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--test-per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    n = make_synthetic(
        a.out,
        tracks_per_class=a.tracks_per_class,
        frames=a.frames,
        test_per_class=a.test_per_class,
        full=a.full,
        seed=a.seed,
    )
    print(f"wrote {n['train']} training and {n['test']} test images to {a.out}")


if __name__ == "__main__":
    main()
