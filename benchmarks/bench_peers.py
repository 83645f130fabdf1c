"""affine_aug against its peers, in one interleaved run.

    pip install -e ".[bench]"
    python benchmarks/bench_peers.py [--rounds 3] [--threads 1 2] [--cases A B C] [--json out.json]
        [--memory] [--startup]
    python benchmarks/bench_peers.py --borders [--cases B C]   # affine_aug and the cv2 loop per border mode

Work (the same for everyone): per-image random rotation +-15 deg, scale 0.9-1.1,
translation +-10%, bilinear, zero fill, output size = input size.

    A: 4096 x 32 x 32 x 3 uint8     B: 128 x 224 x 224 x 3 uint8     C: 128 x 224 x 224 x 3 float32

affine_aug is timed end to end from uint8/float32 numpy arrays (sampling + warp +
allocating the output: outputs of 32 MB or more reuse the memory of a previous dead one,
see affine_aug.outputs); the ratios are to the cv2 loop, which allocates its output too.
Two more rows write into an output reused from call to call on both sides (``out=`` /
``dst=``): no allocation, no zeroing of fresh pages by the OS. Peers are timed on inputs
already converted to what they take
(tensors, PIL images), so conversions are not charged to them. Each round runs every
library in turn, each timed on its second of two calls in a row (its steady state, see
steady); the table shows the median images/s over rounds and the ratio
to the cv2.warpAffine loop at the same thread count. ``--memory`` also reports peak RSS
of warping case A and a 4096 x 224 x 224 x 3 batch; ``--startup`` the first-call time
in a fresh process. ``--borders`` times only affine_aug and the cv2 loop, once per border
mode (cv2's BORDER_CONSTANT / REPLICATE / REFLECT / REFLECT_101 / WRAP).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import affine_aug as aa  # noqa: E402
from blog import blog_warp  # noqa: E402

CONFIG = {"rotate": [-15, 15], "scale": [0.9, 1.1], "translate": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}}
CASES = {"A": ((4096, 32, 32, 3), np.uint8), "B": ((128, 224, 224, 3), np.uint8), "C": ((128, 224, 224, 3), np.float32)}


def set_threads(n: int) -> None:
    import cv2
    import torch

    aa.set_num_threads(n)
    cv2.setNumThreads(n)
    torch.set_num_threads(n)


def runners(imgs: np.ndarray) -> dict:
    """name -> zero-argument callable doing the whole batch."""
    import albumentations as A
    import cv2
    import kornia.augmentation as K
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torchvision.transforms import v2

    n, h, w, c = imgs.shape
    keys = np.arange(n)
    t_nchw = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    t_float = t_nchw.float() if imgs.dtype == np.uint8 else t_nchw
    t_list = list(t_nchw)
    rng = np.random.default_rng(0)

    def ours():
        return aa.warp_affine(imgs, aa.sample(CONFIG, keys, size=(h, w)).matrices)

    def cv2_loop():
        m = aa.sample(CONFIG, keys, size=(h, w)).matrices
        out = np.empty_like(imgs)
        for i in range(n):
            cv2.warpAffine(
                imgs[i],
                m[i, :2],
                (w, h),
                dst=out[i],
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        return out

    reused, dst = np.empty_like(imgs), np.empty_like(imgs)  # written in place batch after batch: no allocation

    def ours_reused():
        return aa.warp_affine(imgs, aa.sample(CONFIG, keys, size=(h, w)).matrices, out=reused)

    def cv2_reused():
        m = aa.sample(CONFIG, keys, size=(h, w)).matrices
        for i in range(n):
            cv2.warpAffine(
                imgs[i],
                m[i, :2],
                (w, h),
                dst=dst[i],
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        return dst

    alb = A.Affine(
        rotate=(-15, 15),
        scale=(0.9, 1.1),
        translate_percent=(-0.1, 0.1),
        interpolation=cv2.INTER_LINEAR,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        p=1.0,
    )

    def albumentations():
        return [alb(image=im)["image"] for im in imgs]

    kor = K.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), p=1.0, padding_mode="zeros")

    def kornia():
        with torch.no_grad():
            return kor(t_float)

    def grid_sample():
        theta = torch.from_numpy(aa.to_theta(aa.sample(CONFIG, keys, size=(h, w)).matrices, (h, w))).float()
        with torch.no_grad():
            grid = F.affine_grid(theta, (n, c, h, w), align_corners=False)
            return F.grid_sample(t_float, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    tv = v2.RandomAffine(
        degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), interpolation=v2.InterpolationMode.BILINEAR
    )

    def torchvision_v2():
        return [tv(t) for t in t_list]

    def blog():
        theta = aa.to_theta(aa.sample(CONFIG, keys, size=(h, w)).matrices, (h, w))
        return blog_warp(imgs, theta)

    out = {
        "affine_aug": ours,
        "cv2.warpAffine loop": cv2_loop,
        "affine_aug, out= reused": ours_reused,
        "cv2 loop, dst reused": cv2_reused,
        "albumentations Affine": albumentations,
        "kornia RandomAffine": kornia,
        "torch affine_grid+grid_sample": grid_sample,
        "torchvision v2 RandomAffine": torchvision_v2,
    }
    if imgs.dtype == np.uint8:  # Pillow has no 3-channel float mode
        pil = [Image.fromarray(im) for im in imgs]

        def pillow():
            inv = aa.invert(aa.sample(CONFIG, keys, size=(h, w)).matrices)
            # PIL samples at pixel centres (x + 0.5): shift the centre-based inverse
            return [
                im.transform(
                    (w, h),
                    Image.Transform.AFFINE,
                    data=tuple(_edge_coeffs(inv[i])),
                    resample=Image.Resampling.BILINEAR,
                )
                for i, im in enumerate(pil)
            ]

        out["Pillow Image.transform"] = pillow
    out["blog algorithm (numpy)"] = blog
    del rng
    return out


def _edge_coeffs(inv: np.ndarray):
    """Pillow's AFFINE data for a centre-based inverse matrix (Pillow uses pixel-edge coordinates)."""
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    m = shift @ inv @ np.linalg.inv(shift)
    return m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2]


def steady(f) -> float:
    """Seconds of one call of ``f`` made right after an untimed call of the same ``f``: its
    steady state, as in a loop over batches, the same for every library.

    This virtual machine takes back memory its guest leaves idle for a few seconds (free
    memory through its balloon, cold memory through DAMON's proactive reclaim), and the
    next touch pays the host's page faults again: measured here, 8.5 ms to fault in a
    fresh 77 MB array when freed memory was just in use, 39-213 ms after a few idle
    seconds. Between two calls of one library the others run for seconds, so a single
    call paid for that at random: touching an output-sized buffer first (the previous
    method) still left an affine_aug call 30-97 ms against 45 ms for the same call just
    after another."""
    f()
    s = time.perf_counter()
    f()
    return time.perf_counter() - s


def bench(cases, threads, rounds) -> dict:
    results = {}
    for case in cases:
        shape, dtype = CASES[case]
        rng = np.random.default_rng(0)
        imgs = rng.integers(0, 256, shape).astype(dtype)
        if dtype == np.float32:
            imgs /= 255.0
        runs = runners(imgs)
        for t in threads:
            set_threads(t)
            for f in runs.values():
                f()  # warm-up, compile
        times = {(t, k): [] for t in threads for k in runs}
        for _ in range(rounds):
            for t in threads:
                set_threads(t)
                for name, f in runs.items():
                    times[t, name].append(steady(f))
        n = shape[0]
        for t in threads:
            ips = {k: n / statistics.median(times[t, k]) for k in runs}
            results[f"{case}/{t}"] = ips
        # share of sampling in affine_aug's total on this case
        set_threads(max(threads))
        s = time.perf_counter()
        for _ in range(5):
            aa.sample(CONFIG, np.arange(n), size=shape[1:3])
        samp = (time.perf_counter() - s) / 5
        results[f"{case}/sampling_share"] = samp * results[f"{case}/{max(threads)}"]["affine_aug"] / n
    return results


BORDERS = {
    "constant": "BORDER_CONSTANT",
    "edge": "BORDER_REPLICATE",
    "reflect": "BORDER_REFLECT",
    "mirror": "BORDER_REFLECT_101",
    "wrap": "BORDER_WRAP",
}


def bench_borders(cases, threads, rounds) -> dict:
    """{case/threads/border: (affine_aug img/s, cv2 loop img/s)}, medians over rounds."""
    import cv2

    results = {}
    for case in cases:
        shape, dtype = CASES[case]
        imgs = np.random.default_rng(0).integers(0, 256, shape).astype(dtype)
        n, h, w, _ = shape
        keys = np.arange(n)
        for border, code in BORDERS.items():

            def ours(imgs=imgs, keys=keys, h=h, w=w, border=border):
                return aa.warp_affine(imgs, aa.sample(CONFIG, keys, size=(h, w)).matrices, border=border)

            def cv2_loop(imgs=imgs, keys=keys, n=n, h=h, w=w, code=code):
                m = aa.sample(CONFIG, keys, size=(h, w)).matrices
                out = np.empty_like(imgs)
                for i in range(n):
                    cv2.warpAffine(
                        imgs[i], m[i, :2], (w, h), dst=out[i], flags=cv2.INTER_LINEAR, borderMode=getattr(cv2, code)
                    )
                return out

            for t in threads:
                set_threads(t)
                ours(), cv2_loop()  # warm-up
                times = {ours: [], cv2_loop: []}
                for _ in range(rounds):
                    for f in times:
                        times[f].append(steady(f))
                results[f"{case}/{t}/{border}"] = tuple(n / statistics.median(times[f]) for f in (ours, cv2_loop))
    for key, (a, c) in results.items():
        print(f"  {key:22s} affine_aug {a:9,.0f} img/s   cv2 loop {c:9,.0f} img/s   {a / c:5.2f}x")
    return results


def print_table(results, cases, threads) -> None:
    names = None
    for case in cases:
        for t in threads:
            r = results[f"{case}/{t}"]
            names = names or list(r)
            cv = r["cv2.warpAffine loop"]
            print(f"\ncase {case} {CASES[case][0]} {np.dtype(CASES[case][1]).name}, {t} thread(s)")
            for k, v in r.items():
                print(
                    f"  {k:32s} {v:12,.0f} img/s   {v / cv:6.2f}x cv2   "
                    f"{r['affine_aug'] / v:7.2f}x slower than affine_aug"
                    if k != "affine_aug"
                    else f"  {k:32s} {v:12,.0f} img/s   {v / cv:6.2f}x cv2"
                )
            print(
                "  with outputs reused on both sides: affine_aug "
                f"{r['affine_aug, out= reused'] / r['cv2 loop, dst reused']:.2f}x the cv2 loop"
            )
        print(f"  sampling share of affine_aug's time: {100 * results[f'{case}/sampling_share']:.1f}%")


def peak_rss(shape) -> tuple[float, float]:
    """(RSS before, peak RSS during) the warp of a uint8 batch of ``shape``, in MiB, in a fresh process.

    Reads VmHWM from /proc (Linux), reset just before the call through clear_refs.
    """
    code = (
        "import numpy as np, affine_aug as aa\n"
        "def hwm():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024\n"
        f"x = np.ones({shape}, np.uint8)\n"
        f"m = aa.sample({CONFIG!r}, np.arange({shape[0]}), size={shape[1:3]}).matrices\n"
        "aa.warp_affine(x[:1], m[:1])\n"
        "before = rss()\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "y = aa.warp_affine(x, m)\n"
        "print(before, hwm())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def startup() -> tuple[float, float]:
    """Seconds for import + first warp in a fresh process, twice (the kernel is compiled at
    install time: there is no cache to fill; see bench_cold_start.py for every kind)."""
    code = (
        "import time; t = time.perf_counter(); import numpy as np, affine_aug as aa; "
        "aa.warp_affine(np.zeros((1, 8, 8, 3), np.uint8), np.eye(3)); print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "XDG_CACHE_HOME": d}
        cold = float(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )
        warm = float(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )
    return cold, warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--startup", action="store_true")
    ap.add_argument("--borders", action="store_true", help="only affine_aug and the cv2 loop, per border mode")
    a = ap.parse_args()
    if a.borders:
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, rounds={a.rounds}")
        results = bench_borders(a.cases, a.threads, a.rounds)
        if a.json:
            a.json.write_text(json.dumps(results, indent=2))
        return
    results = bench(a.cases, a.threads, a.rounds)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, rounds={a.rounds}")
    print_table(results, a.cases, a.threads)
    if a.memory:
        for name, shape in (("A", (4096, 32, 32, 3)), ("4096x224x224x3", (4096, 224, 224, 3))):
            base, peak = peak_rss(shape)
            mib = np.prod(shape) / 2**20
            results[f"peak_rss_mib/{name}"] = peak
            print(
                f"peak RSS warping {name}: {peak:,.0f} MiB (before the call "
                f"{base:,.0f} MiB; input and output {mib:,.0f} MiB each)"
            )
    if a.startup:
        cold, warm = startup()
        results["startup_s"] = {"cold_cache": cold, "warm_cache": warm}
        print(f"import + first warp in a fresh process: {cold:.2f} s, then {warm:.2f} s")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
