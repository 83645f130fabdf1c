"""PNG size against speed per level: affine_aug.png's encoders (zlib, libdeflate) and Pillow.

    python benchmarks/bench_png.py            # 256x256 RGB crops of scikit-learn's two sample photos
    python benchmarks/bench_png.py --side 224 --levels 0 1 2 6 9

CPU milliseconds per image (``time.process_time``, best of the rounds, every encoder in
every round) and the mean size in KiB, as a Markdown table. The photos are the ones
scikit-learn ships (``sklearn.datasets.load_sample_images``: china.jpg, flower.jpg),
cut into crops of the side asked for.
"""

import argparse
import io
import time

import numpy as np
from PIL import Image

from affine_aug.png import encode_png, encoders


def crops(side: int, per_photo: int) -> list:
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    out = []
    for photo in load_sample_images().images:
        for _ in range(per_photo):
            y, x = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
            out.append(np.ascontiguousarray(photo[y : y + side, x : x + side]))
    return out


def pillow(image: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--crops", type=int, default=4, help="crops per photo")
    ap.add_argument("--levels", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    images = crops(a.side, a.crops)
    coders = {name.split()[0]: (lambda img, lv, n=name: encode_png(img, lv, n)) for name in encoders()}
    coders["Pillow"] = pillow
    best, size = {}, {}
    for _ in range(a.rounds):
        for level in a.levels:
            for name, encode in coders.items():
                t = time.process_time()
                sizes = [len(encode(img, level)) for img in images]
                ms = (time.process_time() - t) / len(images) * 1e3
                best[name, level] = min(best.get((name, level), ms), ms)
                size[name, level] = np.mean(sizes) / 1024
    print(
        f"{len(images)} crops of {a.side}x{a.side} RGB ({a.side * a.side * 3 / 1024:.0f} KiB raw); encoders: "
        + ", ".join(encoders())
    )
    print("| level | " + " | ".join(f"{n} ms | {n} KiB" for n in coders) + " |")
    print("|---:|" + "---:|---:|" * len(coders))
    for level in a.levels:
        cells = " | ".join(f"{best[n, level]:.2f} | {size[n, level]:.1f}" for n in coders)
        print(f"| {level} | {cells} |")


if __name__ == "__main__":
    main()
