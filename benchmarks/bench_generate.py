"""`affine-aug generate` and `gtsrb` on the job engine: local --workers 1 / 2 vs Ray, per format.

    python benchmarks/bench_generate.py                       # 2,000 RGB PNGs of 256x256 (made here)
    python benchmarks/bench_generate.py --input DIR --size 32 32   # any ImageFolder tree
    python benchmarks/bench_generate.py --copies 1 8 --formats npz   # driver peak RSS against copies
    python benchmarks/bench_generate.py --gtsrb ROOT --copies 5 --formats npz folder   # the gtsrb job
        (ROOT from: python scripts/make_synthetic_gtsrb.py ROOT --full)
    python benchmarks/bench_generate.py --engines w2 --rounds 3 --png-encoders zlib libdeflate   # the PNG encoders

Engines: w1 and w2 (local processes), ray (a new local Ray instance with 2 CPUs, started
by the job: its start-up is counted) and ray-cluster (a running 2-CPU cluster started
here beforehand, as on a real cluster: only the job's own Ray workers start).

Each run is a fresh `affine-aug generate` process on a fresh output folder. Wall time,
images/s, the CPU seconds of the job's local processes (the driver and the workers it
forks; not Ray's) and the driver's peak RSS (that process alone: Ray's own processes and
the local worker processes are not counted; read from /proc while it runs) are printed as a
Markdown table, with each format's wall and CPU time over those of the npz run of the same
round. `--rounds N` runs every case N times, round after round, so that a slow spell of a
shared machine hits every case alike, then prints the medians. Outputs of every engine are
checked byte for byte against the first one.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_input(root: Path, n: int, side: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    for i in range(n):
        cls = root / f"c{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        img = np.kron(np.roll(base, i, axis=0), np.ones((8, 8, 1), np.uint8)) + rng.integers(
            0, 8, (side, side, 3), dtype=np.uint8
        )
        Image.fromarray(img).save(cls / f"{i:05d}.png", compress_level=1)
    return root


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(args: list[str], env: dict) -> tuple[float, float, float]:
    """Wall seconds, the driver's peak RSS (MB) and the CPU seconds (user + system) of the
    job's local processes: the driver and the workers it forked and reaped."""
    cpu0 = _children_cpu()
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "affine_aug.cli", *args], env={**os.environ, **env})
    peak = 0.0
    while p.poll() is None:
        peak = max(peak, peak_rss_mb(p.pid))
        time.sleep(0.02)
    if p.returncode != 0:
        raise SystemExit(f"generate failed with exit code {p.returncode}: {args}")
    return time.perf_counter() - t, peak, _children_cpu() - cpu0


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if (
            p.is_file()
            and not rel.parts[0].startswith(".affine_aug")
            and p.name not in ("manifest.json", "_manifest.json")
        ):
            h.update(rel.as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _label(fmt: str, png) -> str:
    return fmt if png is None else f"{fmt} (PNG level {png[0]}, {png[1] or 'default encoder'})"


def _of_round(runs: list, r: int):
    return next(((wall, cpu) for wall, cpu, k in runs if k == r), None)


def _command(a, src: Path, out: Path, fmt: str, png, copies: int, engine: str, port: int) -> list:
    extra = {
        "ray": ["--engine", "ray", "--num-cpus", "2"],
        "ray-cluster": ["--engine", "ray", "--address", f"127.0.0.1:{port}"],
    }.get(engine, ["--workers", engine[1:]])
    if a.gtsrb:
        job = ["gtsrb", "--root", str(src), "--out", str(out), "--size", str(a.size[0])]
    else:
        job = ["generate", "--config", "gtsrb", "--input", str(src), "--output", str(out), "--size", *map(str, a.size)]
    if png is not None:
        extra = [*extra, "--png-level", str(png[0])]
    return [*job, "--copies", str(copies), "--format", fmt, "--quiet", *extra]


def _summary(results: dict) -> None:
    """Medians over the rounds; each ratio is taken within its round, then the median."""
    print("\n| format | copies | engine | median wall s | median CPU s | wall / npz | CPU / npz |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for (fmt, png, copies, engine), runs in results.items():
        npz = results.get(("npz", None, copies, engine), [])
        pairs = [(w / b[0], c / b[1]) for w, c, r in runs if (b := _of_round(npz, r))]
        ratio = f"{np.median([p[0] for p in pairs]):.2f}x | {np.median([p[1] for p in pairs]):.2f}x" if pairs else " | "
        wall, cpu = np.median([w for w, _, _ in runs]), np.median([c for _, c, _ in runs])
        print(f"| {_label(fmt, png)} | {copies} | {engine} | {wall:.1f} | {cpu:.1f} | {ratio} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, help="ImageFolder tree (default: 2,000 RGB PNGs of 256x256 made here)")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--copies", type=int, nargs="+", default=[2])
    ap.add_argument("--size", type=int, nargs=2, default=[256, 256])
    ap.add_argument("--formats", nargs="+", default=["npz", "webdataset", "parquet", "folder"])
    ap.add_argument("--gtsrb", type=Path, help="run the gtsrb job on this GTSRB root instead of generate")
    ap.add_argument("--rounds", type=int, default=1, help="run every case this many times, interleaved")
    ap.add_argument("--png-levels", type=int, nargs="+", default=[1], help="--png-level of the PNG formats (generate)")
    ap.add_argument(
        "--png-encoders",
        nargs="+",
        default=[""],
        choices=["", "zlib", "libdeflate"],
        help="AFFINE_AUG_PNG_ENCODER of the PNG formats ('': the default, libdeflate where installed)",
    )
    ap.add_argument(
        "--engines",
        nargs="+",
        default=["w1", "w2", "ray", "ray-cluster"],
        help="w1, w2 (local workers), ray (new local instance), ray-cluster (running cluster)",
    )
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affine_aug_bench_"))
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    os.environ.update(env)
    port, ray_temp = 20000 + os.getpid() % 20000, Path(f"/tmp/rb{os.getpid() % 100000}")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    group = None
    try:
        if "ray-cluster" in a.engines:  # in a new session: every process of the cluster is in its process group
            p = subprocess.Popen(
                [
                    ray_bin,
                    "start",
                    "--head",
                    "--port",
                    str(port),
                    "--num-cpus",
                    "2",
                    "--temp-dir",
                    str(ray_temp),
                    "--include-dashboard",
                    "false",
                    "--disable-usage-stats",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            group = p.pid
            if p.wait() != 0:
                raise SystemExit(f"ray start failed: {p.stderr.read().decode()[-2000:]}")
        if a.gtsrb:
            src = a.gtsrb
            n_src = (
                json.loads((src / "affine_aug_synthetic.json").read_text())["train"]
                if (src / "affine_aug_synthetic.json").is_file()
                else 0
            )
            print(f"gtsrb job on {src}, output {a.size[0]}x{a.size[0]}")
        else:
            src = a.input or make_input(work / "in", a.images, 256)
            n_src = sum(1 for p in src.rglob("*") if p.is_file())
            print(f"{n_src} source images from {src}, output {a.size[0]}x{a.size[1]}")
        runs = [(fmt, None) for fmt in a.formats if fmt == "npz" or a.gtsrb] + [
            (fmt, (level, encoder))
            for encoder in a.png_encoders
            for level in a.png_levels
            for fmt in a.formats
            if fmt != "npz" and not a.gtsrb
        ]
        print(
            "| round | format | copies | engine | wall s | img/s | CPU s | driver peak RSS MB "
            "| wall / npz | CPU / npz |"
            "\n|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"
        )
        results, refs = {}, {}
        for r in range(a.rounds):  # every round runs every case once: slow spells of the machine hit all alike
            for fmt, png in runs:
                for copies in a.copies:
                    for engine in a.engines:
                        out = work / f"{fmt}_{copies}_{engine}"
                        cmd = _command(a, src, out, fmt, png, copies, engine, port)
                        wall, rss, cpu = run(cmd, {"AFFINE_AUG_PNG_ENCODER": png[1]} if png else {})
                        if a.gtsrb:
                            n_src = json.loads((out / "manifest.json").read_text())["rows"] / max(1, copies)
                        d = digest(out)
                        same = "" if refs.setdefault((fmt, png, copies), d) == d else " (bytes differ!)"
                        results.setdefault((fmt, png, copies, engine), []).append((wall, cpu, r))
                        base = _of_round(results.get(("npz", None, copies, engine), []), r)
                        ratios = f"{wall / base[0]:.2f}x | {cpu / base[1]:.2f}x" if base else " | "
                        print(
                            f"| {r + 1} | {_label(fmt, png)} | {copies} | {engine} | {wall:.1f} | "
                            f"{n_src * copies / wall:,.0f} | {cpu:.1f} | {rss:.0f}{same} | {ratios} |",
                            flush=True,
                        )
                        shutil.rmtree(out)
        if a.rounds > 1:
            _summary(results)
    finally:
        if group is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):  # stop only the bench's own cluster: its process group
                try:
                    os.killpg(group, sig)
                except ProcessLookupError:
                    pass
                time.sleep(1)
            shutil.rmtree(ray_temp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
