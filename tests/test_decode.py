"""Reading sources: 16-bit colour PNGs, reduced decodes of JPEGs and large images, the pixel limit."""

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug import pipeline
from affine_aug.cli import main
from affine_aug.config import load_config
from affine_aug.pipeline import (
    MAX_PIXELS,
    _augment_images,
    _read_image,
    output_reduction,
    read_source,
)
from affine_aug.sampling import sample
from conftest import cli_error, generate_args, run_cli


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit PNG written byte by byte (Pillow cannot write 16-bit colour): (H, W, 3) RGB,
    (H, W, 4) RGBA; big-endian samples, filter 0 on every row."""
    h, w, c = samples.shape
    colour_type = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def rounded(v: np.ndarray) -> np.ndarray:
    """The engine's rule for 16 -> 8 bits, in exact integer arithmetic: round(v * 255 / 65535)."""
    return ((v.astype(np.int64) * 255 * 2 + 65535) // (2 * 65535)).astype(np.uint8)


# values near the rounding boundaries: for 200, 1000 and 65280 the high byte is not the rounded value
AWKWARD = np.array([[[128, 32895, 65407], [383, 65535, 0]], [[200, 1000, 40000], [32768, 12345, 65280]]], np.uint16)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_is_rounded_not_truncated(tmp_path, channels):
    samples = AWKWARD if channels == 3 else np.dstack([AWKWARD, np.full(AWKWARD.shape[:2], 7, np.uint16)])
    path = write_png16(tmp_path / "deep.png", samples)
    with Image.open(path) as im:  # what Pillow alone gives: the high bytes
        assert np.array_equal(np.asarray(im.convert("RGB")), (AWKWARD >> 8).astype(np.uint8))
    img, deep = _read_image(path)
    assert deep and img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert np.array_equal(img, rounded(AWKWARD))
    img16, deep16 = _read_image(path, keep_16bit=True)  # colour has no 16-bit output: scaled all the same
    assert deep16 and np.array_equal(img16, img)


def test_16_bit_colour_png_is_listed_as_scaled(tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    write_png16(src / "a" / "deep.png", np.tile(AWKWARD, (4, 4, 1)))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a" / "plain.png")
    for fmt, extra in (("folder", []), ("npz", ["--size", "8", "8"])):
        out = tmp_path / fmt
        assert (
            main(
                [
                    "generate",
                    "--config",
                    "identity",
                    "--input",
                    str(src),
                    "--output",
                    str(out),
                    "--copies",
                    "1",
                    "--format",
                    fmt,
                    "--quiet",
                    *extra,
                ]
            )
            == 0
        )
        m = json.loads((out / "manifest.json").read_text())
        assert m["scaled_16bit"] == ["a/deep.png"] and m["kept_16bit"] == []
    got = np.asarray(Image.open(tmp_path / "folder" / "a" / "deep_png_000.png"))
    assert np.array_equal(got, rounded(np.tile(AWKWARD, (4, 4, 1))))  # identity: the rounded values, not the high bytes


# --------------------------------------------------------------------------- reduced decodes


def photo_like(h: int, w: int) -> np.ndarray:
    """Smooth shading, hard edges and fine texture, as photos have (no data file needed)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.dstack([np.sin(7 * x + 3 * y), np.cos(5 * y - 2 * x), np.sin(11 * x * y)]) * 90 + 128
    disc = ((x - 0.4) ** 2 + (y - 0.5) ** 2 < 0.05)[..., None] * np.array([60, -50, 40])
    stripes = (np.floor(x * 40) % 2)[..., None] * 25 * (y > 0.7)[..., None]
    noise = rng.normal(0, 6, (h, w, 3))
    return np.clip(base + disc + stripes + noise, 0, 255).astype(np.uint8)


def full_and_reduced(path, size, copies=6):
    cfg = load_config("mild")
    keys = np.arange(copies, dtype=np.uint64)
    plan = output_reduction(size, lambda: sample(cfg, keys, size).matrices)
    small, _, f = read_source(path, factor_for=plan)
    full, _, one = read_source(path)
    box = [(0, 0, full.shape[1], full.shape[0])] * copies
    want, m_full = _augment_images([full] * copies, keys, cfg, size=size, boxes=box)
    got, m_red = _augment_images([small] * copies, keys, cfg, size=size, boxes=box, reduced=[f] * copies)
    assert one == 1 and np.array_equal(m_full, m_red)  # the matrices recorded are the full source's
    return f, np.abs(want.astype(np.int64) - got.astype(np.int64))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("side, size", [(600, (64, 64)), (800, (96, 72)), (1000, (32, 32))])
def test_reduced_decode_stays_within_the_stated_bound(tmp_path, suffix, side, size):
    """The bound documented in docs/notes: mean |error| <= 1.5 levels, 99th percentile <= 12,
    against the full decode, both antialiased."""
    path = tmp_path / f"p{suffix}"
    Image.fromarray(photo_like(side * 3 // 4, side)).save(path, quality=90)
    f, err = full_and_reduced(path, size)
    assert f >= 2  # the reduced path was taken
    assert err.mean() <= 1.5 and np.percentile(err, 99) <= 12, (f, err.mean(), np.percentile(err, 99))


def test_jpeg_is_reduced_by_the_decoder(tmp_path, monkeypatch):
    path = tmp_path / "p.jpg"
    Image.fromarray(photo_like(480, 640)).save(path, quality=90)
    img, _, f = read_source(path, factor_for=lambda w, h: 4)
    assert f == 4 and img.shape == (120, 160, 3)
    img, _, f = read_source(path, factor_for=lambda w, h: 6)  # the decoder's 1/4, then nothing: 6 is not 4 * k
    assert f == 4 and img.shape == (120, 160, 3)
    img, _, f = read_source(path, factor_for=lambda w, h: 16)  # 1/8 in the decoder, then a box of 2
    assert f == 16 and img.shape == (30, 40, 3)


def test_reduction_is_not_taken_when_the_matrix_does_not_shrink(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    drafts = []
    real = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda self, *a: drafts.append(a) or real(self, *a))
    path = tmp_path / "p.jpg"
    Image.fromarray(photo_like(300, 400)).save(path, quality=90)
    cfg = load_config("mild")
    for size in ((300, 400), (224, 224), (160, 200)):  # shrinks by less than 2 x REDUCE_MARGIN
        plan = output_reduction(size, lambda size=size: sample(cfg, np.arange(4), size).matrices)
        img, _, f = read_source(path, factor_for=plan)
        assert f == 1 and img.shape == (300, 400, 3) and plan.size == (400, 300)
    assert drafts == []
    plan = output_reduction((32, 32), lambda: sample(cfg, np.arange(4), (32, 32)).matrices)
    assert read_source(path, factor_for=plan)[2] >= 2 and len(drafts) == 1


def test_box_reduce_is_the_block_mean_with_partial_edges():
    a = np.arange(5 * 7 * 2, dtype=np.uint8).reshape(5, 7, 2)
    r = pipeline._box_reduce(a, 3)
    assert r.shape == (2, 3, 2)
    want = np.array([[a[y : y + 3, x : x + 3].reshape(-1, 2).mean(0) for x in (0, 3, 6)] for y in (0, 3)])
    assert np.array_equal(r, np.floor(want + 0.5).astype(np.uint8))


def test_a_large_png_runs_in_seconds_with_bounded_memory(tmp_path):
    """A 3000 x 3000 PNG (27 MB decoded, a small file) to 32 x 32: the old path blurred the
    full image with sigma ~ 47 px and took minutes; reduced, it is one decode and a box."""
    src = tmp_path / "in" / "a"
    src.mkdir(parents=True)
    y, x = np.mgrid[0:3000, 0:3000]
    Image.fromarray(np.dstack([x // 37 % 256, y // 23 % 256, (x + y) // 50 % 256]).astype(np.uint8)).save(
        src / "big.png"
    )
    code = (
        "import re, sys, time; from affine_aug.cli import main; t = time.perf_counter(); "
        "rc = main(['generate', '--config', 'mild', '--input', "
        f"{str(src.parent)!r}, '--output', {str(tmp_path / 'out')!r}, "
        "'--copies', '2', '--size', '32', '32', '--format', 'npz', '--quiet']); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(rc, time.perf_counter() - t, int(hwm) // 1024)"
    )  # this process's peak (ru_maxrss spans the exec)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    rc, seconds, peak_mb = r.stdout.split()[-3:]
    assert rc == "0", r.stderr
    assert float(seconds) < 30 and int(peak_mb) < 400, (seconds, peak_mb)  # full decode + blur: minutes, > 1 GB


def test_pixel_limit(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    Image.fromarray(photo_like(40, 50)).save(src / "a" / "x.png")
    with pytest.raises(
        pipeline.BadImage,
        match=r"x.png: 50x40 is 2,000 pixels, above the limit of 1,999 \(--max-pixels; "
        r"a decoded RGB source takes 3 bytes per pixel\)",
    ):
        _read_image(src / "a" / "x.png", max_pixels=1999)
    assert _read_image(src / "a" / "x.png", max_pixels=2000)[0].shape == (40, 50, 3)
    args = ["generate", "--config", "mild", "--input", str(src), "--copies", "1", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "o1"), "--max-pixels", "1999"]) == 1
    assert "x.png: 50x40 is 2,000 pixels, above the limit of 1,999 (--max-pixels" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "o2"), "--max-pixels", "1999", "--skip-bad"]) == 0
    assert "above the limit" in json.loads((tmp_path / "o2" / "manifest.json").read_text())["skipped"][0]
    assert MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS  # Pillow's own refusal: our default, and the largest allowed


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", f"--max-pixels must be an integer in [1, {MAX_PIXELS}] (Pillow refuses larger images), got 0"),
        (str(MAX_PIXELS + 1), f"got {MAX_PIXELS + 1}"),
        ("many", "argument --max-pixels: invalid int value: 'many'"),
    ],
)
def test_max_pixels_errors_from_the_command_line(tmp_path, value, message):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    Image.fromarray(photo_like(8, 8)).save(src / "a" / "x.png")
    r = run_cli(*generate_args(src, tmp_path / "out", "--max-pixels", value), timeout=120)
    cli_error(r, 2, message)


def test_full_decode_is_another_job_and_records_the_same_matrices(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    Image.fromarray(photo_like(600, 800)).save(src / "a" / "x.jpg", quality=90)
    args = [
        "generate",
        "--config",
        "mild",
        "--input",
        str(src),
        "--copies",
        "3",
        "--size",
        "48",
        "48",
        "--format",
        "npz",
        "--quiet",
    ]
    assert main([*args, "--output", str(tmp_path / "r")]) == 0
    assert main([*args, "--output", str(tmp_path / "f"), "--full-decode"]) == 0
    assert main([*args, "--output", str(tmp_path / "r"), "--full-decode"]) == 2
    assert 'decode: "reduced" in the output, "full" now' in capsys.readouterr().err
    r, f = np.load(tmp_path / "r" / "part-00000.npz"), np.load(tmp_path / "f" / "part-00000.npz")
    assert np.array_equal(r["matrix"], f["matrix"])
    err = np.abs(r["x"].astype(int) - f["x"].astype(int))
    assert 0 < err.mean() <= 1.5
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["decode"] == "reduced"
