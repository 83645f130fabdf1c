"""The offline job engine (affine_aug.jobs): data safety, honest resume, formats, executors."""

import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affine_aug import jobs
from affine_aug.jobs import engine, state
from affine_aug.cli import main
from affine_aug.jobs import JobDataError, JobError, plan_generate, run_job
from _ray_cluster import cluster, ray_env
from conftest import cli_command, generate_args

FORMATS = ["folder", "npz", "webdataset", "parquet"]


def make_tree(root: Path, n_per_class=3, seed=0) -> Path:
    """An ImageFolder tree with the hard cases: same stem with two extensions, same name in
    two subfolders, unicode, an ignored extension."""
    rng = np.random.default_rng(seed)
    names = {
        "cats": ["a.png", "a.jpg", "s1/b.png", "s2/b.png", "é ü.png"],
        "dogs": [f"{k:02d}.png" for k in range(n_per_class)],
    }
    for cls, files in names.items():
        for rel in files:
            p = root / cls / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (14 + len(rel), 18, 3), dtype=np.uint8)).save(p)
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def gen(src, out, *extra, fmt="folder", copies="2", seed="0"):
    args = [
        "generate",
        "--config",
        "mild",
        "--input",
        str(src),
        "--output",
        str(out),
        "--copies",
        copies,
        "--format",
        fmt,
        "--seed",
        seed,
        "--quiet",
        "--shard-size",
        "3",
    ]
    if fmt == "npz" and "--size" not in extra:
        args += ["--size", "12", "12"]
    return main([*args, *extra])


def tree_bytes(out: Path) -> dict:
    """Every output file (state folder excluded) and its sha256."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).parts[0].startswith(".affine_aug") and p.name not in jobs.OWN_NAMES
    }


def manifest(out: Path) -> dict:
    """The manifest of a complete output, whichever name its format gives it."""
    (path,) = [out / n for n in jobs.OWN_NAMES if (out / n).is_file()]
    return json.loads(path.read_text())


def decoded(out: Path, fmt: str) -> dict:
    """{(source, copy): pixels} of an output, whatever its format."""
    m = manifest(out)
    res = {}
    if fmt == "folder":
        for p in out.rglob("*.png"):
            rel = p.relative_to(out).as_posix()
            stem, ext, copy = p.stem.rsplit("_", 2)
            res[(str(Path(rel).parent / f"{stem}.{ext}"), int(copy))] = np.asarray(Image.open(p))
    elif fmt == "npz":
        for s in m["shards"]:
            d = np.load(out / s["file"])
            for x, src, c in zip(d["x"], d["source"], d["copy"]):
                res[(str(src), int(c))] = x
    elif fmt == "webdataset":
        for s in m["shards"]:
            with tarfile.open(out / s["file"]) as tar:
                members = {mm.name: tar.extractfile(mm).read() for mm in tar.getmembers()}
            for name, data in members.items():
                if name.endswith(".json"):
                    meta = json.loads(data)
                    res[(meta["source"], meta["copy"])] = np.asarray(Image.open(io.BytesIO(members[name[:-4] + "png"])))
    else:
        import pyarrow.parquet as pq

        for s in m["shards"]:
            t = pq.read_table(out / s["file"]).to_pylist()
            for row in t:
                res[(row["source"], row["copy"])] = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
    return res


# --------------------------------------------------------------------------- no data lost


def test_every_source_and_copy_gets_its_own_file(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "out") == 0
    files = tree_bytes(tmp_path / "out")
    assert len(files) == 8 * 2
    assert {
        "cats/a_png_000.png",
        "cats/a_jpg_001.png",
        "cats/s1/b_png_000.png",
        "cats/s2/b_png_000.png",
        "cats/é ü_png_001.png",
    } <= set(files)
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["rows"] == 16 and m["ignored_extensions"] == {".txt": 1} and m["classes"] == ["cats", "dogs"]
    assert "wrote 16 images in 3 folder shards" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", FORMATS)
def test_lossless_formats_hold_the_same_pixels(tmp_path, fmt):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "ref", "--size", "12", "12", fmt="npz") == 0
    assert gen(src, tmp_path / fmt, "--size", "12", "12", fmt=fmt) == 0
    ref, got = decoded(tmp_path / "ref", "npz"), decoded(tmp_path / fmt, fmt)
    assert sorted(ref) == sorted(got) and len(ref) == 16
    for k in ref:
        np.testing.assert_array_equal(ref[k], got[k])
    m = manifest(tmp_path / fmt)
    for s in m["shards"]:
        if s["file"]:
            assert hashlib.sha256((tmp_path / fmt / s["file"]).read_bytes()).hexdigest() == s["sha256"]
        assert s["node"] and s["rows"] > 0


def test_npz_columns(tmp_path):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "out", fmt="npz") == 0
    d = np.load(tmp_path / "out" / "part-00000.npz")
    assert set(d.files) == {"x", "y", "source", "copy", "key", "matrix"}
    assert d["x"].shape == (6, 12, 12, 3) and d["matrix"].shape == (6, 3, 3)
    assert list(d["key"]) == [(i << 20) | j for i in range(3) for j in range(2)]
    assert not list((tmp_path / "out").glob("*.tmp*")) and sorted(p.name for p in (tmp_path / "out").glob("*.npz")) == [
        "part-00000.npz",
        "part-00001.npz",
        "part-00002.npz",
    ]


def test_readers_of_each_format(tmp_path):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "wds", "--size", "12", "12", fmt="webdataset") == 0
    wds = pytest.importorskip("webdataset")
    samples = list(wds.WebDataset(str(tmp_path / "wds" / "part-00000.tar"), shardshuffle=False).decode("rgb8"))
    assert len(samples) == 6 and samples[0]["png"].shape == (12, 12, 3) and samples[0]["json"]["copy"] == 0
    assert int(samples[0]["cls"]) == 0 and len(samples[0]["json"]["matrix"]) == 3
    assert gen(src, tmp_path / "pq", "--size", "12", "12", fmt="parquet") == 0
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "pq" / "*.parquet"), split="train")
    assert isinstance(ds.features["image"], datasets.Image) and ds.features["label"].names == ["cats", "dogs"]
    assert ds[0]["image"].size == (12, 12) and len(ds) == 16


def test_tar_headers_are_deterministic(tmp_path):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "a", fmt="webdataset") == 0
    time.sleep(1.1)
    assert gen(src, tmp_path / "b", fmt="webdataset") == 0
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    with tarfile.open(tmp_path / "a" / "part-00000.tar") as tar:
        assert {(m.mtime, m.uid, m.uname, m.mode) for m in tar.getmembers()} == {(0, 0, "", 0o644)}


# --------------------------------------------------------------------------- resume that can't lie


@pytest.mark.parametrize(
    "change, match",
    [
        ({"--seed": ["1"]}, r"seed: 0 in the output, 1 now"),
        ({"--copies": ["3"]}, r"copies: 2 in the output, 3 now"),
        ({"--set": ["rotate=5"]}, r"config: .* in the output"),
        ({"--size": ["8", "8"]}, r"size: null in the output, \[8, 8\] now"),
    ],
)
def test_a_different_job_is_refused(tmp_path, capsys, change, match):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "out") == 0
    before = tree_bytes(tmp_path / "out")
    opts = {
        "--config": ["mild"],
        "--input": [str(src)],
        "--output": [str(tmp_path / "out")],
        "--copies": ["2"],
        "--seed": ["0"],
        "--shard-size": ["3"],
        **change,
    }
    args = ["generate", "--quiet"] + [x for k, v in opts.items() for x in (k, *v)]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds another job's output" in err and "--overwrite" in err
    import re

    assert re.search(match, err), err
    assert tree_bytes(tmp_path / "out") == before and (tmp_path / "out" / "manifest.json").is_file()


def test_overwrite_removes_only_the_jobs_own_files(tmp_path):
    src = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    assert gen(src, out) == 0
    (out / "cats" / "mine.txt").write_text("keep me")
    assert gen(src, out, "--overwrite", seed="7") == 0
    assert (out / "cats" / "mine.txt").read_text() == "keep me"
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7 and len(tree_bytes(out)) == 17


def test_changed_input_is_detected(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "out", fmt="npz") == 0
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(src / "cats" / "new.png")
    assert gen(src, tmp_path / "out", fmt="npz") == 2
    assert "the input listing changed (8 images then, 9 now" in capsys.readouterr().err
    assert gen(src, tmp_path / "out", "--overwrite", fmt="npz") == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"] == 18


def test_rerun_verifies_and_repairs(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    assert gen(src, out, fmt="npz") == 0
    ref = tree_bytes(out)
    capsys.readouterr()
    assert gen(src, out, fmt="npz") == 0
    assert "(3 of 3 shards were already complete and verified)" in capsys.readouterr().out
    (out / "part-00001.npz").write_bytes(b"garbage")  # a damaged shard is recomputed, not trusted
    (out / "part-00002.npz").unlink()
    assert gen(src, out, fmt="npz") == 0
    assert "(1 of 3 shards were already complete" in capsys.readouterr().out
    assert tree_bytes(out) == ref


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "ref", fmt="webdataset") == 0
    real, calls = engine.run_shard, []

    def flaky(job, shard):
        calls.append(shard["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job, shard)

    monkeypatch.setattr(engine, "run_shard", flaky)
    assert gen(src, tmp_path / "out", fmt="webdataset") == 130
    assert not (tmp_path / "out" / "manifest.json").exists()  # never looks complete
    monkeypatch.setattr(engine, "run_shard", real)
    assert gen(src, tmp_path / "out", fmt="webdataset") == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "ref")


def test_killed_process_resumes(tmp_path):
    src = make_tree(tmp_path / "in", n_per_class=40)
    cmd = cli_command(
        "generate",
        "--config",
        "mild",
        "--input",
        str(src),
        "--copies",
        "3",
        "--format",
        "npz",
        "--size",
        "16",
        "16",
        "--quiet",
        "--shard-size",
        "2",
    )
    assert subprocess.run([*cmd, "--output", str(tmp_path / "ref")], timeout=300).returncode == 0
    p = subprocess.Popen([*cmd, "--output", str(tmp_path / "out")])
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "out").glob("part-*.npz"))) < 3:
        time.sleep(0.05)
    p.kill()
    p.wait()
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert subprocess.run([*cmd, "--output", str(tmp_path / "out")], timeout=300).returncode == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "ref")


# --------------------------------------------------------------------------- bad places and bad data


def test_bad_places(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    assert gen(src, src / "cats" / "out") == 2
    assert "lies inside --input" in capsys.readouterr().err
    assert gen(src, src) == 2
    assert gen(src, tmp_path) == 2
    assert "--input" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert gen(src, tmp_path / "file") == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert gen(src, tmp_path / "full") == 2
    assert "is not empty and holds no affine_aug job" in capsys.readouterr().err
    assert (tmp_path / "full" / "x.txt").read_text() == "x"
    for args, match in (
        (["--copies", "0"], r"--copies must be an integer in \[1, 1048576\)"),
        (["--copies", str(2**20)], r"--copies must be"),
        (["--workers", "0"], r"--workers must be"),
    ):
        assert (
            main(
                [
                    "generate",
                    "--config",
                    "mild",
                    "--input",
                    str(src),
                    "--output",
                    str(tmp_path / "o2"),
                    "--quiet",
                    "--copies",
                    "1",
                    *args,
                ]
            )
            == 2
        )
        assert match.split("\\")[0] in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    (tmp_path / "ro").mkdir(mode=0o555)
    assert gen(src, tmp_path / "ro" / "out") == 2


def test_two_runs_on_one_output(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / jobs.LOCK, os.O_RDWR | os.O_CREAT)
    os.write(fd, str(os.getpid()).encode())  # a live holder
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert gen(src, out) == 2
        assert f"another affine-aug job (pid {os.getpid()}) is writing to" in capsys.readouterr().err
        os.pwrite(fd, b"999999999", 0)  # a holder whose pid has gone: the lock's other holders are its processes
        assert gen(src, out) == 2
        assert (
            "still locked by the processes of an affine-aug job whose driver (pid 999999999) has exited"
            in capsys.readouterr().err
        )
    finally:
        os.close(fd)
    assert gen(src, out) == 0


def test_bad_files_stop_the_job_or_are_skipped(tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    (src / "dogs" / "00.png").write_bytes(b"\x89PNG broken")
    os.mkfifo(src / "dogs" / "fifo.png")
    (src / "dogs" / "dir.png").mkdir()
    assert gen(src, tmp_path / "a") == 1
    err = capsys.readouterr().err
    assert "dir.png: named like an image but not a regular file" in err and err.count("\n") == 1
    assert gen(src, tmp_path / "b", "--skip-bad") == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["skipped_count"] == 3 and m["not_regular_files"] == ["dogs/dir.png", "dogs/fifo.png"]
    assert "00.png: not an image file Pillow can read" in m["skipped"][0]
    shutil.rmtree(src / "dogs" / "dir.png")
    os.unlink(src / "dogs" / "fifo.png")
    assert gen(src, tmp_path / "c") == 1
    assert "00.png: not an image file Pillow can read (use --skip-bad to skip bad files)" in capsys.readouterr().err
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_permission_denied_is_named(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    src = make_tree(tmp_path / "in")
    (src / "dogs" / "01.png").chmod(0)
    assert gen(src, tmp_path / "a") == 1
    assert "permission denied" in capsys.readouterr().err


def test_decompression_bomb_is_refused(tmp_path, capsys, monkeypatch):
    src = make_tree(tmp_path / "in")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert gen(src, tmp_path / "a") == 1
    assert "refused as a decompression bomb" in capsys.readouterr().err


def test_16_bit_sources_are_scaled_and_recorded(tmp_path):
    src = make_tree(tmp_path / "in")
    Image.fromarray((np.arange(20 * 20).reshape(20, 20) * 150).astype(np.uint16)).save(src / "dogs" / "deep.png")
    assert gen(src, tmp_path / "out", "--size", "20", "20", fmt="npz") == 0
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["scaled_16bit"] == ["dogs/deep.png"] and m["kept_16bit"] == []


@pytest.mark.parametrize("fmt", ["folder", "webdataset"])
def test_16_bit_sources_stay_16_bit_in_png_outputs(tmp_path, fmt):
    src = make_tree(tmp_path / "in")
    deep = (np.arange(20 * 24).reshape(20, 24) * 131).astype(np.uint16)  # values up to 62,749
    Image.fromarray(deep).save(src / "dogs" / "deep.png")
    assert (
        main(
            [
                "generate",
                "--config",
                "identity",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "out"),
                "--copies",
                "1",
                "--format",
                fmt,
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["kept_16bit"] == ["dogs/deep.png"] and m["scaled_16bit"] == []
    if fmt == "folder":
        out = Image.open(tmp_path / "out" / "dogs" / "deep_png_000.png")
    else:
        with tarfile.open(tmp_path / "out" / "part-00000.tar") as tar:
            name = next(
                n
                for n in tar.getnames()
                if n.endswith(".png")
                and "_000" in n
                and json.loads(tar.extractfile(n[:-4] + ".json").read())["source"] == "dogs/deep.png"
            )
            out = Image.open(io.BytesIO(tar.extractfile(name).read()))
    assert out.mode.startswith("I") and np.array_equal(
        np.asarray(out).astype(np.int64), deep
    )  # identity: every value kept
    # resized and augmented: the same pixels as augmenting the uint16 image directly
    assert (
        main(
            [
                "generate",
                "--config",
                "mild",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "aug"),
                "--copies",
                "1",
                "--size",
                "12",
                "16",
                "--quiet",
            ]
        )
        == 0
    )
    from affine_aug.pipeline import _augment_images
    from affine_aug.conventions import copy_key

    plan = plan_generate(src, tmp_path / "unused", config="mild", copies=1, size=(12, 16))
    index = next(r.index for shard in plan.shards for r in shard["rows"] if r.path == "dogs/deep.png")
    want, _ = _augment_images(
        [deep[..., None]], copy_key(np.array([index]), np.array([0])), aa_config("mild"), size=(12, 16)
    )
    got = np.asarray(Image.open(tmp_path / "aug" / "dogs" / "deep_png_000.png")).astype(np.int64)
    assert np.array_equal(got, want[0][..., 0].astype(np.int64)) and got.max() > 255


def aa_config(name):
    from affine_aug import load_config

    return load_config(name)


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    src = make_tree(tmp_path / "in")
    real = os.fsync

    def full(fd):  # the disk fills while the first shard is written
        if ".npz." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert gen(src, tmp_path / "out", fmt="npz") == 1
    assert "part-00000.npz: cannot write (no space left on device)" in capsys.readouterr().err
    monkeypatch.setattr(os, "fsync", real)
    assert not list((tmp_path / "out").glob("*.npz")) and not list((tmp_path / "out" / jobs.STATE / "tmp").iterdir())


# --------------------------------------------------------------------------- executors


@pytest.mark.parametrize("fmt", ["folder", "parquet"])
def test_worker_processes_write_identical_bytes(tmp_path, fmt):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "one", fmt=fmt) == 0
    assert gen(src, tmp_path / "two", "--workers", "2", fmt=fmt) == 0
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_ctrl_c_with_workers_exits_quickly(tmp_path):
    # 600 images x 64 copies: far more work than the 2 s window, so the job cannot finish first
    src = make_tree(tmp_path / "in", n_per_class=300)
    p = subprocess.Popen(
        cli_command(*generate_args(src, tmp_path / "out", "--workers", 2, "--shard-size", 4, copies=64)),
        stderr=subprocess.PIPE,
        text=True,
        # a process started with SIGINT ignored keeps ignoring it (Python's rule); pytest
        # run as a background job of a non-interactive shell has it ignored: reset it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "out").glob("dogs/*.png")):
        time.sleep(0.05)
    t = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert time.time() - t < 2.0 and p.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path):
    from affine_aug.files import write_atomic

    target = tmp_path / "x.txt"
    write_atomic(target, "old")

    def half(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    for failure in (half, lambda f: (_ for _ in ()).throw(KeyboardInterrupt)):
        with pytest.raises((OSError, KeyboardInterrupt)):
            write_atomic(target, failure)
        assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]
    assert write_atomic(target, b"new") == hashlib.sha256(b"new").hexdigest() and target.read_text() == "new"


@pytest.mark.parametrize("mode", ["durable", "big", "not durable"])
def test_write_atomic_fsyncs_and_hashes(tmp_path, monkeypatch, mode):
    from affine_aug import files

    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    if mode == "big":
        monkeypatch.setattr(files, "BIG", 10)  # from 10 bytes on: hashed while the fsync runs on a thread
    data = b"0123456789" * 1000
    digest = files.write_atomic(tmp_path / "x.bin", data, durable=mode != "not durable")
    assert digest == hashlib.sha256(data).hexdigest() and (tmp_path / "x.bin").read_bytes() == data
    assert len(synced) == (0 if mode == "not durable" else 1)
    if mode == "big":  # a failed fsync on the thread is the caller's error, and nothing is left behind
        monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
        with pytest.raises(OSError, match="Input/output error"):
            files.write_atomic(tmp_path / "y.bin", data)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_python_api(tmp_path):
    src = make_tree(tmp_path / "in")
    job = plan_generate(src, tmp_path / "out", config="mild", copies=1, size=(8, 8), fmt="npz", shard_size=4)
    assert [len(s["rows"]) for s in job.shards] == [4, 4] and job.rows == 8
    stats = jobs.run_shard(job, job.shards[0])
    assert stats["rows"] == 4 and set(stats) >= {"name", "rows", "sha256", "node", "seconds"}
    with pytest.raises(JobError, match="not empty and holds no affine_aug job"):
        run_job(job)  # run_shard alone writes no job identity: the folder is not a job's yet
    m = run_job(plan_generate(src, tmp_path / "out2", config="mild", copies=1, size=(8, 8), fmt="npz"))
    assert m["rows"] == 8
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(JobDataError, match=r"f: cannot write"):
        state._write_atomic(b"x", tmp_path / "blocker" / "f", tmp_path / "tmp")
    assert not list((tmp_path / "tmp").iterdir())


def test_driver_memory_does_not_grow_with_copies(tmp_path):
    """The job streams: 16 copies write ~34 MB more than 1 copy, the driver's peak RSS
    (everything runs in it: the in-process executor) stays within a few MB. With one
    shard holding all the rows it grows by about 86 MB, so this can fail."""
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(48):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(
            src / "a" / f"{i:02d}.png", compress_level=0
        )
    code = (
        "import resource, sys; from affine_aug.jobs import plan_generate, run_job; "
        "run_job(plan_generate(sys.argv[1], sys.argv[2], config='mild', copies=int(sys.argv[3]), size=(128, 128), "
        "fmt='npz', shard_size=2)); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    peak, size = {}, {}
    for copies in (1, 16):
        out = tmp_path / f"out{copies}"
        r = subprocess.run(
            [sys.executable, "-c", code, str(src), str(out), str(copies)], capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr[-2000:]
        peak[copies] = int(r.stdout.split()[-1]) / 1024
        size[copies] = sum(p.stat().st_size for p in out.glob("*.npz")) / 2**20
    assert size[16] - size[1] > 30
    assert peak[16] - peak[1] < 12, (peak, size)


# --------------------------------------------------------------------------- Ray


def test_unreachable_ray_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is already attached")
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "out", "--engine", "ray", "--address", "127.0.0.1:1") == 2
    err = capsys.readouterr().err
    assert "cannot start or reach Ray at 127.0.0.1:1" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def local_ray(ray_local):  # conftest's Ray in this process, under the name these tests use
    return ray_local


@pytest.mark.parametrize(
    "fmt, extra", [(f, []) for f in FORMATS] + [("webdataset", ["--png-level", "6"]), ("folder", ["--png-level", "0"])]
)
def test_ray_equals_local_byte_for_byte(local_ray, tmp_path, fmt, extra):
    src = make_tree(tmp_path / "in")
    assert gen(src, tmp_path / "local", *extra, fmt=fmt) == 0
    assert gen(src, tmp_path / "ray", "--engine", "ray", *extra, fmt=fmt) == 0
    assert local_ray.is_initialized()  # the command leaves a connection it did not make alone
    assert tree_bytes(tmp_path / "local") == tree_bytes(tmp_path / "ray")
    m = manifest(tmp_path / "ray")
    assert {s["node"] for s in m["shards"]} == {local_ray.get_runtime_context().get_node_id()}


def test_gtsrb_on_ray_equals_local(local_ray, tmp_path):
    from affine_aug.gtsrb import make_synthetic, preprocess

    make_synthetic(tmp_path / "data", tracks_per_class=1, frames=3, test_per_class=1)
    local = preprocess(tmp_path / "data", tmp_path / "local", copies=2, shard_size=16)
    on_ray = preprocess(tmp_path / "data", tmp_path / "ray", copies=2, shard_size=16, engine="ray")
    assert on_ray["files"] == local["files"] and len(on_ray["shards"]) > 3
    assert {s["node"] for s in on_ray["shards"]} == {local_ray.get_runtime_context().get_node_id()}


def test_ray_bad_data_is_one_line(local_ray, tmp_path, capsys):
    src = make_tree(tmp_path / "in")
    (src / "dogs" / "01.png").write_bytes(b"junk")
    assert gen(src, tmp_path / "out", "--engine", "ray") == 1
    err = capsys.readouterr().err
    assert "01.png: not an image file Pillow can read" in err and err.count("\n") == 1


@pytest.mark.slow
def test_two_node_cluster_on_loopback(tmp_path):
    """Two Ray nodes (1 CPU each) on 127.0.0.1: shards come from both, bytes equal local."""
    pytest.importorskip("ray")
    src = make_tree(tmp_path / "in", n_per_class=20)
    with cluster(2, tag="l") as (address, _):
        # enough work (about 5 s) that the second node's worker starts before the first
        # node has done every shard: Ray reuses a busy node's worker for queued tasks
        cmd = cli_command(
            "generate",
            "--config",
            "mild",
            "--input",
            str(src),
            "--copies",
            "4",
            "--size",
            "384",
            "384",
            "--format",
            "webdataset",
            "--quiet",
            "--shard-size",
            "2",
            "--png-level",
            "9",
        )  # the slowest PNG level: enough work per shard
        r = subprocess.run(
            [*cmd, "--output", str(tmp_path / "ray"), "--engine", "ray", "--address", address],
            env=ray_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert subprocess.run([*cmd, "--output", str(tmp_path / "local")], timeout=300).returncode == 0
        assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
        m = manifest(tmp_path / "ray")
        assert len({s["node"] for s in m["shards"]}) == 2


# ---------- gtsrb and demo never delete what they did not make


def test_gtsrb_never_deletes_foreign_folders(tmp_path, capsys):
    from affine_aug.gtsrb import make_synthetic

    make_synthetic(tmp_path / "data", tracks_per_class=1, frames=2, test_per_class=1)
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    (out / "train" / "precious.txt").write_text("mine")
    args = ["gtsrb", "--root", str(tmp_path / "data"), "--out", str(out), "--format", "folder", "--quiet"]
    assert main(args) == 2
    assert "is not empty and holds no affine_aug job" in capsys.readouterr().err
    assert (out / "train" / "precious.txt").read_text() == "mine"
    out2 = tmp_path / "out2"
    args2 = [*args[:4], str(out2), *args[5:]]
    assert main(args2) == 0
    first = sorted(p.relative_to(out2) for p in out2.rglob("*.png"))
    assert main(args2) == 0 and "shards already complete and verified" in capsys.readouterr().out
    (out2 / "train" / "note.txt").write_text("mine")
    assert main([*args2, "--seed", "5"]) == 2 and "Use --overwrite" in capsys.readouterr().err
    assert main([*args2, "--seed", "5", "--overwrite"]) == 0  # removes only the files its records list
    assert (out2 / "train" / "note.txt").read_text() == "mine"
    assert sorted(p.relative_to(out2) for p in out2.rglob("*.png")) == first  # same names, new pixels
    assert (
        main(
            [
                "gtsrb",
                "--root",
                str(tmp_path / "data"),
                "--out",
                str(tmp_path / "o3"),
                "--copies",
                str(2**20),
                "--quiet",
            ]
        )
        == 2
    )
    assert "--copies must be below 1048576" in capsys.readouterr().err


def test_gtsrb_places(tmp_path, capsys):
    from affine_aug.gtsrb import make_synthetic

    data = tmp_path / "data"
    make_synthetic(data, tracks_per_class=1, frames=2, test_per_class=1)
    base = ["gtsrb", "--root", str(data), "--quiet", "--out"]
    assert main([*base, str(data)]) == 2 and f"--out {data} is --root itself" in capsys.readouterr().err
    assert main([*base, str(tmp_path)]) == 2 and "lies inside --out" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert main([*base, str(tmp_path / "f")]) == 2 and "exists and is not a folder" in capsys.readouterr().err
    assert main([*base, str(data / "out")]) == 0  # inside the root is fine: only CSV-listed files are read
    assert main([*base, str(data / "out")]) == 0 and "already complete" in capsys.readouterr().out


def test_demo_rerun_keeps_its_data(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    data = tmp_path / "synthetic_gtsrb"
    (data / "extra.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert "reused" in capsys.readouterr().out and (data / "extra.txt").read_text() == "mine"
    (tmp_path / "other" / "synthetic_gtsrb").mkdir(parents=True)
    (tmp_path / "other" / "synthetic_gtsrb" / "x").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "other"), "--quiet"]) == 2
    assert (tmp_path / "other" / "synthetic_gtsrb" / "x").read_text() == "x"


def test_the_engine_names_no_job_kind():
    """What a row means is its kind's (job.hooks): the engine, the state, the executors and
    the formats hold no kind's name."""
    from affine_aug.jobs import engine, executors, formats, state

    for module in (engine, executors, formats, state):
        text = Path(module.__file__).read_text().lower()
        assert "gtsrb" not in text and "job.kind" not in text, module.__name__


def test_plan_rows_are_named_and_their_record_digest_is_the_lists(tmp_path):
    """Rows are named tuples whose JSON is the list a shard's record digests (``sources``):
    an output written before rows had names resumes."""
    src = make_tree(tmp_path / "in")
    job = plan_generate(src, tmp_path / "out", config="mild", copies=1, shard_size=3)
    row = job.shards[0]["rows"][0]
    assert isinstance(row, jobs.SourceRow) and (row.index, row.path, row.label) == (0, "cats/a.jpg", 0)
    assert json.dumps(row) == json.dumps([0, "cats/a.jpg", 0])
    assert state._shard_digest(job.shards[0]) == state._digest_lines(
        json.dumps(list(r), separators=(",", ":")) for r in job.shards[0]["rows"]
    )


@pytest.mark.parametrize(
    "module, name, private",
    [("affine_aug.jobs", "check_places", "_check_places"), ("affine_aug.jobs", "digest_lines", "_digest_lines")],
)
def test_deprecated_aliases_warn_and_still_work(module, name, private):
    import importlib

    from affine_aug.jobs import plan

    new = f"affine_aug.jobs.plan.{private}"
    with pytest.warns(DeprecationWarning, match=rf"^affine_aug.jobs.{name} is deprecated .*; use {new}$"):
        alias = getattr(importlib.import_module(module), name)
    assert alias is getattr(plan, private)
    with pytest.raises(AttributeError, match="module 'affine_aug.jobs' has no attribute 'nope'"):
        jobs.nope  # noqa: B018
