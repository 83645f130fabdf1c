"""`affine-aug generate` throughput: local engine vs Ray (same machine), same inputs.

    python scripts/make_synthetic_gtsrb.py /tmp/gtsrb_full --full
    python benchmarks/bench_generate.py /tmp/gtsrb_full/GTSRB/Final_Training/Images [--copies 2] [--num-cpus 2]

The 43 class folders of the official layout form an ImageFolder tree (39,209 PPMs).
Each engine writes 32x32 npz shards to a fresh folder; the script checks that both
outputs are equal array for array and prints images/s and the Ray overhead.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from affine_aug.cli import main as cli


def run(src: Path, out: Path, copies: int, extra: list[str]) -> float:
    t = time.perf_counter()
    code = cli(["generate", "--config", "gtsrb", "--input", str(src), "--output", str(out), "--copies", str(copies),
                "--size", "32", "32", "--format", "npz", "--quiet", *extra])
    if code != 0:
        raise SystemExit(f"generate failed with exit code {code}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--num-cpus", type=int, default=2)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affine_aug_bench_"))
    try:
        n_files = sum(1 for p in a.input.rglob("*") if p.suffix.lower() in (".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".webp"))
        n_out = n_files * a.copies
        local = run(a.input, work / "local", a.copies, [])
        ray_s = run(a.input, work / "ray", a.copies, ["--engine", "ray", "--num-cpus", str(a.num_cpus)])
        for shard in sorted((work / "local").glob("part-*.npz")):
            x, y = np.load(shard), np.load(work / "ray" / shard.name)
            for k in ("x", "y", "source", "copy"):
                np.testing.assert_array_equal(x[k], y[k])
        shards = len(list((work / "local").glob("part-*.npz")))
        print(f"{n_files} source images, {n_out} outputs (32x32, --copies {a.copies}), {shards} shards of 256 source images")
        print(f"local engine: {local:7.1f} s  {n_out / local:10,.0f} img/s")
        print(f"ray ({a.num_cpus} CPUs): {ray_s:7.1f} s  {n_out / ray_s:10,.0f} img/s  (includes starting Ray)")
        print(f"outputs equal array for array; Ray overhead {ray_s - local:+.1f} s, {(ray_s - local) / shards * 1000:+.0f} ms per shard")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
