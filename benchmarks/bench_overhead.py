"""Per-call overhead of the one-image path: what a call costs beyond the kernel's own work.

    python benchmarks/bench_overhead.py                 # 224x224 RGB uint8, config "mild"
    python benchmarks/bench_overhead.py --size 64 64 --config configs/strong.yaml --json out.json

One thread (``set_num_threads(1)``), as in a DataLoader worker. Each case is timed in
rounds, all cases interleaved within a round, and the fastest round is kept (the least
disturbed by other processes). The kernel's own work is its C entry point called
directly through ctypes with prepared arguments; every other figure is reported as its
excess over that:

    kernel              aa_warp itself (the reference)
    warp_affine         warp_affine(image[None], matrix): the one-image fast path
    warp_affine (batch checks)   the same call given the matrix as a list, which takes the
                        general path (numpy validation and inversion)
    sample              sample(config, [key], size): the one-key path
    sample (batch path) sample(config, [key, key + 1], size), per call
    sample + warp       a fresh key sampled and warped per call: the numpy per-image path
    RandomAffine        affine_aug.torch.RandomAffine on a (3, H, W) uint8 tensor (skipped
                        without torch)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import affine_aug as aa
from affine_aug import kernel
from affine_aug.matrix import invert


def per_call(f, loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        f()
    return (time.perf_counter() - t0) / loops


def cases(size, config):
    """The timed calls. Each cycles through the same 64 keys (the kernel's cost varies with the
    transform), so that their differences are overhead alone."""
    h, w = size
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    cfg = aa.load_config(config)
    keys = list(range(64))
    ms = [aa.sample(cfg, [k], size).matrices for k in keys]
    lists = [m.tolist() for m in ms]
    invs = [np.ascontiguousarray(invert(m)) for m in ms]
    out = np.empty_like(img)
    fill = np.zeros(3, np.float64)
    lib = kernel._LIB
    step = iter(np.arange(10**8) % 64)

    def raw():
        inv = invs[next(step)]
        lib.aa_warp(
            img.ctypes.data, out.ctypes.data, inv.ctypes.data, fill.ctypes.data, 1, h, w, 3, h, w, 0, 1, 0, -0.5, 1
        )

    c = {
        "kernel": raw,
        "warp_affine": lambda: aa.warp_affine(img, ms[next(step)]),
        "warp_affine (batch checks)": lambda: aa.warp_affine(img, lists[next(step)]),
        "sample": lambda: aa.sample(cfg, [keys[next(step)]], size),
        "sample (batch path)": lambda: aa.sample(cfg, [keys[next(step)], 7], size),
        "sample + warp": lambda: aa.warp_affine(img, aa.sample(cfg, [keys[next(step)]], size).matrices),
    }
    try:
        import torch

        from affine_aug.torch import RandomAffine

        torch.set_num_threads(1)
        t = RandomAffine(cfg, seed=0)
        x = torch.from_numpy(img[0]).permute(2, 0, 1).contiguous()
        c["RandomAffine (torch)"] = lambda: t(x)
    except ImportError:
        pass
    return c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    ap.add_argument("--config", default="mild")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=0.05, help="time per case per round (default 0.05)")
    ap.add_argument("--json", help="write the figures (microseconds) to this file")
    args = ap.parse_args(argv)
    if not kernel.available():
        raise SystemExit("the compiled kernel is not built: python setup.py build_ext --inplace")
    aa.set_num_threads(1)
    size = tuple(args.size)
    fns = cases(size, args.config)
    loops = {}
    for name, f in fns.items():  # warm up, and size each case's loop to about --seconds
        f()
        loops[name] = max(3, int(args.seconds / max(per_call(f, 3), 1e-7)))
    best = {name: float("inf") for name in fns}
    for _ in range(args.rounds):
        for name, f in fns.items():
            best[name] = min(best[name], per_call(f, loops[name]))
    us = {k: v * 1e6 for k, v in best.items()}
    k = us["kernel"]
    print(
        f"# one {size[0]}x{size[1]} RGB uint8 image, bilinear, config {args.config!r}, 1 thread; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"{'case':30s} {'us/call':>10s} {'beyond kernel':>14s}")
    for name, v in us.items():
        extra = "" if name == "kernel" or name.startswith("sample") and "warp" not in name else f"{v - k:14.1f}"
        print(f"{name:30s} {v:10.1f} {extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": size, "config": args.config, "load": os.getloadavg()[0], "us": us}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
