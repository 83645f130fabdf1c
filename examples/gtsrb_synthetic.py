"""GTSRB: a small synthetic GTSRB in the official layout, preprocessed to 32x32 with the
Sermanet & LeCun jitter, then read back.

    python examples/gtsrb_synthetic.py

With the real data set, point --root at it instead (see the GTSRB guide).
"""

import tempfile
from pathlib import Path

import numpy as np

from affine_aug.gtsrb import make_synthetic, preprocess


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "gtsrb", Path(tmp) / "gtsrb32"
        counts = make_synthetic(root, tracks_per_class=1, frames=2, test_per_class=1)
        manifest = preprocess(root, out, config="gtsrb", size=32, copies=1, val_tracks=0)
        train = np.load(out / "train.npz")
        x, y = train["x"], train["y"]
        assert x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8
        assert (train["copy"] <= 1).all()  # copy 0 is the original crop, copy 1 its augmented copy
        print(
            f"synthetic images {counts}; train.npz: x {x.shape}, {len(np.unique(y))} classes; "
            f"files: {sorted(p.name for p in out.glob('*.npz'))}; manifest has {len(manifest)} keys"
        )


if __name__ == "__main__":
    main()
