"""The planar C kernels (``csrc/planes.c``, ``csrc/backward.c``) on CPU tensors.

``(N, C, H, W)`` tensors are read in place through their strides; outputs are new
contiguous tensors. Called through ctypes, which releases the GIL for the whole call;
threads: :func:`affine_aug.kernel.get_num_threads`. Dtypes the kernel lacks are
converted by the caller (functional.py).

The calls run on the team of the OpenMP runtime torch's own operators run on, where
torch uses one (:func:`_use_torch_openmp`): after a torch operator that runtime's threads
spin for a while waiting for the next one, and threads of the call's own would share the
cores with them. Not while torch runs on one thread, nor in a process that may be a fork
of one that ran OpenMP threads (:func:`_forked_from_openmp`); ``AFFINE_AUG_TORCH_OPENMP=0``
keeps threads of the call's own (docs/torch_warp.md, "Threads").
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os

import numpy as np
import torch

from .. import kernel, outputs

__all__ = ["DTYPES", "available", "blur", "blur_backward", "warp", "warp_backward"]

# the kernel's dtype codes (planes.h): the interleaved kernel's four, then signed integers
DTYPES = {
    torch.uint8: 0,
    torch.uint16: 1,
    torch.float32: 2,
    torch.float64: 3,
    torch.int8: 4,
    torch.int16: 5,
    torch.int32: 6,
    torch.int64: 7,
}
BLUR_DTYPES = (torch.uint8, torch.uint16, torch.float32, torch.float64)  # the interleaved kernel's prefilter
_NP_ALL = {t: np.dtype(str(t).split(".")[1]) for t in DTYPES}
_NP_ALL.update(
    {
        torch.bool: np.dtype(bool),
        torch.float16: np.dtype(np.float16),
        torch.complex64: np.dtype(np.complex64),
        torch.complex128: np.dtype(np.complex128),
    }
)
_NP = {t: _NP_ALL[t] for t in BLUR_DTYPES}


def _load():
    lib = kernel._open_library("_planes")
    if lib is None:
        return None
    i64, dbl, ptr, cint = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int
    lib.aa_warp_planes.argtypes = [ptr, i64, *[ptr] * 5, *[i64] * 7, cint, cint, cint, dbl, cint]
    lib.aa_warp_planes.restype = cint
    lib.aa_warp_planes_backward.argtypes = [*[ptr] * 7, *[i64] * 6, cint, cint, cint, dbl, cint]
    lib.aa_warp_planes_backward.restype = cint
    lib.aa_blur_planes_backward.argtypes = [ptr, ptr, ptr, i64, i64, i64, cint, cint, cint]
    lib.aa_blur_planes_backward.restype = cint
    lib.aa_use_openmp.argtypes = [ptr]
    lib.aa_use_openmp.restype = None
    lib.aa_team_threads.argtypes = [cint]
    lib.aa_team_threads.restype = None
    lib.aa_team_calls.argtypes = []
    lib.aa_team_calls.restype = i64
    return lib


_LIB = _load()


def _torch_openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch's operators run on, already loaded in this process (Linux:
    the one mapped from torch's own lib folder, else the only one mapped), or None."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as f:
            mapped = {line.split(None, 5)[5].strip() for line in f if line.count(" ") >= 5 and "omp" in line}
    except OSError:
        return None
    runtimes = sorted(p for p in mapped if _is_openmp(p))
    own = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    mine = [p for p in runtimes if os.path.dirname(os.path.realpath(p)) == own]
    chosen = mine if mine else runtimes if len(runtimes) == 1 else []
    if len(chosen) != 1:
        return None
    try:
        return ctypes.CDLL(chosen[0], mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None


def _forked_from_openmp() -> bool:
    """Whether this process may be a fork of one that ran an OpenMP runtime's threads:
    a multiprocessing child, or a process whose parent has an OpenMP runtime mapped (or
    whose parent cannot be read). A fork child's runtime believes in threads that stayed
    behind in the parent, and hangs at their first call."""
    if multiprocessing.parent_process() is not None:
        return True
    try:
        with open(f"/proc/{os.getppid()}/maps") as f:
            return any(_is_openmp(line.split(None, 5)[-1].strip()) for line in f if "omp" in line)
    except OSError:
        return True


def _is_openmp(path: str) -> bool:
    return os.path.basename(path).split(".so")[0] in ("libgomp", "libomp", "libiomp5")


def _use_torch_openmp() -> bool:
    """Runs the planar kernel's calls on torch's OpenMP team (see the module docstring):
    not in a process that may be a fork of one that ran OpenMP threads, nor with
    ``AFFINE_AUG_TORCH_OPENMP=0``. Returns whether it does."""
    if _LIB is None:
        return False
    runtime = None
    if os.environ.get("AFFINE_AUG_TORCH_OPENMP", "1") != "0" and not _forked_from_openmp():
        runtime = _torch_openmp()
    team = getattr(runtime, "GOMP_parallel", None)
    _LIB.aa_use_openmp(None if team is None else ctypes.cast(team, ctypes.c_void_p))
    return team is not None


def _threads() -> int:
    """The thread count of a planar call; tells the kernel torch's, which decides whether
    the team is used (above one)."""
    _LIB.aa_team_threads(torch.get_num_threads())
    return kernel.get_num_threads()


def team_calls() -> int:
    """How many calls of the planar kernel in this process ran on torch's OpenMP team."""
    return _LIB.aa_team_calls() if _LIB is not None else 0


TORCH_OPENMP = _use_torch_openmp()


def available() -> bool:
    """Whether both compiled libraries were built (``pip install`` builds them)."""
    return _LIB is not None and kernel.available()


def _lib():
    if _LIB is None:
        raise RuntimeError(kernel._MISSING.replace("_kernel.c", "csrc/planes.c"))
    return _LIB


def _strides(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(x.stride(), dtype=torch.int64)


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(device="cpu", dtype=torch.float64).contiguous()


def _matrices(dst_to_src: torch.Tensor) -> torch.Tensor:
    """(N, 2, 3) or (N, 3, 3) -> (N, 3, 3) float64 contiguous (the kernel reads 9 per image)."""
    m = _f64(dst_to_src)
    if m.shape[-2] == 2:
        m = torch.cat([m, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(len(m), 1, 3)], 1)
    return m


def _empty(shape, dtype: torch.dtype) -> torch.Tensor:
    """A new contiguous tensor; a large one on a recycled block (:mod:`affine_aug.outputs`:
    fresh pages of a large allocation cost page faults on every call)."""
    np_dtype = _NP_ALL.get(dtype)
    if np_dtype is None:
        return torch.empty(shape, dtype=dtype)
    return torch.from_numpy(outputs.empty(shape, np_dtype))


def warp(
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    out_size,
    interpolation: str,
    border: str,
    fill: torch.Tensor,
    cubic_a: float,
) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, H_out, W_out)``; ``x``'s dtype in :data:`DTYPES` (any
    dtype for nearest). ``dst_to_src`` maps output pixels to source pixels."""
    n, c, h, w = x.shape
    ho, wo = out_size
    y = _empty((n, c, ho, wo), x.dtype)
    if y.numel() == 0:
        return y
    m, fill64, strides = _matrices(dst_to_src), _f64(fill), _strides(x)
    nearest = interpolation == "nearest"
    raw = fill64.to(x.dtype) if nearest else fill64  # nearest copies elements: its fill in the images' type
    readable = x.untyped_storage().nbytes() // x.element_size() - x.storage_offset()
    rc = _lib().aa_warp_planes(
        x.data_ptr(),
        readable,
        strides.data_ptr(),
        y.data_ptr(),
        m.data_ptr(),
        fill64.data_ptr(),
        raw.data_ptr(),
        n,
        c,
        h,
        w,
        ho,
        wo,
        x.element_size(),
        DTYPES.get(x.dtype, 0),
        kernel.INTERPOLATION_CODES[interpolation],
        kernel.BORDER_CODES[border],
        float(cubic_a),
        _threads(),
    )
    if rc:
        raise ValueError(f"the planar kernel refused {x.dtype} images {tuple(x.shape)} -> {(ho, wo)}")
    return y


def warp_backward(
    grad_y: torch.Tensor,
    x: torch.Tensor,
    dst_to_src: torch.Tensor,
    interpolation: str,
    border: str,
    fill: torch.Tensor,
    cubic_a: float,
    needs_x: bool,
    needs_m: bool,
):
    """The transposes of :func:`warp` for float32 / float64 ``x``: ``(grad_x or None,
    grad_m or None)``, ``grad_m`` ``(N, 2, 3)`` float64 (the first two rows of dst_to_src)."""
    n, c, h, w = x.shape
    ho, wo = grad_y.shape[-2:]
    g = grad_y.to(x.dtype).contiguous()
    gx = _empty((n, c, h, w), x.dtype) if needs_x else None
    gm = torch.zeros((n, c, 6), dtype=torch.float64) if needs_m else None
    if n and (needs_x or needs_m):
        m, fill64, strides = _matrices(dst_to_src), _f64(fill), _strides(x)
        rc = _lib().aa_warp_planes_backward(
            g.data_ptr(),
            x.data_ptr(),
            strides.data_ptr(),
            gx.data_ptr() if needs_x else None,
            gm.data_ptr() if needs_m else None,
            m.data_ptr(),
            fill64.data_ptr(),
            n,
            c,
            h,
            w,
            ho,
            wo,
            DTYPES[x.dtype],
            kernel.INTERPOLATION_CODES[interpolation],
            kernel.BORDER_CODES[border],
            float(cubic_a),
            _threads(),
        )
        if rc:
            raise ValueError(f"the planar kernel refused the backward of {tuple(x.shape)} -> {(ho, wo)}")
    return gx, None if gm is None else gm.sum(1).reshape(n, 2, 3)


def blur(x: torch.Tensor, sigmas: torch.Tensor, border: str, fill: torch.Tensor) -> torch.Tensor:
    """The prefilter (:func:`affine_aug.warp.prefilter`'s arithmetic) of contiguous
    ``(N, C, H, W)`` planes, ``x``'s dtype in :data:`BLUR_DTYPES`; ``sigmas`` ``(N, 2)``
    already bounded. One call of the interleaved kernel per channel (its planes share
    the channel's fill)."""
    x = x.contiguous()
    n, c, h, w = x.shape
    y = _empty(x.shape, x.dtype)
    if x.numel() == 0:
        return y
    lib, fill64 = kernel._lib(), _f64(fill)
    sig = _f64(sigmas)
    hs, ws = torch.full((n,), h, dtype=torch.int64), torch.full((n,), w, dtype=torch.int64)
    plane = h * w * x.element_size()
    starts = torch.arange(n, dtype=torch.int64) * (c * plane)
    for ch in range(c):  # a loop over channels; the images of a channel go in one call
        srcs = starts + (x.data_ptr() + ch * plane)
        dsts = starts + (y.data_ptr() + ch * plane)
        rc = lib.aa_blur_ragged(
            srcs.data_ptr(),
            dsts.data_ptr(),
            sig.data_ptr(),
            fill64[ch:].data_ptr(),
            hs.data_ptr(),
            ws.data_ptr(),
            n,
            1,
            kernel.DTYPE_CODES[_NP[x.dtype]],
            kernel.BORDER_CODES[border],
            kernel.get_num_threads(),
        )
        if rc:
            raise ValueError(f"the kernel refused a prefilter of {tuple(x.shape)}")
    return y


def blur_backward(grad_y: torch.Tensor, sigmas: torch.Tensor, border: str) -> torch.Tensor:
    """The transpose of :func:`blur` for float32 / float64 planes (float64 sums)."""
    g = grad_y.contiguous()
    n, c, h, w = g.shape
    gx = _empty(g.shape, g.dtype)
    if g.numel():
        sig = _f64(sigmas).repeat_interleave(c, 0).contiguous()
        rc = _lib().aa_blur_planes_backward(
            g.data_ptr(),
            gx.data_ptr(),
            sig.data_ptr(),
            n * c,
            h,
            w,
            DTYPES[g.dtype],
            kernel.BORDER_CODES[border],
            _threads(),
        )
        if rc:
            raise ValueError(f"the planar kernel refused the prefilter's backward of {tuple(g.shape)}")
    return gx
