"""The documentation: every guide's example runs, the site builds strictly, and its pages
render in a real browser with every image loaded.

The site is built by ``python scripts/build_docs.py`` (strict: warnings, broken links and
missing anchors are errors). These tests use ``site/`` when it is there and otherwise build
it into a temporary folder, as in CI; without the ``docs`` extra they skip, except under CI.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _browser import browser_page, serve_folder, wait_for_images

ROOT = Path(__file__).resolve().parents[1]

# example file -> modules it needs (skipped without them)
EXAMPLES = {
    "dataloader_workers.py": ("torch", "torchvision"),
    "gpu_batches.py": ("torch", "torchvision"),
    "hf_datasets.py": ("datasets",),
    "ray_data.py": ("ray",),
    "offline_generate.py": ("webdataset", "pyarrow"),
    "gtsrb_synthetic.py": (),
    "stn_digits.py": ("torch", "torchvision", "sklearn"),
}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_every_example_is_listed():
    """A new example under examples/ must be added to EXAMPLES (so CI runs it)."""
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)


def test_every_guide_includes_an_example_that_exists():
    for guide in sorted((ROOT / "docs" / "guides").glob("*.md")):
        names = re.findall(r'--8<-- "examples/([\w.]+\.py)"', guide.read_text(encoding="utf-8"))
        assert names, f"{guide.name} shows no runnable example"
        assert all(n in EXAMPLES for n in names), (guide.name, names)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name):
    for module in EXAMPLES[name]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{name} needs {module}")
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        check=False,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.strip(), f"{name} printed nothing"


# ----------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = ROOT / "site"
    if (built / "index.html").is_file() and not os.environ.get("DOCS_REBUILD"):
        return built
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("the docs extra is not installed (pip install -e '.[docs]')")
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--site-dir", str(out)],
        check=False,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return out


def test_site_has_every_page(site):
    for page in (
        "index.html",
        "getting-started.html",
        "concepts.html",
        "config.html",
        "gallery/presets.html",
        "gallery/warping.html",
        "performance.html",
        "changelog.html",
        "api/core.html",
    ):
        assert (site / page).is_file(), page


def _not_blank(png: bytes) -> None:
    from PIL import Image, ImageStat

    im = Image.open(io.BytesIO(png)).convert("L")
    stat = ImageStat.Stat(im)
    assert stat.stddev[0] > 10, f"the page looks blank (pixel std {stat.stddev[0]:.1f})"


@pytest.mark.parametrize("page,min_images", [("index.html", 1), ("gallery/presets.html", 5), ("config.html", 1)])
def test_page_renders_in_a_browser(site, page, min_images):
    with serve_folder(site) as base, browser_page() as tab:
        failed = []
        tab.on("requestfailed", lambda r: failed.append(r.url))
        response = tab.goto(f"{base}/{page}", wait_until="load")
        assert response is not None and response.status == 200
        images = wait_for_images(tab)
        assert len(images) >= min_images, f"{page}: {len(images)} images, expected at least {min_images}"
        broken = [i["src"] for i in images if i["width"] == 0]
        assert not broken, f"{page}: images that did not load: {broken}"
        assert not [u for u in failed if u.startswith(base)], f"{page}: failed requests {failed}"
        text = tab.inner_text("article")
        assert len(text) > 200, f"{page}: almost no text in the article"
        _not_blank(tab.screenshot(full_page=False))
        keep = os.environ.get("DOCS_SCREENSHOTS")  # a folder: keep a full-page screenshot to look at
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            tab.screenshot(
                path=str(Path(keep) / (page.replace("/", "_").removesuffix(".html") + ".png")), full_page=True
            )


def test_plot_benchmarks_reads_what_exists_and_skips_the_rest(tmp_path):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "scripts"))
    import plot_benchmarks

    results = tmp_path / "results"
    results.mkdir()
    (results / "bench_x.json").write_text('{"B/2": {"affine_aug": 9630, "cv2 loop": 3160}, "note": "text"}')
    (results / "broken.json").write_text("{not json")
    (results / "empty.json").write_text('{"startup_s": 0.2}')
    out = tmp_path / "out"
    assert plot_benchmarks.main(["--results", str(results), str(tmp_path / "missing"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["perf_bench_x.png"]
    listing = (out / "perf_plots.md").read_text()
    assert "perf_bench_x.png" in listing and "broken" not in listing
    assert plot_benchmarks.main(["--results", str(tmp_path / "missing"), "--out", str(out)]) == 0
    assert "No benchmark results" in (out / "perf_plots.md").read_text()


@pytest.mark.parametrize("n", [7, 6, 5, 2, 1])
def test_bench_per_image_changes_every_librarys_predecessor_from_pass_to_pass(n, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_per_image

    names = [f"lib{i}" for i in range(n)]
    passes = [bench_per_image.pass_order(names, run) for run in range(max(n - 1, 1))]
    for order in passes:
        assert sorted(order) == names  # every library once a pass
    # the library before each one, within a pass and from the previous pass's last
    # transform (whose last library precedes the next transform's first)
    pairs = [(o[j - 1], o[j]) for o in passes for j in range(1, n)] + [(o[-1], o[0]) for o in passes]
    if n == 7:  # a prime number of libraries: every ordered pair exactly once
        assert sorted(pairs) == sorted((a, b) for a in names for b in names if a != b)
    else:  # never the same fixed cyclic neighbour in every pass
        assert n <= 2 or len(set(pairs)) > n


def test_bench_per_image_control_is_a_column_never_the_best_peer(tmp_path, monkeypatch, capsys):
    """--control adds OpenCV's maker a second time; its figure is printed beside OpenCV's
    and never taken as the best peer of the ratio column."""
    import json
    import time

    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_per_image

    made = []

    def fake_opencv():  # the first made (OpenCV) slow, the second (the control) fast
        slow = not made
        made.append(slow)

        def flip(img, slow=slow):
            if slow:
                time.sleep(2e-3)
            return img[::-1].copy()

        return {t: flip for t in bench_per_image.TRANSFORMS}, lambda img: img

    rng = np.random.default_rng(0)
    monkeypatch.setattr(bench_per_image, "photos", lambda: [rng.integers(0, 255, (8, 8, 3), np.uint8)] * 2)
    monkeypatch.setattr(bench_per_image, "opencv_fns", fake_opencv)
    fake_affine_aug = lambda: ({t: np.copy for t in bench_per_image.TRANSFORMS}, lambda img: img)  # noqa: E731
    monkeypatch.setattr(bench_per_image, "LIBRARIES", {"affine_aug": fake_affine_aug, "OpenCV": fake_opencv})
    out = tmp_path / "figures.json"
    assert bench_per_image.main(["--runs", "1", "--repeat", "2", "--control", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rates = json.loads(out.read_text())["img_per_s"]["VerticalFlip"]
    assert made == [True, False] and rates[bench_per_image.CONTROL] > 5 * rates["OpenCV"]
    row = next(line for line in text.splitlines() if line.startswith("| VerticalFlip |"))
    assert row.endswith(f"| {rates['affine_aug'] / rates['OpenCV']:.2f}x |")
    assert f"# OpenCV / {bench_per_image.CONTROL}, the same library twice: " in text
