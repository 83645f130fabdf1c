"""Build the documentation site: render the figures, the gallery and the generated
reference tables into docs/generated/, plot the benchmark JSON, then run
``mkdocs build --strict`` (warnings are errors; links and anchors are checked).

    pip install -e ".[docs]"
    python scripts/build_docs.py [--site-dir site] [--no-render]

The site lands in ``site/`` (open ``site/index.html``, or ``python -m http.server -d site``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))


def render() -> None:
    """Everything under docs/generated/ (a build output: never committed)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only, no window
    import plot_benchmarks
    from sitegen import common, figures, gallery, reference

    shutil.rmtree(common.GENERATED, ignore_errors=True)
    for name, step in (
        ("figures", figures.render_all),
        ("gallery", gallery.render_all),
        ("reference", reference.render_all),
        ("benchmarks", lambda: plot_benchmarks.main([])),
    ):
        t = time.perf_counter()
        step()
        print(f"  {name}: {time.perf_counter() - t:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site-dir", type=Path, default=ROOT / "site")
    ap.add_argument("--no-render", action="store_true", help="reuse docs/generated/ as it is")
    a = ap.parse_args(argv)
    start = time.perf_counter()
    if not a.no_render:
        print("rendering figures, gallery and reference tables")
        render()
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "--clean",
        "--config-file",
        str(ROOT / "mkdocs.yml"),
        "--site-dir",
        str(a.site_dir.resolve()),
    ]
    print("$ " + " ".join(cmd[2:]))
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # a notice about a future MkDocs, not about this site
    rc = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
    print(f"docs build {'done' if rc == 0 else 'FAILED'} in {time.perf_counter() - start:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
