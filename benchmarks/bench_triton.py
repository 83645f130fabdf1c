"""The fused Triton warp against kornia ``warp_affine`` (eager and compiled) and
``F.affine_grid`` + ``F.grid_sample``, in one interleaved run.

    python benchmarks/bench_triton.py [--batch 256] [--size 224] [--rounds 10] [--json out.json]
    python benchmarks/bench_triton.py --interpret        # CPU smoke run, tiny sizes (CI)

Batch ``(N, 3, S, S)``, per-sample forward matrices from the ``mild`` preset, bilinear,
constant border with fill 0 (kornia's and grid_sample's ``zeros`` padding, align_corners
True: the same pixel-centre convention). Every library gets its own matrix form, made
once on the CPU and shipped before timing: dst_to_src for the Triton warp, the forward
matrix for kornia, the normalised theta for affine_grid.

Reports img/s (median over interleaved rounds, CUDA events), the ratios the targets of
the issue name, and for forward passes the fraction of the device's memory bandwidth
reached: (bytes of the input read once + bytes of the output written) / time / peak,
with peak from a table of device names and from a measured device-to-device copy.
Before timing it checks that the three libraries agree on the float32 batch. Without
kornia (the ``bench`` extra) its cases are left out.

``run(...)`` is the entry point for other benchmark scripts (bench_torch.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Peak DRAM bandwidth (bytes/s) by a substring of torch.cuda.get_device_name(), most
# specific first.
PEAK_BANDWIDTH = [
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),
    ("GH200", 4.0e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 8.64e11),
    ("L40", 8.64e11),
    ("L4", 3.0e11),
    ("A10G", 6.0e11),
    ("A10", 6.0e11),
    ("T4", 3.2e11),
    ("V100", 9.0e11),
    ("RTX 4090", 1.008e12),
    ("RTX 3090", 9.36e11),
]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true", help="skip kornia under torch.compile")
    ap.add_argument(
        "--interpret",
        action="store_true",
        help="run the kernels under TRITON_INTERPRET=1 on the CPU at 2x3x8x8, one round (a smoke test)",
    )
    ap.add_argument("--json", type=Path)
    return ap.parse_args(argv)


def peak_from_table(name: str) -> float | None:
    for key, peak in PEAK_BANDWIDTH:
        if key in name:
            return peak
    return None


def measured_copy_bandwidth(torch, device, nbytes: int = 1 << 30, rounds: int = 5) -> float:
    """Bytes read + written per second by a device-to-device copy of ``nbytes``."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(rounds + 1):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del src, dst
    return 2 * nbytes / statistics.median(times[1:])


def make_inputs(torch, n: int, size: int, device):
    """Images (float32, float16, uint8) and each library's matrices, all on ``device``."""
    import numpy as np

    import affine_aug as aa

    m = aa.sample("mild", np.arange(n), size=(size, size), seed=0).matrices
    inv = aa.invert(m)
    theta = aa.to_theta(m, (size, size), align_corners=True)
    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    to = dict(device=device)
    return {
        "x32": (x8.float() / 255).to(**to),
        "x16": (x8.half() / 255).to(**to),
        "x8": x8.to(**to),
        "inv32": torch.from_numpy(inv[:, :2]).float().to(**to),
        "inv64": torch.from_numpy(inv[:, :2]).to(**to),
        "forward32": torch.from_numpy(m[:, :2]).float().to(**to),
        "theta": torch.from_numpy(theta).float().to(**to),
    }


def make_cases(torch, tw, inp, size: int, compile_kornia: bool) -> dict:
    """name → (function, bytes a forward pass must move at least, or None)."""
    import torch.nn.functional as F

    try:
        from kornia.geometry.transform import warp_affine as kornia_warp
    except ImportError:  # the bench extra is not installed: the other cases still run
        kornia_warp = None

    hw = (size, size)
    x32, x16, x8 = inp["x32"], inp["x16"], inp["x8"]
    grad = torch.ones_like(x32)
    x32g = x32.clone().requires_grad_()
    theta_g = inp["theta"].clone().requires_grad_()

    def moved(x):
        return 2 * x.numel() * x.element_size()

    def triton_backward():
        y = tw.warp_forward(x32, inp["inv32"], hw, "bilinear", "constant", 0)
        tw.warp_backward(grad, x32, inp["inv32"], hw, "bilinear", "constant", 0, needs_x=True, needs_m=True)
        return y

    def grid_sample(x, theta):
        return F.grid_sample(
            x,
            F.affine_grid(theta, list(x.shape), align_corners=True),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )

    def grid_sample_backward():
        y = grid_sample(x32g, theta_g)
        y.backward(grad)
        return y

    def kornia_backward():
        y = kornia_warp(x32g, inp["forward32"], hw, align_corners=True)
        y.backward(grad)
        return y

    cases = {
        "triton float32": (lambda: tw.warp_forward(x32, inp["inv32"], hw, "bilinear", "constant", 0), moved(x32)),
        "triton uint8": (lambda: tw.warp_forward(x8, inp["inv64"], hw, "bilinear", "constant", 0), moved(x8)),
        "triton float16": (lambda: tw.warp_forward(x16, inp["inv32"], hw, "bilinear", "constant", 0), moved(x16)),
        "triton bicubic float32": (
            lambda: tw.warp_forward(x32, inp["inv32"], hw, "bicubic", "constant", 0),
            moved(x32),
        ),
        "grid_sample float32": (lambda: grid_sample(x32, inp["theta"]), moved(x32)),
        "kornia float32": (lambda: kornia_warp(x32, inp["forward32"], hw, align_corners=True), moved(x32)),
        "triton float32 fwd+bwd": (triton_backward, None),
        "grid_sample float32 fwd+bwd": (grid_sample_backward, None),
        "kornia float32 fwd+bwd": (kornia_backward, None),
    }
    if kornia_warp is None:
        return {k: v for k, v in cases.items() if not k.startswith("kornia")}
    if compile_kornia:
        compiled = torch.compile(kornia_warp)
        cases["kornia compiled float32"] = (lambda: compiled(x32, inp["forward32"], hw, align_corners=True), moved(x32))
    return cases


def check_agreement(torch, cases) -> dict:
    """Max |difference| of the float32 forwards against the Triton warp's."""
    ref = cases["triton float32"][0]()
    out = {}
    for name in ("grid_sample float32", "kornia float32", "kornia compiled float32"):
        if name in cases:
            out[name] = float((cases[name][0]() - ref).abs().max())
    return out


def time_interleaved(torch, cases, rounds: int, cuda: bool) -> dict:
    """Median seconds per call of each case, the cases interleaved round by round."""
    for fn, _ in cases.values():  # warm-up: compiles the kernels and torch.compile
        fn()
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (fn, _) in cases.items():
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times[name].append(start.elapsed_time(end) / 1e3)
            else:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def run(batch: int = 256, size: int = 224, rounds: int = 10, compile_kornia: bool = True) -> dict:
    """Time every case on the current device (CUDA, or the CPU under the interpreter)."""
    import torch

    from affine_aug.torch import _triton_warp as tw

    if not tw.available():
        raise RuntimeError("the Triton warp is not available: needs triton and a CUDA device (or --interpret)")
    cuda = not tw.interpreting()
    device = torch.device("cuda" if cuda else "cpu")
    inp = make_inputs(torch, batch, size, device)
    cases = make_cases(torch, tw, inp, size, compile_kornia)
    agreement = check_agreement(torch, cases)
    seconds = time_interleaved(torch, cases, rounds, cuda)
    result = {
        "device": torch.cuda.get_device_name() if cuda else "cpu (Triton interpreter)",
        "shape": [batch, 3, size, size],
        "rounds": rounds,
        "agreement_max_abs": agreement,
        "img_per_s": {name: batch / s for name, s in seconds.items()},
        "ms": {k: 1e3 * s for k, s in seconds.items()},
    }
    if cuda:
        peaks = {"table": peak_from_table(result["device"]), "measured copy": measured_copy_bandwidth(torch, device)}
        result["peak_bandwidth"] = peaks
        result["bandwidth_fraction"] = {
            name: {k: nbytes / seconds[name] / p for k, p in peaks.items() if p}
            for name, (_, nbytes) in cases.items()
            if nbytes
        }
    return result


def ratio(ips: dict, a: str, b: str) -> str:
    return f"{ips[a] / ips[b]:.2f}x" if a in ips and b in ips else "n/a"


def report(result: dict) -> None:
    ips = result["img_per_s"]
    print(f"{result['device']}  batch {tuple(result['shape'])}  median of {result['rounds']} interleaved rounds")
    if "peak_bandwidth" not in result:
        print("  (interpreted kernels: a smoke run, the timings say nothing about the GPU)")
    for name, v in result["agreement_max_abs"].items():
        flag = "" if v <= 1e-4 else "   MISMATCH"
        print(f"  agreement with the Triton warp: {name:28s} max |diff| {v:.2e}{flag}")
    for name, v in ips.items():
        line = f"  {name:30s} {v:12,.0f} img/s {result['ms'][name]:9.3f} ms"
        for k, f in result.get("bandwidth_fraction", {}).get(name, {}).items():
            line += f"   {100 * f:5.1f}% of peak ({k})"
        print(line)
    print("targets (issue 21, CUDA):")
    print(f"  triton / kornia eager          {ratio(ips, 'triton float32', 'kornia float32')}   (>= 2x)")
    print(f"  triton / kornia compiled       {ratio(ips, 'triton float32', 'kornia compiled float32')}   (>= 2x)")
    print(f"  triton / grid_sample           {ratio(ips, 'triton float32', 'grid_sample float32')}   (>= 1.5x)")
    print(f"  triton uint8 / triton float32  {ratio(ips, 'triton uint8', 'triton float32')}   (>= 2x)")
    print(f"  fwd+bwd triton / grid_sample   {ratio(ips, 'triton float32 fwd+bwd', 'grid_sample float32 fwd+bwd')}")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # read when triton is first imported: before torch / kornia
        args.batch, args.size, args.rounds, args.no_compile = 2, 8, 1, True
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    result = run(args.batch, args.size, args.rounds, compile_kornia=not args.no_compile)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
