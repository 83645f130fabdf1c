"""Builds the compiled kernel (the C files of affine_aug/csrc/) as one plain shared library,
affine_aug/_kernel*.so, and its CPython entry for one-image calls, affine_aug/_fastpath*.so;
the rest of the package metadata is in pyproject.toml."""

from pathlib import Path

from setuptools import Extension, setup

# -ffp-contract=off: no fused multiply-adds, so the SIMD and scalar paths of the kernel
# give the same bits (see the conventions at the top of affine_aug/csrc/common.h)
FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-pthread"]
KERNEL = [
    "threads",
    "padding",
    "bands",
    "simd",
    "nearest",
    "bilinear_u8",
    "bilinear_float",
    "bicubic",
    "permute",
    "blur",
    "entry",
]
SOURCES = [f"affine_aug/csrc/{name}.c" for name in KERNEL]
HEADERS = sorted(str(p.as_posix()) for p in Path("affine_aug/csrc").glob("*.h"))

setup(
    ext_modules=[
        Extension(
            "affine_aug._kernel", SOURCES, depends=HEADERS, extra_compile_args=FLAGS, extra_link_args=["-pthread"]
        ),
        # the one-image call and the one-key draws as a CPython entry (affine_aug.kernel.FASTPATH);
        # optional: without Python's headers the package still works, through ctypes
        Extension(
            "affine_aug._fastpath",
            ["affine_aug/csrc/fastpath.c"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
        # the planar (N, C, H, W) warp and the transposes for autograd (affine_aug.torch)
        Extension(
            "affine_aug._planes",
            [
                "affine_aug/csrc/planes.c",
                "affine_aug/csrc/planes_simd.c",
                "affine_aug/csrc/backward.c",
                "affine_aug/csrc/threads.c",
            ],
            depends=HEADERS,
            extra_compile_args=FLAGS,
            extra_link_args=["-pthread"],
        ),
    ]
)
