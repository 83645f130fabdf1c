"""Train the digits CNN with the augmentation of the Hydra config group ``aug``.

    python examples/hydra_digits/train.py                               # one run (aug=mild)
    python examples/hydra_digits/train.py -m aug=identity,mild,strong   # a sweep, about a minute on 2 cores
    python examples/hydra_digits/train.py aug=rotate_only +max_angle=45 # an inline config, interpolated
    python examples/hydra_digits/collect.py multirun/hydra_digits       # the sweep as a table and a plot

The experiment of ``benchmarks/stn_digits.py``, setting (b): scikit-learn's bundled 8x8
digits (no download), enlarged to 24x24 on a 40x40 canvas; the model trains on upright
digits, each batch augmented by ``hydra.utils.instantiate(cfg.aug)`` (an
``affine_aug.torch.RandomAffine`` built from a preset by name), and is tested on digits
distorted once by ``test_distortion`` (the STN paper's RTS). Each run writes
``result.json`` into its Hydra output folder. Needs ``pip install -e ".[torch,hydra,examples]"``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

import affine_aug as aa
from affine_aug.pipeline import box_to_size_matrix
from affine_aug.torch.stn import small_cnn

SIDE = 40
OmegaConf.register_new_resolver("negate", lambda x: -float(x), replace=True)


def load_digits(n_train: int, n_test: int):
    """Digits centred on a SIDE x SIDE canvas, split by a fixed permutation (seed 0):
    the first 540 are the test set, as in benchmarks/stn_digits.py."""
    from sklearn.datasets import load_digits as sklearn_digits

    d = sklearn_digits()
    images = (d.images / 16.0).astype(np.float32)
    place = aa.compose(box_to_size_matrix([0, 0, 8, 8], (24, 24)), aa.affine_matrix((SIDE, SIDE), translate=(8, 8)))
    canvas = aa.warp_affine(images, place, out_size=(SIDE, SIDE), border="constant")
    order = np.random.default_rng(0).permutation(len(canvas))
    test, train = order[:540][:n_test], order[540:][:n_train]
    return canvas[train], d.target[train], canvas[test], d.target[test]


def train_and_test(cfg: DictConfig, aug) -> dict:
    t = cfg.train
    torch.manual_seed(t.seed)
    x_tr, y_tr, x_te, y_te = load_digits(t.n_train, t.n_test)
    m = aa.sample(cfg.test_distortion, np.arange(len(x_te)), size=(SIDE, SIDE), seed=cfg.test_seed).matrices
    x_te = aa.warp_affine(x_te, m, border="constant")
    net = small_cnn(1, 10, SIDE)
    opt = torch.optim.Adam(net.parameters(), lr=t.lr)
    xt, yt = torch.from_numpy(x_tr)[:, None], torch.from_numpy(y_tr).long()
    g = torch.Generator().manual_seed(t.seed)
    for _ in range(t.epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=g).split(t.batch):
            loss = nn.functional.cross_entropy(net(aug(xt[idx])), yt[idx])  # one keyed transform per sample
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x_te)[:, None]).argmax(1).numpy()
    return {"test_error": float((pred != y_te).mean()), "n_train": len(x_tr), "n_test": len(x_te)}


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    torch.set_num_threads(cfg.train.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    aug = instantiate(cfg.aug)  # affine_aug.torch.RandomAffine
    result = train_and_test(cfg, aug)
    hc = HydraConfig.get()
    result.update(
        aug=hc.runtime.choices.get("aug"),
        epochs=cfg.train.epochs,
        seed=cfg.train.seed,
        config=aug.config.to_dict(),
        seconds=round(time.perf_counter() - t0, 2),
    )
    out = Path(hc.runtime.output_dir) / "result.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"aug={result['aug']}: test error {100 * result['test_error']:.2f}% "
        f"({result['n_train']} training digits, {cfg.train.epochs} epochs, {result['seconds']:.1f} s) -> {out}"
    )
    return result["test_error"]


if __name__ == "__main__":
    main()
