"""Nearest in the compiled kernel: the numpy reference's bytes for random matrices, every
dtype, pixel size and border; the AVX2 interiors and the scalar loops give the same bytes."""

import ctypes

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import kernel
from conftest import random_images, random_matrices, simd

BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def _matrices(h, w, rng):
    """Random affine maps, and maps whose interior reaches the image's last pixels (its
    last bytes are read by the interior path): sub-pixel shifts, a flip shifted by a
    third of a pixel, a slight enlargement about the bottom-right corner."""
    near_end = [
        aa.affine_matrix((h, w), translate=(0.3, 0.4)),
        aa.affine_matrix((h, w), translate=(-0.3, -0.4)),
        aa.affine_matrix((h, w), flip=(True, True), translate=(0.33, 0.0)),
        aa.affine_matrix((h, w), scale=1.01, center=(w - 1, h - 1)),
    ]
    return np.concatenate([random_matrices(4, (h, w), rng), np.stack(near_end)])


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nearest_equals_reference_for_every_pixel_size(border, dtype):
    """Channels 1-6 (pixels of 1 to 48 bytes), images and outputs of odd widths (so rows
    end in partial blocks of eight): the reference's bytes exactly."""
    rng = np.random.default_rng(len(border) + np.dtype(dtype).itemsize)
    for c in range(1, 7):
        imgs = random_images(dtype, (8, 13, 37, c), rng)
        m = _matrices(13, 37, rng)
        fill = list(range(3, 3 + c))
        kw = dict(border=border, interpolation="nearest", fill=fill, out_size=(15, 43))
        fast = aa.warp_affine(imgs, m, backend="c", **kw)
        np.testing.assert_array_equal(fast, aa.warp_affine(imgs, m, backend="numpy", **kw), err_msg=f"C={c}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_avx2_and_scalar_paths_give_the_same_bytes(dtype, interpolation):
    """The same call with the AVX2 interiors off and on: identical outputs, every channel
    count those interiors specialise (1-4, 6, 8) and more, rows long enough for many
    blocks."""
    rng = np.random.default_rng(7)
    for c in (1, 2, 3, 4, 6, 8):
        imgs = random_images(dtype, (4, 40, 150, c), rng)
        m = _matrices(40, 150, rng)
        kw = dict(border="constant", interpolation=interpolation, fill=1, out_size=(37, 161))
        with simd(False):
            scalar = aa.warp_affine(np.repeat(imgs, 2, axis=0), m, backend="c", **kw)
        with simd(True):
            fast = aa.warp_affine(np.repeat(imgs, 2, axis=0), m, backend="c", **kw)
        np.testing.assert_array_equal(fast, scalar, err_msg=f"C={c}")


def test_the_simd_switch_reports_its_state():
    """aa_set_simd returns whether the AVX2 interiors were in use, and restores them."""
    lib = kernel._lib()
    lib.aa_set_simd.argtypes, lib.aa_set_simd.restype = [ctypes.c_int], ctypes.c_int
    first = lib.aa_set_simd(0)
    assert lib.aa_set_simd(first) == 0
    assert lib.aa_set_simd(first) == first
