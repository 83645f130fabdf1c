"""The torch warper against its peers on (N, C, H, W) tensors, all in one interleaved run.

    python benchmarks/bench_torch.py [--n 64] [--rounds 5] [--threads 1,2] [--json out.json] [--only uint8,float32]

Per-sample matrices from the ``mild`` preset, (N, 3, 224, 224):
  float32   affine_aug.torch.warp_affine | F.affine_grid + F.grid_sample | kornia
            warp_affine | affine_aug.warp_affine (the C kernel on NHWC numpy), forward
            and forward + backward (gradient with respect to the images)
  uint8     affine_aug.torch.warp_affine (NCHW tensor) | affine_aug.warp_affine (NHWC numpy)
  float16   affine_aug.torch.warp_affine | grid_sample (CUDA only: torch's CPU float16
            grid_sample backward crashes), forward and forward + backward
  batch     affine_aug RandomAffine("mild") (eager, and compiled with fullgraph=True) |
            kornia.augmentation.RandomAffine (per-sample draws) | torchvision
            v2.RandomAffine (one draw for the whole batch)
on the CPU at each thread count (torch.set_num_threads and affine_aug.set_num_threads
together), and on CUDA when a device is present (there also the fraction of the device's
memory bandwidth: bytes read and written once over time, against the bus's peak).

Each round times every entry once, in turn (so load on a shared machine hits them alike);
the figure is an entry's fastest round, after one untimed call; also the CPU time of
that process (all threads), steadier than wall time on a loaded machine. kornia is optional
(``pip install -e ".[bench]"``); a missing peer prints as "-".
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import affine_aug as aa
from affine_aug.torch import RandomAffine, warp_affine

try:
    import kornia
except ImportError:  # a benchmark-only peer
    kornia = None

SIZE = (224, 224)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _case(n: int, device):
    m = aa.sample("mild", np.arange(n), size=SIZE, seed=0).matrices
    theta = torch.from_numpy(aa.to_theta(m, SIZE, SIZE)).float().to(device)
    return m, torch.from_numpy(m[:, :2]).float().to(device), theta


def _grid_sample(x, theta):
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _backward(fn):
    def run(x):
        x.grad = None
        fn(x).sum().backward()

    return run


def entries(n: int, device) -> dict:
    """name -> (callable, images per call, bytes moved per call)."""
    m, m23, theta = _case(n, device)
    x = torch.rand(n, 3, *SIZE, device=device)
    xg = x.clone().requires_grad_(True)
    u8 = (x * 255).to(torch.uint8)
    f16 = x.half()
    f16g = f16.clone().requires_grad_(True)
    out = {}
    f32_bytes, u8_bytes = 2 * x.numel() * 4, 2 * x.numel()

    def add(name, fn, nbytes):
        out[name] = (fn, n, nbytes)

    add("float32 forward | affine_aug.torch.warp_affine", lambda: warp_affine(x, m), f32_bytes)
    add("float32 forward | F.affine_grid + F.grid_sample", lambda: _grid_sample(x, theta), f32_bytes)
    if kornia is not None:
        kw = kornia.geometry.transform.warp_affine
        add("float32 forward | kornia warp_affine", lambda: kw(x, m23, SIZE, align_corners=True), f32_bytes)
    if device.type == "cpu":
        nhwc, nhwc8 = x.permute(0, 2, 3, 1).contiguous().numpy(), u8.permute(0, 2, 3, 1).contiguous().numpy()
        add(
            "float32 forward | affine_aug.warp_affine (C kernel, NHWC numpy)",
            lambda: aa.warp_affine(nhwc, m),
            f32_bytes,
        )
    add(
        "float32 fwd+bwd | affine_aug.torch.warp_affine",
        lambda: _backward(lambda a: warp_affine(a, m))(xg),
        2 * f32_bytes,
    )
    add(
        "float32 fwd+bwd | F.affine_grid + F.grid_sample",
        lambda: _backward(lambda a: _grid_sample(a, theta))(xg),
        2 * f32_bytes,
    )
    if kornia is not None:
        add(
            "float32 fwd+bwd | kornia warp_affine",
            lambda: _backward(lambda a: kw(a, m23, SIZE, align_corners=True))(xg),
            2 * f32_bytes,
        )
    add("uint8 forward | affine_aug.torch.warp_affine (NCHW tensor)", lambda: warp_affine(u8, m), u8_bytes)
    if device.type == "cpu":
        add("uint8 forward | affine_aug.warp_affine (C kernel, NHWC numpy)", lambda: aa.warp_affine(nhwc8, m), u8_bytes)
    add("float16 forward | affine_aug.torch.warp_affine", lambda: warp_affine(f16, m), f32_bytes // 2)
    if device.type == "cuda":  # torch 2.14's float16 grid_sample backward corrupts the heap on the CPU (crashes)
        add("float16 forward | F.affine_grid + F.grid_sample", lambda: _grid_sample(f16, theta), f32_bytes // 2)
    add(
        "float16 fwd+bwd | affine_aug.torch.warp_affine",
        lambda: _backward(lambda a: warp_affine(a, m))(f16g),
        f32_bytes,
    )
    if device.type == "cuda":
        add(
            "float16 fwd+bwd | F.affine_grid + F.grid_sample",
            lambda: _backward(lambda a: _grid_sample(a, theta))(f16g),
            f32_bytes,
        )
    ours = RandomAffine("mild", seed=0)
    add("RandomAffine float32 batch | affine_aug", lambda: ours(x), f32_bytes)
    add("RandomAffine uint8 batch | affine_aug", lambda: ours(u8), u8_bytes)
    compiled = torch.compile(RandomAffine("mild", seed=0), fullgraph=True)  # compiled in the untimed call
    add("RandomAffine float32 batch | affine_aug, torch.compile", lambda: compiled(x), f32_bytes)
    if kornia is not None:
        theirs = kornia.augmentation.RandomAffine(
            degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1), shear=(-5, 5), p=0.8
        )
        add("RandomAffine float32 batch | kornia (per sample)", lambda: theirs(x), f32_bytes)
    from torchvision.transforms import v2

    tv = v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1), shear=(-5, 5, 0, 0))
    add("RandomAffine float32 batch | torchvision v2 (one draw per batch)", lambda: tv(x), f32_bytes)
    add("RandomAffine uint8 batch | torchvision v2 (one draw per batch)", lambda: tv(u8), u8_bytes)
    return out


def peak_bandwidth(device) -> float | None:
    """Bytes per second of the device's memory bus (clock x 2 (DDR) x width), if known."""
    p = torch.cuda.get_device_properties(device)
    clock, width = getattr(p, "memory_clock_rate", 0), getattr(p, "memory_bus_width", 0)
    return clock * 1e3 * 2 * width / 8 if clock and width else None


def run(settings: list, rounds: int) -> list:
    """settings: (label, device, threads, entries); every entry of every setting once per round."""
    for label, _device, threads, runs in settings:  # one untimed call each
        _threads(threads)
        for name, (fn, _, _) in list(runs.items()):
            try:
                fn()
            except (RuntimeError, NotImplementedError, TypeError) as e:  # a peer without this dtype
                print(f"  {label} {name}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:80]})")
                del runs[name]
    best, cpu = {}, {}
    for _ in range(rounds):
        for label, device, threads, runs in settings:
            _threads(threads)
            for name, (fn, _, _) in runs.items():
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                _sync(device)
                key = (label, name)
                best[key] = min(best.get(key, float("inf")), time.perf_counter() - t0)
                cpu[key] = min(cpu.get(key, float("inf")), time.process_time() - c0)
    rows = []
    for label, device, _thr, runs in settings:
        peak = peak_bandwidth(device) if device.type == "cuda" else None
        for name, (_, images, nbytes) in runs.items():
            t = best[(label, name)]
            rows.append(
                {
                    "setting": label,
                    "case": name.split(" | ")[0],
                    "path": name.split(" | ")[1],
                    "ms": t * 1e3,
                    "cpu_ms": cpu[(label, name)] * 1e3,
                    "img_per_s": images / t,
                    "bandwidth_fraction": nbytes / t / peak if peak else None,
                }
            )
    return rows


def _threads(threads):
    if threads:
        torch.set_num_threads(threads)
        aa.set_num_threads(threads)


def print_table(rows: list) -> None:
    """One table per setting and case (rows in first-seen order of their case)."""
    order = {}
    for r in rows:
        order.setdefault((r["setting"], r["case"]), len(order))
    setting = case = None
    for r in sorted(rows, key=lambda r: order[r["setting"], r["case"]]):
        if (r["setting"], r["case"]) != (setting, case):
            setting, case = r["setting"], r["case"]
            print(
                f"\n{setting}: {case}\n\n| path | ms | img/s | time / first | CPU ms | CPU / first |"
                + (" bandwidth |" if r["bandwidth_fraction"] else "")
                + "\n|---|---:|---:|---:|---:|---:|"
                + ("---:|" if r["bandwidth_fraction"] else "")
            )
            first, first_cpu = r["ms"], r["cpu_ms"]
        bw = f" {r['bandwidth_fraction']:.0%} |" if r["bandwidth_fraction"] else ""
        print(
            f"| {r['path']} | {r['ms']:.1f} | {r['img_per_s']:,.0f} | {r['ms'] / first:.2f} | {r['cpu_ms']:.1f} | "
            f"{r['cpu_ms'] / first_cpu:.2f} |{bw}"
        )


def _only(runs: dict, only: str | None) -> dict:
    """The entries whose name holds one of the comma-separated strings of ``only`` (all without it)."""
    if not only:
        return runs
    keys = [k.strip() for k in only.split(",") if k.strip()]
    return {name: run for name, run in runs.items() if any(k in name for k in keys)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="batch size on the CPU (default 64)")
    ap.add_argument("--cuda-n", type=int, default=256, help="batch size on CUDA (default 256)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="CPU thread counts, comma-separated (default 1,2)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--only", help="only the entries whose name holds one of these comma-separated strings")
    a = ap.parse_args()
    cpu = torch.device("cpu")
    settings = [(f"CPU, {t} thread{'s' if t > 1 else ''}", cpu, t, None) for t in map(int, a.threads.split(","))]
    settings = [(label, dev, t, _only(entries(a.n, dev), a.only)) for label, dev, t, _ in settings]
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        settings.append((f"CUDA {torch.cuda.get_device_name(dev)}", dev, None, _only(entries(a.cuda_n, dev), a.only)))
    load = os.getloadavg()
    print(f"(N, 3, 224, 224), N = {a.n} (CPU); mild preset; load average {load[0]:.2f} at the start", flush=True)
    rows = run(settings, a.rounds)
    print_table(rows)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "n": a.n,
                    "cuda_n": a.cuda_n,
                    "rounds": a.rounds,
                    "load_start": load[0],
                    "load_end": os.getloadavg()[0],
                    "rows": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
