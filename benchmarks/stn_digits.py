"""What does augmentation buy, and what does a spatial transformer buy? Real digits, CPU.

    python benchmarks/stn_digits.py                 # the whole experiment (2 cores: 8.7 min)
    python benchmarks/stn_digits.py --smoke         # a few seconds: the pipeline end to end

Data: scikit-learn's bundled handwritten digits (``load_digits``: 1,797 real 8x8 scans,
no download; ``pip install -e ".[examples]"``), enlarged to 24x24 and centred in a 40x40
canvas (one bilinear warp). A fixed split by index (seed 0): 540 test, 1,257 train.

Distortion "RTS" is ``configs/stn_rts.yaml`` (the STN paper's: rotation +-45 degrees, scale
0.7-1.2, translation up to 1/6 of the side), keyed draws: training images get keys
``i`` under seed 1, test images under seed 2.

Settings: (a) train RTS, test RTS (the paper's); (b) train upright, test RTS.
Models: CNN (``small_cnn``), CNN + augmentation (``RandomAffine("stn_rts")`` on every
training batch: a fresh RTS draw per sample and epoch, applied to the training images of
the setting: in (a) on top of their fixed RTS distortion, so wider than the test
distortion; in (b) to the upright digits), ST-CNN (``SpatialTransformer`` family "affine"
in front of the same CNN), ST-CNN + augmentation. 3 seeds each (model initialisation and batch
order); deterministic for a given seed. Prints a Markdown table of test error (mean
+- std over seeds) and writes ``docs/stn_digits.png``: distorted test inputs (top row)
and the ST-CNN's rectified outputs under them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import affine_aug as aa
from affine_aug.pipeline import box_to_size_matrix, save_image
from affine_aug.torch import RandomAffine, SpatialTransformer
from affine_aug.torch.stn import small_cnn

SIDE = 40


def load(n_test: int = 540):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    place = aa.compose(box_to_size_matrix([0, 0, 8, 8], (24, 24)), aa.affine_matrix((SIDE, SIDE), translate=(8, 8)))
    canvas = aa.warp_affine(images, place, out_size=(SIDE, SIDE), border="constant")  # 24x24 digit, centred
    order = np.random.default_rng(0).permutation(len(canvas))
    test, train = order[:n_test], order[n_test:]
    return canvas[train], d.target[train], canvas[test], d.target[test]


def rts(images: np.ndarray, seed: int) -> np.ndarray:
    m = aa.sample("stn_rts", np.arange(len(images)), size=(SIDE, SIDE), seed=seed).matrices
    return aa.warp_affine(images, m, border="constant")


def model(stn: bool) -> nn.Module:
    cnn = small_cnn(1, 10, SIDE)
    return nn.Sequential(SpatialTransformer(1, family="affine", border="constant"), cnn) if stn else cnn


def train_and_test(
    x_train, y_train, x_test, y_test, *, stn: bool, augment: bool, seed: int, epochs: int, batch: int = 64
) -> tuple[float, nn.Module]:
    torch.manual_seed(seed)
    net = model(stn)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    aug = RandomAffine("stn_rts", seed=seed, border="constant") if augment else None
    xt, yt = torch.from_numpy(x_train)[:, None], torch.from_numpy(y_train).long()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=g).split(batch):
            xb = aug(xt[idx]) if aug is not None else xt[idx]  # (B, 1, H, W): one transform per sample
            loss = nn.functional.cross_entropy(net(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x_test)[:, None]).argmax(1).numpy()
    return float((pred != y_test).mean()), net


def picture(net: nn.Module, x: np.ndarray, path: Path, n: int = 10) -> None:

    with torch.no_grad():
        rect = net[0](torch.from_numpy(x[:n])[:, None])[:, 0].numpy()
    rows = [np.concatenate([np.pad(im, 1, constant_values=1.0) for im in row], 1) for row in (x[:n], rect)]
    grid = (np.clip(np.concatenate(rows, 0), 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(np.kron(grid, np.ones((3, 3), np.uint8)), path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="1 epoch, 1 seed, 200 training images")
    ap.add_argument("--picture", type=Path, default=Path("docs/stn_digits.png"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load()
    if a.smoke:
        x_tr, y_tr, a.epochs, a.seeds = x_tr[:200], y_tr[:200], 1, a.seeds[:1]
    x_tr_rts, x_te_rts = rts(x_tr, seed=1), rts(x_te, seed=2)
    settings = {"(a) train RTS, test RTS": x_tr_rts, "(b) train upright, test RTS": x_tr}
    names = {
        (False, False): "CNN",
        (False, True): "CNN + affine_aug augmentation",
        (True, False): "ST-CNN",
        (True, True): "ST-CNN + affine_aug augmentation",
    }
    errors, keep = {}, None
    for setting, x_train in settings.items():
        for (stn, augment), name in names.items():
            errs = []
            for seed in a.seeds:
                err, net = train_and_test(
                    x_train, y_tr, x_te_rts, y_te, stn=stn, augment=augment, seed=seed, epochs=a.epochs
                )
                errs.append(err)
                if stn and not augment and seed == a.seeds[0] and setting.startswith("(a)"):
                    keep = net
            errors[name, setting] = errs
            print(f"{setting:30s} {name:34s} " + " ".join(f"{100 * e:5.2f}%" for e in errs), flush=True)
    print(
        f"\nTest error on RTS-distorted digits, mean ± std over seeds {a.seeds} "
        f"({a.epochs} epochs, {len(x_tr)} training images, {len(x_te)} test; {time.perf_counter() - t0:.0f} s):\n"
    )
    print("| model | " + " | ".join(settings) + " |\n|---|" + "---:|" * len(settings))
    for name in names.values():
        cells = [f"{100 * np.mean(errors[name, s]):.2f} ± {100 * np.std(errors[name, s]):.2f} %" for s in settings]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if keep is not None and not a.smoke:
        picture(keep, x_te_rts, a.picture)
        print(f"\nwrote {a.picture}: distorted test digits (top), the ST-CNN's rectified outputs (bottom)")


if __name__ == "__main__":
    main()
