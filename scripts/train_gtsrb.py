"""Train the small CNN or the ST-CNN on the output of ``affine-aug gtsrb`` (npz), on CPU or GPU.

    affine-aug gtsrb --root data/gtsrb --out out/gtsrb32 --copies 5
    python scripts/train_gtsrb.py --data out/gtsrb32 --model stn --epochs 10

Reads ``train.npz`` / ``val.npz`` / ``test.npz`` (``x`` uint8 (N, H, W, 3), ``y``), trains
with Adam and cross-entropy, prints the validation accuracy after every epoch and the
test accuracy at the end (when ``test.npz`` has images). ``--max-steps`` stops early (the
test suite runs a few steps on the synthetic set). On real GTSRB this is the full
experiment; the literature's test accuracies are in the README (GTSRB section).
Needs the torch extra.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affine_aug.torch import SpatialTransformer
from affine_aug.torch.stn import small_cnn


def load(path: Path):
    if not path.is_file():
        raise SystemExit(f"train_gtsrb: {path} not found (run `affine-aug gtsrb --format npz` first)")
    with np.load(path) as d:
        return torch.from_numpy(d["x"]).permute(0, 3, 1, 2), torch.from_numpy(d["y"]).long()


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch: int = 1024) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = net(x[i : i + batch].to(device).float() / 255)
            correct += int((logits.argmax(1).cpu() == y[i : i + batch]).sum())
    return correct / max(1, len(x))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="output folder of `affine-aug gtsrb` (npz format)")
    ap.add_argument("--model", choices=("cnn", "stn"), default="cnn")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    x, y = load(a.data / "train.npz")
    xv, yv = load(a.data / "val.npz")
    size = x.shape[-1]
    if x.shape[-2] != size or size < 12 or len(x) == 0:
        raise SystemExit(f"train_gtsrb: expected training images, square, of at least 12 px; got {tuple(x.shape)}")
    cnn = small_cnn(3, max(43, int(y.max()) + 1), size)
    net = (nn.Sequential(SpatialTransformer(3, family="affine"), cnn) if a.model == "stn" else cnn).to(a.device)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    steps, t0 = 0, time.perf_counter()
    for epoch in range(a.epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=g).split(a.batch_size):
            loss = nn.functional.cross_entropy(net(x[idx].to(a.device).float() / 255), y[idx].to(a.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if a.max_steps and steps >= a.max_steps:
                break
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f}, validation "
            f"accuracy {100 * accuracy(net, xv, yv, a.device):.2f}% "
            f"({steps} steps, {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        if a.max_steps and steps >= a.max_steps:
            break
    if (a.data / "test.npz").is_file():
        xt, yt = load(a.data / "test.npz")
        print(f"test accuracy {100 * accuracy(net, xt, yt, a.device):.2f}% ({len(xt)} images, model {a.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
