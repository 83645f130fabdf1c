"""The fused warp and antialias prefilter as Triton kernels: CUDA, or the CPU under
``TRITON_INTERPRET=1`` (the same kernels, interpreted; for tests).

Convention (that of :mod:`affine_aug.warp`, whose numpy path is the oracle):
    x           ``(N, C, H, W)`` tensor, any strides; uint8, uint16, float16, bfloat16,
                float32 or float64. Outputs have x's dtype and are contiguous.
    dst_to_src  ``(N, 2, 3)`` (or ``(N, 3, 3)``): output pixel ``(x, y)`` → source pixel,
                pixel centres on integer coordinates (the inverse of the forward matrix).
    out_size    ``(H_out, W_out)``.
    fill        ``(C,)`` tensor, a sequence or a number: the outside for ``border="constant"``.
    sigmas      ``(N, 2)`` prefilter Gaussian widths (sigma_x, sigma_y) in source pixels;
                0 leaves an axis alone.

One program handles a block of output pixels of one image: it computes the source
coordinates from the six matrix entries (no grid in memory), maps the taps by the border
mode once and reuses them for every channel. Weights come from the unclamped
coordinates; integer images are rounded half up and clipped. Coordinates are computed
in float64 for uint8, uint16 and float64 images and in float32 otherwise; values in
float64 for float64 and in float32 for the rest. The backward scatters each tap's
weighted gradient with atomic adds (the transpose of the sampling, border-mapped) and
sums d loss / d dst_to_src per program, then per image. Nothing here reads a value
back to the host.
"""

from __future__ import annotations

import importlib
import sys

import torch

from .._checks import BORDERS, INTERPOLATIONS, check_choice
from ..reference import CUBIC_A

__all__ = ["available", "blur_backward", "blur_forward", "warp_backward", "warp_forward"]

DTYPES = (torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64)
_BORDER_CODES = {"constant": 0, "edge": 1, "reflect": 2, "mirror": 3, "wrap": 4}
_INTERPOLATION_CODES = {"nearest": 0, "bilinear": 1, "bicubic": 2}
_TOPS = {torch.uint8: 255.0, torch.uint16: 65535.0}
_INDEX_LIMIT = 2**31  # elements of one image (and of one output image) addressed with int32
# Compiled: output pixels per program, warps per program (one pixel per thread keeps
# the gathers' registers low enough for a full or half-full SM), channels per step of a
# program's channel loop. Interpreted: large blocks and every channel at once (each
# program and each operation is a Python call there).
_BLOCK, _WARPS, _CHANNELS = 256, 8, 1
_INTERPRETED_BLOCK, _INTERPRETED_CHANNELS = 4096, 16


def _triton():
    try:
        import triton
    except Exception:  # an absent or broken install: the fallback path is used
        return None
    return triton


def interpreting() -> bool:
    """Whether Triton runs kernels on the CPU: ``TRITON_INTERPRET=1``, and set before
    triton was imported (triton's own library is decorated for one mode at its import)."""
    triton = _triton()
    if triton is None or not triton.knobs.runtime.interpret:
        return False
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(triton.language.standard.sum, InterpretedFunction)


def available() -> bool:
    """Triton importable, and a CUDA device present or the interpreter on."""
    return _triton() is not None and (interpreting() or torch.cuda.is_available())


def _kernels():
    """The kernel module, decorated for the current mode (compiled or interpreted)."""
    if not available():
        raise RuntimeError(
            "the Triton warp needs triton and a CUDA device (or TRITON_INTERPRET=1 set before triton is imported)"
        )
    mode = interpreting()
    module = sys.modules.get(f"{__package__}._triton_kernels")
    if module is None or module.INTERPRETED != mode:
        triton = _triton()
        with triton.knobs.runtime.scope():  # triton.jit reads the knob as the module runs
            triton.knobs.runtime.interpret = mode
            if module is None:
                module = importlib.import_module(f"{__package__}._triton_kernels")
            else:
                module = importlib.reload(module)
    return module


def _pow2(v: int) -> int:
    return 1 << max(0, v - 1).bit_length()


def _geometry(pixels: int, channels: int) -> dict:
    """Launch geometry for ``pixels`` outputs per image: block, warps, blocks per image
    and channels per step (CB)."""
    if interpreting():
        block = min(_INTERPRETED_BLOCK, max(16, _pow2(pixels)))
        cb = min(_INTERPRETED_CHANNELS, _pow2(channels))
        return {"BLOCK": block, "num_warps": 1, "blocks": -(-pixels // block), "CB": cb}
    return {"BLOCK": _BLOCK, "num_warps": _WARPS, "blocks": -(-pixels // _BLOCK), "CB": min(_CHANNELS, _pow2(channels))}


def _check_images(x, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be an (N, C, H, W) tensor, got {got}")
    if x.dtype not in DTYPES:
        raise ValueError(
            f"{name} dtype must be one of uint8, uint16, float16, bfloat16, float32, float64, got {x.dtype}"
        )
    if x.device.type != "cuda" and not interpreting():
        raise ValueError(
            f"{name} must be a CUDA tensor for the Triton warp (the CPU needs TRITON_INTERPRET=1 "
            "set before triton is imported), "
            f"got device {x.device}"
        )
    if x.shape[1:].numel() >= _INDEX_LIMIT:
        raise ValueError(f"{name}: one image of shape {tuple(x.shape[1:])} has 2**31 elements or more")


def _coordinate_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.uint8, torch.uint16, torch.float64) else torch.float32


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _blur_dtype(dtype: torch.dtype) -> torch.dtype:
    """The reference prefilter's sums: float64 for uint16 and float64, float32 otherwise."""
    return torch.float64 if dtype in (torch.uint16, torch.float64) else torch.float32


def _to_device(t: torch.Tensor, device, dtype) -> torch.Tensor:
    # non_blocking: a small host tensor is staged by the driver, with no stream synchronisation
    return t.to(device=device, dtype=dtype, non_blocking=True)


def _matrices(dst_to_src, n: int, dtype, device) -> torch.Tensor:
    if not isinstance(dst_to_src, torch.Tensor) or dst_to_src.shape not in ((n, 2, 3), (n, 3, 3)):
        got = tuple(dst_to_src.shape) if isinstance(dst_to_src, torch.Tensor) else type(dst_to_src).__name__
        raise ValueError(f"dst_to_src must have shape ({n}, 2, 3) or ({n}, 3, 3), got {got}")
    return _to_device(dst_to_src.detach()[:, :2, :], device, dtype).contiguous()


def _fill(fill, c: int, dtype, device) -> torch.Tensor:
    f = fill.detach() if isinstance(fill, torch.Tensor) else torch.as_tensor(fill, dtype=torch.float64)
    if f.ndim > 1 or f.numel() not in (1, c):
        raise ValueError(f"fill must be a number or {c} numbers (one per channel), got shape {tuple(f.shape)}")
    return _to_device(f.reshape(-1), device, dtype).expand(c).contiguous()


def _out_size(out_size) -> tuple[int, int]:
    ho, wo = (int(v) for v in out_size)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"out_size must be two positive integers, got {tuple(out_size)}")
    return ho, wo


def warp_forward(
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    out_size,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill=0,
    cubic_a: float = CUBIC_A,
) -> torch.Tensor:
    """Warp ``x`` by ``dst_to_src`` (see the module docstring); returns ``(N, C, H_out, W_out)``
    in x's dtype. Values as :func:`affine_aug.warp._warp_dst_to_src` computes them."""
    kernels = _kernels()
    _check_images(x)
    interp = check_choice(interpolation, INTERPOLATIONS, "interpolation")
    code = _border_code(border)
    n, c, h, w = x.shape
    ho, wo = _out_size(out_size)
    y = torch.empty((n, c, ho, wo), dtype=x.dtype, device=x.device)
    if c * ho * wo >= _INDEX_LIMIT:
        raise ValueError(f"one output image of shape {(c, ho, wo)} has 2**31 elements or more")
    m = _matrices(dst_to_src, n, _coordinate_dtype(x.dtype), x.device)
    f = _fill(fill, c, _work_dtype(x.dtype), x.device)
    if y.numel() == 0:
        return y
    geo = _geometry(ho * wo, c)
    blocks = geo.pop("blocks")
    args = (x, m, f, y, c, h, w, ho, wo, *x.stride(), blocks, _cubic_a(interp, cubic_a))
    flags = dict(BORDER=code, INTEGER=not x.dtype.is_floating_point, TOP=_TOPS.get(x.dtype, 0.0), **geo)
    kernels.warp_kernel[(n * blocks,)](*args, INTERP=_INTERPOLATION_CODES[interp], **flags)
    return y


def warp_backward(
    grad_y: torch.Tensor,
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    out_size,
    interpolation: str = "bilinear",
    border: str = "constant",
    fill=0,
    cubic_a: float = CUBIC_A,
    needs_x: bool = True,
    needs_m: bool = True,
):
    """Gradients of :func:`warp_forward` for float images: ``(grad_x or None, grad_dst_to_src
    or None)``. grad_x is the transpose of the sampling (each tap's weighted output gradient
    added to its border-mapped source pixel; constant's fill taps drop out); grad_dst_to_src
    has dst_to_src's shape and dtype and goes through the sampling coordinates (zero for
    nearest, whose output is piecewise constant in them)."""
    kernels = _kernels()
    _check_images(x)
    if not x.dtype.is_floating_point:
        raise ValueError(f"gradients need floating point images, got {x.dtype}")
    interp = check_choice(interpolation, INTERPOLATIONS, "interpolation")
    code = _border_code(border)
    n, c, h, w = x.shape
    ho, wo = _out_size(out_size)
    if not isinstance(grad_y, torch.Tensor) or grad_y.shape != (n, c, ho, wo):
        got = tuple(grad_y.shape) if isinstance(grad_y, torch.Tensor) else type(grad_y).__name__
        raise ValueError(f"grad_y must have shape {(n, c, ho, wo)}, got {got}")
    work = _work_dtype(x.dtype)
    m = _matrices(dst_to_src, n, _coordinate_dtype(x.dtype), x.device)
    f = _fill(fill, c, work, x.device)
    gy = grad_y.contiguous()
    geo = _geometry(ho * wo, c)
    blocks = geo.pop("blocks")
    need_m = needs_m and interp != "nearest"
    gx = torch.zeros((n, c, h, w), dtype=work, device=x.device) if needs_x else None
    part = torch.zeros((n * blocks, 6), dtype=work, device=x.device) if need_m else None
    if gy.numel() and (needs_x or need_m):
        flags = dict(BORDER=code, NEED_X=needs_x, NEED_M=need_m, **geo)
        _launch_backward(kernels, interp, (gy, x, m, f, gx, part), (ho, wo), blocks, flags, cubic_a)
    grad_x = gx.to(x.dtype) if needs_x else None
    grad_m = None
    if needs_m:
        grad_m = torch.zeros(dst_to_src.shape, dtype=dst_to_src.dtype, device=dst_to_src.device)
        if need_m:
            grad_m[:, :2, :] = part.view(n, blocks, 6).sum(1).view(n, 2, 3).to(grad_m.device, grad_m.dtype)
    return grad_x, grad_m


def _launch_backward(kernels, interp: str, tensors, out_size, blocks: int, flags: dict, cubic_a) -> None:
    """Run the backward kernel on ``(grad_y, x, m, fill, grad_x or None, partial matrix
    sums or None)``, one program per block of output pixels."""
    gy, x, m, f, gx, part = tensors
    n, c, h, w = x.shape
    ho, wo = out_size
    unused = f  # a pointer the kernel never reads (its NEED_ flag is off)
    args = (gy, x, m, f, unused if gx is None else gx, unused if part is None else part, c, h, w, ho, wo)
    kernels.warp_backward_kernel[(n * blocks,)](
        *args, *x.stride(), blocks, _cubic_a(interp, cubic_a), INTERP=_INTERPOLATION_CODES[interp], **flags
    )


def _cubic_a(interp: str, cubic_a) -> float:
    return float(cubic_a) if interp == "bicubic" else 0.0  # read by bicubic only


def _border_code(border: str) -> int:
    return _BORDER_CODES[check_choice(border, BORDERS, "border")]


def _blur_taps(sigmas, n: int, h: int, w: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per image and axis the normalised Gaussian taps ``(N, 2, T)`` (centred; zero beyond
    the radius) and the radius ``(N, 2)`` int32, by the reference rule: sigma NaN or
    infinite → 0, clipped at 4 image sizes, radius ``int(3 sigma + 0.5)`` up to size + 1,
    taps ``exp(-j² / 2σ²)`` in float64, normalised, then in the work type."""
    if not isinstance(sigmas, torch.Tensor):
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    if sigmas.shape != (n, 2):
        raise ValueError(f"sigmas must have shape ({n}, 2), got {tuple(sigmas.shape)}")
    s = torch.nan_to_num(_to_device(sigmas.detach(), device, torch.float64), nan=0.0, posinf=0.0, neginf=0.0)
    s = torch.stack([s[:, 0].clamp(max=4.0 * w), s[:, 1].clamp(max=4.0 * h)], dim=1)
    limit = torch.stack(
        [
            torch.full((n,), w + 1.0, dtype=torch.float64, device=device),
            torch.full((n,), h + 1.0, dtype=torch.float64, device=device),
        ],
        dim=1,
    )
    blur = s > 0
    radius = torch.where(blur, torch.minimum(torch.floor(3.0 * s + 0.5), limit), torch.zeros_like(s))
    half = max(h, w) + 1
    j = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * (j / torch.where(blur, s, torch.ones_like(s))[..., None]) ** 2)
    taps = torch.where(j.abs() <= radius[..., None], taps, torch.zeros_like(taps))
    taps = torch.where(blur[..., None], taps, (j == 0).to(torch.float64).expand_as(taps))
    taps = taps / taps.sum(-1, keepdim=True)
    return taps.to(dtype).contiguous(), radius.to(torch.int32).contiguous(), 2 * half + 1


def _blur_pass(kernels, src, dst, taps, radius, width, fill, axis, code, transpose, top=None):
    n, c, h, w = src.shape
    geo = _geometry(h * w, c)
    blocks = geo.pop("blocks")
    kernels.blur_pass_kernel[(n * blocks,)](
        src,
        dst,
        taps,
        radius,
        fill,
        c,
        h,
        w,
        *src.stride(),
        width,
        blocks,
        AXIS=axis,
        BORDER=code,
        TRANSPOSE=transpose,
        INTEGER=top is not None,
        TOP=top or 0.0,
        **geo,
    )


def blur_forward(x: torch.Tensor, sigmas, border: str = "constant", fill=0) -> torch.Tensor:
    """The antialias prefilter (:func:`affine_aug.warp.prefilter`): each image blurred by
    its own separable Gaussian, x then y, samples outside following ``border`` (``fill``
    for constant); sums in float64 for uint16 and float64, float32 otherwise; integers
    rounded half up. Returns a new contiguous tensor of x's dtype."""
    kernels = _kernels()
    _check_images(x)
    code = _border_code(border)
    n, c, h, w = x.shape
    work = _blur_dtype(x.dtype)
    taps, radius, width = _blur_taps(sigmas, n, h, w, work, x.device)
    f = _fill(fill, c, work, x.device)
    out = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device)
    if out.numel():
        rows = torch.empty((n, c, h, w), dtype=work, device=x.device)
        _blur_pass(kernels, x, rows, taps, radius, width, f, 0, code, False)
        _blur_pass(kernels, rows, out, taps, radius, width, f, 1, code, False, _TOPS.get(x.dtype))
    return out


def blur_backward(grad: torch.Tensor, sigmas, border: str = "constant") -> torch.Tensor:
    """Gradient of :func:`blur_forward` with respect to float images: the adjoint passes,
    y then x, each value scattered to its border-mapped taps. Returns grad's dtype."""
    kernels = _kernels()
    _check_images(grad, "grad")
    if not grad.dtype.is_floating_point:
        raise ValueError(f"grad must be a floating point tensor, got {grad.dtype}")
    code = _border_code(border)
    n, c, h, w = grad.shape
    work = _work_dtype(grad.dtype)
    taps, radius, width = _blur_taps(sigmas, n, h, w, work, grad.device)
    zero = torch.zeros(c, dtype=work, device=grad.device)
    cols = torch.zeros((n, c, h, w), dtype=work, device=grad.device)
    out = torch.zeros((n, c, h, w), dtype=work, device=grad.device)
    if out.numel():
        _blur_pass(kernels, grad, cols, taps, radius, width, zero, 1, code, True)
        _blur_pass(kernels, cols, out, taps, radius, width, zero, 0, code, True)
    return out.to(grad.dtype)
