#!/usr/bin/env python
"""Preprocess GTSRB: ROI crop + resize + random affine in one resampling per image.

    python scripts/preprocess_gtsrb.py --root DIR --out OUT [--config configs/gtsrb.yaml]
        [--size 32] [--copies K] [--seed S] [--val-tracks 1] [--balance]
        [--format npz|folder] [--skip-bad] [--workers N] [--test-csv CSV] [--set key=value]

A thin wrapper over ``affine-aug gtsrb`` (see ``affine_aug.gtsrb.preprocess``).
"""

import sys

from affine_aug.cli import main

if __name__ == "__main__":
    sys.exit(main(["gtsrb", *sys.argv[1:]]))
