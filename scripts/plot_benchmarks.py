"""Plot the JSON that the benchmark scripts write (``--json FILE``), one figure per file.

    python scripts/plot_benchmarks.py [--results DIR ...] [--out DIR]

Reads every ``*.json`` in the given folders (default: ``docs/benchmarks``, the recorded
figures, and ``benchmarks/results``, local runs); folders that do not exist are skipped.
Any file's layout is understood: every mapping whose values are numbers (``{"affine_aug":
9630, "cv2 loop": 3160}``) or equal-length lists of numbers becomes one bar chart, titled by
its key path. Writes ``perf_<file>.png`` and ``perf_plots.md`` (the list of plots, for the
Performance page) into ``--out`` (default ``docs/generated``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib.pyplot as plt  # headless: matplotlib falls back to Agg without a display

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = [ROOT / "docs" / "benchmarks", ROOT / "benchmarks" / "results"]
MAX_CHARTS = 12


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def groups(data, path: str = "") -> list[tuple[str, dict]]:
    """``(key path, {label: number or [numbers]})`` for every chartable mapping in ``data``."""
    out = []
    if isinstance(data, dict):
        numbers = {str(k): v for k, v in data.items() if _is_number(v)}
        lists = {str(k): v for k, v in data.items() if isinstance(v, list) and v and all(_is_number(x) for x in v)}
        if len(numbers) >= 2:
            out.append((path or "(top level)", numbers))
        if len(lists) >= 1 and len({len(v) for v in lists.values()}) == 1:
            out.append((path or "(top level)", lists))
        for k, v in data.items():
            if isinstance(v, (dict, list)) and not (isinstance(v, list) and all(_is_number(x) for x in v)):
                out.extend(groups(v, f"{path}/{k}" if path else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(groups(v, f"{path}[{i}]"))
    return out


def _chart(ax, title: str, values: dict) -> None:
    labels = list(values)
    first = values[labels[0]]
    series = len(first) if isinstance(first, list) else 1
    height = 0.8 / series
    for s in range(series):
        vals = [values[k][s] if isinstance(values[k], list) else values[k] for k in labels]
        ax.barh(
            [i + s * height for i in range(len(labels))], vals, height=height, label=f"[{s}]" if series > 1 else None
        )
    ax.set_yticks([i + (series - 1) * height / 2 for i in range(len(labels))], labels, fontsize=7)
    ax.invert_yaxis()
    flat = [x for v in values.values() for x in (v if isinstance(v, list) else [v]) if x > 0]
    if flat and max(flat) / min(flat) > 50:
        ax.set_xscale("log")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=8)
    if series > 1:
        ax.legend(fontsize=6)


def plot_file(path: Path, out: Path) -> Path | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"{path}: skipped ({e})", file=sys.stderr)
        return None
    found = groups(data)[:MAX_CHARTS]
    if not found:
        print(f"{path}: skipped (nothing to plot)", file=sys.stderr)
        return None
    cols = 2 if len(found) > 1 else 1
    rows = math.ceil(len(found) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6 * cols, 0.35 * max(len(g[1]) for g in found) * rows + 1.2 * rows), squeeze=False
    )
    for ax, (title, values) in zip(axes.flat, found):
        _chart(ax, title, values)
    for ax in list(axes.flat)[len(found) :]:
        ax.axis("off")
    fig.suptitle(path.name, fontsize=10)
    fig.tight_layout()
    target = out / f"perf_{path.stem}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=96, metadata={"Software": None})
    plt.close(fig)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, nargs="+", default=DEFAULT_RESULTS, help="folders of benchmark JSON")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "generated")
    a = ap.parse_args(argv)
    lines = []
    for folder in a.results:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            target = plot_file(path, a.out)
            if target is not None:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                lines.append(f"### `{shown}`\n\n![benchmark results from {path.name}](generated/{target.name})\n")
    if not lines:
        lines = [
            (
                "No benchmark results were found (`docs/benchmarks/*.json`, `benchmarks/results/*.json`). "
                "Run the commands above with `--json benchmarks/results/NAME.json`, then rebuild the site."
            )
        ]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "perf_plots.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"plotted {sum(1 for line in lines if line.startswith('###'))} benchmark file(s) into {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
