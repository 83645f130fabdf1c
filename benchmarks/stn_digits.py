"""What does augmentation buy, and what does a spatial transformer buy? Real digits, CPU.

    python benchmarks/stn_digits.py                 # the whole experiment (minutes, 2 cores)
    python benchmarks/stn_digits.py --smoke         # a few seconds: the pipeline end to end
    python benchmarks/stn_digits.py --jobs 1        # one process (the same table)

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

Speed: the 24 trainings (settings x models x seeds) run in ``--jobs`` worker processes
of ``--threads`` threads each (default 2 x 1 for two cores: small convolutions scale
better across processes than across threads); a training's result depends only on its
seed and its thread count, never on the number of jobs. The models are kept channels-last
(oneDNN's fast layout for convolutions with few channels), Adam runs fused, and torch's
deterministic mode does not fill every new tensor with NaN first.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
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
    net = model(stn).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, fused=True)
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
    with torch.inference_mode():
        pred = net(torch.from_numpy(x_test)[:, None]).argmax(1).numpy()
    return float((pred != y_test).mean()), net


def rectified(net: nn.Module, x: np.ndarray, n: int = 10) -> np.ndarray:
    """The spatial transformer's outputs ``(n, H, W)`` for the first ``n`` images."""
    with torch.inference_mode():
        return net[0](torch.from_numpy(x[:n])[:, None])[:, 0].numpy()


def picture(x: np.ndarray, rect: np.ndarray, path: Path) -> None:
    rows = [np.concatenate([np.pad(im, 1, constant_values=1.0) for im in row], 1) for row in (x[: len(rect)], rect)]
    grid = (np.clip(np.concatenate(rows, 0), 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(np.kron(grid, np.ones((3, 3), np.uint8)), path)


NAMES = {
    (False, False): "CNN",
    (False, True): "CNN + affine_aug augmentation",
    (True, False): "ST-CNN",
    (True, True): "ST-CNN + affine_aug augmentation",
}
SETTINGS = ("(a) train RTS, test RTS", "(b) train upright, test RTS")
_DATA: dict = {}  # each process's copy of the data (set by _start)


def _start(data: dict, threads: int) -> None:
    """Set up a process that runs trainings: its data, threads and deterministic mode."""
    _DATA.update(data)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # a debugging aid; values never depend on it


def _run(job: tuple) -> tuple[float, np.ndarray | None]:
    """One training ``(setting, stn, augment, seed, epochs, picture)`` → (test error,
    the ST-CNN's rectified test digits when ``picture``)."""
    setting, stn, augment, seed, epochs, want_picture = job
    d = _DATA
    x_train = d["x_tr_rts"] if setting == SETTINGS[0] else d["x_tr"]
    err, net = train_and_test(x_train, d["y_tr"], d["x_te_rts"], d["y_te"], stn=stn, augment=augment, seed=seed,
                              epochs=epochs)  # fmt: skip
    return err, rectified(net, d["x_te_rts"]) if want_picture else None


def _progress(results, jobs: list, t0: float) -> list:
    """The results in job order, each training reported on stderr as it is done."""
    done = []
    for (setting, stn, augment, seed, *_), result in zip(jobs, results):
        done.append(result)
        print(f"[{time.perf_counter() - t0:5.0f} s] {setting} {NAMES[stn, augment]} seed {seed}: "
              f"{100 * result[0]:.2f}%", file=sys.stderr, flush=True)  # fmt: skip
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument("--smoke", action="store_true", help="1 epoch, 1 seed, 200 training images")
    ap.add_argument("--picture", type=Path, default=Path("docs/stn_digits.png"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load()
    if a.smoke:
        x_tr, y_tr, a.epochs, a.seeds = x_tr[:200], y_tr[:200], 1, a.seeds[:1]
    data = dict(x_tr=x_tr, y_tr=y_tr, x_tr_rts=rts(x_tr, seed=1), x_te_rts=rts(x_te, seed=2), y_te=y_te)
    jobs = [
        (setting, stn, augment, seed, a.epochs, stn and not augment and seed == a.seeds[0] and setting == SETTINGS[0])
        for setting in SETTINGS
        for (stn, augment) in NAMES
        for seed in a.seeds
    ]
    if a.jobs > 1:  # spawned workers: a fresh torch in each (no OpenMP state inherited through fork)
        with multiprocessing.get_context("spawn").Pool(a.jobs, _start, (data, a.threads)) as pool:
            results = _progress(pool.imap(_run, jobs), jobs, t0)
    else:
        _start(data, a.threads)
        results = _progress(map(_run, jobs), jobs, t0)
    errors, rect = {}, None
    for (setting, stn, augment, _, _, want_picture), (err, r) in zip(jobs, results):
        errors.setdefault((NAMES[stn, augment], setting), []).append(err)
        rect = r if want_picture else rect
    for setting in SETTINGS:
        for name in NAMES.values():
            print(f"{setting:30s} {name:34s} " + " ".join(f"{100 * e:5.2f}%" for e in errors[name, setting]))
    print(
        f"\nTest error on RTS-distorted digits, mean ± std over seeds {a.seeds} "
        f"({a.epochs} epochs, {len(x_tr)} training images, {len(x_te)} test; {time.perf_counter() - t0:.0f} s, "
        f"{a.jobs} jobs x {a.threads} threads):\n"
    )
    print("| model | " + " | ".join(SETTINGS) + " |\n|---|" + "---:|" * len(SETTINGS))
    for name in NAMES.values():
        cells = [f"{100 * np.mean(errors[name, s]):.2f} ± {100 * np.std(errors[name, s]):.2f} %" for s in SETTINGS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if rect is not None and not a.smoke:
        picture(data["x_te_rts"], rect, a.picture)
        print(f"\nwrote {a.picture}: distorted test digits (top), the ST-CNN's rectified outputs (bottom)")


if __name__ == "__main__":
    main()
