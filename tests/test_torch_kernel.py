"""The torch warper's backends: the planar C kernel (CPU), its C backward, the gather path
(the CUDA fallback, run here on the CPU) and the custom op under torch.compile."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import affine_aug as aa  # noqa: E402
from affine_aug.torch import SpatialTransformer, functional, warp_affine  # noqa: E402
from affine_aug.torch import _cpu  # noqa: E402

BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]
INTERPOLATIONS = ["bilinear", "nearest", "bicubic"]
DTYPES = [
    torch.uint8,
    torch.int8,
    torch.uint16,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
]
NP_PAD = {"constant": "constant", "edge": "edge", "reflect": "symmetric", "mirror": "reflect", "wrap": "wrap"}
CFG = {"rotate": [-40, 40], "scale": [0.7, 1.3], "shear": [-10, 10], "translate": {"x": [-0.2, 0.2], "y": [-0.2, 0.2]}}

pytestmark = pytest.mark.skipif(not _cpu.available(), reason="the compiled kernels were not built")


def _images(dtype, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g).to(dtype)
    info = torch.iinfo(dtype)
    lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
    return torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dtype)


def _shifted(x, tx, ty, border, fill):
    """An integer shift from np.pad's border modes (an independent oracle), (N, C, H, W)."""
    a = x.to(torch.float64).numpy()
    p = 2 * max(a.shape[2:]) + 8
    kw = {"constant_values": fill} if border == "constant" else {}
    padded = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), mode=NP_PAD[border], **kw)
    h, w = a.shape[2:]
    return torch.from_numpy(padded[:, :, p - ty : p - ty + h, p - tx : p - tx + w].copy()).to(x.dtype)


def _gather(x, m, **kw):
    """The gather path (the CUDA fallback) on the CPU, with warp_affine's checks."""
    inv = functional._invert(functional.as_matrix_tensor(m, len(x), torch.float64, "cpu"))[:, :2]
    size = kw.pop("out_size", x.shape[2:])
    fill = functional._check_fill(kw.pop("fill", 0), x.shape[1], x.dtype)
    return functional._warp_gather(
        x, inv, size, kw.pop("interpolation", "bilinear"), kw.pop("border", "constant"), fill, kw.pop("cubic_a", -0.5)
    )


BACKENDS = {"c": warp_affine, "gather": _gather}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_exact_case_table_every_dtype(backend, border, interpolation):
    warp = BACKENDS[backend]
    for dtype in DTYPES:
        x = _images(dtype, (2, 3, 6, 8))
        for tx, ty in [(0, 0), (2, -1), (-3, 4), (9, -7), (-13, 11)]:
            m = aa.affine_matrix((6, 8), translate=(tx, ty))
            out = warp(x, m, border=border, fill=7, interpolation=interpolation)
            assert out.dtype == dtype
            assert torch.equal(out, _shifted(x, tx, ty, border, 7)), (dtype, tx, ty)
        square = _images(dtype, (2, 3, 7, 7), seed=1)
        for k in (1, 2, 3):
            out = warp(square, aa.affine_matrix((7, 7), rotate=90 * k), border=border, interpolation=interpolation)
            assert torch.equal(out, torch.rot90(square, k, dims=(2, 3))), (dtype, k)
        flip = aa.affine_matrix((6, 8), flip=(True, False))
        assert torch.equal(warp(x, flip, border=border, interpolation=interpolation), x.flip(3)), dtype


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_cpu_kernel_matches_the_numpy_reference(border, interpolation):
    m = aa.sample(CFG, np.arange(3), size=(17, 19), seed=4).matrices
    kw = dict(out_size=(15, 22), border=border, interpolation=interpolation)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12), (torch.uint8, 1), (torch.uint16, 1)):
        x = _images(dtype, (3, 2, 17, 19), seed=2)
        fill = [3, 250] if not dtype.is_floating_point else [0.25, -1.5]
        ours = warp_affine(x, m, fill=fill, **kw).permute(0, 2, 3, 1).to(torch.float64).numpy()
        ref = aa.warp_affine(x.permute(0, 2, 3, 1).numpy(), m, fill=fill, backend="numpy", **kw).astype(np.float64)
        scale = 1.0 if not dtype.is_floating_point else max(1.0, np.abs(ref).max())
        assert np.abs(ours - ref).max() <= tol * scale, dtype


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16])
def test_dtypes_the_numpy_api_lacks_match_a_float64_reference(dtype):
    m = aa.sample(CFG, np.arange(2), size=(11, 13), seed=5).matrices
    x = _images(dtype, (2, 3, 11, 13), seed=3)
    ours = warp_affine(x, m, border="mirror")
    ref = aa.warp_affine(x.to(torch.float64).permute(0, 2, 3, 1).numpy(), m, border="mirror", backend="numpy")
    ref = torch.from_numpy(ref).permute(0, 3, 1, 2)
    assert ours.dtype == dtype
    if dtype.is_floating_point:
        torch.testing.assert_close(ours, ref.to(dtype), atol=0.02, rtol=0.01)
    else:
        info = torch.iinfo(dtype)
        want = torch.floor(ref + 0.5).clamp(info.min, info.max)
        tol = 1 + want.abs() * (2**-20 if dtype in (torch.int8, torch.int16) else 2**-45)
        assert ((ours.to(torch.float64) - want).abs() <= tol).all()


def test_strided_inputs_are_read_in_place_and_agree():
    x = _images(torch.float32, (3, 4, 20, 18), seed=6)
    m = aa.sample(CFG, np.arange(3), size=(20, 18), seed=6).matrices
    want = warp_affine(x, m, border="reflect", interpolation="bicubic")
    wide = torch.zeros(3, 4, 20, 40)
    wide[..., 5:23] = x  # a window of a wider image: row stride 40
    for view in (
        x.contiguous(memory_format=torch.channels_last),
        wide[..., 5:23],
        x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
        x.transpose(2, 3).contiguous().transpose(2, 3),
    ):
        assert torch.equal(warp_affine(view, m, border="reflect", interpolation="bicubic"), want)
    even = torch.cat([x, x], 1)[:, ::2]  # every other channel: a stride the kernel takes as it is
    assert torch.equal(warp_affine(even, m), warp_affine(even.contiguous(), m))


def test_nearest_copies_any_dtype_bit_for_bit():
    m = aa.sample(CFG, np.arange(2), size=(9, 10), seed=7).matrices
    big = torch.tensor([2**62 + 1, -(2**62) - 3], dtype=torch.int64).repeat(90).reshape(2, 1, 9, 10)
    ref = aa.warp_affine(np.arange(180.0).reshape(2, 9, 10, 1), m, interpolation="nearest", backend="numpy", fill=-1)
    idx = torch.from_numpy(ref[..., 0]).long()
    out = warp_affine(big, m, interpolation="nearest", fill=5)
    flat = big.reshape(-1)
    want = torch.where(idx >= 0, flat[idx.clamp(min=0)], torch.tensor(5)).reshape(2, 1, 9, 10)
    assert torch.equal(out, want)
    for dtype in (torch.bool, torch.complex64):
        x = torch.ones(2, 2, 9, 10, dtype=dtype)
        assert warp_affine(x, m, interpolation="nearest").dtype == dtype


def test_gather_path_matches_the_c_kernel():
    m = aa.sample(CFG, np.arange(3), size=(13, 14), seed=8).matrices
    x = _images(torch.float64, (3, 2, 13, 14), seed=8)
    for border in BORDERS:
        for interpolation in INTERPOLATIONS:
            kw = dict(border=border, interpolation=interpolation, fill=[0.5, 2.0], out_size=(12, 15))
            torch.testing.assert_close(_gather(x, m, **kw), warp_affine(x, m, **kw), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- backward


def _mats(n, size, seed):
    return torch.tensor(aa.sample(CFG, np.arange(n), size=size, seed=seed).matrices[:, :2], dtype=torch.float64)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_gradcheck_c_backward_images_and_matrices(border, interpolation):
    x = torch.rand(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    m = _mats(2, (5, 6), seed=9).requires_grad_(True)

    def f(a, b):
        return warp_affine(a, b, border=border, fill=[0.5, -1.0], interpolation=interpolation, out_size=(6, 4))

    assert torch.autograd.gradcheck(f, (x, m), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("border", BORDERS)
def test_gradcheck_nearest_and_antialias_images(border):
    x = torch.rand(2, 2, 9, 8, dtype=torch.float64, requires_grad=True)
    m = aa.affine_matrix((9, 8), rotate=[15.0, -70.0], scale=[[0.45, 0.7], [0.6, 0.3]])
    assert torch.autograd.gradcheck(
        lambda a: warp_affine(a, m, border=border, fill=2.0, interpolation="nearest"), (x,), fast_mode=True
    )
    assert torch.autograd.gradcheck(
        lambda a: warp_affine(a, m, border=border, fill=2.0, antialias=True), (x,), eps=1e-6, atol=1e-6, fast_mode=True
    )


def test_nearest_has_no_gradient_with_respect_to_the_matrices():
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    m = _mats(1, (6, 6), seed=10).requires_grad_(True)
    warp_affine(x, m, interpolation="nearest").sum().backward()
    assert torch.equal(m.grad, torch.zeros_like(m))


def test_c_backward_matches_autograd_through_the_gather_path():
    x = torch.rand(3, 2, 11, 12, dtype=torch.float64)
    inv = functional._invert(functional.as_matrix_tensor(_mats(3, (11, 12), 11), 3, torch.float64, "cpu"))[:, :2]
    g = torch.rand(3, 2, 10, 13, dtype=torch.float64)
    for border in BORDERS:
        for interpolation in INTERPOLATIONS:
            fill = torch.tensor([0.3, 4.0], dtype=torch.float64)
            ours = _cpu.warp_backward(g, x, inv, interpolation, border, fill, -0.5, True, True)
            ref = functional._gather_backward(g, x, inv, interpolation, border, fill, -0.5, True, True)
            torch.testing.assert_close(ours[0], ref[0], atol=1e-10, rtol=0)
            torch.testing.assert_close(ours[1], ref[1], atol=1e-8, rtol=1e-10)


def test_backward_is_the_same_on_any_number_of_threads():
    x = torch.rand(6, 3, 30, 31, requires_grad=True)
    m = _mats(6, (30, 31), seed=12).float().requires_grad_(True)
    results = []
    before = aa.get_num_threads()
    try:
        for threads in (1, 2, 3, 7):
            aa.set_num_threads(threads)
            x.grad = m.grad = None
            warp_affine(x, m, border="wrap", interpolation="bicubic", antialias=True).square().sum().backward()
            results.append((x.grad.clone(), m.grad.clone()))
    finally:
        aa.set_num_threads(before)
    for gx, gm in results[1:]:
        assert torch.equal(gx, results[0][0]) and torch.equal(gm, results[0][1])


def test_blur_gather_path_and_its_gradient_match_the_kernel():
    x = torch.rand(3, 2, 16, 15, dtype=torch.float64)
    sig = torch.tensor([[1.2, 0.0], [0.0, 2.5], [0.7, 3.1]], dtype=torch.float64)
    fill = torch.tensor([0.5, 2.0], dtype=torch.float64)
    g = torch.rand_like(x)
    for border in BORDERS:
        torch.testing.assert_close(functional._blur_gather(x, sig, border, fill), _cpu.blur(x, sig, border, fill))
        xr = x.clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(functional._blur_gather(xr, sig, border, fill), xr, g)
        torch.testing.assert_close(_cpu.blur_backward(g, sig, border), ref)


# --------------------------------------------------------------------------- the op, compile, errors


def test_the_op_checks_inverses_when_asked():
    x = torch.zeros(2, 1, 4, 4)
    good = torch.eye(3, dtype=torch.float64)[:2].expand(2, 2, 3)
    bad = good.clone()
    bad[1, 0, 0] = float("nan")
    fill = torch.zeros(1, dtype=torch.float64)
    torch.ops.affine_aug.warp(x, bad, fill, 4, 4, "bilinear", "constant", -0.5, False)  # not asked: no check
    with pytest.raises(ValueError, match=r"matrix \(1,\) is singular or too ill-conditioned to invert, or not finite"):
        torch.ops.affine_aug.warp(x, bad, fill, 4, 4, "bilinear", "constant", -0.5, True)
    flat = good.clone()
    flat[0, 1, 1] = 1e-14
    with pytest.raises(ValueError, match=r"matrix \(0,\) is singular"):
        torch.ops.affine_aug.warp(x, flat, fill, 4, 4, "bilinear", "constant", -0.5, True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cubic_a="x"), r"cubic_a \(Keys' bicubic parameter\) must be a number in \[-1, 0\]"),
        (dict(cubic_a=float("inf")), r"cubic_a \(Keys' bicubic parameter\) must be a number in \[-1, 0\]"),
        (dict(fill=[1.0, float("nan"), 0.0]), r"fill must be finite"),
        (dict(fill=np.zeros((3, 1))), r"fill must be a number or 3 numbers \(one per channel\)"),
        (dict(matrices=np.full((2, 3), np.inf)), r"matrices contain non-finite values"),
        (dict(matrices=np.array([[1.0, 0, 0], [0, 1, 0], [0, 1, 1]])), r"matrices must be affine"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(images=torch.zeros(2, 3, 4, 4), matrices=np.eye(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        warp_affine(args.pop("images"), args.pop("matrices"), **args)


def test_cubic_a_is_keys_parameter():
    x = _images(torch.float64, (1, 2, 9, 9), seed=13)
    m = aa.affine_matrix((9, 9), rotate=20)
    ref = aa.warp._warp_dst_to_src(
        x.permute(0, 2, 3, 1).numpy(),
        aa.invert(m)[None],
        (9, 9),
        "bicubic",
        "edge",
        np.zeros(2),
        backend="numpy",
        cubic_a=-0.75,
    )
    out = warp_affine(x, m, interpolation="bicubic", border="edge", cubic_a=-0.75)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-12)


def test_torch_compile_fullgraph_warp_and_spatial_transformer():
    """fullgraph: the op's fake and autograd registrations trace (aot_eager: no code
    generation, so the test stays around ten seconds)."""
    torch._dynamo.reset()
    x = torch.rand(2, 3, 12, 13, requires_grad=True)
    m = torch.tensor(aa.affine_matrix((12, 13), rotate=[10.0, -20.0]), dtype=torch.float32, requires_grad=True)
    f = torch.compile(
        lambda a, b: warp_affine(a, b, border="reflect", antialias=True), fullgraph=True, backend="aot_eager"
    )
    y = f(x, m)
    (gx, gm) = torch.autograd.grad(y.square().sum(), (x, m))
    want = warp_affine(x, m, border="reflect", antialias=True)
    ex, em = torch.autograd.grad(want.square().sum(), (x, m))
    assert torch.equal(y, want) and torch.equal(gx, ex) and torch.allclose(gm, em, rtol=1e-6, atol=1e-6)
    bad = torch.zeros(2, 2, 3)
    with pytest.raises(ValueError, match=r"singular or too ill-conditioned"):
        f(x, bad)
    st = SpatialTransformer(3, family="rts")
    out = torch.compile(st, fullgraph=True, backend="aot_eager")(x)
    assert torch.equal(out, st(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_no_device_to_host_synchronisation_on_cuda():
    x = torch.rand(4, 3, 32, 32, device="cuda")
    m = aa.sample(CFG, np.arange(4), size=(32, 32)).matrices  # the sampler's matrices, on the host
    warp_affine(x, m)  # warm up (kernels compiled, memory cached)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for kw in (dict(), dict(interpolation="bicubic", border="reflect"), dict(antialias=True, fill=[0.1, 0.2, 0.3])):
            warp_affine(x, m, **kw)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_uint8_simd_blocks_equal_the_scalar_loop():
    """Contiguous uint8 planes take eight interior pixels at a time; a channels-last view
    (column stride 3) takes the scalar loop: the same integers."""
    x = _images(torch.uint8, (3, 3, 40, 45), seed=14)
    m = aa.sample(CFG, np.arange(3), size=(40, 45), seed=14).matrices
    for border in BORDERS:
        simd = warp_affine(x, m, border=border, fill=[9, 99, 200], out_size=(37, 50))
        scalar = warp_affine(
            x.contiguous(memory_format=torch.channels_last), m, border=border, fill=[9, 99, 200], out_size=(37, 50)
        )
        assert torch.equal(simd, scalar)
    shift = aa.affine_matrix((40, 45), translate=(3, -2))
    assert torch.equal(warp_affine(x, shift, border="wrap"), _shifted(x, 3, -2, "wrap", 0))
