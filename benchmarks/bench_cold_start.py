"""Cold start: a fresh process imports affine_aug and makes the first warp of each common
kind (uint8 and float32; 1, 3 and 4 channels; bilinear, nearest and bicubic; every
border), as a new container, notebook or Ray node would.

    python benchmarks/bench_cold_start.py [--runs 5]

The kernel is compiled once, by ``pip install`` (the time that takes is printed too, from
a throwaway build of affine_aug/csrc with the same flags); nothing is compiled or cached at run
time, so the first process on a machine starts as fast as the hundredth. Each run uses a
new, empty cache folder (XDG_CACHE_HOME) to show that nothing is read from one.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CODE = """
import time
t0 = time.perf_counter()
import numpy as np
import affine_aug as aa
t1 = time.perf_counter()
for dtype in (np.uint8, np.float32):
    for c in (1, 3, 4):
        x = np.zeros((2, 16, 16, c), dtype)
        for interpolation in ("bilinear", "nearest", "bicubic"):
            for border in ("constant", "edge", "reflect", "mirror", "wrap"):
                aa.warp_affine(x, aa.affine_matrix((16, 16), rotate=10), interpolation=interpolation, border=border)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _kernel_files(setup_py: Path) -> list:
    """The names in setup.py's KERNEL list (the kernel's C files), read without running it."""
    for node in ast.parse(setup_py.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "KERNEL":
            return ast.literal_eval(node.value)
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the medians (seconds) here")
    a = ap.parse_args()
    rows = []
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "XDG_CACHE_HOME": d}
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
            ).stdout
            total = time.perf_counter() - t
        imp, first = map(float, out.split())
        rows.append((imp, first, total))
    rows.sort(key=lambda r: r[2])
    imp, first, total = rows[len(rows) // 2]
    print(
        f"median of {a.runs} fresh processes: import affine_aug {imp:.3f} s, first warp of all 90 kinds {first:.3f} s, "
        f"whole process (interpreter start included) {total:.3f} s"
    )
    if a.json:
        a.json.write_text(
            json.dumps({"seconds": {"import": imp, "first warp, 90 kinds": first, "whole process": total}}, indent=2)
        )
    root = Path(__file__).resolve().parents[1]
    srcs = [str(root / "affine_aug" / "csrc" / f"{name}.c") for name in _kernel_files(root / "setup.py")]
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc and srcs:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            subprocess.run(
                [
                    gcc,
                    "-O3",
                    "-std=c99",
                    "-ffp-contract=off",
                    "-fno-math-errno",
                    "-pthread",
                    "-shared",
                    "-fPIC",
                    *srcs,
                    "-o",
                    str(Path(d) / "k.so"),
                ],
                check=True,
            )
            print(f"building the kernel (once, at pip install): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
