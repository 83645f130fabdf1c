"""The Triton warp and prefilter (affine_aug.torch._triton_warp) against independent
references: exact pixel permutations (np.pad, np.rot90, np.flip), the numpy warper
(backend="numpy") and torch.autograd.gradcheck.

Without a GPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1, set while
this module runs); with one they are compiled and run on it. Sizes are tiny because
every program of the interpreter is Python.
"""

import importlib.util
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

CUDA = torch.cuda.is_available()
_ENVIRONMENT = os.environ.get("TRITON_INTERPRET")
if not CUDA and "triton" not in sys.modules:
    # read when triton's own library is decorated, so before triton is first imported
    os.environ["TRITON_INTERPRET"] = "1"

from affine_aug._checks import BORDERS, INTERPOLATIONS  # noqa: E402
from affine_aug.warp import _warp_dst_to_src, prefilter  # noqa: E402
from affine_aug.torch import _triton_warp as tw  # noqa: E402

# Without a GPU the kernels need the interpreter; when triton was imported before this
# module (by another test module, say), this whole file reruns in a fresh process.
RUN_HERE = CUDA or tw.interpreting()
DEVICE = "cuda" if CUDA else "cpu"
DTYPES = [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64]
NUMPY_PAD = {"constant": "constant", "edge": "edge", "reflect": "symmetric", "mirror": "reflect", "wrap": "wrap"}
CASES = list(itertools.product(BORDERS, INTERPOLATIONS))
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device")


@pytest.fixture(autouse=True, scope="module")
def restore_environment():
    """Later test modules see TRITON_INTERPRET as it was (the warp then is CUDA-only)."""
    yield
    if _ENVIRONMENT is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _ENVIRONMENT


@pytest.fixture(autouse=True)
def kernels_here(request):
    if not RUN_HERE and request.node.name != "test_in_a_fresh_interpreter_process":
        pytest.skip("triton was imported without its interpreter: see test_in_a_fresh_interpreter_process")


@pytest.mark.skipif(RUN_HERE, reason="the kernels run in this process")
def test_in_a_fresh_interpreter_process():
    env = dict(os.environ, TRITON_INTERPRET="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


def _images(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
    top = 255 if dtype == torch.uint8 else 65535
    return torch.randint(0, top + 1, shape, generator=g, dtype=torch.int64).to(dtype).to(DEVICE)


def _fill(dtype):
    return [3.0, 7.0, 11.0] if not dtype.is_floating_point else [0.25, 0.5, 2.0]


def _random_dst_to_src(n, seed=0):
    """Rotation, anisotropic scale, shear and translation: enough to reach every border."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, 2, 3))
    m[:, :, :2] = np.eye(2) + rng.normal(0.0, 0.45, (n, 2, 2))
    m[:, :, 2] = rng.normal(0.0, 3.0, (n, 2))
    return m


def _homogeneous(m):
    return np.concatenate([m, np.broadcast_to([[[0.0, 0.0, 1.0]]], (len(m), 1, 3))], axis=1)


def _numpy_reference(x, m, out_size, interpolation, border, fill):
    """The numpy warper (NHWC, dst_to_src (N, 3, 3)) on an NCHW tensor, back to NCHW."""
    img = x.permute(0, 2, 3, 1).cpu().numpy()
    out = _warp_dst_to_src(
        np.ascontiguousarray(img),
        _homogeneous(m),
        out_size,
        interpolation,
        border,
        np.asarray(fill, np.float64).astype(img.dtype),
        backend="numpy",
    )
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def _padded_lookup(img, m, out_size, border, fill):
    """Integer matrices: each output pixel is one source pixel, looked up in ``np.pad``."""
    n, c, h, w = img.shape
    pad = 4
    out = np.empty((n, c) + tuple(out_size), img.dtype)
    ys, xs = np.mgrid[0 : out_size[0], 0 : out_size[1]]
    for i in range(n):
        sx = (m[i, 0, 0] * xs + m[i, 0, 1] * ys + m[i, 0, 2]).astype(int) + pad
        sy = (m[i, 1, 0] * xs + m[i, 1, 1] * ys + m[i, 1, 2]).astype(int) + pad
        for ch in range(c):
            extra = {"constant_values": fill[ch]} if border == "constant" else {}
            out[i, ch] = np.pad(img[i, ch], pad, mode=NUMPY_PAD[border], **extra)[sy, sx]
    return out


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{b}-{i}" for b, i in CASES])
def test_exact_cases(case):
    """Identity, integer shifts, flips and 90/180/270-degree turns move whole pixels,
    for every interpolation, border and (cycled) dtype."""
    border, interpolation = CASES[case]
    dtype = DTYPES[case % len(DTYPES)]
    h, w = 5, 7
    same = np.array(
        [
            [[1, 0, 0], [0, 1, 0]],
            [[1, 0, 2], [0, 1, -1]],
            [[1, 0, -3], [0, 1, 2]],
            [[-1, 0, w - 1], [0, -1, h - 1]],
            [[-1, 0, w - 1], [0, 1, 0]],
            [[1, 0, 0], [0, -1, h - 1]],
        ],
        dtype=np.float64,
    )
    x = _images((len(same), 3, h, w), dtype, seed=case)
    y = tw.warp_forward(x, torch.from_numpy(same).to(DEVICE), (h, w), interpolation, border, _fill(dtype))
    img = x.cpu().to(torch.float64).numpy()
    expected = _padded_lookup(img, same, (h, w), border, _fill(dtype))
    assert y.dtype == dtype
    assert np.array_equal(y.cpu().to(torch.float64).numpy(), expected)
    assert np.array_equal(expected[0], img[0]) and np.array_equal(expected[3], img[3, :, ::-1, ::-1])
    turns = torch.tensor([[[0, -1, w - 1], [1, 0, 0]], [[0, 1, 0], [-1, 0, h - 1]]], dtype=torch.float64)
    y = tw.warp_forward(x[:2], turns.to(DEVICE), (w, h), interpolation, border, _fill(dtype)).cpu()
    assert torch.equal(y[0], torch.rot90(x[0].cpu(), 1, dims=(1, 2)))
    assert torch.equal(y[1], torch.rot90(x[1].cpu(), 3, dims=(1, 2)))


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{b}-{i}" for b, i in CASES])
def test_matches_numpy_reference(case):
    """Random affine maps, another output size, per-channel fill: float32 within 1e-5,
    integers within one level, float64 within 1e-12 of the numpy warper."""
    border, interpolation = CASES[case]
    m = _random_dst_to_src(2, seed=case)
    for dtype, tol in ((torch.float32, 1e-5), ([torch.uint8, torch.uint16, torch.float64][case % 3], None)):
        tol = tol if tol is not None else (1e-12 if dtype == torch.float64 else 1)
        x = _images((2, 3, 5, 7), dtype, seed=case)
        y = tw.warp_forward(x, torch.from_numpy(m).to(DEVICE), (6, 4), interpolation, border, _fill(dtype))
        ref = _numpy_reference(x, m, (6, 4), interpolation, border, _fill(dtype))
        assert y.dtype == dtype and y.shape == (2, 3, 6, 4)
        diff = (y.cpu().to(torch.float64) - ref.to(torch.float64)).abs().max().item()
        assert diff <= tol, (dtype, diff)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_half_types_round_the_float32_result(interpolation):
    """float16 and bfloat16 are sampled in float32: the result is the float32 warp of
    the same values, rounded once. The prefilter likewise."""
    m = torch.from_numpy(_random_dst_to_src(2, seed=7)).to(DEVICE)
    sigmas = torch.tensor([[0.8, 0.0], [0.4, 1.1]], device=DEVICE)
    for dtype in (torch.float16, torch.bfloat16):
        x = _images((2, 3, 5, 7), dtype, seed=3)
        y = tw.warp_forward(x, m, (4, 6), interpolation, "reflect", [0.25, 0.5, 2.0])
        ref = tw.warp_forward(x.float(), m, (4, 6), interpolation, "reflect", [0.25, 0.5, 2.0]).to(dtype)
        assert y.dtype == dtype and torch.equal(y, ref)
        if interpolation == "bilinear":
            blurred = tw.blur_forward(x, sigmas, "edge")
            assert blurred.dtype == dtype and torch.equal(blurred, tw.blur_forward(x.float(), sigmas, "edge").to(dtype))


class _Warp(torch.autograd.Function):
    """warp_forward / warp_backward as an autograd function, for gradcheck."""

    @staticmethod
    def forward(ctx, x, m, out_size, interpolation, border, fill):
        ctx.save_for_backward(x, m)
        ctx.settings = (out_size, interpolation, border, fill)
        return tw.warp_forward(x, m, out_size, interpolation, border, fill)

    @staticmethod
    def backward(ctx, grad):
        x, m = ctx.saved_tensors
        gx, gm = tw.warp_backward(grad, x, m, *ctx.settings, -0.5, *ctx.needs_input_grad[:2])
        return gx, gm, None, None, None, None


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{b}-{i}" for b, i in CASES])
def test_gradcheck(case):
    """float64 gradients with respect to the images and the matrix, every border;
    nearest with respect to the images only (it is piecewise constant in the matrix)."""
    border, interpolation = CASES[case]
    x = _images((1, 2, 4, 5), torch.float64, seed=case).requires_grad_()
    m = torch.from_numpy(_random_dst_to_src(1, seed=case)).to(DEVICE)
    m.requires_grad_(interpolation != "nearest")
    fill = [0.3, -0.7]
    assert torch.autograd.gradcheck(
        lambda a, b: _Warp.apply(a, b, (3, 4), interpolation, border, fill), (x, m), fast_mode=True
    )


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_grad_images_is_the_exact_transpose(interpolation):
    """<warp(x), g> == <x, warp_backward(g)> in float64, float32 gradients close to them;
    the gradient of a 3 x 3 matrix has a zero bottom row, nearest's is zero."""
    x = _images((2, 3, 5, 7), torch.float64, seed=1)
    m = torch.from_numpy(_homogeneous(_random_dst_to_src(2, seed=4))).to(DEVICE)
    g = _images((2, 3, 6, 4), torch.float64, seed=2) - 0.5
    y = tw.warp_forward(x, m, (6, 4), interpolation, "wrap", 0)
    gx, gm = tw.warp_backward(g, x, m, (6, 4), interpolation, "wrap", 0)
    assert torch.allclose((y * g).sum(), (x * gx).sum(), rtol=1e-12, atol=0)
    assert gm.shape == (2, 3, 3) and not gm[:, 2].any()
    assert gm.abs().sum() == 0 if interpolation == "nearest" else gm.abs().sum() > 0
    gx32, _ = tw.warp_backward(g.float(), x.float(), m, (6, 4), interpolation, "wrap", 0, needs_m=False)
    assert gx32.dtype == torch.float32 and torch.allclose(gx32.double(), gx, atol=1e-5)


def test_channel_loop_matches_channel_groups(monkeypatch):
    """The compiled kernels walk the channels one at a time: that path gives the same
    values and gradients as the groups the interpreter uses."""
    x = _images((2, 3, 5, 7), torch.float64, seed=5)
    m = torch.from_numpy(_random_dst_to_src(2, seed=5)).to(DEVICE)
    g = _images((2, 3, 4, 6), torch.float64, seed=6)
    sig = torch.tensor([[0.9, 0.3], [0.0, 1.4]], device=DEVICE)
    results = []
    for channels in (16, 1):
        monkeypatch.setattr(tw, "_INTERPRETED_CHANNELS", channels)
        monkeypatch.setattr(tw, "_CHANNELS", channels)
        results.append(
            [
                tw.warp_forward(x, m, (4, 6), "bicubic", "mirror", [1, 2, 3]),
                *tw.warp_backward(g, x, m, (4, 6), "bicubic", "mirror", [1, 2, 3]),
                tw.blur_forward(x, sig, "constant", [1, 2, 3]),
                tw.blur_backward(x, sig, "reflect"),
            ]
        )
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("border", BORDERS)
def test_blur_matches_reference_prefilter(border):
    """Per-image sigmas (one axis left alone), per-channel fill, the reference's sums."""
    sig = np.array([[0.8, 0.0], [1.7, 0.6]])
    dtype = [torch.float32, torch.uint8, torch.uint16, torch.float64, torch.float32][BORDERS.index(border)]
    x = _images((2, 3, 5, 7), dtype, seed=11)
    y = tw.blur_forward(x, torch.from_numpy(sig).to(DEVICE), border, _fill(dtype))
    img = np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy())
    ref = prefilter(img, sig, border, np.asarray(_fill(dtype)).astype(img.dtype), backend="numpy")
    assert y.dtype == dtype
    diff = np.abs(y.permute(0, 2, 3, 1).cpu().to(torch.float64).numpy() - ref.astype(np.float64)).max()
    assert diff <= (1e-6 if dtype.is_floating_point else 0), diff


def test_blur_without_sigmas_is_the_identity_and_large_sigmas_are_bounded():
    x = _images((2, 3, 5, 7), torch.float32, seed=12)
    assert torch.equal(tw.blur_forward(x, torch.zeros(2, 2), "wrap"), x)
    wide = tw.blur_forward(x, torch.tensor([[float("nan"), 1e9], [float("inf"), 0.0]]), "reflect")
    ref = prefilter(
        np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy()),
        np.array([[np.nan, 1e9], [np.inf, 0.0]]),
        "reflect",
        np.zeros(3, np.float32),
        backend="numpy",
    )
    assert np.abs(wide.permute(0, 2, 3, 1).cpu().numpy() - ref).max() <= 1e-6


@pytest.mark.parametrize("border", BORDERS)
def test_blur_backward(border):
    """gradcheck in float64, and the exact adjoint in float32."""
    sig = torch.tensor([[0.9, 0.5]], dtype=torch.float64, device=DEVICE)

    class Blur(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            return tw.blur_forward(v, sig, border, [0.3, 0.6])

        @staticmethod
        def backward(ctx, grad):
            return tw.blur_backward(grad, sig, border)

    x = _images((1, 2, 4, 5), torch.float64, seed=13).requires_grad_()
    assert torch.autograd.gradcheck(Blur.apply, (x,), fast_mode=True)
    x32 = _images((1, 2, 4, 5), torch.float32, seed=14)
    g = _images((1, 2, 4, 5), torch.float32, seed=15)
    zero = tw.blur_forward(x32, sig, border)
    assert torch.allclose((zero * g).sum(), (x32 * tw.blur_backward(g, sig, border)).sum(), rtol=1e-5)


def test_errors_name_what_was_wrong():
    x = _images((1, 3, 5, 7), torch.float32)
    m = torch.zeros(1, 2, 3, device=DEVICE)
    with pytest.raises(ValueError, match=r"x must be an \(N, C, H, W\) tensor, got \(3, 5, 7\)"):
        tw.warp_forward(x[0], m, (5, 7))
    with pytest.raises(ValueError, match="x dtype must be one of uint8, uint16, .* got torch.int32"):
        tw.warp_forward(x.to(torch.int32), m, (5, 7))
    with pytest.raises(ValueError, match=r"dst_to_src must have shape \(1, 2, 3\) or \(1, 3, 3\), got \(2, 2, 3\)"):
        tw.warp_forward(x, torch.zeros(2, 2, 3), (5, 7))
    with pytest.raises(ValueError, match="unknown border 'reflekt' \\(did you mean 'reflect'\\?\\)"):
        tw.warp_forward(x, m, (5, 7), border="reflekt")
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        tw.warp_forward(x, m, (5, 7), interpolation="cubic")
    with pytest.raises(ValueError, match=r"fill must be a number or 3 numbers \(one per channel\), got shape \(2,\)"):
        tw.warp_forward(x, m, (5, 7), fill=[1, 2])
    with pytest.raises(ValueError, match=r"out_size must be two positive integers, got \(0, 7\)"):
        tw.warp_forward(x, m, (0, 7))
    with pytest.raises(ValueError, match="gradients need floating point images, got torch.uint8"):
        tw.warp_backward(x.to(torch.uint8), x.to(torch.uint8), m, (5, 7))
    with pytest.raises(ValueError, match=r"grad_y must have shape \(1, 3, 4, 4\), got \(1, 3, 5, 7\)"):
        tw.warp_backward(x, x, m, (4, 4))
    with pytest.raises(ValueError, match=r"sigmas must have shape \(1, 2\), got \(2,\)"):
        tw.blur_forward(x, torch.zeros(2), "edge")
    with pytest.raises(ValueError, match="grad must be a floating point tensor, got torch.uint8"):
        tw.blur_backward(x.to(torch.uint8), torch.zeros(1, 2), "edge")


def test_empty_batch_and_availability():
    assert tw.available()
    y = tw.warp_forward(_images((0, 3, 5, 7), torch.uint8), torch.zeros(0, 2, 3, device=DEVICE), (2, 3))
    assert y.shape == (0, 3, 2, 3) and y.dtype == torch.uint8


def test_the_kernels_are_imported_only_when_used():
    code = (
        "import sys, affine_aug.torch._triton_warp as t; "
        "assert 'affine_aug.torch._triton_kernels' not in sys.modules; t.available(); "
        "assert 'affine_aug.torch._triton_kernels' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.skipif(CUDA, reason="on a GPU the other tests compile and run the kernels")
@pytest.mark.skipif(importlib.util.find_spec("triton.backends.nvidia") is None, reason="no CUDA backend in triton")
def test_kernels_compile_for_a_gpu(tmp_path):
    """What the interpreter does not check: every kernel through Triton's compiler to an
    sm_90 cubin (a fresh process without TRITON_INTERPRET, a private cache)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "affine_aug.torch._triton_compile"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("compiled ") == 11


@needs_cuda
def test_cuda_calls_never_synchronise():
    x = _images((2, 3, 16, 16), torch.float32).requires_grad_()
    m = torch.from_numpy(_random_dst_to_src(2)).float().cuda()
    fill = torch.tensor([0.1, 0.2, 0.3], device="cuda")
    sig = torch.tensor([[0.7, 0.0], [1.2, 0.4]], device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for interpolation in INTERPOLATIONS:
            y = tw.warp_forward(x, m, (12, 20), interpolation, "constant", fill)
            tw.warp_backward(torch.ones_like(y), x, m, (12, 20), interpolation, "constant", fill)
        blurred = tw.blur_forward(x.detach().to(torch.uint8), sig, "reflect", fill)
        tw.blur_backward(torch.ones_like(x), sig, "reflect")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert blurred.dtype == torch.uint8


@needs_cuda
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_cuda_matches_the_cpu_reference(interpolation):
    """A larger float32 batch on the GPU against the numpy warper on the CPU (1e-5), and
    float32 gradients on the GPU against float64 ones."""
    m = _random_dst_to_src(4, seed=21) * np.array([1.0, 1.0, 6.0])
    x = _images((4, 3, 37, 53), torch.float32, seed=21)
    y = tw.warp_forward(x, torch.from_numpy(m).cuda(), (41, 29), interpolation, "mirror", [0.1, 0.2, 0.3])
    ref = _numpy_reference(x, m, (41, 29), interpolation, "mirror", [0.1, 0.2, 0.3])
    assert (y.cpu() - ref).abs().max().item() <= 1e-5
    g = torch.rand_like(y)
    mt = torch.from_numpy(m).float().cuda()
    gx, gm = tw.warp_backward(g, x, mt, (41, 29), interpolation, "mirror", [0.1, 0.2, 0.3])
    gx64, gm64 = tw.warp_backward(
        g.double(), x.double(), mt.double(), (41, 29), interpolation, "mirror", [0.1, 0.2, 0.3]
    )
    assert torch.allclose(gx.double(), gx64, atol=1e-4)
    assert torch.allclose(gm.double(), gm64, rtol=1e-3, atol=1e-2)
