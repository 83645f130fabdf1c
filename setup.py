"""Builds the compiled kernel (affine_aug/_kernel.c) as a plain shared library; the rest
of the package metadata is in pyproject.toml."""

from setuptools import Extension, setup

# -ffp-contract=off: no fused multiply-adds, so the SIMD and scalar paths of the kernel
# give the same bits (see the comment at the top of _kernel.c)
FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-pthread"]

setup(ext_modules=[Extension("affine_aug._kernel", ["affine_aug/_kernel.c"], extra_compile_args=FLAGS,
                             extra_link_args=["-pthread"]),
                   # the planar (N, C, H, W) warp and the transposes for autograd (affine_aug.torch)
                   Extension("affine_aug._planes", ["affine_aug/csrc/planes.c", "affine_aug/csrc/backward.c"],
                             depends=["affine_aug/csrc/planes.h"], extra_compile_args=FLAGS, extra_link_args=["-pthread"])])
