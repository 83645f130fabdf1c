"""Torch warper: the numpy warper's contract on ``(N, C, H, W)`` tensors, CPU and CUDA.

Convention (as everywhere in affine_aug): forward matrices map source pixel ``(x, y)``
to destination pixel, pixel centres on integer coordinates; the warper inverts them
(a differentiable torch op on the small ``(N, 3, 3)`` tensor) and samples with the
inverse, ``dst_to_src``.

The sampling is one torch custom op, ``torch.ops.affine_aug.warp`` (and
``affine_aug.blur`` for the antialias prefilter), with a fake implementation and an
autograd formula, so ``torch.compile(fullgraph=True)`` traces through it. Behind it:
    CPU   the planar C kernel (``csrc/planes.c``; its backward in ``csrc/backward.c``):
          ``(N, C, H, W)`` read in place through the strides, every dtype
    CUDA  the fused Triton kernel where Triton is usable, else the gather path below
          (bilinear weights from the unclamped coordinates, the border mode maps the
          neighbour indices: the numpy reference's algorithm written with ``torch.gather``)
Differentiable with respect to float images and to the matrices (the sampler of a
spatial transformer). Integer images are rounded half up and clipped.

Host synchronisation: matrices given on the CPU (numpy arrays, the sampler's) are
checked there and shipped to the device once, without a sync; matrices already on a
CUDA device are checked in one reduction per call (one sync). Under ``torch.compile``
the checks of finiteness and conditioning run inside the op, on the inverses.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import matrix as _matrix
from .._checks import BORDERS, INTERPOLATIONS, check_choice, check_cubic_a, check_size
from ..matrix import _MAX_CONDITION
from ..reference import CUBIC_A
from ..warp import _bound_sigmas, cubic_weights, prefilter_sigma
from . import _cpu

try:  # the CUDA kernels (Triton); absent or unusable: the gather path
    from . import _triton_warp
except ImportError:  # pragma: no cover - depends on the installation
    _triton_warp = None

__all__ = ["as_matrix_tensor", "invert", "warp_affine"]

_COORD_LIMIT = float(2**30)
_WIDE = (torch.int32, torch.int64, torch.uint32, torch.uint64)  # values beyond float32's 24 bits


# ----------------------------------------------------------------------------- checks


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def _check_values_host(m: np.ndarray) -> None:
    """Value checks of forward matrices ``(N, 3, 3)`` / ``(N, 2, 3)`` float64 on the host,
    with the numpy API's messages."""
    if not np.all(np.isfinite(m)):
        raise ValueError("matrices contain non-finite values")
    if m.shape[-2] == 3 and not np.all(m[..., 2, :] == [0.0, 0.0, 1.0]):
        raise ValueError("matrices must be affine: the bottom row of a 3x3 matrix must be [0, 0, 1]")
    if m.size:
        _matrix.invert(m.reshape(-1, m.shape[-2], 3))  # conditioning and a finite inverse, naming the matrix


def _conditions(lin: torch.Tensor) -> torch.Tensor:
    """Condition numbers of ``(N, 2, 2)`` float64 matrices, in closed form (inf for singular)."""
    lin = lin / lin.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(torch.float64).tiny)[:, None, None]
    a, b, c, d = lin[:, 0, 0], lin[:, 0, 1], lin[:, 1, 0], lin[:, 1, 1]
    q = torch.hypot((a + d) / 2, (c - b) / 2)
    r = torch.hypot((a - d) / 2, (c + b) / 2)
    return (q + r) / (q - r).abs()


def _check_values(m: torch.Tensor) -> None:
    """Value checks of forward matrices: on the host for CPU tensors; on a device in one
    reduction (one synchronisation), the message then computed on a host copy. Skipped
    while compiling (the op checks the inverses then)."""
    if _compiling():
        return
    if m.device.type == "cpu":
        _check_values_host(m.detach().double().numpy())
        return
    d = m.detach().double()
    bad = ~torch.isfinite(d).all()
    if d.shape[-2] == 3:
        bad = bad | (d[..., 2, :] != torch.tensor([0.0, 0.0, 1.0], dtype=d.dtype, device=d.device)).any()
    lin = d[..., :2, :2].reshape(-1, 2, 2)
    if lin.shape[0]:
        bad = bad | ~(_conditions(torch.nan_to_num(lin)) <= _MAX_CONDITION).all()
    if bool(bad):  # the one synchronisation
        _check_values_host(d.cpu().numpy())


def _check_inverses(dst_to_src: torch.Tensor) -> None:
    """Inside the op (under torch.compile): inverses that are finite and well conditioned
    (the condition number of a matrix and of its inverse are the same)."""
    d = dst_to_src.detach().double()
    ok = torch.isfinite(d).all(dim=(1, 2)) & (_conditions(torch.nan_to_num(d[:, :2, :2])) <= _MAX_CONDITION)
    if not bool(ok.all()):
        i = int(torch.nonzero(~ok)[0, 0])
        raise ValueError(
            f"matrix ({i},) is singular or too ill-conditioned to invert, or not finite (condition number "
            f"limit {_MAX_CONDITION:.0e})"
        )


def _ship(t: torch.Tensor, device) -> torch.Tensor:
    """A CPU tensor on ``device``: through pinned memory without a synchronisation on CUDA."""
    device = torch.device(device)
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu" and not t.requires_grad:
        # compiled: no pinning in the graph; a non-blocking copy from pageable memory is staged by the driver
        return t.to(device, non_blocking=True) if _compiling() else t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def as_matrix_tensor(matrices, n: int | None, dtype: torch.dtype, device) -> torch.Tensor:
    """Matrices (tensor or array; (N,3,3), (N,2,3), (3,3) or (2,3)) → ``(n, 3, 3)`` tensor,
    checked (finite, affine, invertible) where they are: a host copy is never made of
    device matrices unless a check fails."""
    m = matrices if isinstance(matrices, torch.Tensor) else torch.as_tensor(np.asarray(matrices, dtype=np.float64))
    if not (m.is_floating_point() or m.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"matrices must be numeric, got {m.dtype}")
    if m.ndim not in (2, 3) or m.shape[-1] != 3 or m.shape[-2] not in (2, 3):
        raise ValueError(f"matrices must have shape (N, 3, 3), (N, 2, 3), (3, 3) or (2, 3), got {tuple(m.shape)}")
    if m.ndim == 3 and n is not None and m.shape[0] != n:
        raise ValueError(f"got {m.shape[0]} matrices for {n} images; give one matrix per image or a single matrix")
    _check_values(m)
    m = m.to(dtype=dtype)
    if m.shape[-2] == 2:
        bottom = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=m.device).expand(m.shape[:-2] + (1, 3))
        m = torch.cat([m, bottom], dim=-2)
    if m.ndim == 2:
        m = m.expand(n if n is not None else 1, 3, 3)
    return m if device is None else _ship(m, device)


def invert(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of affine ``(N, 3, 3)`` matrices (differentiable).

    The same rule as the numpy ``affine_aug.invert``: a matrix whose linear part has a
    condition number above ``matrix._MAX_CONDITION`` (1e12) is refused, naming its index.
    """
    _check_values(m)
    return _invert(m)


def _invert(m: torch.Tensor) -> torch.Tensor:
    a, b, tx = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    c, d, ty = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [
        torch.stack([ia, ib, -(ia * tx + ib * ty)], -1),
        torch.stack([ic, id_, -(ic * tx + id_ * ty)], -1),
        torch.stack([zero, zero, one], -1),
    ]
    return torch.stack(rows, dim=1)


def _check_fill(fill, c: int, dtype: torch.dtype) -> torch.Tensor:
    """``fill`` (a number, or one per channel) → ``(C,)`` float64 CPU tensor, checked in
    plain Python (constants under torch.compile)."""
    if isinstance(fill, torch.Tensor):
        values = fill.detach().cpu().double().reshape(-1).tolist() if fill.ndim <= 1 else None
    elif isinstance(fill, (bool, int, float, np.number, np.bool_)):
        values = [float(fill)]
    else:
        try:
            values = [float(v) for v in (fill.tolist() if isinstance(fill, np.ndarray) else fill)]
        except (TypeError, ValueError):
            values = None
        if isinstance(fill, np.ndarray) and fill.ndim > 1:
            values = None
    if values is None or len(values) not in (1, c):
        raise ValueError(f"fill must be a number or {c} numbers (one per channel), got {fill!r}")
    values = values * c if len(values) == 1 else values
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"fill must be finite, got {fill!r}")
    if not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool):
        info = torch.iinfo(dtype)
        if any(v != round(v) or v < info.min or v > info.max for v in values):
            dtype_name = str(dtype).removeprefix("torch.")  # the same words as the numpy warper's message
            raise ValueError(f"fill {fill!r} is not an integer in [{info.min}, {info.max}] as {dtype_name} images need")
    return torch.tensor(values, dtype=torch.float64)


# ----------------------------------------------------------------------------- the entry point


def warp_affine(
    images: torch.Tensor,
    matrices,
    *,
    out_size=None,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill=0,
    antialias: bool = False,
    cubic_a: float = CUBIC_A,
) -> torch.Tensor:
    """Warp ``(N, C, H, W)`` (or ``(C, H, W)``) tensors, each with its own forward matrix.

    Same contract as :func:`affine_aug.warp_affine` (see it for border modes): matrices
    ``(N, 3, 3)`` / ``(N, 2, 3)`` or one for all, forward, pixel centres on integers;
    ``out_size`` ``(H_out, W_out)``; ``fill`` a scalar or one value per channel.
    Float images: differentiable w.r.t. images and matrices (float matrices given as
    tensors). Integer images (any integer dtype; float64 arithmetic) are rounded half up
    and clipped to the dtype's range; nearest copies elements of any dtype unchanged.
    ``interpolation``: ``"bilinear"``, ``"nearest"`` or ``"bicubic"`` (Keys, parameter
    ``cubic_a``: -0.5 as the numpy warper and PIL, -0.75 as OpenCV and torch).
    ``antialias``: prefilter the axes a matrix shrinks, as :func:`affine_aug.warp_affine`
    does (differentiable w.r.t. the images; the blur widths do not carry gradients).
    Returns a new contiguous tensor of the input's dtype on the input's device.
    """
    x, single = _check_images(images, interpolation, antialias)
    n, c, h, w = x.shape
    border = check_choice(border, BORDERS, "border")
    ho, wo = (h, w) if out_size is None else check_size(out_size, "out_size")
    cubic_a = check_cubic_a(cubic_a)
    m = as_matrix_tensor(matrices, n, torch.float64, None if isinstance(matrices, torch.Tensor) else "cpu")
    fill64 = _check_fill(fill, c, x.dtype)
    if n == 0:
        y = x.new_empty((0, c, ho, wo))
        return y[0] if single else y
    inv = _ship(_invert(m)[:, :2], x.device)  # on the matrices' device, then shipped once
    fill_dev = _ship(fill64, x.device)
    if antialias:
        x = _antialias(x, m, border, fill_dev)
    y = torch.ops.affine_aug.warp(x, inv, fill_dev, ho, wo, interpolation, border, float(cubic_a), _compiling())
    return y[0] if single else y


def _check_images(images, interpolation: str, antialias) -> tuple[torch.Tensor, bool]:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    check_choice(interpolation, INTERPOLATIONS, "interpolation")
    if (images.dtype == torch.bool or images.dtype.is_complex) and interpolation != "nearest":
        raise ValueError(
            "images dtype must be an integer or floating point type "
            f"for {interpolation} interpolation, got {images.dtype}"
        )
    if not isinstance(antialias, (bool, np.bool_)):
        raise ValueError(f"antialias must be True or False, got {antialias!r}")
    x = images[None] if images.ndim == 3 else images
    if 0 in x.shape[1:]:
        raise ValueError(f"images must have non-empty C, H and W, got shape {tuple(images.shape)}")
    return x, images.ndim == 3


def _antialias(x: torch.Tensor, m: torch.Tensor, border: str, fill: torch.Tensor) -> torch.Tensor:
    """The prefilter of the axes each forward matrix ``m`` shrinks (no gradient through the
    widths); the sigmas are computed where the matrices are and shipped once."""
    h, w = x.shape[-2:]
    if m.device.type == "cpu" and not _compiling():
        sig = torch.from_numpy(_bound_sigmas(prefilter_sigma(m.detach().numpy()), (w, h)))
        if not bool((sig > 0).any()):
            return x
        sig = _ship(sig, x.device)
    else:  # the same rule in torch ops (warp.prefilter_sigma, warp._bound_sigmas)
        s = torch.linalg.vector_norm(m.detach()[:, :2, :2], dim=-2)  # how far a unit step of each axis moves
        sig = torch.nan_to_num(((1.0 / s - 1.0) / 2.0).clamp_min(0.0), nan=0.0, posinf=0.0)
        sig = torch.minimum(sig, torch.tensor([4.0 * w, 4.0 * h], dtype=sig.dtype, device=sig.device)).to(x.device)
    return torch.ops.affine_aug.blur(x, sig, fill, border)


# ----------------------------------------------------------------------------- the custom ops


@torch.library.custom_op("affine_aug::warp", mutates_args=())
def _warp_op(
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    fill: torch.Tensor,
    out_h: int,
    out_w: int,
    interpolation: str,
    border: str,
    cubic_a: float,
    check: bool,
) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, C, out_h, out_w)``: output pixel ``(x, y)`` samples the
    source at ``dst_to_src (x, y, 1)`` (``(N, 2, 3)``); ``fill`` ``(C,)`` float64 on the
    images' device. ``check``: check the inverses' values first (under torch.compile)."""
    if check:
        _check_inverses(dst_to_src)
    if x.device.type == "cpu" and _cpu.available():
        return _warp_cpu(x, dst_to_src, (out_h, out_w), interpolation, border, fill, cubic_a)
    if _triton_usable(x):
        return _triton_warp.warp_forward(x, dst_to_src, (out_h, out_w), interpolation, border, fill, cubic_a)
    return _warp_gather(x, dst_to_src, (out_h, out_w), interpolation, border, fill, cubic_a)


@_warp_op.register_fake
def _warp_fake(x, dst_to_src, fill, out_h, out_w, interpolation, border, cubic_a, check):
    return x.new_empty((x.shape[0], x.shape[1], out_h, out_w))


@torch.library.custom_op("affine_aug::warp_backward", mutates_args=())
def _warp_backward_op(
    grad: torch.Tensor,
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    fill: torch.Tensor,
    interpolation: str,
    border: str,
    cubic_a: float,
    needs_x: bool,
    needs_m: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of :func:`_warp_op` with respect to ``x`` and ``dst_to_src`` (empty
    tensors for those not asked for)."""
    if x.device.type == "cpu" and _cpu.available():
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        gx, gm = _cpu.warp_backward(grad, work, dst_to_src, interpolation, border, fill, cubic_a, needs_x, needs_m)
    elif _triton_usable(x):
        gx, gm = _triton_warp.warp_backward(
            grad, x, dst_to_src, tuple(grad.shape[-2:]), interpolation, border, fill, cubic_a, needs_x, needs_m
        )
    else:
        gx, gm = _gather_backward(grad, x, dst_to_src, interpolation, border, fill, cubic_a, needs_x, needs_m)
    gx = x.new_empty(0) if gx is None else gx.to(x.dtype)
    gm = dst_to_src.new_empty(0) if gm is None else gm.to(device=dst_to_src.device, dtype=dst_to_src.dtype)
    return gx, gm


@_warp_backward_op.register_fake
def _warp_backward_fake(grad, x, dst_to_src, fill, interpolation, border, cubic_a, needs_x, needs_m):
    return (
        x.new_empty(x.shape) if needs_x else x.new_empty(0),
        dst_to_src.new_empty(dst_to_src.shape) if needs_m else dst_to_src.new_empty(0),
    )


def _warp_setup(ctx, inputs, output):
    x, dst_to_src, fill, _, _, interpolation, border, cubic_a, _ = inputs
    ctx.save_for_backward(x, dst_to_src, fill)
    ctx.settings = (interpolation, border, cubic_a)


def _warp_grad(ctx, grad):
    x, dst_to_src, fill = ctx.saved_tensors
    needs_x, needs_m = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    gx = gm = None
    if needs_x or needs_m:
        gx, gm = torch.ops.affine_aug.warp_backward(grad, x, dst_to_src, fill, *ctx.settings, needs_x, needs_m)
    return gx if needs_x else None, gm if needs_m else None, None, None, None, None, None, None, None


_warp_op.register_autograd(_warp_grad, setup_context=_warp_setup)


@torch.library.custom_op("affine_aug::blur", mutates_args=())
def _blur_op(x: torch.Tensor, sigmas: torch.Tensor, fill: torch.Tensor, border: str) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` blurred by a Gaussian of its own ``(sigma_x, sigma_y)``
    (``(N, 2)`` source pixels, bounded; 0 leaves an axis alone), samples outside following
    ``border`` (``fill`` ``(C,)`` for constant); integers rounded half up."""
    if x.device.type == "cpu" and _cpu.available():
        if x.dtype in _cpu.BLUR_DTYPES:
            return _cpu.blur(x, sigmas, border, fill)
        if x.is_floating_point():
            return _cpu.blur(x.float(), sigmas, border, fill).to(x.dtype)
        return _round_to(_cpu.blur(x.double(), sigmas, border, fill), x.dtype)
    if _triton_usable(x):
        return _triton_warp.blur_forward(x, sigmas, border, fill)
    return _blur_gather(x, sigmas, border, fill)


@_blur_op.register_fake
def _blur_fake(x, sigmas, fill, border):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("affine_aug::blur_backward", mutates_args=())
def _blur_backward_op(grad: torch.Tensor, sigmas: torch.Tensor, border: str) -> torch.Tensor:
    """The transpose of :func:`_blur_op` (fill gets no gradient)."""
    if grad.device.type == "cpu" and _cpu.available():
        work = grad if grad.dtype in (torch.float32, torch.float64) else grad.float()
        return _cpu.blur_backward(work, sigmas, border).to(grad.dtype)
    if _triton_usable(grad):
        return _triton_warp.blur_backward(grad, sigmas, border)
    with torch.enable_grad():
        probe = torch.zeros_like(grad, requires_grad=True)
        out = _blur_gather(probe, sigmas, border, torch.zeros(grad.shape[1], dtype=torch.float64, device=grad.device))
        return torch.autograd.grad(out, probe, grad)[0]


@_blur_backward_op.register_fake
def _blur_backward_fake(grad, sigmas, border):
    return torch.empty_like(grad, memory_format=torch.contiguous_format)


def _blur_setup(ctx, inputs, output):
    _, sigmas, _, border = inputs
    ctx.save_for_backward(sigmas)
    ctx.border = border


def _blur_grad(ctx, grad):
    (sigmas,) = ctx.saved_tensors
    gx = torch.ops.affine_aug.blur_backward(grad, sigmas, ctx.border) if ctx.needs_input_grad[0] else None
    return gx, None, None, None


_blur_op.register_autograd(_blur_grad, setup_context=_blur_setup)


# ----------------------------------------------------------------------------- backends


def _triton_usable(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cuda"
        and _triton_warp is not None
        and x.dtype in _triton_warp.DTYPES
        and _triton_warp.available()
    )  # other dtypes: the gather path


def _round_to(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float values as an integer dtype: rounded half up, clipped to its range."""
    info = torch.iinfo(dtype)
    return torch.floor(y + 0.5).clamp_(info.min, info.max).to(dtype)


def _warp_cpu(x, dst_to_src, out_size, interpolation, border, fill, cubic_a):
    """The planar C kernel; dtypes it lacks through float32 (half types) or float64."""
    if interpolation == "nearest" or x.dtype in _cpu.DTYPES:
        return _cpu.warp(x, dst_to_src, out_size, interpolation, border, fill, cubic_a)
    if x.is_floating_point():
        return _cpu.warp(x.float(), dst_to_src, out_size, interpolation, border, fill, cubic_a).to(x.dtype)
    return _round_to(_cpu.warp(x.double(), dst_to_src, out_size, interpolation, border, fill, cubic_a), x.dtype)


def _warp_gather(x, dst_to_src, out_size, interpolation, border, fill, cubic_a):
    """The gather path (any device): float32 arithmetic for float32, 8/16-bit integer and
    half images, float64 for float64 and 32/64-bit integers."""
    if interpolation == "nearest":  # a pure gather: any dtype, values copied unchanged
        return _sample(x, dst_to_src.to(torch.float64), out_size, interpolation, border, fill.to(x.dtype), cubic_a)
    work = torch.float64 if x.dtype in (torch.float64,) + _WIDE else torch.float32
    y = _sample(x.to(work), dst_to_src.to(work), out_size, interpolation, border, fill.to(work), cubic_a)
    return y.to(x.dtype) if x.is_floating_point() else _round_to(y, x.dtype)


def _gather_backward(grad, x, dst_to_src, interpolation, border, fill, cubic_a, needs_x, needs_m):
    """Gradients of the gather path, by autograd through a recomputation."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(needs_x)
        mr = dst_to_src.detach().requires_grad_(needs_m)
        y = _warp_gather(xr, mr, tuple(grad.shape[-2:]), interpolation, border, fill, cubic_a)
        wanted = [t for t, need in ((xr, needs_x), (mr, needs_m)) if need]
        grads = (
            list(torch.autograd.grad(y, wanted, grad, allow_unused=True)) if y.requires_grad else [None] * len(wanted)
        )
    gx = grads.pop(0) if needs_x else None
    gm = grads.pop(0) if needs_m else None
    if needs_x and gx is None:
        gx = torch.zeros_like(x)
    if needs_m and gm is None:
        gm = torch.zeros_like(dst_to_src)
    return gx, gm


# ----------------------------------------------------------------------------- the gather path


def _map_index(i: torch.Tensor, size: int, border: str) -> torch.Tensor:
    """Neighbour indices into [0, size) per border mode (constant: clamped, masked by the caller)."""
    if border in ("constant", "edge"):
        return i.clamp(0, size - 1)
    if border == "wrap":
        return torch.remainder(i, size)
    if border == "reflect":
        i = torch.remainder(i, 2 * size)
        return torch.where(i >= size, 2 * size - 1 - i, i)
    if size == 1:
        return torch.zeros_like(i)
    i = torch.remainder(i, 2 * size - 2)
    return torch.where(i >= size, 2 * size - 2 - i, i)


def _safe_coordinate(s: torch.Tensor, size: int, border: str) -> torch.Tensor:
    """Far-away coordinates made safe for integer conversion: clamped for constant / edge
    (exact), reduced modulo the period for the periodic modes (the fraction is kept)."""
    if border in ("constant", "edge"):
        return torch.nan_to_num(s, nan=-_COORD_LIMIT).clamp(-_COORD_LIMIT, _COORD_LIMIT)
    period = float(size) if border == "wrap" else (2.0 * size if border == "reflect" else max(2.0 * size - 2.0, 1.0))
    s = torch.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
    return s - period * torch.floor(s.detach() / period)


def _sample(x, inv, out_size, interpolation, border, fill, cubic_a=CUBIC_A):
    n, c, h, w = x.shape
    ho, wo = out_size
    ys = torch.arange(ho, dtype=inv.dtype, device=x.device)[:, None]
    xs = torch.arange(wo, dtype=inv.dtype, device=x.device)[None, :]
    sx = inv[:, 0, 0, None, None] * xs + inv[:, 0, 1, None, None] * ys + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * xs + inv[:, 1, 1, None, None] * ys + inv[:, 1, 2, None, None]
    sx = _safe_coordinate(sx, w, border).reshape(n, 1, -1)
    sy = _safe_coordinate(sy, h, border).reshape(n, 1, -1)
    flat = x.reshape(n, c, h * w)
    fill = fill.reshape(1, c, 1)

    def gather(iy, ix):
        value = flat.gather(2, (_map_index(iy, h, border) * w + _map_index(ix, w, border)).expand(n, c, -1))
        if border == "constant":
            inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            value = torch.where(inside, value, fill)
        return value

    if interpolation == "nearest":
        y = gather(torch.floor(sy + 0.5).long(), torch.floor(sx + 0.5).long())
    elif interpolation == "bicubic":  # the 4 x 4 neighbours, summed in the compiled kernel's order
        x0f, y0f = torch.floor(sx.detach()), torch.floor(sy.detach())
        wx, wy = cubic_weights(sx - x0f, cubic_a), cubic_weights(sy - y0f, cubic_a)
        x0, y0 = x0f.long(), y0f.long()
        y = 0.0
        for j in range(4):
            row = 0.0
            for i in range(4):
                row = row + wx[i] * gather(y0 - 1 + j, x0 - 1 + i)
            y = y + wy[j] * row
    else:
        x0f, y0f = torch.floor(sx.detach()), torch.floor(sy.detach())
        fx, fy = sx - x0f, sy - y0f  # gradients flow to the matrices through the weights
        x0, y0 = x0f.long(), y0f.long()
        v00, v01 = gather(y0, x0), gather(y0, x0 + 1)
        v10, v11 = gather(y0 + 1, x0), gather(y0 + 1, x0 + 1)
        top = v00 + fx * (v01 - v00)
        bottom = v10 + fx * (v11 - v10)
        y = top + fy * (bottom - top)
    return y.reshape(n, c, ho, wo)


def _blur_gather(x: torch.Tensor, sigmas: torch.Tensor, border: str, fill: torch.Tensor) -> torch.Tensor:
    """The prefilter on any device, all images at once: per axis, the taps of every image
    (radius ``int(3 sigma + 0.5)``, zero beyond an image's own radius) in one loop over
    the largest radius; integer images rounded half up, as the numpy path does."""
    n, c, h, w = x.shape
    work = x.dtype if x.is_floating_point() else torch.float64
    v = x.to(work)
    sig = sigmas.to(device=x.device, dtype=torch.float64)
    for dim, size, s in ((3, w, sig[:, 0]), (2, h, sig[:, 1])):
        radius = torch.where(s > 0, torch.floor(3.0 * s + 0.5), torch.zeros_like(s)).clamp(max=size + 1)
        big = int(radius.max())  # the fallback's one synchronisation per axis
        if big == 0:
            continue
        j = torch.arange(-big, big + 1, dtype=torch.float64, device=x.device)
        safe = torch.where(s > 0, s, torch.ones_like(s))[:, None]
        k = torch.exp(-0.5 * (j / safe) ** 2) * (j.abs() <= radius[:, None])
        k = torch.where((s > 0)[:, None], k, (j == 0).to(k.dtype))
        k = (k / k.sum(1, keepdim=True)).to(work)
        acc = torch.zeros_like(v)
        base = torch.arange(size, device=x.device)
        shape = (1, 1, 1, size) if dim == 3 else (1, 1, size, 1)
        for t in range(-big, big + 1):
            idx = base + t
            taken = v.index_select(dim, _map_index(idx, size, border))
            if border == "constant":
                inside = ((idx >= 0) & (idx < size)).reshape(shape)
                taken = torch.where(inside, taken, fill.to(work).reshape(1, c, 1, 1))
            acc = acc + k[:, t + big].reshape(n, 1, 1, 1) * taken
        v = acc
    return v.to(x.dtype) if x.is_floating_point() else _round_to(v, x.dtype)
