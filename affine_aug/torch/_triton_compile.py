"""Compile the Triton warp's kernels for a GPU without one (front end, optimiser, ptxas):

    python -m affine_aug.torch._triton_compile [--arch 90] [--all]

The interpreter (``TRITON_INTERPRET=1``) runs the kernels' Python on the CPU, but not
what only compiled mode checks (types of loop-carried values, what lowers to PTX, the
register budget). This compiles one variant of every kernel (``--all``: every border,
interpolation and image dtype) to a cubin and prints each kernel's time. Run it without
``TRITON_INTERPRET``.
"""

from __future__ import annotations

import argparse
import itertools
import time

_POINTERS = {
    torch_name: f"*{short}"
    for torch_name, short in (
        ("uint8", "u8"),
        ("uint16", "u16"),
        ("float16", "fp16"),
        ("bfloat16", "bf16"),
        ("float32", "fp32"),
        ("float64", "fp64"),
    )
}
_TOPS = {"uint8": 255.0, "uint16": 65535.0}


def _warp_variants(dtype: str, border: int):
    """(kernel name, pointer types, constexprs) of the forward and backward warps."""
    px = _POINTERS[dtype]
    coord = "*fp64" if dtype in ("uint8", "uint16", "float64") else "*fp32"
    work = "*fp64" if dtype == "float64" else "*fp32"
    types = {"x_ptr": px, "y_ptr": px, "m_ptr": coord, "fill_ptr": work}
    flags = dict(BORDER=border, INTEGER=dtype in _TOPS, TOP=_TOPS.get(dtype, 0.0))
    out = [("warp_kernel", types, dict(INTERP=interp, **flags)) for interp in range(3)]
    if dtype not in _TOPS:
        grads = dict(types, gy_ptr=px, gx_ptr=work, part_ptr=work)
        out.append(("warp_backward_kernel", grads, dict(INTERP=0, BORDER=border, NEED_X=True, NEED_M=False)))
        for interp in (1, 2):
            out.append(("warp_backward_kernel", grads, dict(INTERP=interp, BORDER=border, NEED_X=True, NEED_M=True)))
    return out


def _blur_variants(dtype: str, border: int):
    px = _POINTERS[dtype]
    work = "*fp64" if dtype in ("uint16", "float64") else "*fp32"
    base = {"taps_ptr": work, "radius_ptr": "*i32", "fill_ptr": work}
    out = [
        ("blur_pass_kernel", dict(base, src_ptr=px, dst_ptr=work), dict(AXIS=0, BORDER=border, TRANSPOSE=False)),
        (
            "blur_pass_kernel",
            dict(base, src_ptr=work, dst_ptr=px),
            dict(AXIS=1, BORDER=border, TRANSPOSE=False, INTEGER=dtype in _TOPS, TOP=_TOPS.get(dtype, 0.0)),
        ),
    ]
    if dtype not in _TOPS:
        out.append(
            ("blur_pass_kernel", dict(base, src_ptr=px, dst_ptr=work), dict(AXIS=1, BORDER=border, TRANSPOSE=True))
        )
    return out


def variants(every: bool):
    """Every kernel once (a few dtypes and borders spread over them), or all of them."""
    if every:
        for dtype, border in itertools.product(_POINTERS, range(5)):
            yield from _warp_variants(dtype, border)
            yield from _blur_variants(dtype, border)
        return

    def pick(found, *wanted):  # (kernel, INTERP) pairs
        return [v for v in found if (v[0], v[2]["INTERP"]) in wanted]

    forward, backward = "warp_kernel", "warp_backward_kernel"
    yield from pick(_warp_variants("uint8", 4), (forward, 0), (forward, 1), (forward, 2))
    yield from pick(_warp_variants("bfloat16", 0), (forward, 1), (backward, 0), (backward, 1))
    yield from pick(_warp_variants("float64", 2), (forward, 2), (backward, 2))
    yield from _blur_variants("uint16", 3)
    yield from _blur_variants("float32", 1)[2:]


def compile_kernel(kernels, name: str, types: dict, flags: dict, arch: int, warps: int, geometry: dict):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(kernels, name)
    consts = dict(dict(INTEGER=False, TOP=0.0), **flags, **geometry)
    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    sig = {
        a: "constexpr"
        if a in consts
        else types.get(a, "*fp32")
        if a.endswith("_ptr")
        else ("fp32" if a == "cubic_a" else "i32")
        for a in fn.arg_names
    }
    compiled = triton.compile(
        ASTSource(fn, sig, constexprs=consts), target=GPUTarget("cuda", arch, 32), options={"num_warps": warps}
    )
    if not compiled.asm.get("cubin"):
        raise RuntimeError(f"{name} {flags}: no cubin")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 80, 90")
    ap.add_argument("--all", action="store_true", help="every border, interpolation and dtype")
    args = ap.parse_args(argv)
    from . import _triton_kernels as kernels
    from . import _triton_warp as tw

    if kernels.INTERPRETED:
        raise SystemExit("unset TRITON_INTERPRET: the interpreter compiles nothing")
    geometry = {"CB": tw._CHANNELS, "BLOCK": tw._BLOCK}
    for name, types, flags in variants(args.all):
        t = time.perf_counter()
        compile_kernel(kernels, name, types, flags, args.arch, tw._WARPS, geometry)
        print(f"compiled {name} {flags} for sm_{args.arch} in {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
