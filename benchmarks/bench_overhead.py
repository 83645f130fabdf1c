"""Per-call overhead of the one-image path: what a call costs beyond the kernel's own work.

    python benchmarks/bench_overhead.py                 # 224x224 RGB uint8, config "mild"
    python benchmarks/bench_overhead.py --size 64 64 --config configs/strong.yaml --json out.json

One thread (``set_num_threads(1)``), as in a DataLoader worker. Each case is timed in
rounds of one pass over 64 keys each (the kernel's cost varies with the transform, so every
case does the same warps and differences between cases are overhead alone), all cases
interleaved within a round. Each call is timed on its own; a case's figure is the mean over
the keys of each key's fastest call over the rounds (the least disturbed by other
processes: one call is rarely interrupted, a long loop on a busy machine always is).
The kernel's own work is its C entry point called with everything prepared; every other
figure is reported as its excess over that:

    kernel                  the CPython entry (csrc/fastpath.c) on prepared arrays: buffer
                            reads, the 3x3 inversion and aa_warp (the reference)
    kernel via ctypes       aa_warp through ctypes with prepared integer addresses
    warp_affine             warp_affine(image[None], matrix): the one-image path
    warp_affine (ctypes)    the same without the CPython entry (kernel.FASTPATH = None):
                            ctypes and numpy's .ctypes addresses, the fallback
    warp, lean ctypes       the best ctypes variant measured (cached function, preallocated
                            matrix and fill, addresses from __array_interface__): not used
    warp_affine (batch checks)   the matrix as a list: the general path (numpy validation)
    sample / sample (flip only)  sample(config, [key], size): the one-key path
    sample (batch path)     sample(config, [key, key + 1], size), per call
    sample + warp           a fresh key sampled and warped per call: sample, then warp_affine
    Augment                 the same through affine_aug.Augment(config)(image, key): one
                            compiled call from the key to the kernel
    RandomAffine (tensor)   affine_aug.torch.RandomAffine on a (3, H, W) uint8 tensor; its
                            reference is the planar kernel (aa_warp_planes) on prepared
                            tensors ("planar kernel")
    RandomAffine (PIL), RandomAffine (numpy)   the same on a PIL image and an HWC array;
                            their reference is the kernel above (skipped without torch)
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


def timed_pass(f) -> np.ndarray:
    """Seconds of each of KEYS calls of f, one per key (each call timed on its own)."""
    out = np.empty(KEYS)
    clock = time.perf_counter
    for i in range(KEYS):
        t0 = clock()
        f()
        out[i] = clock() - t0
    return out


KEYS = 64  # each timed loop is one pass over the keys, so that every case does the same warps


def cases(size, config):
    """The timed calls, and the reference each one's excess is taken over."""
    h, w = size
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    cfg, flips = aa.load_config(config), aa.load_config({"flip": {"horizontal": 0.5}})
    keys = list(range(KEYS))
    ms = [aa.sample(cfg, [k], size).matrices for k in keys]
    lists = [m.tolist() for m in ms]
    invs = [np.ascontiguousarray(invert(m)) for m in ms]
    out = np.empty_like(img)
    fill = np.zeros(3, np.float64)
    lib, fast = kernel._LIB, kernel.FASTPATH
    step = iter(np.arange(10**8) % KEYS)  # loops of KEYS calls keep every case on the same keys
    addresses = [inv.ctypes.data for inv in invs]
    a_img, a_out, a_fill = img.ctypes.data, out.ctypes.data, fill.ctypes.data

    augment = aa.Augment(cfg)

    def via_ctypes():
        lib.aa_warp(a_img, a_out, addresses[next(step)], a_fill, 1, h, w, 3, h, w, 0, 1, 0, -0.5, 1)

    def without_entry():
        kernel.FASTPATH = None
        try:
            return aa.warp_affine(img, ms[next(step)])
        finally:
            kernel.FASTPATH = fast

    c = {
        "kernel": (lambda: fast.warp_one(img, ms[next(step)], out, 1, 0, None, -0.5, 1), None),
        "kernel via ctypes": (via_ctypes, "kernel"),
        "warp_affine": (lambda: aa.warp_affine(img, ms[next(step)]), "kernel"),
        "warp_affine (ctypes)": (without_entry, "kernel"),
        "warp, lean ctypes": (_lean_ctypes(img, ms, step), "kernel"),
        "warp_affine (batch checks)": (lambda: aa.warp_affine(img, lists[next(step)]), "kernel"),
        "sample": (lambda: aa.sample(cfg, [keys[next(step)]], size), None),
        "sample (flip only)": (lambda: aa.sample(flips, [keys[next(step)]], size), None),
        "sample (batch path)": (lambda: aa.sample(cfg, [keys[next(step)], 7], size), None),
        "sample + warp": (lambda: aa.warp_affine(img, aa.sample(cfg, [keys[next(step)]], size).matrices), "kernel"),
        "Augment": (lambda: augment(img[0], keys[next(step)]), "kernel"),
    }
    try:
        c.update(_torch_cases(img, cfg, invs, step))
    except ImportError:
        pass
    return c


def _lean_ctypes(img, ms, step):
    """The one-image call through ctypes at its leanest: the function and the small arrays
    made once, the matrix inverted in Python floats, addresses as integers."""
    import ctypes

    from affine_aug import _one

    fn = kernel._LIB.aa_warp
    inv_buf, fill_buf = (ctypes.c_double * 9)(0, 0, 0, 0, 0, 0, 0, 0, 1), (ctypes.c_double * 3)()
    a_inv, a_fill = ctypes.addressof(inv_buf), ctypes.addressof(fill_buf)
    _, h, w, c = img.shape

    def call():
        inv_buf[:6] = _one.invert_one(*_one._entries(ms[next(step)]))
        res = np.empty(img.shape, img.dtype)
        data = img.__array_interface__["data"][0]
        fn(data, res.__array_interface__["data"][0], a_inv, a_fill, 1, h, w, c, h, w, 0, 1, 0, -0.5, 1)
        return res

    return call


def _torch_cases(img, cfg, invs, step):
    import PIL.Image
    import torch

    from affine_aug.torch import RandomAffine, _cpu

    torch.set_num_threads(1)
    _, h, w, _ = img.shape
    x = torch.from_numpy(img[0]).permute(2, 0, 1).contiguous()
    pil, arr = PIL.Image.fromarray(img[0]), img[0]
    tensors, y = [_cpu._matrices(torch.from_numpy(inv)) for inv in invs], torch.empty_like(x[None])
    strides, fill = _cpu._strides(x[None]), torch.zeros(3, dtype=torch.float64)
    lib = _cpu._LIB

    def planar():
        m = tensors[next(step)]
        lib.aa_warp_planes(
            x.data_ptr(), x.numel(), strides.data_ptr(), y.data_ptr(), m.data_ptr(), fill.data_ptr(), fill.data_ptr(),
            1, 3, h, w, h, w, 1, 0, 1, 0, -0.5, 1,
        )  # fmt: skip

    t = RandomAffine(cfg, seed=0)  # under seed 0, call k draws key k: the transforms of the other cases

    def keyed(inpt):
        def call():
            t._counter = int(next(step))  # the keys of this pass again, from its parameters drawn ahead
            return t(inpt)

        return call

    return {
        "planar kernel": (planar, None),
        "RandomAffine (tensor)": (keyed(x), "planar kernel"),
        "RandomAffine (PIL)": (keyed(pil), "kernel"),
        "RandomAffine (numpy)": (keyed(arr), "kernel"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    ap.add_argument("--config", default="mild")
    ap.add_argument("--rounds", type=int, default=80)
    ap.add_argument("--json", help="write the figures (microseconds) to this file")
    args = ap.parse_args(argv)
    if not kernel.available():
        raise SystemExit("the compiled kernel is not built: python setup.py build_ext --inplace")
    aa.set_num_threads(1)
    size = tuple(args.size)
    fns = cases(size, args.config)
    for f, _ in fns.values():  # warm up
        timed_pass(f)
    best = {name: np.full(KEYS, np.inf) for name in fns}
    for _ in range(args.rounds):
        for name, (f, _) in fns.items():
            best[name] = np.minimum(best[name], timed_pass(f))
    us = {k: float(v.mean()) * 1e6 for k, v in best.items()}  # per key its fastest call, then the mean
    print(
        f"# one {size[0]}x{size[1]} RGB uint8 image, bilinear, config {args.config!r}, 1 thread; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"{'case':30s} {'us/call':>10s} {'beyond kernel':>14s}")
    for name, v in us.items():
        ref = fns[name][1]
        extra = f"{v - us[ref]:14.1f}" if ref else ""
        print(f"{name:30s} {v:10.1f} {extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": size, "config": args.config, "load": os.getloadavg()[0], "us": us}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
