"""Torch warper: the numpy warper's contract on ``(N, C, H, W)`` tensors, CPU and CUDA.

Convention (as everywhere in affine_aug): forward matrices map source pixel ``(x, y)``
to destination pixel, pixel centres on integer coordinates; the warper inverts them.
Bilinear weights come from the unclamped source coordinates and the border mode maps
the four neighbour indices (exactly the numpy reference algorithm, written with
``torch.gather``), so every border mode of the numpy warper is available and both
agree to float precision. Differentiable with respect to float images and to the
matrices (the sampler of a spatial transformer). uint8 images are interpolated in
float32 and rounded half up; on the CPU they go through the compiled kernel.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_cubic_a
from ..matrix import MAX_CONDITION, check_size
from ..warp import BORDERS, CUBIC_A, INTERPOLATIONS, check_choice, cubic_weights, prefilter_sigma
from ..warp import warp_affine as _warp_numpy_api

__all__ = ["as_matrix_tensor", "invert", "warp_affine"]

_COORD_LIMIT = float(2**30)


def as_matrix_tensor(matrices, n: int | None, dtype: torch.dtype, device) -> torch.Tensor:
    """Matrices (tensor or array; (N,3,3), (N,2,3), (3,3) or (2,3)) → ``(n, 3, 3)`` tensor."""
    m = matrices if isinstance(matrices, torch.Tensor) else torch.as_tensor(np.asarray(matrices, dtype=np.float64))
    if not (m.is_floating_point() or m.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"matrices must be numeric, got {m.dtype}")
    m = m.to(device=device, dtype=dtype)
    if m.ndim not in (2, 3) or m.shape[-1] != 3 or m.shape[-2] not in (2, 3):
        raise ValueError(f"matrices must have shape (N, 3, 3), (N, 2, 3), (3, 3) or (2, 3), got {tuple(m.shape)}")
    if not bool(torch.isfinite(m).all()):
        raise ValueError("matrices contain non-finite values")
    if m.shape[-2] == 3 and not bool((m[..., 2, :] == torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)).all()):
        raise ValueError("matrices must be affine: the bottom row of a 3x3 matrix must be [0, 0, 1]")
    if m.shape[-2] == 2:
        bottom = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device).expand(m.shape[:-2] + (1, 3))
        m = torch.cat([m, bottom], dim=-2)
    if m.ndim == 2:
        m = m.expand(n if n is not None else 1, 3, 3)
    if n is not None and m.shape[0] != n:
        raise ValueError(f"got {m.shape[0]} matrices for {n} images; give one matrix per image or a single matrix")
    return m


def invert(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of affine ``(N, 3, 3)`` matrices (differentiable).

    The same rule as the numpy ``affine_aug.invert``: a matrix whose linear part has a
    condition number above ``MAX_CONDITION`` is refused, naming its index.
    """
    a, b, tx = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    c, d, ty = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    if m.shape[0]:
        lin = m[:, :2, :2].detach().double()
        scale = lin.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(torch.float64).tiny)
        sv = torch.linalg.svdvals(lin / scale[:, None, None])
        cond = sv[:, 0] / sv[:, 1]
        bad = ~(cond <= MAX_CONDITION)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise ValueError(f"matrix ({i},) is singular or too ill-conditioned to invert: condition number "
                             f"{float(cond[i]):.3g} (the limit is {MAX_CONDITION:.0e})")
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [torch.stack([ia, ib, -(ia * tx + ib * ty)], -1), torch.stack([ic, id_, -(ic * tx + id_ * ty)], -1),
            torch.stack([zero, zero, one], -1)]
    out = torch.stack(rows, dim=1)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("matrices cannot be inverted in this precision: their entries are too large or too small")
    return out


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
        return s.clamp(-_COORD_LIMIT, _COORD_LIMIT)
    period = float(size) if border == "wrap" else (2.0 * size if border == "reflect" else max(2.0 * size - 2.0, 1.0))
    return s - period * torch.floor(s.detach() / period)


def _check_fill(fill, c: int, dtype: torch.dtype, device) -> torch.Tensor:
    f = fill if isinstance(fill, torch.Tensor) else torch.as_tensor(np.asarray(fill, dtype=np.float64))
    if f.ndim > 1 or (f.ndim == 1 and f.numel() not in (1, c)):
        raise ValueError(f"fill must be a number or {c} numbers (one per channel), got {fill!r}")
    f = f.to(device=device, dtype=torch.float64).reshape(-1).expand(c)
    if not bool(torch.isfinite(f).all()):
        raise ValueError(f"fill must be finite, got {fill!r}")
    if not (dtype.is_floating_point or dtype == torch.bool):
        info = torch.iinfo(dtype)
        if bool((f != f.round()).any()) or bool((f < info.min).any()) or bool((f > info.max).any()):
            raise ValueError(f"fill {fill!r} is not an integer in [{info.min}, {info.max}] as {dtype} images need")
    return f


def warp_affine(images: torch.Tensor, matrices, *, out_size=None, interpolation: str = "bilinear",
                border: str = "constant", fill=0, antialias: bool = False, cubic_a: float = CUBIC_A) -> torch.Tensor:
    """Warp ``(N, C, H, W)`` (or ``(C, H, W)``) tensors, each with its own forward matrix.

    Same contract as :func:`affine_aug.warp_affine` (see it for border modes): matrices
    ``(N, 3, 3)`` / ``(N, 2, 3)`` or one for all, forward, pixel centres on integers;
    ``out_size`` ``(H_out, W_out)``; ``fill`` a scalar or one value per channel.
    Float images: differentiable w.r.t. images and matrices (float matrices given as
    tensors). Integer images (any integer dtype; bilinear is computed in float32, or
    float64 for 32/64-bit integers) are rounded half up and clipped to the dtype's range;
    uint8 on the CPU uses the compiled kernel. ``interpolation``: ``"bilinear"``,
    ``"nearest"`` or ``"bicubic"`` (Keys' cubic with parameter ``cubic_a`` in ``[-1, 0]``:
    -0.5 by default, as the numpy warper; -0.75 is torch's and OpenCV's). ``antialias``:
    prefilter the axes a matrix shrinks, as :func:`affine_aug.warp_affine` does
    (differentiable w.r.t. the images; the blur widths do not carry gradients).
    Returns a new tensor of the input's dtype on the input's device.
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")
    if images.dtype in (torch.bool, torch.complex64, torch.complex128) and interpolation != "nearest":
        raise ValueError(f"images dtype must be an integer or floating point type for {interpolation} interpolation, got {images.dtype}")
    if not isinstance(antialias, (bool, np.bool_)):
        raise ValueError(f"antialias must be True or False, got {antialias!r}")
    single = images.ndim == 3
    x = images[None] if single else images
    n, c, h, w = x.shape
    if 0 in (c, h, w):
        raise ValueError(f"images must have non-empty C, H and W, got shape {tuple(images.shape)}")
    border = check_choice(border, BORDERS, "border")
    cubic_a = check_cubic_a(cubic_a)
    ho, wo = (h, w) if out_size is None else check_size(out_size, "out_size")
    # arithmetic: the float images' own type; float32 for uint8, int8, (u)int16 and half
    # types; float64 for 32- and 64-bit integers (their values exceed float32's 24 bits)
    wide = x.dtype in (torch.int32, torch.int64, torch.uint32, torch.uint64)
    work = x.dtype if x.dtype in (torch.float32, torch.float64) else (torch.float64 if wide else torch.float32)
    # float64 matrices for every integer image, so the compiled uint8 path samples exactly
    # where the numpy API does (a float32 matrix can move a .5 coordinate to another pixel)
    m = as_matrix_tensor(matrices, n, torch.float32 if work == torch.float32 and x.is_floating_point() else torch.float64,
                         x.device)
    fill_t = _check_fill(fill, c, x.dtype, x.device)
    if x.dtype == torch.uint8 and x.device.type == "cpu" and not m.requires_grad:  # compiled kernel
        out = _warp_numpy_api(x.permute(0, 2, 3, 1).numpy(), m.detach().double().numpy(), out_size=(ho, wo),
                              interpolation=interpolation, border=border, fill=fill_t.cpu().numpy(), antialias=antialias,
                              cubic_a=cubic_a)
        y = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
        return y[0] if single else y
    if n == 0:
        y = x.new_empty((0, c, ho, wo))
        return y[0] if single else y
    inv = invert(m)
    if antialias:
        sigmas = prefilter_sigma(m.detach().double().cpu().numpy())
        if np.any(sigmas > 0):
            x = _prefilter(x, sigmas, border, fill_t)
    if interpolation == "nearest":  # a pure gather: any dtype, values copied unchanged
        y = _sample(x, inv.to(work), (ho, wo), interpolation, border, fill_t.to(x.dtype), cubic_a)
        return y[0] if single else y
    y = _sample(x.to(work), inv.to(work), (ho, wo), interpolation, border, fill_t.to(work), cubic_a)
    if not x.is_floating_point():  # integers: rounded half up, clipped to the dtype's range
        info = torch.iinfo(x.dtype)
        y = torch.floor(y + 0.5).clamp_(info.min, info.max).to(x.dtype)
    else:
        y = y.to(x.dtype)
    return y[0] if single else y


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


def _prefilter(x: torch.Tensor, sigmas: np.ndarray, border: str, fill: torch.Tensor) -> torch.Tensor:
    """:func:`affine_aug.warp.prefilter` on ``(N, C, H, W)`` tensors: each image blurred by
    its own Gaussian ``(sigma_x, sigma_y)`` (taps to ``int(3 sigma + 0.5)``), samples outside
    following ``border``; integer images rounded half up, as the numpy path does."""
    n, c, h, w = x.shape
    work = x.dtype if x.is_floating_point() else torch.float64
    out = []
    for i in range(n):
        v = x[i].to(work)
        for dim, size, s in ((2, w, float(sigmas[i, 0])), (1, h, float(sigmas[i, 1]))):
            if not s > 0:
                continue
            s = min(s, 4.0 * size)
            r = min(int(3.0 * s + 0.5), size + 1)
            k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
            k /= k.sum()
            acc = torch.zeros_like(v)
            base = torch.arange(size, device=x.device)
            for j in range(-r, r + 1):
                idx = base + j
                taken = v.index_select(dim, _map_index(idx, size, border))
                if border == "constant":
                    inside = ((idx >= 0) & (idx < size)).reshape((1, 1, size) if dim == 2 else (1, size, 1))
                    taken = torch.where(inside, taken, fill.to(work).reshape(c, 1, 1))
                acc = acc + float(k[j + r]) * taken
            v = acc
        if not x.is_floating_point():
            info = torch.iinfo(x.dtype)
            v = torch.floor(v + 0.5).clamp_(info.min, info.max)
        out.append(v.to(x.dtype))
    return torch.stack(out)
