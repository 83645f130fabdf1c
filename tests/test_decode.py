"""Reading sources: 16-bit colour PNGs, reduced decodes of JPEGs and large images, the pixel limit."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug.cli import main
from affine_aug.pipeline import read_image


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit PNG written byte by byte (Pillow cannot write 16-bit colour): (H, W, 3) RGB,
    (H, W, 4) RGBA; big-endian samples, filter 0 on every row."""
    h, w, c = samples.shape
    colour_type = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def rounded(v: np.ndarray) -> np.ndarray:
    """The engine's rule for 16 -> 8 bits, in exact integer arithmetic: round(v * 255 / 65535)."""
    return ((v.astype(np.int64) * 255 * 2 + 65535) // (2 * 65535)).astype(np.uint8)


# values whose high byte is not their rounded 8-bit value: truncation gets every one wrong
AWKWARD = np.array([[[128, 32895, 65407], [383, 65535, 0]], [[200, 1000, 40000], [32768, 12345, 65280]]], np.uint16)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_is_rounded_not_truncated(tmp_path, channels):
    samples = AWKWARD if channels == 3 else np.dstack([AWKWARD, np.full(AWKWARD.shape[:2], 7, np.uint16)])
    path = write_png16(tmp_path / "deep.png", samples)
    with Image.open(path) as im:  # what Pillow alone gives: the high bytes
        assert np.array_equal(np.asarray(im.convert("RGB")), (AWKWARD >> 8).astype(np.uint8))
    img, deep = read_image(path)
    assert deep and img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert np.array_equal(img, rounded(AWKWARD))
    img16, deep16 = read_image(path, keep_16bit=True)  # colour has no 16-bit output: scaled all the same
    assert deep16 and np.array_equal(img16, img)


def test_16_bit_colour_png_is_listed_as_scaled(tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    write_png16(src / "a" / "deep.png", np.tile(AWKWARD, (4, 4, 1)))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a" / "plain.png")
    for fmt, extra in (("folder", []), ("npz", ["--size", "8", "8"])):
        out = tmp_path / fmt
        assert main(["generate", "--config", "identity", "--input", str(src), "--output", str(out), "--copies", "1",
                     "--format", fmt, "--quiet", *extra]) == 0
        m = json.loads((out / "manifest.json").read_text())
        assert m["scaled_16bit"] == ["a/deep.png"] and m["kept_16bit"] == []
    got = np.asarray(Image.open(tmp_path / "folder" / "a" / "deep_png_000.png"))
    assert np.array_equal(got, rounded(np.tile(AWKWARD, (4, 4, 1))))  # identity: the rounded values, not the high bytes
