"""Collect the runs of a sweep into a table and a plot of test error per augmentation.

    python examples/hydra_digits/collect.py multirun/hydra_digits [--out DIR]

Reads every ``result.json`` under the given folders (the runs of train.py), writes
``results.md`` (a Markdown table, also printed) and ``results.png`` (matplotlib) into
``--out`` (default: the first folder). Runs of one augmentation over several seeds are
averaged (mean +- std).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ORDER = ("identity", "mild", "strong", "stn_rts")


def read_runs(folders) -> list[dict]:
    runs = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("result.json")):
            try:
                run = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise SystemExit(f"collect: {path}: cannot read it ({e})") from e
            if not isinstance(run, dict) or "aug" not in run or "test_error" not in run:
                raise SystemExit(f"collect: {path}: not a result of train.py (no aug / test_error)")
            runs.append(run)
    return runs


def summarise(runs: list[dict]) -> list[tuple[str, float, float, int]]:
    """``(aug, mean error, std error, runs)`` per augmentation, presets first in ORDER."""
    by = defaultdict(list)
    for r in runs:
        by[r["aug"]].append(float(r["test_error"]))
    rank = {name: i for i, name in enumerate(ORDER)}
    rows = []
    for aug in sorted(by, key=lambda a: (rank.get(a, len(ORDER)), a)):
        e = by[aug]
        mean = sum(e) / len(e)
        std = (sum((x - mean) ** 2 for x in e) / len(e)) ** 0.5
        rows.append((aug, mean, std, len(e)))
    return rows


def table(rows, runs) -> str:
    epochs = sorted({r.get("epochs") for r in runs})
    lines = [
        f"Test error on RTS-distorted digits (trained upright; epochs {epochs}):",
        "",
        "| aug | test error | runs |",
        "|---|---:|---:|",
    ]
    lines += [f"| {aug} | {100 * m:.2f} ± {100 * s:.2f} % | {n} |" for aug, m, s, n in rows]
    return "\n".join(lines) + "\n"


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    names = [r[0] for r in rows]
    ax.bar(names, [100 * r[1] for r in rows], yerr=[100 * r[2] for r in rows], color="#6a8fd0", capsize=4)
    ax.set_ylabel("test error (%)")
    ax.set_title("digits: test error per augmentation config")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="sweep folders (searched for result.json)")
    ap.add_argument("--out", type=Path, help="where results.md and results.png go (default: the first folder)")
    a = ap.parse_args(argv)
    runs = read_runs(a.folders)
    if not runs:
        print(f"collect: no result.json under {', '.join(map(str, a.folders))}", file=sys.stderr)
        return 1
    rows = summarise(runs)
    out = a.out or a.folders[0]
    out.mkdir(parents=True, exist_ok=True)
    text = table(rows, runs)
    (out / "results.md").write_text(text)
    plot(rows, out / "results.png")
    print(text + f"\nwrote {out / 'results.md'} and {out / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
