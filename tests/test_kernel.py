"""The compiled kernel against the numpy reference: every mode x dtype x layout."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import affine_aug as aa
from conftest import random_images, simd

BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]


def _case(dtype, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (5, 19, 23) + ((channels,) if channels else ())
    imgs = random_images(dtype, shape, rng)
    m = aa.affine_matrix(
        (19, 23),
        rotate=rng.uniform(-180, 180, 5),
        scale=np.exp(rng.uniform(-0.7, 0.7, (5, 2))),
        shear=rng.uniform(-30, 30, (5, 2)),
        translate=rng.uniform(-8, 8, (5, 2)),
    )
    return imgs, m


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 2, 3, 4, 5])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_kernel_matches_reference(border, dtype, channels, interpolation):
    imgs, m = _case(dtype, channels, seed=channels or 1)
    c = channels or 1
    fill = list(range(1, c + 1)) if np.issubdtype(dtype, np.integer) else [0.5] * c
    kw = dict(border=border, fill=fill, out_size=(17, 29), interpolation=interpolation)
    fast = aa.warp_affine(imgs, m, backend="c", **kw)
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
    np.testing.assert_array_equal(
        aa.warp_affine(imgs, m, backend="c", **kw), aa.warp_affine(imgs, m, backend="numpy", **kw)
    )


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_nearest_on_the_exact_case_table(border, dtype):
    """The shared table of exact cases (test_warp.py), every dtype and channel count:
    the kernel's nearest equals the numpy reference and the np.pad oracle."""
    from conftest import random_images as _images
    from test_warp import EXACT_CASES, _shifted

    kw = dict(border=border, fill=7, interpolation="nearest")
    for c in (1, 2, 3, 4):
        imgs = _images(dtype, (2, 6, 8, c), seed=c)
        for tx, ty in EXACT_CASES:
            m = aa.affine_matrix((6, 8), translate=(tx, ty))
            fast = aa.warp_affine(imgs, m, backend="c", **kw)
            np.testing.assert_array_equal(fast, aa.warp_affine(imgs, m, backend="numpy", **kw))
            np.testing.assert_array_equal(fast, _shifted(imgs, tx, ty, border, 7), err_msg=f"shift {(tx, ty)}")
        square = _images(dtype, (2, 7, 7, c), seed=c)
        for k in (1, 2, 3):
            out = aa.warp_affine(square, aa.affine_matrix((7, 7), rotate=90 * k), backend="c", **kw)
            np.testing.assert_array_equal(out, np.rot90(square, k, axes=(1, 2)))
        flipped = aa.warp_affine(imgs, aa.affine_matrix((6, 8), flip=(True, True)), backend="c", **kw)
        np.testing.assert_array_equal(flipped, imgs[:, ::-1, ::-1])


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_nearest_kernel_equals_reference_on_ties_and_wide_rows(border, dtype, channels):
    """Rows long enough for the interior's chunks, coordinates on half pixels (ties of
    floor(s + 0.5)), rotations and shears whose rows leave and re-enter the image, far
    coordinates: the reference's bytes exactly."""
    rng = np.random.default_rng(channels)
    shape = (6, 23, 300, channels)
    if np.issubdtype(dtype, np.integer):
        imgs = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    else:
        imgs = rng.standard_normal(shape).astype(dtype)
    m = np.stack(
        [
            np.diag([2.0, 2.0, 1.0]),  # output pixel x samples x / 2: ties at every other pixel
            aa.affine_matrix((23, 300), scale=0.5, translate=(0.25, 0.5)),
            aa.affine_matrix((23, 300), rotate=30.0, translate=(-40, 3)),
            aa.affine_matrix((23, 300), shear=(40.0, 5.0), rotate=-2.0),
            aa.affine_matrix((23, 300), rotate=179.0, scale=1.7),
            aa.affine_matrix((23, 300), translate=(3e9, -2e9)),
        ]
    )
    kw = dict(border=border, interpolation="nearest", fill=5, out_size=(29, 517))
    np.testing.assert_array_equal(
        aa.warp_affine(imgs, m, backend="c", **kw), aa.warp_affine(imgs, m, backend="numpy", **kw)
    )


def _permutations(h, w):
    """Forward matrices that are exact pixel permutations of an (h, w) image: identity,
    integer shifts, flips, quarter turns about the centre and products of them."""
    turn = [aa.affine_matrix((h, h), rotate=90 * k) for k in range(4)]  # square canvas: exact for any turn
    flips = [aa.affine_matrix((h, w), flip=f) for f in [(False, False), (True, False), (False, True), (True, True)]]
    shifts = [aa.affine_matrix((h, w), translate=t) for t in [(0, 0), (3, -2), (-7, 5), (40, 1), (-1, -30)]]
    mats = [s @ f for s in shifts for f in flips] + [s @ t for s in shifts[:3] for t in turn]
    mats += [shifts[1] @ turn[1] @ flips[1], turn[3] @ flips[2] @ shifts[4]]
    return np.stack(mats)


def _special_images(dtype, shape, rng, specials):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    imgs = rng.standard_normal(shape).astype(dtype)
    if specials:
        imgs.reshape(-1)[::17] = np.array([-0.0, np.inf, np.nan, -np.inf], dtype)[rng.integers(0, 4)]
    return imgs


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
def test_exact_permutations_are_copies_with_the_warps_bytes(border, dtype, interpolation):
    """Flips, quarter turns, integer shifts and their products take the copy path (the
    counter says how many images did), for every channel count, output size and antialias,
    and give the warp path's bytes (copies turned off) and the numpy reference's."""
    from affine_aug import kernel

    rng = np.random.default_rng(7)
    for c, out_size in [(1, None), (2, (9, 12)), (3, (15, 7)), (4, None)]:
        imgs = _special_images(dtype, (1, 11, 13, c), rng, specials=False)
        mats = _permutations(11, 13)
        imgs = np.repeat(imgs, len(mats), axis=0)
        fill = [3 + k for k in range(c)]
        for antialias in (False, True):
            kw = dict(border=border, interpolation=interpolation, fill=fill, out_size=out_size, antialias=antialias)
            copied = aa.warp_affine(imgs, mats, backend="c", **kw)
            assert kernel._last_exact_count() == len(mats)
            was = kernel._set_permutation_copies(False)
            try:
                warped = aa.warp_affine(imgs, mats, backend="c", **kw)
                assert kernel._last_exact_count() == 0
            finally:
                kernel._set_permutation_copies(was)
            np.testing.assert_array_equal(copied, warped)
            if c in (1, 3) and not antialias:  # the reference is slow: a sample of it
                np.testing.assert_array_equal(copied, aa.warp_affine(imgs, mats, backend="numpy", **kw))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("vector", [True, False], ids=["simd", "scalar"])
def test_row_copies_of_every_pixel_size_and_width_are_numpys_flips_and_slices(dtype, vector):
    """Rows copied forwards and backwards, by flips and integer shifts, for pixels of 1 to
    40 bytes and widths from 1 to 70 and 300 (the vector blocks of every pixel size, their
    tails, rows shorter than one block), on and off the SIMD interiors: numpy's flips and
    slices exactly, and the copy path taken for each."""
    from affine_aug import kernel

    rng = np.random.default_rng(11)
    for c in (1, 2, 3, 4, 5):
        for w in list(range(1, 71)) + [300]:
            img = random_images(dtype, (1, 3, w, c), rng)
            flips = [aa.affine_matrix((3, w), flip=f) for f in [(True, False), (False, True), (True, True)]]
            want = [img[:, :, ::-1], img[:, ::-1], img[:, ::-1, ::-1]]
            shift = aa.affine_matrix((3, w), translate=(1, 0), flip=(True, False))  # the last column is the fill
            with simd(vector):
                got = aa.warp_affine(np.repeat(img, 4, axis=0), np.stack(flips + [shift]), interpolation="nearest")
                assert kernel._last_exact_count() == 4
            for k in range(3):
                np.testing.assert_array_equal(got[k], want[k][0], err_msg=f"C={c} W={w} flip {k}")
            np.testing.assert_array_equal(got[3][:, 1:], img[0, :, ::-1][:, :-1], err_msg=f"C={c} W={w}")
            assert not got[3][:, 0].any()


@pytest.mark.parametrize("border", BORDERS)
def test_whole_rows_copied_at_once_stop_where_the_border_rule_takes_over(border):
    """Vertical shifts copy runs of whole rows in one move; rows that the border rule maps
    (reflected, wrapped, repeated) are not consecutive source rows: the warp path's bytes."""
    from affine_aug import kernel

    img = random_images(np.uint8, (1, 9, 6, 3), np.random.default_rng(2))
    mats = np.stack([aa.affine_matrix((9, 6), translate=(0, t)) for t in (-4, -1, 0, 2, 7)])
    imgs = np.repeat(img, len(mats), axis=0)
    copied = aa.warp_affine(imgs, mats, border=border, fill=9)
    assert kernel._last_exact_count() == len(mats)
    was = kernel._set_permutation_copies(False)
    try:
        np.testing.assert_array_equal(copied, aa.warp_affine(imgs, mats, border=border, fill=9))
    finally:
        kernel._set_permutation_copies(was)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_permutations_that_a_lerp_changes_stay_on_the_warp_path(dtype):
    """A lerp turns -0.0 into +0.0 and infinite neighbours into NaN: such float images
    keep the warp's bytes (the warp path) under bilinear and bicubic; nearest copies them."""
    from affine_aug import kernel

    rng = np.random.default_rng(3)
    imgs = _special_images(dtype, (2, 9, 10, 3), rng, specials=True)
    clean = _special_images(dtype, (1, 9, 10, 3), rng, specials=False)
    batch = np.concatenate([imgs, clean])
    flip = aa.affine_matrix((9, 10), flip=(True, False))
    for interpolation, copies in [("nearest", 3), ("bilinear", 1), ("bicubic", 1)]:
        out = aa.warp_affine(batch, flip, interpolation=interpolation, backend="c")
        assert kernel._last_exact_count() == copies
        was = kernel._set_permutation_copies(False)
        try:
            warped = aa.warp_affine(batch, flip, interpolation=interpolation, backend="c")
        finally:
            kernel._set_permutation_copies(was)
        assert out.tobytes() == warped.tobytes()


def test_ragged_permutations_are_copies():
    from affine_aug import kernel

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(8, 8), (5, 9), (12, 7)]]
    inv = np.stack(
        [
            np.linalg.inv(aa.affine_matrix((8, 8), rotate=90)),
            np.linalg.inv(aa.affine_matrix((5, 9), flip=(True, False))),
            np.linalg.inv(aa.affine_matrix((12, 7), rotate=10)),
        ]
    )
    out = np.empty((3, 8, 8, 3), np.uint8)
    kernel.warp_ragged_into(images, [0, 1, 2], inv, out, "bilinear", "edge", np.zeros(3, np.uint8), -0.5)
    assert kernel._last_exact_count() == 2
    np.testing.assert_array_equal(out[0], np.rot90(images[0], 1))
    np.testing.assert_array_equal(out[1, :5], images[1][:, ::-1][:, :8])


def test_auto_backend_is_the_kernel():
    imgs, m = _case(np.float32, 3, seed=9)
    np.testing.assert_array_equal(aa.warp_affine(imgs, m), aa.warp_affine(imgs, m, backend="c"))


def test_large_zoom_and_tiny_step_stay_in_bounds():
    # extreme magnification: the per-pixel step is far below the fixed-point resolution
    imgs = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    m = aa.affine_matrix((8, 8), scale=5000.0)
    for border in BORDERS:
        fast = aa.warp_affine(imgs, m, border=border, out_size=(64, 64))
        ref = aa.warp_affine(imgs, m, border=border, out_size=(64, 64), backend="numpy")
        assert np.abs(fast.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("border", BORDERS)
def test_thread_count_does_not_change_results(dtype, border):
    """Threads split a batch into steps of rows, and one large image too; each step pads
    its copy of an image by what its own rows need, which never changes a pixel."""
    imgs, m = _case(dtype, 3, seed=2)
    imgs = np.concatenate([imgs] * 40)  # enough work for several threads
    m = np.concatenate([m] * 40)
    big = np.random.default_rng(5).integers(0, 256, (1, 300, 280, 3)).astype(dtype)
    m_big = aa.affine_matrix((300, 280), rotate=25.0, scale=0.6, translate=(90.0, -40.0))
    before = aa.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 7):
            aa.set_num_threads(n)
            assert aa.get_num_threads() == n
            results.append(
                (aa.warp_affine(imgs, m, out_size=(61, 67), border=border), aa.warp_affine(big, m_big, border=border))
            )
    finally:
        aa.set_num_threads(before)
    for batch, one in results[1:]:
        np.testing.assert_array_equal(batch, results[0][0])
        np.testing.assert_array_equal(one, results[0][1])


@pytest.mark.parametrize("bad", [0, -1, 257, 1.5, "2", True, None])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match=r"number of threads must be an integer in \[1, 256\]"):
        aa.set_num_threads(bad)


def test_thread_count_from_the_environment():
    code = "import affine_aug as aa; print(aa.get_num_threads())"
    env = {**os.environ, "AFFINE_AUG_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "3", out.stderr
    env["AFFINE_AUG_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "AFFINE_AUG_NUM_THREADS must be a positive integer, got 'many'" in out.stderr


def test_works_from_a_read_only_install(tmp_path):
    """A read-only install (the compiled kernel beside the code) warps with nothing to
    write: no compile step, no cache. As root ignores permissions, ``__pycache__`` is
    also made a plain file, so nothing can be written under the package either way.
    A fresh process gives the same bytes as this one."""
    pkg = tmp_path / "site" / "affine_aug"
    shutil.copytree(Path(aa.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "__pycache__").write_text("")
    before = sorted(str(q.relative_to(pkg)) for q in pkg.rglob("*"))
    cache = tmp_path / "xdg"
    code = textwrap.dedent(
        f"""
        import numpy as np, affine_aug as aa
        assert aa.__file__.startswith({str(pkg)!r}), aa.__file__
        from affine_aug import kernel
        assert kernel.available()
        img = np.arange(2 * 6 * 7 * 3, dtype=np.uint8).reshape(2, 6, 7, 3)
        assert np.array_equal(aa.warp_affine(img, np.eye(3)), img)
        m = aa.affine_matrix((6, 7), rotate=33, scale=0.7)
        print(aa.warp_affine(img, m, interpolation="bicubic").tobytes().hex())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(pkg.parent), "XDG_CACHE_HOME": str(cache)}
    for p in [pkg, *pkg.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
    finally:
        for p in [pkg, *pkg.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert out.returncode == 0, out.stderr
    img = np.arange(2 * 6 * 7 * 3, dtype=np.uint8).reshape(2, 6, 7, 3)
    here = aa.warp_affine(img, aa.affine_matrix((6, 7), rotate=33, scale=0.7), interpolation="bicubic")
    assert out.stdout.strip() == here.tobytes().hex()
    assert sorted(str(q.relative_to(pkg)) for q in pkg.rglob("*")) == before  # nothing written
    assert not cache.exists()


def _child_warp(args):
    imgs, m = args
    return aa.warp_affine(imgs, m)


def test_forked_children_after_parallel_use():
    """Children forked after the parent ran threaded warps (DataLoader workers, process
    pools) warp with threads of their own and get the same bytes."""
    import multiprocessing

    imgs, m = _case(np.uint8, 3, seed=6)
    imgs, m = np.concatenate([imgs] * 40), np.concatenate([m] * 40)
    parent = aa.warp_affine(imgs, m)  # the parent has now run threads
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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("border", BORDERS)
def test_output_pixels_do_not_depend_on_the_output_size(dtype, border):
    """Output pixel (y, x) depends only on the matrix: a larger output, whose samples reach
    further out (so the kernel pads its copy of the image more, or not at all for a small
    one, and other pixels take the border path), holds the smaller one bit for bit."""
    imgs, m = _case(dtype, 3, seed=9)
    m = m @ aa.affine_matrix((19, 23), translate=(30.0, -45.0))  # much of the output outside the image
    fill = 7 if np.issubdtype(dtype, np.integer) else 0.25
    for interpolation in ("bilinear", "nearest", "bicubic"):
        kw = dict(border=border, fill=fill, interpolation=interpolation, backend="c")
        big = aa.warp_affine(imgs, m, out_size=(150, 170), **kw)
        for size in ((4, 5), (19, 23), (60, 40)):
            np.testing.assert_array_equal(
                aa.warp_affine(imgs, m, out_size=size, **kw),
                big[:, : size[0], : size[1]],
                err_msg=f"{interpolation} {size}",
            )


def test_ragged_batches_do_not_change_results():
    from affine_aug.pipeline import warp_ragged

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    m = aa.affine_matrix(
        (16, 16), rotate=[17.0, -23.0], scale=[[0.7, 0.9], [1.1, 1.3]], translate=[[1.5, -2.25], [0.5, 3.0]]
    )
    alone = warp_ragged([small], m[:1], (16, 16))
    grouped = warp_ragged([big, small], m[::-1], (16, 16))
    np.testing.assert_array_equal(grouped[1], alone[0])


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_ragged_batch_is_each_image_warped_alone(monkeypatch, backend, border, dtype):
    from affine_aug import pipeline
    from affine_aug.warp import prefilter, prefilter_sigma

    monkeypatch.setattr(pipeline, "_resolve_backend", lambda b: backend)
    rng = np.random.default_rng(5)
    sizes = [(13, 17), (40, 33), (9, 50), (1, 1), (64, 21)]
    images = [(rng.random((h, w, 3)) * 255).astype(dtype) for h, w in sizes]
    which = [0, 1, 1, 2, 3, 4, 4, 4, 0]  # copies share their source
    m = aa.affine_matrix(
        (12, 14),
        rotate=rng.uniform(-30, 30, len(which)),
        scale=rng.uniform(0.2, 1.4, (len(which), 2)),
        translate=rng.uniform(-3, 3, (len(which), 2)),
    )
    fill = [7, 8, 9]
    got = pipeline.warp_ragged([images[k] for k in which], m, (12, 14), border=border, fill=fill)
    assert got.shape == (len(which), 12, 14, 3) and got.dtype == dtype
    for i, k in enumerate(which):
        fv = np.array(fill, dtype)
        sig = np.round(prefilter_sigma(m[i : i + 1]) * 4) / 4
        src = prefilter(images[k][None], sig, border, fv, backend)
        alone = aa.warp_affine(src, m[i], out_size=(12, 14), border=border, fill=fill, backend=backend)
        np.testing.assert_array_equal(got[i], alone[0], err_msg=f"output {i}")
    plain = pipeline.warp_ragged([images[k] for k in which], m, (12, 14), border=border, fill=fill, antialias=False)
    for i, k in enumerate(which):
        alone = aa.warp_affine(images[k][None], m[i], out_size=(12, 14), border=border, fill=fill, backend=backend)
        np.testing.assert_array_equal(plain[i], alone[0])


def test_ragged_batch_errors():
    from affine_aug.pipeline import warp_ragged

    a = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="one dtype and one channel count"):
        warp_ragged([a, a.astype(np.float32)], np.eye(3)[None].repeat(2, 0), (4, 4))
    with pytest.raises(ValueError, match="one dtype and one channel count"):
        warp_ragged([a, a[..., :2]], np.eye(3)[None].repeat(2, 0), (4, 4))
    with pytest.raises(ValueError, match="got 1 matrices for 2 images"):
        warp_ragged([a, a], np.eye(3)[None], (4, 4))
    with pytest.raises(
        ValueError, match="unknown border .smear.; expected one of constant, edge, reflect, mirror, wrap"
    ):
        warp_ragged([a], np.eye(3)[None], (4, 4), border="smear")
    with pytest.raises(ValueError, match="singular"):
        warp_ragged([a], np.diag([1.0, 0.0, 1.0])[None], (4, 4))
    with pytest.raises(ValueError, match="images dtype must be one of uint8, uint16, float32, float64, got int32"):
        warp_ragged([a.astype(np.int32)], np.eye(3)[None], (4, 4))
    with pytest.raises(ValueError, match="images must have non-empty H, W and C"):
        warp_ragged([a[:0]], np.eye(3)[None], (4, 4))
    assert warp_ragged([], np.zeros((0, 3, 3)), (4, 4)).shape == (0, 4, 4, 3)


# --------------------------------------------------------------------------- bicubic


def test_bicubic_reference_is_the_explicit_double_sum():
    """The numpy reference against a direct evaluation of Keys' kernel at each pixel."""
    rng = np.random.default_rng(5)
    img = rng.random((1, 9, 11, 1))
    m = aa.affine_matrix((9, 11), rotate=23.0, scale=0.8, translate=(0.3, -0.6))
    out = aa.warp_affine(img, m, interpolation="bicubic", border="edge", backend="numpy")
    inv = np.linalg.inv(m)

    def k(d, a=-0.5):
        d = abs(d)
        return (
            (a + 2) * d**3 - (a + 3) * d**2 + 1
            if d <= 1
            else (a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0)
        )

    for y, x in [(0, 0), (4, 5), (8, 10), (3, 9)]:
        sx, sy, _ = inv @ [x, y, 1.0]
        v = sum(
            k(sx - i) * k(sy - j) * img[0, min(max(j, 0), 8), min(max(i, 0), 10), 0]
            for j in range(int(np.floor(sy)) - 1, int(np.floor(sy)) + 3)
            for i in range(int(np.floor(sx)) - 1, int(np.floor(sx)) + 3)
        )
        assert abs(out[0, y, x, 0] - v) < 1e-12


@pytest.mark.parametrize(
    "border, cv_border",
    [
        ("constant", "BORDER_CONSTANT"),
        ("edge", "BORDER_REPLICATE"),
        ("reflect", "BORDER_REFLECT"),
        ("mirror", "BORDER_REFLECT_101"),
        ("wrap", "BORDER_WRAP"),
    ],
)
def test_bicubic_agrees_with_opencv(border, cv_border):
    """OpenCV's INTER_CUBIC uses Keys' a = -0.75 (and 1/32-pixel coordinates): with that
    parameter the kernel agrees within one level on smooth content."""
    cv2 = pytest.importorskip("cv2")
    from affine_aug.warp import _warp_dst_to_src

    yy, xx = np.mgrid[0:48, 0:56]
    img = (127.5 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 50 * np.sin((xx + yy) / 11.0)).astype(np.uint8)[..., None]
    img = np.repeat(img, 3, axis=2)
    m = aa.affine_matrix((48, 56), rotate=17.0, scale=[1.15, 0.9], translate=(2.5, -1.75))
    ours = _warp_dst_to_src(
        img[None], np.linalg.inv(m)[None], (48, 56), "bicubic", border, np.full(3, 9, np.uint8), cubic_a=-0.75
    )[0]
    ref = cv2.warpAffine(
        img, m[:2], (56, 48), flags=cv2.INTER_CUBIC, borderMode=getattr(cv2, cv_border), borderValue=(9, 9, 9)
    )
    assert np.abs(ours.astype(int) - ref).max() <= 1


# --------------------------------------------------------------------------- antialiasing

NP_MODES = {"constant": "constant", "edge": "nearest", "reflect": "reflect", "mirror": "mirror", "wrap": "wrap"}


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_prefilter_matches_scipy(backend, border, dtype):
    from scipy import ndimage

    from affine_aug.warp import prefilter

    rng = np.random.default_rng(1)
    imgs = (rng.random((3, 23, 31, 2)) * (255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1)).astype(
        dtype
    )
    sigmas = np.array([[1.25, 0.5], [2.0, 2.0], [0.0, 0.75]])
    fill = np.array([3, 5], dtype)
    got = prefilter(imgs, sigmas, border, fill, backend)
    assert got.dtype == dtype and got.shape == imgs.shape
    for i, (sx, sy) in enumerate(sigmas):
        for ch in range(2):
            ref = ndimage.gaussian_filter(
                imgs[i, :, :, ch].astype(np.float64),
                sigma=(sy, sx),
                mode=NP_MODES[border],
                cval=float(fill[ch]),
                truncate=3.0,
            )
            # uint8 and float32 are summed in float32: within 1e-5 of the exact sum (a tie may round either way)
            tol = {np.uint8: 0.5 + 1e-4, np.uint16: 0.5 + 1e-6, np.float32: 1e-5, np.float64: 1e-12}[dtype]
            assert np.abs(got[i, :, :, ch].astype(np.float64) - ref).max() <= tol


def test_antialias_is_the_prefiltered_warp_and_leaves_non_shrinking_matrices_alone():
    from affine_aug.warp import prefilter

    imgs, _ = _case(np.uint8, 3, seed=12)
    m = aa.affine_matrix(
        (19, 23), rotate=[0, 30, -60, 10, 90], scale=[[0.4, 0.4], [0.5, 1.0], [1.0, 1.0], [2.0, 1.5], [0.7, 0.7]]
    )
    out = aa.warp_affine(imgs, m, antialias=True, border="reflect", out_size=(11, 13))
    manual = aa.warp_affine(
        prefilter(imgs, aa.prefilter_sigma(m), "reflect", np.zeros(3, np.uint8)), m, border="reflect", out_size=(11, 13)
    )
    np.testing.assert_array_equal(out, manual)
    plain = aa.warp_affine(imgs, m, border="reflect", out_size=(11, 13))
    np.testing.assert_array_equal(out[2:4], plain[2:4])  # rotation and zoom-in: unchanged
    assert not np.array_equal(out[0], plain[0])
    np.testing.assert_array_equal(aa.prefilter_sigma(aa.affine_matrix((8, 8), scale=0.25)), [1.5, 1.5])
    with pytest.raises(ValueError, match="antialias must be True or False, got 1"):
        aa.warp_affine(imgs, m, antialias=1)


def _zone_plate(n):
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    return (127.5 + 127.5 * np.cos(np.pi * (xx**2 + yy**2) / n)).astype(np.uint8)


def test_antialias_matches_pillow_downscaling():
    """1-pixel stripes shrunk 3.5x, and a zone plate (local frequency r / n cycles per
    pixel) shrunk 4x: without the prefilter both alias into strong false patterns; with
    it the warp is close to Pillow's antialiased resize, and flat where the source
    frequency is beyond the output's Nyquist limit."""
    from PIL import Image

    from affine_aug.pipeline import box_to_size_matrix

    stripes = np.zeros((128, 128), np.uint8)
    stripes[:, ::2] = 255
    m = box_to_size_matrix([0, 0, 128, 128], (37, 37))
    ours = aa.warp_affine(stripes[None], m, out_size=(37, 37), antialias=True, border="edge")[0].astype(float)
    raw = aa.warp_affine(stripes[None], m, out_size=(37, 37), border="edge")[0].astype(float)
    pil = np.asarray(Image.fromarray(stripes).resize((37, 37), Image.Resampling.LANCZOS)).astype(float)
    assert raw.std() > 50  # aliased
    assert np.abs(ours - pil)[4:-4, 4:-4].max() < 8 and ours[4:-4, 4:-4].std() < 3

    plate = _zone_plate(128)
    m = box_to_size_matrix([0, 0, 128, 128], (32, 32))
    ours = aa.warp_affine(plate[None], m, out_size=(32, 32), antialias=True, border="edge")[0].astype(float)
    raw = aa.warp_affine(plate[None], m, out_size=(32, 32), border="edge")[0].astype(float)
    pil = np.asarray(Image.fromarray(plate).resize((32, 32), Image.Resampling.LANCZOS)).astype(float)
    yy, xx = np.mgrid[0:32, 0:32] * 4 + 1.5 - 64  # output pixel centres in source coordinates
    beyond = (np.hypot(xx, yy) > 28) & (np.abs(xx) < 56) & (np.abs(yy) < 56)  # source frequency > 1.75x Nyquist
    assert raw[beyond].std() > 40 and ours[beyond].std() < 10 and pil[beyond].std() < 10
    assert np.abs(ours - pil)[3:-3, 3:-3].mean() < 6


def test_without_the_compiled_kernel_auto_falls_back_and_c_says_how_to_build(monkeypatch):
    from affine_aug import kernel, warp

    imgs, m = _case(np.uint8, 3, seed=3)
    expected = aa.warp_affine(imgs, m, backend="numpy")
    monkeypatch.setattr(kernel, "_LIB", None)
    monkeypatch.setattr(warp, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match=r"compiled kernel is missing.*`pip install -e \.`.*; using the numpy path"):
        np.testing.assert_array_equal(aa.warp_affine(imgs, m), expected)
    with pytest.raises(RuntimeError, match=r"compiled kernel is missing: the package was not installed with pip"):
        aa.warp_affine(imgs, m, backend="c")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_pixels_that_only_see_fill_are_the_fill_exactly(dtype):
    # outside the image by more than a pixel every neighbour is fill: the output is the fill
    # itself (uint8 weights sum to a little under one; that must never show)
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    rng = np.random.default_rng(9)
    imgs = (rng.random((3, 20, 24, 3)) * top).astype(dtype)
    fill = np.array([top, 1, top - 1], dtype)
    m = aa.affine_matrix(
        (20, 24), rotate=[10.0, -33.0, 90.0], scale=[0.8, 1.3, 0.5], translate=[[14.25, 3.5], [-9.5, 6.75], [0, 0]]
    )
    for backend in ("c", "numpy"):
        out = aa.warp_affine(imgs, m, border="constant", fill=fill, backend=backend, out_size=(30, 40))
        yy, xx = np.mgrid[0:30, 0:40]
        inv = np.linalg.inv(m)
        for i in range(3):
            sx = inv[i, 0, 0] * xx + inv[i, 0, 1] * yy + inv[i, 0, 2]
            sy = inv[i, 1, 0] * xx + inv[i, 1, 1] * yy + inv[i, 1, 2]
            outside = (sx < -1.01) | (sx > 24.01) | (sy < -1.01) | (sy > 20.01)
            assert outside.sum() > 100
            np.testing.assert_array_equal(out[i][outside], np.broadcast_to(fill, (outside.sum(), 3)))


def test_ragged_batch_errors_name_what_is_wrong():
    from affine_aug.pipeline import warp_ragged

    a = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"a ragged batch needs \(H, W, C\) images of one dtype and one channel count"):
        warp_ragged([a, a[..., :1]], np.eye(3), (4, 4))
    with pytest.raises(ValueError, match=r"images must have non-empty H, W and C, got shape \(0, 5, 3\)"):
        warp_ragged([a, a[:0]], np.eye(3), (4, 4))
    with pytest.raises(ValueError, match="images dtype must be one of uint8, uint16, float32, float64, got int32"):
        warp_ragged([a.astype(np.int32)], np.eye(3), (4, 4))
