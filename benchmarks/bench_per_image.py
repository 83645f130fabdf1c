"""Per-image speed against the peers, in the albumentations team's benchmark method.

    pip install -e ".[bench]"          # opencv-python-headless, albumentationsx, scikit-image
    python benchmarks/bench_per_image.py [--runs 6] [--control] [--json out.json]

The method: one image per call, one thread, real photos of about 500x375, the same work
for every library, throughput in images per second (the median of ``--runs`` passes over
all photos; ``--stat best`` takes the best pass instead, for a busy machine, where the
median measures the other processes). Each library gets the photos in its own type, made before timing (numpy
HWC for affine_aug, AlbumentationsX and OpenCV; PIL images; CHW uint8 tensors for
torchvision and kornia), each library its own copies. Libraries and transforms are
interleaved within each pass, so that a busy machine slows all of them alike, and the
order of the libraries changes from pass to pass so that each one follows a different
library each time: a library's first calls of a pass find the cache as the one before it
left it (kornia's float32 copies evict it; a uint8 library leaves its output's memory
warm), so a fixed cyclic order, even turned by one per pass, would keep every library
behind the same neighbour. Pass r takes the libraries with stride k from offset r, k the
r-th stride coprime with their number; with 7 libraries and 6 passes (the default)
every library follows every other one once.

``--control`` adds OpenCV a second time, with its own copies of the photos, and prints
OpenCV's figure over its own: how far from 1.00x a run puts two identical libraries, the
band within which a ratio says "level" (the flips are copies bound by the cache, and
affine_aug's and OpenCV's vertical flips move the same bytes in the same order).

Photos: scikit-image's bundled files (in its wheel; nothing is downloaded), resized to
cover 500x375 and centre-cropped to it.

The work (fixed parameters, border constant 0):
    Affine             rotate 25, scale 1.2, shear (10, 5) degrees, translate (20, 10) px; bilinear
    ShiftScaleRotate   shift (0.0625, 0.0625) of the size, scale 1.1, rotate 45; bilinear
    Rotate (nearest)   rotate 45; nearest
    HorizontalFlip, VerticalFlip

affine_aug draws its transform per call from a new sample key, as a DataLoader worker
does, through ``affine_aug.Augment`` (a config and the warp's settings bound once, called
with one image and its key: ``sample`` for that key, then ``warp_affine``, in one call);
its configs are constants, so every call does the same work.

Flips: AlbumentationsX (2.5.1) returns a *view* of the input for HorizontalFlip and
VerticalFlip (negative strides, not C-contiguous: no pixel is moved), so its figure there
is the cost of its Python pipeline, not of a flip; the table marks those cells "(view)".
Every other library returns a new image. The ratio column therefore compares the flips
with the fastest peer that returns a new image (OpenCV, Pillow, torchvision, kornia), and
the column "AlbumentationsX (contiguous)" shows AlbumentationsX's flip made contiguous
(``np.ascontiguousarray`` of its output): what a consumer that needs contiguous memory
(``torch.from_numpy`` and a collate, OpenCV's next call on it) pays.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

import numpy as np
from PIL import Image

import affine_aug as aa

H, W = 375, 500
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
TRANSFORMS = ("Affine", "ShiftScaleRotate", "Rotate (nearest)", "HorizontalFlip", "VerticalFlip")
CENTER = ((W - 1) / 2, (H - 1) / 2)


def photos() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in PHOTOS:
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        s = max(W / img.width, H / img.height)
        img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
        x, y = (img.width - W) // 2, (img.height - H) // 2
        out.append(np.ascontiguousarray(np.asarray(img.crop((x, y, x + W, y + H)))))
    return out


# ----------------------------------------------------------------------------- the work, as one matrix each

CONFIGS = {
    "Affine": {"rotate": 25, "scale": 1.2, "shear": {"x": 10, "y": 5}, "translate": {"x": 20, "y": 10, "unit": "px"}},
    "ShiftScaleRotate": {
        "rotate": 45,
        "scale": 1.1,
        "translate": {"x": 0.0625, "y": 0.0625},
        "order": ["scale", "shear", "rotate", "translate"],
    },
    "Rotate (nearest)": {"rotate": 45},
    "HorizontalFlip": {"flip": {"horizontal": 1.0}},
    "VerticalFlip": {"flip": {"vertical": 1.0}},
}
INTERPOLATION = {"Rotate (nearest)": "nearest"}


def matrix(name: str) -> np.ndarray:
    return aa.sample(CONFIGS[name], [0], (H, W)).matrices[0]


def affine_aug_fns():
    aa.set_num_threads(1)
    fns = {}
    for name in TRANSFORMS:
        aug = aa.Augment(CONFIGS[name], interpolation=INTERPOLATION.get(name, "bilinear"))
        keys = iter(range(1 << 62))
        fns[name] = lambda img, aug=aug, keys=keys: aug(img, next(keys))
    return fns, lambda img: img


def opencv_fns():
    import cv2

    cv2.setNumThreads(1)
    fns = {}
    for name in ("Affine", "ShiftScaleRotate", "Rotate (nearest)"):
        m = np.ascontiguousarray(matrix(name)[:2])
        flag = cv2.INTER_NEAREST if name in INTERPOLATION else cv2.INTER_LINEAR
        fns[name] = lambda img, m=m, flag=flag: cv2.warpAffine(
            img, m, (W, H), flags=flag, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    fns["HorizontalFlip"] = lambda img: cv2.flip(img, 1)
    fns["VerticalFlip"] = lambda img: cv2.flip(img, 0)
    return fns, lambda img: img


def albumentations_fns():
    import albumentations as A
    import cv2

    cv2.setNumThreads(1)
    fns = {
        "Affine": A.Affine(
            rotate=(25, 25),
            scale=(1.2, 1.2),
            shear={"x": (10, 10), "y": (5, 5)},
            translate_px={"x": (20, 20), "y": (10, 10)},
            interpolation=cv2.INTER_LINEAR,
            border_mode=cv2.BORDER_CONSTANT,
            p=1.0,
        ),
        "ShiftScaleRotate": A.ShiftScaleRotate(
            shift_range=(0.0625, 0.0625),
            scale_range=(0.1, 0.1),
            rotate_range=(45, 45),
            interpolation=cv2.INTER_LINEAR,
            border_mode=cv2.BORDER_CONSTANT,
            p=1.0,
        ),
        "Rotate (nearest)": A.Rotate(
            angle_range=(45, 45), interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_CONSTANT, p=1.0
        ),
        "HorizontalFlip": A.HorizontalFlip(p=1.0),
        "VerticalFlip": A.VerticalFlip(p=1.0),
    }
    return {k: (lambda img, t=t: t(image=img)["image"]) for k, t in fns.items()}, lambda img: img


def albumentations_contiguous_fns():
    """AlbumentationsX's flips made contiguous (its own flips return views)."""
    fns, convert = albumentations_fns()
    return {k: (lambda img, f=fns[k]: np.ascontiguousarray(f(img))) for k in VIEWS}, convert


# (transform, library) pairs whose output is a view of the input, not a new image
VIEWS = ("HorizontalFlip", "VerticalFlip")


def pillow_fns():
    fns = {}
    for name in ("Affine", "ShiftScaleRotate", "Rotate (nearest)"):
        # PIL's AFFINE takes output -> input coefficients on pixel edges: C^-1 M^-1 C, C a half-pixel shift
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
        inv = half @ aa.invert(matrix(name)) @ np.linalg.inv(half)
        coeffs = tuple(inv[:2].reshape(-1))
        resample = Image.NEAREST if name in INTERPOLATION else Image.BILINEAR
        fns[name] = lambda im, c=coeffs, r=resample: im.transform((W, H), Image.AFFINE, c, resample=r, fillcolor=0)
    fns["HorizontalFlip"] = lambda im: im.transpose(Image.FLIP_LEFT_RIGHT)
    fns["VerticalFlip"] = lambda im: im.transpose(Image.FLIP_TOP_BOTTOM)
    return fns, Image.fromarray


def torchvision_fns():
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    torch.set_num_threads(1)
    fns = {
        "Affine": lambda t: F.affine(
            t, angle=-25.0, translate=[20, 10], scale=1.2, shear=[10.0, 5.0], interpolation=InterpolationMode.BILINEAR
        ),
        "ShiftScaleRotate": lambda t: F.affine(
            t,
            angle=-45.0,
            translate=[round(0.0625 * W), round(0.0625 * H)],
            scale=1.1,
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        ),
        "Rotate (nearest)": lambda t: F.rotate(t, 45.0, interpolation=InterpolationMode.NEAREST),
        "HorizontalFlip": F.horizontal_flip,
        "VerticalFlip": F.vertical_flip,
    }
    return fns, lambda img: torch.from_numpy(img).permute(2, 0, 1).contiguous()


def kornia_fns():
    import kornia
    import torch

    torch.set_num_threads(1)
    fns = {}
    for name in ("Affine", "ShiftScaleRotate", "Rotate (nearest)"):
        m = torch.as_tensor(matrix(name)[None, :2], dtype=torch.float32)
        mode = "nearest" if name in INTERPOLATION else "bilinear"
        fns[name] = lambda t, m=m, mode=mode: kornia.geometry.transform.warp_affine(t, m, (H, W), mode=mode)[0]
    fns["HorizontalFlip"] = lambda t: kornia.geometry.transform.hflip(t)[0]
    fns["VerticalFlip"] = lambda t: kornia.geometry.transform.vflip(t)[0]
    return fns, lambda img: torch.from_numpy(img).permute(2, 0, 1)[None].float().contiguous()


LIBRARIES = {
    "affine_aug": affine_aug_fns,
    "AlbumentationsX": albumentations_fns,
    "AlbumentationsX (contiguous)": albumentations_contiguous_fns,
    "OpenCV": opencv_fns,
    "Pillow": pillow_fns,
    "torchvision": torchvision_fns,
    "kornia": kornia_fns,
}


CONTROL = "OpenCV (control)"


def pass_order(names: list, run: int) -> list:
    """The libraries' order in pass ``run``: stride k from offset ``run``, k the run-th
    stride (cycling) in 1..n-1 coprime with n, so that a library's predecessor changes from
    pass to pass."""
    n = len(names)
    strides = [k for k in range(1, n) if math.gcd(k, n) == 1] or [1]
    k = strides[run % len(strides)]
    return [names[(run + j * k) % n] for j in range(n)]


def _view_mark(transform: str, lib: str) -> str:
    return " (view)" if lib == "AlbumentationsX" and transform in VIEWS else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--runs", type=int, default=6, help="passes over the photos per library and transform (median kept)"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=40,
        help="times each photo is transformed per pass (fewer: a pass of flips lasts too short to measure)",
    )
    ap.add_argument(
        "--stat",
        choices=("median", "best"),
        default="median",
        help="the passes' median (the method's), or their best: on a busy machine, the pass least interrupted",
    )
    ap.add_argument(
        "--control",
        action="store_true",
        help=f"add OpenCV a second time as {CONTROL!r}, with its own copies of the photos: the ratio between two "
        "identical libraries, which a run puts wherever the machine's noise and the copies' places in memory put it",
    )
    ap.add_argument("--json", help="write the figures (img/s) to this file")
    args = ap.parse_args(argv)
    imgs = photos()
    libs = {}
    makers = {**LIBRARIES, CONTROL: opencv_fns} if args.control else LIBRARIES
    for name, make in makers.items():
        try:
            fns, convert = make()
        except ImportError as e:
            print(f"# {name}: not installed ({e.name}); skipped")
            continue
        libs[name] = (fns, [convert(img.copy()) for img in imgs])
    for fns, inputs in libs.values():  # warm up every path once
        for f in fns.values():
            f(inputs[0])
    times = {(t, lib): [] for t in TRANSFORMS for lib, (fns, _) in libs.items() if t in fns}
    order = list(libs)
    for run in range(args.runs):
        for t in TRANSFORMS:
            for lib in pass_order(order, run):
                fns, inputs = libs[lib]
                if t not in fns:
                    continue
                f = fns[t]
                t0 = time.perf_counter()
                for _ in range(args.repeat):
                    for x in inputs:
                        f(x)
                times[t, lib].append(len(inputs) * args.repeat / (time.perf_counter() - t0))
    rate = {k: statistics.median(v) if args.stat == "median" else max(v) for k, v in times.items()}
    print(
        f"# {len(imgs)} photos of {W}x{H}, one image per call, one thread; {args.stat} of {args.runs} passes; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    names = list(libs)
    print("| transform | " + " | ".join(names) + " | affine_aug / best peer (a new image) |")
    print("|---|" + "---:|" * (len(names) + 1))
    for t in TRANSFORMS:
        cells = [f"{rate[t, lib]:,.0f}{_view_mark(t, lib)}" if (t, lib) in rate else "-" for lib in names]
        peers = [
            rate[t, lib]
            for lib in names
            if lib not in ("affine_aug", CONTROL) and (t, lib) in rate and not _view_mark(t, lib)
        ]
        ratio = f"{rate[t, 'affine_aug'] / max(peers):.2f}x" if peers and (t, "affine_aug") in rate else "-"
        print(f"| {t} | " + " | ".join(cells) + f" | {ratio} |")
    if CONTROL in libs:  # made by OpenCV's maker: both or neither are installed
        spread = ", ".join(f"{t} {rate[t, 'OpenCV'] / rate[t, CONTROL]:.2f}x" for t in TRANSFORMS)
        print(f"# OpenCV / {CONTROL}, the same library twice: {spread}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "photos": len(imgs),
                    "size": [H, W],
                    "runs": args.runs,
                    "stat": args.stat,
                    "load": os.getloadavg()[0],
                    "img_per_s": {t: {lib: rate[t, lib] for lib in names if (t, lib) in rate} for t in TRANSFORMS},
                    "views": [[t, "AlbumentationsX"] for t in VIEWS],
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
