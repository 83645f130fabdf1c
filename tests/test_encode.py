"""PNG outputs: the encoder (affine_aug.png), its deflate libraries, the --png-level option
of generate, and the writer of folder shards (affine_aug.files.write_atomic_many)."""

import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug import files, jobs, png
from affine_aug.cli import main
from affine_aug.png import ENV, check_encoder, default_encoder, encode_png, encoders
from conftest import cli_error, generate_args, run_cli

ENCODERS = list(encoders())
ZLIB = f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
LIBDEFLATE = next((name for name in ENCODERS if name.startswith("libdeflate")), None)
needs_libdeflate = pytest.mark.skipif(LIBDEFLATE is None, reason="the deflate package is not installed")


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
@pytest.mark.parametrize("encoder", ENCODERS)
def test_round_trip_through_pillow_at_every_level(shape, dtype, mode, encoder):
    rng = np.random.default_rng(0)
    img = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    want = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    sizes = []
    for level in range(10):
        data = encode_png(img, level, encoder)
        assert data == encode_png(img.copy(), level, encoder)  # deterministic
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.format == "PNG" and im.mode == mode
            got = np.asarray(im)
        assert got.shape == want.shape and np.array_equal(got.astype(np.int64), want.astype(np.int64))
        sizes.append(len(data))
    assert sizes[0] == max(sizes)  # level 0 stores


@pytest.mark.parametrize("encoder", ENCODERS)
def test_levels_trade_size_for_time_on_smooth_content(encoder):
    y, x = np.mgrid[0:64, 0:96]
    img = np.dstack([(x * 2) % 256, (y * 3) % 256, (x + y) % 256]).astype(np.uint8)
    assert len(encode_png(img, 0, encoder)) > len(encode_png(img, 1, encoder)) >= len(encode_png(img, 9, encoder))


def photo_like(h=48, w=64):
    """Smooth shading plus noise, as photos are (numpy's PCG64 stream is fixed across versions)."""
    y, x = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(7).integers(0, 12, (h, w, 3))
    return (np.dstack([x * 3, y * 4, (x + y) * 2]) + noise).astype(np.uint8)


def chunks(data: bytes) -> dict:
    """``{chunk type: payload}`` of a PNG, checking each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = {}, 8
    while at < len(data):
        (n,) = struct.unpack(">I", data[at : at + 4])
        kind, payload = data[at + 4 : at + 8], data[at + 8 : at + 8 + n]
        assert struct.unpack(">I", data[at + 8 + n : at + 12 + n])[0] == zlib.crc32(kind + payload)
        out[kind.decode()] = payload
        at += 12 + n
    return out


def up_filtered(img: np.ndarray) -> bytes:
    """PNG's Up filter written out row by row, byte by byte (the reference)."""
    rows = [bytes(r.tobytes()) for r in img.reshape(img.shape[0], -1)]
    out = b""
    for k, row in enumerate(rows):
        above = rows[k - 1] if k else bytes(len(row))
        out += b"\x02" + bytes((a - b) % 256 for a, b in zip(row, above))
    return out


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_one_idat_of_up_filtered_rows(encoder, level):
    img = photo_like()
    parts = chunks(encode_png(img, level, encoder))
    assert list(parts) == ["IHDR", "IDAT", "IEND"]
    assert parts["IHDR"] == struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
    assert zlib.decompress(parts["IDAT"]) == up_filtered(img)


def test_zlib_levels_are_zlibs_with_run_length_at_level_1():
    img = photo_like()
    for level in range(10):
        strategy = zlib.Z_RLE if level == 1 else zlib.Z_DEFAULT_STRATEGY
        deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
        want = deflate.compress(up_filtered(img)) + deflate.flush()
        assert chunks(encode_png(img, level, ZLIB))["IDAT"] == want


@needs_libdeflate
def test_libdeflate_levels_are_libdeflates():
    import deflate

    img = photo_like()
    for level in range(10):
        assert chunks(encode_png(img, level, LIBDEFLATE))["IDAT"] == bytes(
            deflate.zlib_compress(up_filtered(img), level)
        )
    assert len(encode_png(img, 1, LIBDEFLATE)) != len(encode_png(img, 1, ZLIB))  # two encoders, two byte streams


# sha256 of encode_png(photo_like(), level, encoder): bytes every CPU must reproduce exactly
PINNED = {
    "libdeflate 1.25 (deflate 0.9.0)": {1: "69c4eb758b445b01", 6: "b1d0ebb2b9c44dda"},
    "zlib 1.2.13": {1: "41c87cb27915c57a", 6: "878130b78144f9b9"},
}


@pytest.mark.parametrize("encoder", ENCODERS)
def test_bytes_are_pinned_per_encoder_version(encoder):
    if encoder not in PINNED:
        pytest.skip(f"no pinned digests for {encoder}")
    got = {level: hashlib.sha256(encode_png(photo_like(), level, encoder)).hexdigest()[:16] for level in (1, 6)}
    assert got == PINNED[encoder]


def test_encoder_names_and_the_fallback(monkeypatch):
    assert ZLIB in ENCODERS and default_encoder() == (LIBDEFLATE or ZLIB)
    monkeypatch.setenv(ENV, "zlib")
    assert default_encoder() == ZLIB
    monkeypatch.setenv(ENV, "fast")
    with pytest.raises(ValueError, match=r"^AFFINE_AUG_PNG_ENCODER must be 'zlib' or 'libdeflate', got 'fast'$"):
        default_encoder()
    monkeypatch.setitem(sys.modules, "deflate", None)  # as if not installed
    assert list(encoders()) == [ZLIB]
    monkeypatch.delenv(ENV)
    assert default_encoder() == ZLIB
    monkeypatch.setenv(ENV, "libdeflate")
    with pytest.raises(
        ValueError,
        match=r"^AFFINE_AUG_PNG_ENCODER=libdeflate, but the deflate package is not installed: "
        r"pip install 'affine_aug\[png\]'$",
    ):
        default_encoder()


def test_an_encoder_this_process_lacks_is_refused():
    message = (
        r"^the job's PNG encoder is zlib 0\.0, this process has .*zlib .*: install the same deflate library "
        r"everywhere the job runs \(pip install 'affine_aug\[png\]' pins it\), or start the job again with one "
        r"that every process has \(AFFINE_AUG_PNG_ENCODER=zlib and --overwrite\)$"
    )
    with pytest.raises(ValueError, match=message):
        check_encoder("zlib 0.0")
    with pytest.raises(ValueError, match=message):
        encode_png(photo_like(), 1, "zlib 0.0")
    for name in ENCODERS:
        check_encoder(name)


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


# --------------------------------------------------------------------------- the encoder of a job


def npz_pixels(out: Path) -> dict:
    """``{(source, copy): image}`` of an npz output."""
    found = {}
    for path in sorted(out.glob("*.npz")):
        with np.load(path) as z:
            for x, source, copy in zip(z["x"], z["source"], z["copy"]):
                found[str(source), int(copy)] = x
    return found


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("fmt", ["folder", "webdataset"])
def test_outputs_decode_to_the_warped_pixels(tmp_path, monkeypatch, encoder, fmt):
    monkeypatch.setenv(ENV, encoder.split()[0])
    src = tree(tmp_path / "in")
    assert generate(src, tmp_path / "npz", "--format", "npz", "--size", "12", "14") == 0
    assert generate(src, tmp_path / "png", "--format", fmt, "--size", "12", "14") == 0
    assert generate(src, tmp_path / "again", "--format", fmt, "--size", "12", "14") == 0
    want = npz_pixels(tmp_path / "npz")
    got = {}
    if fmt == "folder":
        for source, copy in want:
            rel = jobs.target_name(source, copy, "png")
            got[source, copy] = (tmp_path / "png" / rel).read_bytes()
            assert (tmp_path / "again" / rel).read_bytes() == got[source, copy]  # same job, same bytes
    else:
        import tarfile

        for name in sorted((tmp_path / "png").glob("*.tar")):
            assert name.read_bytes() == (tmp_path / "again" / name.name).read_bytes()
            with tarfile.open(name) as tar:
                for m in tar.getmembers():
                    if m.name.endswith(".json"):
                        meta = json.loads(tar.extractfile(m).read())
                        png_name = m.name[: -len("json")] + "png"
                        got[meta["source"], meta["copy"]] = tar.extractfile(png_name).read()
    assert set(got) == set(want) and len(want) == 6
    for k, data in got.items():
        assert data == encode_png(np.asarray(Image.open(io.BytesIO(data))), 1, encoder)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), want[k])
    m = json.loads((tmp_path / "png" / "manifest.json").read_text())
    assert m["png_encoder"] == encoder
    assert json.loads((tmp_path / "npz" / "manifest.json").read_text())["png_encoder"] is None


@needs_libdeflate
def test_another_encoder_is_another_job(tmp_path, monkeypatch, capsys):
    src = tree(tmp_path / "in")
    monkeypatch.setenv(ENV, "zlib")
    assert generate(src, tmp_path / "out") == 0
    monkeypatch.delenv(ENV)
    assert generate(src, tmp_path / "out") == 2
    assert f'png_encoder: "{ZLIB}" in the output, "{LIBDEFLATE}" now' in capsys.readouterr().err
    monkeypatch.setenv(ENV, "zlib")
    assert generate(src, tmp_path / "out") == 0  # the same job: resumed, nothing to do


def test_a_bad_encoder_setting_is_one_line(tmp_path):
    src = tree(tmp_path / "in")
    r = subprocess.run(
        [sys.executable, "-m", "affine_aug.cli", "generate", "--config", "mild", "--input", str(src)]
        + ["--output", str(tmp_path / "out"), "--copies", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, ENV: "fast"},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip().splitlines()[-1].endswith("AFFINE_AUG_PNG_ENCODER must be 'zlib' or 'libdeflate', got 'fast'")
    )
    assert not (tmp_path / "out").exists()


def test_a_ray_worker_without_the_jobs_encoder_refuses(tmp_path, monkeypatch):
    src = tree(tmp_path / "in")
    job = jobs.plan_generate(src, tmp_path / "out", config="mild", copies=1, fmt="folder")
    state = Path(job.output) / jobs.STATE
    state.mkdir(parents=True)
    job = replace(job, token=jobs.state._write_token(state))
    monkeypatch.setattr(png, "encoders", lambda: {"zlib 0.0": None})  # the worker's own deflate library
    with pytest.raises(
        jobs.JobError,
        match=rf"^the Ray worker on .+: the job's PNG encoder is {re.escape(job.identity['png_encoder'])}, "
        r"this process has zlib 0\.0: install the same deflate library everywhere the job runs",
    ):
        jobs.ray_executor._ray_shard(job, job.shards[0])
    assert not list((tmp_path / "out").glob("c*"))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_ray_equals_local_for_each_encoder(ray_local, tmp_path, monkeypatch, encoder):
    monkeypatch.setenv(ENV, encoder.split()[0])  # the driver's choice; Ray's workers follow the job
    src = tree(tmp_path / "in")
    assert generate(src, tmp_path / "local", "--format", "webdataset") == 0
    assert generate(src, tmp_path / "ray", "--format", "webdataset", "--engine", "ray") == 0
    (local,), (remote,) = (tmp_path / "local").glob("*.tar"), (tmp_path / "ray").glob("*.tar")
    assert local.read_bytes() == remote.read_bytes()
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["png_encoder"] == encoder


# --------------------------------------------------------------------------- folder shards


def test_write_atomic_many_syncs_every_file_before_any_rename(tmp_path, monkeypatch):
    targets = [tmp_path / "out" / f"c{k % 2}" / "same.png" for k in range(2)] + [tmp_path / "out" / "x.bin"]
    payloads = [b"first", b"second", bytes(range(256)) * 100]
    synced = []

    def sync(path):
        assert not any(t.exists() for t in targets)  # nothing renamed while files are still syncing
        synced.append(Path(path).read_bytes())

    monkeypatch.setattr(files, "_fsync_path", sync)
    digests = files.write_atomic_many(zip(targets, payloads), tmp_path / "tmp")
    assert digests == [hashlib.sha256(p).hexdigest() for p in payloads]
    assert [t.read_bytes() for t in targets] == payloads and sorted(synced) == sorted(payloads)
    assert not list((tmp_path / "tmp").iterdir())


def test_write_atomic_many_failure_leaves_no_file(tmp_path, monkeypatch):
    targets = [tmp_path / "out" / f"{k}.png" for k in range(3)]

    def sync(path):
        if ".1.1.png." in str(path):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_fsync_path", sync)
    with pytest.raises(OSError, match="No space left on device") as e:
        files.write_atomic_many(((t, b"x") for t in targets), tmp_path / "tmp")
    assert e.value.filename == str(targets[1]) and e.value.errno == 28
    assert not (tmp_path / "out").exists() and not list((tmp_path / "tmp").iterdir())


def test_a_full_disk_in_a_folder_shard_is_one_line(tmp_path, monkeypatch, capsys):
    src = tree(tmp_path / "in")
    real = files._fsync_path

    def full(path):
        if "1_png_001.png" in str(path):
            raise OSError(28, "No space left on device")
        real(path)

    monkeypatch.setattr(files, "_fsync_path", full)
    assert generate(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "c1/1_png_001.png: cannot write (no space left on device)" in err
    assert not list((tmp_path / "out").glob("c*/*.png")) and not list((tmp_path / "out" / jobs.STATE / "tmp").iterdir())
    monkeypatch.setattr(files, "_fsync_path", real)
    assert generate(src, tmp_path / "out") == 0 and len(list((tmp_path / "out").glob("c*/*.png"))) == 6
