"""The Spatial Transformer on real digits, at its smallest: one short epoch on CPU.

    python examples/stn_digits.py                   # seconds
    python benchmarks/stn_digits.py                 # the whole experiment (minutes)

A SpatialTransformer in front of a small CNN, trained on scikit-learn's bundled 8x8
digits enlarged to 40x40 and RTS-distorted by the stn_rts preset, with RandomAffine as
augmentation. The layer returns forward pixel matrices, so boxes and points can follow.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import affine_aug as aa
from affine_aug.torch import RandomAffine, SpatialTransformer
from affine_aug.torch.stn import small_cnn

SIDE = 40


def digits(n=128):
    d = load_digits()
    x = (d.images[:n] / 16.0).astype(np.float32)  # (n, 8, 8) in [0, 1]
    m = aa.affine_matrix((8, 8), scale=3, translate=((SIDE - 8) / 2, (SIDE - 8) / 2))  # 24x24, centred
    canvas = aa.warp_affine(x, np.broadcast_to(m, (n, 3, 3)), out_size=(SIDE, SIDE))
    rts = aa.sample("stn_rts", keys=np.arange(n), size=(SIDE, SIDE), seed=1).matrices
    return torch.from_numpy(aa.warp_affine(canvas, rts))[:, None], torch.from_numpy(d.target[:n])


def main():
    torch.manual_seed(0)
    x, y = digits()
    model = nn.Sequential(
        SpatialTransformer(1, family="affine", out_size=(SIDE, SIDE), border="constant"), small_cnn(1, 10, SIDE)
    )
    aug = RandomAffine("stn_rts", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for start in range(0, len(x), 32):
        xb, yb = aug(x[start : start + 32]), y[start : start + 32]  # a fresh RTS draw per sample
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rectified, m = model[0](x[:4], return_matrices=True)
    print(
        f"one epoch on {len(x)} digits, last loss {loss.item():.3f}; "
        f"rectified {tuple(rectified.shape)}, matrices {tuple(m.shape)}"
    )


if __name__ == "__main__":
    main()
