"""The numpy warper against scipy.ndimage and exact cases. The compiled kernel is held to
the same tests (``backend`` is parametrized) plus its own comparison in test_kernel.py."""

import zlib

import numpy as np
import pytest
from scipy import ndimage

import affine_aug as aa
from conftest import random_images, random_matrices

BACKENDS = ["numpy", "c"]
SCIPY_MODE = {
    "constant": "grid-constant",
    "edge": "nearest",
    "reflect": "reflect",
    "mirror": "mirror",
    "wrap": "grid-wrap",
}
BORDERS = list(SCIPY_MODE)


def scipy_reference(images, matrices, out_size, border, fill, order=1):
    """Warp with scipy.ndimage.map_coordinates, channel by channel, in float64."""
    imgs = images.astype(np.float64)
    grey = imgs.ndim == 3
    if grey:
        imgs = imgs[..., None]
    fill = np.broadcast_to(np.asarray(fill, dtype=np.float64), (imgs.shape[-1],))
    inv = np.linalg.inv(matrices)
    ho, wo = out_size
    ys, xs = np.meshgrid(np.arange(ho, dtype=np.float64), np.arange(wo, dtype=np.float64), indexing="ij")
    out = np.empty((len(imgs), ho, wo, imgs.shape[-1]))
    for i, m in enumerate(inv):
        sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        for ch in range(imgs.shape[-1]):
            out[i, ..., ch] = ndimage.map_coordinates(
                imgs[i, ..., ch], [sy, sx], order=order, mode=SCIPY_MODE[border], cval=fill[ch]
            )
    return out[..., 0] if grey else out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("out_size", [(13, 17), (9, 22)])
def test_bilinear_float_matches_scipy(backend, border, channels, out_size):
    rng = np.random.default_rng(zlib.crc32(repr((border, channels, out_size)).encode()))
    shape = (4, 13, 17) + ((channels,) if channels else ())
    imgs = rng.random(shape)
    m = random_matrices(4, (13, 17), rng)
    fill = 0.25 if channels is None else [0.1, 0.5, 0.9]
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-5)):
        out = aa.warp_affine(imgs.astype(dtype), m, out_size=out_size, border=border, fill=fill, backend=backend)
        assert out.dtype == dtype and out.shape == (4,) + out_size + shape[3:]
        ref = scipy_reference(imgs.astype(dtype), m, out_size, border, fill)
        np.testing.assert_allclose(out, ref, atol=tol, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_bilinear_integer_matches_scipy(backend, border, dtype):
    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    imgs = rng.integers(0, top + 1, (3, 15, 12, 3), dtype=dtype)
    m = random_matrices(3, (15, 12), rng)
    fill = [top, 0, 7]
    out = aa.warp_affine(imgs, m, border=border, fill=fill, backend=backend)
    ref = np.floor(scipy_reference(imgs, m, (15, 12), border, fill) + 0.5)
    assert out.dtype == dtype
    diff = np.abs(out.astype(np.int64) - ref)
    # the kernel's uint8 path rounds coordinates to 1/2048 pixel: off by one level at most,
    # on about 1% of the pixels of this worst case (uniform noise, the steepest gradients)
    assert diff.max() <= 1 and np.mean(diff == 0) > (0.99 if backend == "numpy" else 0.97)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", BORDERS)
def test_nearest_matches_scipy(backend, border):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (3, 11, 14, 4), dtype=np.uint8)
    m = random_matrices(3, (11, 14), rng)
    out = aa.warp_affine(imgs, m, interpolation="nearest", border=border, fill=9, out_size=(12, 10), backend=backend)
    ref = scipy_reference(imgs, m, (12, 10), border, 9, order=0)
    np.testing.assert_array_equal(out, ref)


# --------------------------------------------------------------------------- exact cases

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_identity_is_bit_exact(backend, dtype, border, interpolation):
    for shape in [(2, 9, 7), (2, 9, 7, 3), (1, 1, 1, 1), (2, 5, 6, 5)]:
        imgs = random_images(dtype, shape)
        out = aa.warp_affine(imgs, np.eye(3), border=border, interpolation=interpolation, backend=backend)
        assert out.dtype == imgs.dtype and np.array_equal(out, imgs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_shift_is_exact(backend, dtype):
    imgs = random_images(dtype, (2, 10, 12, 3))
    m = aa.affine_matrix((10, 12), translate=(3, -2))
    out = aa.warp_affine(imgs, m, fill=0, backend=backend)
    expect = np.zeros_like(imgs)
    expect[:, :8, 3:] = imgs[:, 2:, :9]
    assert np.array_equal(out, expect)
    wrapped = aa.warp_affine(imgs, m, border="wrap", backend=backend)
    assert np.array_equal(wrapped, np.roll(imgs, (-2, 3), axis=(1, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotate_90_from_config_equals_rot90(backend, dtype):
    imgs = random_images(dtype, (3, 16, 16, 3))
    for k in (1, 2, 3):
        m = aa.sample({"rotate": 90 * k}, np.arange(3), size=(16, 16)).matrices
        out = aa.warp_affine(imgs, m, backend=backend)
        assert np.array_equal(out, np.rot90(imgs, k, axes=(1, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotate_90_non_square_with_out_size(backend):
    imgs = random_images(np.uint8, (2, 6, 10))
    # rotate about the source centre, then move the centre to the centre of the (10, 6) output
    m = aa.compose(aa.affine_matrix((6, 10), rotate=90), aa.affine_matrix((6, 10), translate=(-2, 2)))
    out = aa.warp_affine(imgs, m, out_size=(10, 6), backend=backend)
    assert np.array_equal(out, np.rot90(imgs, 1, axes=(1, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_flips_from_config(backend):
    imgs = random_images(np.float32, (2, 7, 9, 3))
    h = aa.sample({"flip": {"horizontal": 1}}, [0, 1], size=(7, 9)).matrices
    v = aa.sample({"flip": {"vertical": 1}}, [0, 1], size=(7, 9)).matrices
    assert np.array_equal(aa.warp_affine(imgs, h, backend=backend), imgs[:, :, ::-1])
    assert np.array_equal(aa.warp_affine(imgs, v, backend=backend), imgs[:, ::-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_warp_then_inverse_warp_returns_interior(backend):
    rng = np.random.default_rng(5)
    # smooth image so bilinear resampling twice stays close
    y, x = np.mgrid[0:40, 0:40]
    img = (np.sin(x / 5.0) + np.cos(y / 7.0))[None].repeat(3, 0)
    m = random_matrices(3, (40, 40), rng, strength=0.15)
    back = aa.warp_affine(aa.warp_affine(img, m, backend=backend), aa.invert(m), backend=backend)
    interior = (slice(None), slice(12, 28), slice(12, 28))
    np.testing.assert_allclose(back[interior], img[interior], atol=0.02)


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_border_blends_into_fill(backend):
    img = np.full((1, 4, 4), 100, dtype=np.uint8)
    m = aa.affine_matrix((4, 4), translate=(0.5, 0))  # half-pixel shift right
    out = aa.warp_affine(img, m, fill=0, backend=backend)
    assert out[0, 0, 0] == 50 and out[0, 0, 1] == 100  # left column blends with the fill
    out = aa.warp_affine(img, m, border="edge", backend=backend)
    assert np.all(out == 100)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rounding_half_up(backend):
    img = np.array([[[0, 1, 2, 3]]], dtype=np.uint8)
    m = aa.affine_matrix((1, 4), translate=(0.5, 0))
    out = aa.warp_affine(img, m, border="edge", backend=backend)
    assert out.tolist() == [[[0, 1, 2, 3]]]  # 0.5 -> 1, 1.5 -> 2, 2.5 -> 3
    big = np.array([[[250, 255]]], dtype=np.uint8)
    assert aa.warp_affine(
        big, aa.affine_matrix((1, 2), translate=(0.5, 0)), border="edge", backend=backend
    ).tolist() == [[[250, 253]]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_sample_matrices_and_single_matrix(backend):
    imgs = random_images(np.float64, (3, 8, 8))
    m = random_matrices(3, (8, 8), np.random.default_rng(1))
    batched = aa.warp_affine(imgs, m, backend=backend)
    for i in range(3):
        np.testing.assert_allclose(batched[i], aa.warp_affine(imgs[i : i + 1], m[i], backend=backend)[0])
    np.testing.assert_array_equal(aa.warp_affine(imgs, m[:, :2], backend=backend), batched)


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_untouched_noncontiguous_and_readonly(backend):
    imgs = random_images(np.uint8, (4, 10, 12, 3))
    view = imgs[::2, :, ::-1]
    view.flags.writeable = False
    before = imgs.copy()
    m = random_matrices(2, (10, 12), np.random.default_rng(2))
    out = aa.warp_affine(view, m, backend=backend)
    assert np.array_equal(imgs, before)
    assert np.array_equal(out, aa.warp_affine(np.ascontiguousarray(view), m, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend):
    out = aa.warp_affine(np.zeros((0, 5, 5, 3), np.uint8), np.zeros((0, 3, 3)), backend=backend)
    assert out.shape == (0, 5, 5, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(images=np.zeros((5, 5), np.uint8)),
            r"images must have shape \(N, H, W\) or \(N, H, W, C\), got \(5, 5\)",
        ),
        (
            dict(images=np.zeros((1, 5, 5), np.int16)),
            r"images dtype must be one of uint8, uint16, float32, float64, got int16",
        ),
        (dict(images=np.zeros((1, 0, 5), np.uint8)), r"non-empty H, W and C"),
        (dict(matrices=np.stack([np.eye(3)] * 3)), r"got 3 matrices for 2 images"),
        (dict(matrices=np.diag([1.0, 0.0, 1.0])), r"is singular"),
        (dict(matrices=np.full((3, 3), np.inf)), r"non-finite"),
        (dict(matrices=np.eye(4)), r"matrices must have shape"),
        (
            dict(interpolation="cubic"),
            r"unknown interpolation 'cubic' \(did you mean 'bicubic'\?\); expected one of bilinear, nearest, bicubic",
        ),
        (dict(border="reflect101"), r"unknown border 'reflect101' \(did you mean 'reflect'\?\)"),
        (dict(backend="cuda"), r"unknown backend 'cuda'"),
        (dict(out_size=(0, 4)), r"out_size must be a pair of positive integers"),
        (dict(out_size=(-3, 4)), r"out_size must be a pair of positive integers"),
        (dict(fill=[1, 2]), r"fill has 2 values but the images have 3 channels"),
        (dict(fill=300), r"fill 300 is not an integer in \[0, 255\] as uint8 images need"),
        (dict(fill=1.5), r"fill 1.5 is not an integer"),
        (dict(fill="red"), r"fill must be a number or a sequence of 3 numbers"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(images=np.zeros((2, 5, 5, 3), np.uint8), matrices=np.eye(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        aa.warp_affine(args.pop("images"), args.pop("matrices"), **args)


def test_float_fill_nan_rejected():
    with pytest.raises(ValueError, match="fill must be finite"):
        aa.warp_affine(np.zeros((1, 3, 3), np.float32), np.eye(3), fill=np.nan)


def test_boxes_and_points_follow_the_warped_image():
    img = np.zeros((1, 48, 64), np.float64)
    img[0, 10:20, 30:50] = 1.0  # a rectangle: columns 30..49, rows 10..19 -> edges box (30, 10, 50, 20)
    rng = np.random.default_rng(4)
    for _ in range(10):
        m = aa.affine_matrix(
            (48, 64), rotate=rng.uniform(-60, 60), scale=rng.uniform(0.7, 1.3), translate=rng.uniform(-5, 5, 2)
        )
        out = aa.warp_affine(img, m, backend="numpy")[0]
        ys, xs = np.nonzero(out > 0.5)
        x1, y1, x2, y2 = aa.transform_boxes([[30, 10, 50, 20]], m)[0]
        assert (
            x1 - 0.5 <= xs.min() and xs.max() + 0.5 <= x2 + 0.5 and y1 - 0.5 <= ys.min() and ys.max() + 0.5 <= y2 + 0.5
        )
        # the rectangle's centre pixel goes where transform_points sends it
        cx, cy = aa.transform_points([[39.5, 14.5]], m)[0]
        assert abs(xs.mean() - cx) < 1.0 and abs(ys.mean() - cy) < 1.0


# --------------------------------------------------------------------------- one table of exact cases, every backend

NP_PAD = {"constant": "constant", "edge": "edge", "reflect": "symmetric", "mirror": "reflect", "wrap": "wrap"}


def _warp_any(backend, imgs, m, **kw):
    """The same call on the compiled kernel, the numpy reference or the torch warper."""
    if backend != "torch":
        return aa.warp_affine(imgs, m, backend=backend, **kw)
    torch = pytest.importorskip("torch")
    from affine_aug.torch import warp_affine as torch_warp

    x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2)
    return torch_warp(x, torch.as_tensor(np.asarray(m, dtype=np.float64)), **kw).permute(0, 2, 3, 1).numpy()


def _shifted(imgs, tx, ty, border, fill):
    """What an integer shift must give, from np.pad's border modes (an independent oracle)."""
    p = 2 * max(imgs.shape[1:3]) + 8
    kw = {"constant_values": fill} if border == "constant" else {}
    padded = np.pad(imgs, ((0, 0), (p, p), (p, p), (0, 0)), mode=NP_PAD[border], **kw)
    h, w = imgs.shape[1:3]
    return padded[:, p - ty : p - ty + h, p - tx : p - tx + w]


EXACT_CASES = [(0, 0), (2, -1), (-3, 4), (9, -7), (-13, 11)]  # beyond the image size too


@pytest.mark.parametrize("backend", ["c", "numpy", "torch"])
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_exact_case_table_every_backend(backend, border, dtype, interpolation):
    imgs = random_images(dtype, (2, 6, 8, 3))
    fill = 7
    for tx, ty in EXACT_CASES:
        m = aa.affine_matrix((6, 8), translate=(tx, ty))
        out = _warp_any(backend, imgs, m, border=border, fill=fill, interpolation=interpolation)
        assert out.dtype == imgs.dtype
        np.testing.assert_array_equal(out, _shifted(imgs, tx, ty, border, fill), err_msg=f"shift {(tx, ty)}")
    square = random_images(dtype, (2, 7, 7, 3))
    for k in (1, 2, 3):  # rotations by 90 degrees about the centre: pixel permutations
        out = _warp_any(
            backend,
            square,
            aa.affine_matrix((7, 7), rotate=90 * k),
            border=border,
            fill=fill,
            interpolation=interpolation,
        )
        np.testing.assert_array_equal(out, np.rot90(square, k, axes=(1, 2)))
    flip = aa.affine_matrix((6, 8), flip=(True, False))
    np.testing.assert_array_equal(
        _warp_any(backend, imgs, flip, border=border, fill=fill, interpolation=interpolation), imgs[:, :, ::-1]
    )


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_out_receives_the_result(backend):
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    grey = imgs[..., 0].copy()
    m = aa.affine_matrix((10, 12), rotate=[5.0, -40.0, 90.0], scale=[1.0, 0.4, 1.2])
    for src in (imgs, grey):
        for interpolation in ("bilinear", "nearest", "bicubic"):
            kw = dict(out_size=(7, 9), interpolation=interpolation, border="edge", antialias=True, backend=backend)
            expect = aa.warp_affine(src, m, **kw)
            out = np.full(expect.shape, 77, np.uint8)
            assert aa.warp_affine(src, m, out=out, **kw) is out
            np.testing.assert_array_equal(out, expect)


def test_out_errors():
    imgs = np.zeros((2, 4, 5, 3), np.float32)
    m = np.eye(3)
    for bad, match in [
        (
            np.zeros((2, 4, 5, 3), np.float64),
            r"out must be a float32 array of shape \(2, 4, 5, 3\), got float64 array of shape \(2, 4, 5, 3\)",
        ),
        (
            np.zeros((2, 4, 5), np.float32),
            r"out must be a float32 array of shape \(2, 4, 5, 3\), got float32 array of shape \(2, 4, 5\)",
        ),
        ([[0.0]], r"out must be a float32 array of shape \(2, 4, 5, 3\), got list"),
        (np.zeros((2, 4, 5, 6), np.float32)[..., ::2], "out must be C-contiguous and writable"),
        (imgs, r"out must not overlap the images"),
    ]:
        with pytest.raises(ValueError, match=match):
            aa.warp_affine(imgs, m, out=bad)
    frozen = np.zeros_like(imgs)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out must be C-contiguous and writable"):
        aa.warp_affine(imgs, m, out=frozen)
