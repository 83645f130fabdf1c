"""The compiled kernel against the numpy reference: every mode x dtype x layout."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import affine_aug as aa

BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]


def _case(dtype, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (5, 19, 23) + ((channels,) if channels else ())
    if np.issubdtype(dtype, np.integer):
        imgs = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    else:
        imgs = rng.standard_normal(shape).astype(dtype)
    m = aa.affine_matrix((19, 23), rotate=rng.uniform(-180, 180, 5), scale=np.exp(rng.uniform(-0.7, 0.7, (5, 2))),
                         shear=rng.uniform(-30, 30, (5, 2)), translate=rng.uniform(-8, 8, (5, 2)))
    return imgs, m


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 2, 3, 4, 5])
def test_bilinear_kernel_matches_reference(border, dtype, channels):
    imgs, m = _case(dtype, channels, seed=channels or 1)
    c = channels or 1
    fill = list(range(1, c + 1)) if np.issubdtype(dtype, np.integer) else [0.5] * c
    kw = dict(border=border, fill=fill, out_size=(17, 29))
    fast = aa.warp_affine(imgs, m, backend="numba", **kw)
    ref = aa.warp_affine(imgs, m, backend="numpy", **kw)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape
    if np.issubdtype(dtype, np.integer):
        assert np.abs(fast.astype(np.int64) - ref).max() <= 1
    else:
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(fast, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_nearest_kernel_equals_reference(border, dtype):
    imgs, m = _case(dtype, 3, seed=4)
    kw = dict(border=border, interpolation="nearest", fill=7, out_size=(21, 20))
    np.testing.assert_array_equal(aa.warp_affine(imgs, m, backend="numba", **kw), aa.warp_affine(imgs, m, backend="numpy", **kw))


def test_auto_backend_is_the_kernel():
    imgs, m = _case(np.float32, 3, seed=9)
    np.testing.assert_array_equal(aa.warp_affine(imgs, m), aa.warp_affine(imgs, m, backend="numba"))


def test_large_zoom_and_tiny_step_stay_in_bounds():
    # extreme magnification: the per-pixel step is far below the fixed-point resolution
    imgs = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    m = aa.affine_matrix((8, 8), scale=5000.0)
    for border in BORDERS:
        fast = aa.warp_affine(imgs, m, border=border, out_size=(64, 64))
        ref = aa.warp_affine(imgs, m, border=border, out_size=(64, 64), backend="numpy")
        assert np.abs(fast.astype(int) - ref).max() <= 1


def test_thread_count_follows_numba():
    imgs, m = _case(np.uint8, 3, seed=2)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = aa.warp_affine(imgs, m)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, aa.warp_affine(imgs, m))


def test_works_from_a_read_only_install(tmp_path):
    """The compiled-code cache must not need a writable package directory.

    The copy of the package is made read-only; as root ignores permissions, its
    ``__pycache__`` is also a plain file, so nothing can be written under it either way.
    """
    pkg = tmp_path / "site" / "affine_aug"
    shutil.copytree(Path(aa.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "__pycache__").write_text("")
    cache = tmp_path / "xdg"
    code = textwrap.dedent(
        """
        import numpy as np, affine_aug as aa
        assert aa.__file__.startswith(%r), aa.__file__
        img = np.arange(2 * 6 * 7 * 3, dtype=np.uint8).reshape(2, 6, 7, 3)
        assert np.array_equal(aa.warp_affine(img, np.eye(3)), img)
        print("ok")
        """
        % str(pkg)
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(pkg.parent), XDG_CACHE_HOME=str(cache))
    for p in [pkg, *pkg.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    finally:
        for p in [pkg, *pkg.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert sorted(p.name for p in pkg.iterdir()) == sorted(p.name for p in Path(aa.__file__).parent.iterdir())
    assert list(cache.rglob("*.nbi"))  # numba used its user-wide cache instead


def _child_warp(args):
    imgs, m = args
    return aa.warp_affine(imgs, m)


def test_forked_children_after_parallel_use():
    """GNU OpenMP cannot run in a child forked after the parent used it: the kernel
    switches to its serial variant there (DataLoader workers, process pools)."""
    import multiprocessing

    imgs, m = _case(np.uint8, 3, seed=6)
    parent = aa.warp_affine(imgs, m)  # the parent has now used the parallel runtime
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_child_warp, [(imgs, m)] * 2)
    for r in results:
        np.testing.assert_array_equal(r, parent)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("border", ["edge", "constant"])
def test_result_does_not_depend_on_the_canvas(dtype, border):
    """An image alone, and the same image padded into a larger canvas (edge-replicated or
    filled, as ragged batches do), give bit-identical warps: which code path (interior
    or border) takes a pixel never changes its value."""
    imgs, m = _case(dtype, 3, seed=8)
    fill = 7 if np.issubdtype(dtype, np.integer) else 0.25
    alone = aa.warp_affine(imgs, m, border=border, fill=fill)
    if border == "edge":
        canvas = np.pad(imgs, ((0, 0), (0, 9), (0, 13), (0, 0)), mode="edge")
    else:
        canvas = np.pad(imgs, ((0, 0), (0, 9), (0, 13), (0, 0)), constant_values=fill)
    padded = aa.warp_affine(canvas, m, border=border, fill=fill, out_size=imgs.shape[1:3])
    np.testing.assert_array_equal(padded, alone)


def test_ragged_batches_do_not_change_results():
    from affine_aug.pipeline import warp_ragged

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    m = aa.affine_matrix((16, 16), rotate=[17.0, -23.0], scale=[[0.7, 0.9], [1.1, 1.3]], translate=[[1.5, -2.25], [0.5, 3.0]])
    alone = warp_ragged([small], m[:1], (16, 16))
    grouped = warp_ragged([big, small], m[::-1], (16, 16))
    np.testing.assert_array_equal(grouped[1], alone[0])
