"""PNG outputs: the encoder (affine_aug.png) and the --png-level option of generate."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug.cli import main
from affine_aug.png import encode_png
from conftest import cli_error, generate_args, run_cli


@pytest.mark.parametrize(
    "shape, dtype, mode",
    [
        ((13, 17), np.uint8, "L"),
        ((13, 17, 1), np.uint8, "L"),
        ((13, 17, 2), np.uint8, "LA"),
        ((13, 17, 3), np.uint8, "RGB"),
        ((13, 17, 4), np.uint8, "RGBA"),
        ((13, 17), np.uint16, "I;16"),
        ((1, 1, 3), np.uint8, "RGB"),
    ],
)
def test_round_trip_through_pillow_at_every_level(shape, dtype, mode):
    rng = np.random.default_rng(0)
    img = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    want = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    sizes = []
    for level in range(10):
        data = encode_png(img, level)
        assert data == encode_png(img.copy(), level)  # deterministic
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.format == "PNG" and im.mode == mode
            got = np.asarray(im)
        assert got.shape == want.shape and np.array_equal(got.astype(np.int64), want.astype(np.int64))
        sizes.append(len(data))
    assert sizes[0] == max(sizes)  # level 0 stores


def test_levels_trade_size_for_time_on_smooth_content():
    y, x = np.mgrid[0:64, 0:96]
    img = np.dstack([(x * 2) % 256, (y * 3) % 256, (x + y) % 256]).astype(np.uint8)
    assert len(encode_png(img, 0)) > len(encode_png(img, 1)) >= len(encode_png(img, 9))


def test_encoder_errors():
    img = np.zeros((4, 4, 3), np.uint8)
    for bad in (10, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match=r"PNG compression level must be an integer in \[0, 9\], got"):
            encode_png(img, bad)
    with pytest.raises(
        ValueError, match=r"PNG needs a non-empty \(H, W\) or \(H, W, 1..4\) uint8 or uint16 image, got float32"
    ):
        encode_png(img.astype(np.float32))
    with pytest.raises(ValueError, match=r"got uint8 \(4, 4, 5\)"):
        encode_png(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"got uint8 \(0, 4, 3\)"):
        encode_png(np.zeros((0, 4, 3), np.uint8))


def tree(root: Path) -> Path:
    y, x = np.mgrid[0:20, 0:24]
    for k in range(3):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        smooth = np.dstack([x * 10 + k, y * 12, (x + y) * 5]).astype(np.uint8)  # compressible, as photos are
        Image.fromarray(smooth).save(root / f"c{k}" / f"{k}.png")
    return root


def generate(src, out, *extra):
    return main(
        ["generate", "--config", "mild", "--input", str(src), "--output", str(out), "--copies", "2", "--quiet", *extra]
    )


def test_png_level_changes_bytes_not_pixels(tmp_path):
    src = tree(tmp_path / "in")
    assert generate(src, tmp_path / "l0", "--png-level", "0") == 0
    assert generate(src, tmp_path / "l9", "--png-level", "9") == 0
    assert generate(src, tmp_path / "default") == 0
    files = sorted(p.relative_to(tmp_path / "l0") for p in (tmp_path / "l0").rglob("*.png"))
    assert len(files) == 6
    for rel in files:
        a, b = (tmp_path / "l0" / rel).read_bytes(), (tmp_path / "l9" / rel).read_bytes()
        assert len(a) > len(b)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b))))
        assert (tmp_path / "default" / rel).read_bytes() == encode_png(np.asarray(Image.open(io.BytesIO(a))), 1)
    m = json.loads((tmp_path / "l9" / "manifest.json").read_text())
    assert m["png_level"] == 9 and m["quality"] is None
    assert json.loads((tmp_path / "default" / "manifest.json").read_text())["png_level"] == 1
    npz = tmp_path / "npz"
    assert generate(src, npz, "--format", "npz", "--size", "8", "8") == 0
    assert json.loads((npz / "manifest.json").read_text())["png_level"] is None


def test_another_level_is_another_job(tmp_path, capsys):
    src = tree(tmp_path / "in")
    assert generate(src, tmp_path / "out") == 0
    assert generate(src, tmp_path / "out", "--png-level", "6") == 2
    assert "png_level: 1 in the output, 6 now" in capsys.readouterr().err
    assert generate(src, tmp_path / "out", "--png-level", "6", "--overwrite") == 0


@pytest.mark.parametrize(
    "value, message",
    [
        ("10", "--png-level must be an integer in [0, 9] (0 stores, 1 is fastest, 9 smallest), got 10"),
        ("-1", "--png-level must be an integer in [0, 9] (0 stores, 1 is fastest, 9 smallest), got -1"),
        ("fast", "argument --png-level: invalid int value: 'fast'"),
    ],
)
def test_png_level_errors_from_the_command_line(tmp_path, value, message):
    src = tree(tmp_path / "in")
    r = run_cli(*generate_args(src, tmp_path / "out", "--png-level", value), timeout=120)
    cli_error(r, 2, message)
    assert not (tmp_path / "out").exists()
