"""Hugging Face helpers on what ``datasets`` really hands them: 16-bit PNGs, nested lists, empty slices."""

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from affine_aug.hf import MapAugment, OnTheFly, add_keys  # noqa: E402

IDENTITY = {}  # no transform: the output is the decoded input, pixel for pixel
CFG = {"rotate": [-20, 20], "scale": [0.9, 1.1]}


def _ramp16(h=24, w=32):
    return (np.arange(h * w, dtype=np.int64).reshape(h, w) * 65535 // (h * w - 1)).astype(np.uint16)


def _scaled(v16):
    """The offline engine's rule, written out: round(v * 255 / 65535), never clipped."""
    return np.array([[int(v) * 255 * 2 // 65535 + 1 >> 1 for v in row] for row in v16], dtype=np.uint8)


def test_16bit_png_is_scaled_with_rounding_not_clipped(tmp_path):
    v16 = _ramp16()
    Image.fromarray(v16).save(tmp_path / "deep.png")
    ds = datasets.Dataset.from_dict({"image": [str(tmp_path / "deep.png")]}).cast_column("image", datasets.Image())
    assert ds[0]["image"].mode == "I;16"  # what datasets decodes a 16-bit PNG to
    out = ds.map(MapAugment(IDENTITY), batched=True, with_indices=True)[0]["image"]
    assert out.mode == "L"
    got = np.asarray(out)
    np.testing.assert_array_equal(got, _scaled(v16))
    assert (got == 255).mean() < 0.01 and got.min() == 0 and got.max() == 255
    view = add_keys(ds).with_transform(OnTheFly(IDENTITY))
    np.testing.assert_array_equal(np.asarray(view[0]["image"]), _scaled(v16))


@pytest.mark.parametrize("mode, order", [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2")])
def test_every_16bit_mode_is_scaled(mode, order):
    v16 = _ramp16(6, 5)
    im = Image.frombytes(mode, (5, 6), v16.astype(order).tobytes())
    out = MapAugment(IDENTITY)({"image": [im]}, [0])["image"][0]
    np.testing.assert_array_equal(np.asarray(out), _scaled(v16))


def test_scaled_rule_is_the_engines(tmp_path):
    from affine_aug.pipeline import load_image

    v16 = _ramp16(8, 8)
    Image.fromarray(v16).save(tmp_path / "deep.png")
    out = MapAugment(IDENTITY)({"image": [Image.open(tmp_path / "deep.png")]}, [0])["image"][0]
    np.testing.assert_array_equal(np.asarray(out), load_image(tmp_path / "deep.png")[..., 0])


def test_32bit_and_float_images_out_of_range_are_named():
    big = Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I")
    with pytest.raises(
        ValueError, match=r"column 'image', row 0: unsupported pixel format \(mode I, values 70000\.\.70000\)"
    ):
        MapAugment(IDENTITY)({"image": [big]}, [0])
    flt = Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F")
    with pytest.raises(ValueError, match=r"column 'image', row 0: unsupported pixel format \(mode F"):
        MapAugment(IDENTITY)({"image": [flt]}, [0])


def test_nested_lists_of_an_array3d_uint8_column():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    features = datasets.Features({"image": datasets.Array3D(shape=(8, 8, 3), dtype="uint8")})
    ds = datasets.Dataset.from_dict({"image": imgs.tolist()}, features=features)
    same = ds.map(MapAugment(IDENTITY), batched=True, with_indices=True, batch_size=2)
    np.testing.assert_array_equal(np.array(same["image"], dtype=np.uint8), imgs)
    moved = ds.map(MapAugment(CFG, seed=4), batched=True, with_indices=True, batch_size=2)
    direct = MapAugment(CFG, seed=4)({"image": list(imgs)}, list(range(5)))["image"]
    np.testing.assert_array_equal(np.array(moved["image"], dtype=np.uint8), np.stack(direct))
    out = MapAugment(IDENTITY)({"image": [imgs[0].tolist()]}, [0])["image"][0]
    assert isinstance(out, list) and out == imgs[0].tolist()  # lists in, lists out


@pytest.mark.parametrize(
    "value, match",
    [
        (
            [[0, 256], [1, 2]],
            r"column 'image', row 0: expected a uint8 \(H, W\[, C\]\) image, got dtype int64 shape \(2, 2\)",
        ),
        ([[0, -1], [1, 2]], r"got dtype int64 shape \(2, 2\)"),
        ([[0.5, 1.0], [1.0, 2.0]], r"got dtype float64 shape \(2, 2\)"),
        ([], r"got dtype float64 shape \(0,\)"),
        (
            [[1, 2], [3]],
            r"column 'image', row 0: expected a uint8 \(H, W\[, C\]\) image, got nested lists of unequal lengths",
        ),
        ([[True, False], [True, True]], r"got dtype bool shape \(2, 2\)"),
    ],
)
def test_nested_lists_out_of_range_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        MapAugment(IDENTITY)({"image": [value]}, [0])


def test_map_and_on_the_fly_on_empty_batches():
    assert MapAugment(CFG)({"image": []}, [])["image"] == []
    assert OnTheFly(CFG)({"image": [], "key": []})["image"] == []
    assert OnTheFly(CFG, size=(8, 8), per_epoch=True)({"image": [], "key": np.zeros(0)})["image"] == []
