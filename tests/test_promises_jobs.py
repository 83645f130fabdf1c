"""The job engine's promises, kept under attack, checked as a user meets them: the
``affine-aug`` command in a subprocess, real kills, the real readers of each format."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import generate_args, cli_command, cli_env, one_line, run_cli


def images(root: Path, names, size=(10, 12), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for rel in names:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(p, format="PNG")
    return root


def gen(inp, out, *extra, copies=1, cwd=None, **kw):
    return run_cli(*generate_args(inp, out, "--shard-size", 2, *extra, copies=copies), cwd=cwd, **kw)


def files_under(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def without_dac():
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    the command (run by root here) meets permission bits as any user does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        assert libc.prctl(24, cap, 0, 0, 0) == 0  # PR_CAPBSET_DROP


# ---------- item 1: never replace what we did not write


def test_overwrite_refuses_an_output_that_holds_no_job(tmp_path):
    src = images(tmp_path / "in", ["cat/img000.png", "cat/img001.png"])
    out = tmp_path / "o"
    (out / "cat").mkdir(parents=True)
    (out / "manifest.json").write_text('{"mine":1}')
    (out / "cat" / "img000_png_000.png").write_text("x")
    before = files_under(out)
    r = gen(src, out, "--overwrite")
    assert r.returncode == 2
    assert f"--output {out} is not empty and holds no affine_aug job" in one_line(r)
    assert "--overwrite replaces only the output of an affine_aug job" in r.stderr
    assert files_under(out) == before


def test_overwrite_never_replaces_a_file_no_record_lists(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png", "dog/b.png"])
    out = tmp_path / "o"
    assert gen(src, out).returncode == 0
    images(src, ["dog/new.png"], seed=1)  # the input changes: a new job, whose file the user already has
    (out / "dog" / "new_png_000.png").write_text("the user's own file")
    (out / "dog" / "note.txt").write_text("mine")
    r = gen(src, out, "--overwrite")
    assert r.returncode == 2
    assert f"{out / 'dog' / 'new_png_000.png'}: exists and no record of the job in --output lists it" in one_line(r)
    assert (out / "dog" / "new_png_000.png").read_text() == "the user's own file"
    (out / "dog" / "new_png_000.png").unlink()
    assert gen(src, out, "--overwrite").returncode == 0
    assert (out / "dog" / "note.txt").read_text() == "mine"


def test_demo_refuses_to_clobber_a_users_files(tmp_path):
    d = tmp_path / "D"
    (d / "gtsrb32").mkdir(parents=True)
    (d / "gtsrb32" / "manifest.json").write_text("mine")
    (d / "gtsrb32" / "train.npz").write_text("mine too")
    r = run_cli("demo", "--out", d, "--quiet")
    assert r.returncode == 2 and "gtsrb32 is not empty and holds no affine_aug job" in one_line(r)
    assert (d / "gtsrb32" / "manifest.json").read_text() == "mine" and (
        d / "gtsrb32" / "train.npz"
    ).read_text() == "mine too"
    e = tmp_path / "E"
    (e / "previews").mkdir(parents=True)
    (e / "previews" / "overview.png").write_text("my picture")
    r = run_cli("demo", "--out", e, "--quiet")
    assert r.returncode == 2 and f"{e / 'previews' / 'overview.png'} exists and this demo did not write it" in one_line(
        r
    )
    assert (e / "previews" / "overview.png").read_text() == "my picture"
    (e / "previews" / "overview.png").unlink()
    assert run_cli("demo", "--out", e, "--quiet").returncode == 0
    assert run_cli("demo", "--out", e, "--quiet").returncode == 0  # its own files: replaced on a rerun


# ---------- item 7: an interrupted earlier job leaves nothing behind


def test_overwrite_removes_a_killed_jobs_files(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    src = images(tmp_path / "in", [f"{c}/{k:03d}.png" for c in ("cat", "dog") for k in range(60)], size=(48, 48))
    out = tmp_path / "out"
    cmd = cli_command(*generate_args(src, out, "--shard-size", 40, copies=3))
    p = subprocess.Popen(cmd, env=cli_env())
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.png"))) < 10:
        time.sleep(0.01)
    p.kill()  # kill -9 in the middle of a shard
    p.wait()
    assert 0 < len(list(out.rglob("*.png"))) < 360
    r = gen(src, out, "--overwrite", copies=2)
    assert r.returncode == 0, r.stderr
    rows = json.loads((out / "manifest.json").read_text())["rows"]
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert rows == 240 and len(pngs) == 240 and not [p for p in pngs if p.endswith("_002.png")]
    assert len(torchvision.datasets.ImageFolder(str(out))) == 240


# --------------------------------------------------------------------------- item 3: the documented readers, as written


def test_documented_readers_read_a_finished_output(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    src = images(tmp_path / "in", ["cat/a.png", "cat/b.png", "dog/c.png"])
    for fmt in ("folder", "npz", "webdataset", "parquet"):
        assert gen(src, tmp_path / fmt, "--format", fmt, "--size", "8", "8", copies=2).returncode == 0
    monkeypatch.chdir(tmp_path)  # the calls exactly as the README writes them, on "out"-style relative paths
    folder = torchvision.datasets.ImageFolder("folder")
    assert (
        folder.classes == ["cat", "dog"] and len(folder) == 6 and [y for _, y in folder.samples] == [0, 0, 0, 0, 1, 1]
    )
    import pyarrow.parquet

    table = pyarrow.parquet.read_table("parquet")
    assert table.num_rows == 6 and set(table.column_names) >= {"image", "label", "source", "copy", "key", "matrix"}
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files="parquet/*.parquet", split="train")
    assert len(ds) == 6 and ds.features["label"].names == ["cat", "dog"]
    wds = pytest.importorskip("webdataset")
    samples = list(wds.WebDataset("webdataset/part-{00000..00001}.tar", shardshuffle=False).decode("rgb8"))
    assert len(samples) == 6 and samples[0]["png"].shape == (8, 8, 3)
    with np.load("npz/part-00000.npz") as d:
        assert d["x"].shape == (4, 8, 8, 3)
    assert json.loads(Path("parquet/_manifest.json").read_text())["rows"] == 6
    assert json.loads(Path("folder/manifest.json").read_text())["rows"] == 6


def test_resume_and_identity_after_the_state_is_packed(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png", "cat/b.png", "dog/c.png"])
    out = tmp_path / "out"
    assert gen(src, out, "--format", "parquet").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".affine_aug.json",
        ".affine_aug.lock",
        "_manifest.json",
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    r = gen(src, out, "--format", "parquet")
    assert r.returncode == 0 and "(2 of 2 shards were already complete and verified)" in r.stdout
    (out / "part-00001.parquet").write_bytes(b"damaged")
    r = gen(src, out, "--format", "parquet")
    assert r.returncode == 0 and "(1 of 2 shards were already complete and verified)" in r.stdout
    r = gen(src, out, "--format", "parquet", "--seed", "3")
    assert r.returncode == 2 and "seed: 0 in the output, 3 now" in one_line(r)
    assert gen(src, out, "--format", "folder", "--overwrite").returncode == 0  # the parquet job's files all go
    assert sorted(p.name for p in out.iterdir()) == [
        ".affine_aug.json",
        ".affine_aug.lock",
        "cat",
        "dog",
        "manifest.json",
    ]


# --------------------------------------------------------------------------- item 14: a dead worker, Ctrl-C, the lock


def _children(pid: int) -> list:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _busy_job(tmp_path, n=120, shard_size=4):
    src = images(tmp_path / "in", [f"c/{k:03d}.png" for k in range(n)], size=(64, 64))
    cmd = cli_command(*generate_args(src, tmp_path / "out", "--workers", 2, "--shard-size", shard_size, copies=40))
    p = subprocess.Popen(
        cmd,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (list((tmp_path / "out").glob("c/*.png")) and len(_children(p.pid)) >= 2):
        time.sleep(0.02)
    return cmd, p


def test_a_killed_worker_fails_its_shard_within_seconds(tmp_path):
    _, p = _busy_job(tmp_path)
    victim = _children(p.pid)[0]
    os.kill(victim, signal.SIGKILL)  # as the out-of-memory killer would
    t = time.time()
    _, err = p.communicate(timeout=60)
    assert time.time() - t < 10 and p.returncode == 1, err
    one_line(err)
    assert f"its worker process (pid {victim}) died (killed by SIGKILL" in err and "rerun to resume" in err


def test_ctrl_c_always_stops_the_driver(tmp_path):
    _, p = _busy_job(tmp_path)
    t = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert time.time() - t < 3 and p.returncode == 130
    assert err.strip().count("\n") == 0 and "interrupted" in err


def test_a_killed_driver_leaves_no_worker_holding_the_lock(tmp_path):
    cmd, p = _busy_job(tmp_path, shard_size=30)  # shards of some seconds: the workers are busy when the driver dies
    workers = _children(p.pid)
    p.kill()
    p.wait()
    r = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr  # old code: "another affine-aug job (pid <the dead driver>) is writing to"
    assert not [
        w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
    ]


# --------------------------------------------------------------------------- items 4, 5, 6: what the listing reads


def test_unreadable_class_folder_is_an_error_or_skipped_and_counted(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png", "dog/b.png", "dog/c.png"])
    os.chmod(src / "dog", 0)
    try:
        r = gen(src, tmp_path / "out", preexec_fn=without_dac)
        assert r.returncode == 1 and f"{src / 'dog'}: cannot read the folder (permission denied)" in one_line(r)
        r = gen(src, tmp_path / "out2", "--skip-bad", preexec_fn=without_dac)
        assert r.returncode == 0, r.stderr
        m = json.loads((tmp_path / "out2" / "manifest.json").read_text())
        assert (
            m["rows"] == 1 and m["skipped_count"] == 1 and f"{src / 'dog'}: cannot read the folder" in m["skipped"][0]
        )
    finally:
        os.chmod(src / "dog", 0o755)


def test_symlinks_inside_the_input_are_followed_the_rest_listed(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png", "dog/b.png", "shared/s1.png"])
    outside = images(tmp_path / "elsewhere", ["x.png", "d/y.png"])
    (src / "cat" / "sub").symlink_to(src / "shared")  # a linked folder inside the input
    (src / "cat" / "b_link.png").symlink_to(src / "dog" / "b.png")  # a linked file inside the input
    (src / "dog" / "far.png").symlink_to(outside / "x.png")  # outside: listed, not read
    (src / "dog" / "far_dir").symlink_to(outside / "d")
    (src / "dog" / "loop").symlink_to(src / "dog")
    r = gen(src, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "cat/a_png_000.png",
        "cat/b_link_png_000.png",
        "cat/sub/s1_png_000.png",
        "dog/b_png_000.png",
        "shared/s1_png_000.png",
    ]
    assert m["links_not_followed"] == [
        f"dog/far.png -> {outside / 'x.png'} (outside the input)",
        f"dog/far_dir -> {outside / 'd'} (outside the input)",
        f"dog/loop -> {src / 'dog'} (a loop)",
    ]
    assert m["skipped_count"] == 3


def test_extensions_differing_only_in_case_do_not_collide(tmp_path):
    src = images(tmp_path / "in", ["cat/A.PNG", "cat/A.png", "cat/b.Png"])
    r = gen(src, tmp_path / "out", copies=2)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    pngs = sorted(p.name for p in (tmp_path / "out" / "cat").iterdir())
    assert m["rows"] == 6 and len(pngs) == 6
    assert pngs == [
        "A_PNG_000.png",
        "A_PNG_001.png",
        "A_png_000.png",
        "A_png_001.png",
        "b_Png_000.png",
        "b_Png_001.png",
    ]


# --------------------------------------------------------------------------- crashes, tracebacks, unclear messages


def test_unreadable_input_root_and_job_record(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png"])
    os.chmod(src, 0)
    try:
        r = gen(src, tmp_path / "out", preexec_fn=without_dac)
        assert r.returncode == 2 and f"--input {src}: cannot read the folder (permission denied)" in one_line(r)
    finally:
        os.chmod(src, 0o755)
    out = tmp_path / "out"
    assert gen(src, out).returncode == 0
    assert gen(src, out, "--seed", "1", "--overwrite").returncode == 0
    r = gen(src, out, "--seed", "1")  # unpack the record
    record = out / ".affine_aug.json"
    os.chmod(record, 0)
    r = gen(src, out, "--seed", "1", preexec_fn=without_dac)
    assert r.returncode == 2 and f"{record}: cannot read the job's record (permission denied)" in one_line(r)
    os.chmod(record, 0o644)


@pytest.mark.parametrize(
    "content, match",
    [
        ("[1, 2]", "the job's record should be a JSON object, it holds a list"),
        ('{"job": {"seed"', "the job's record is damaged"),
        ('{"job": 1}', "not a job record of affine_aug"),
    ],
)
def test_damaged_job_records_are_named(tmp_path, content, match):
    src = images(tmp_path / "in", ["cat/a.png"])
    out = tmp_path / "out"
    assert gen(src, out).returncode == 0
    (out / ".affine_aug.json").write_text(content)
    r = gen(src, out)
    assert r.returncode == 2 and f"{out / '.affine_aug.json'}: " in one_line(r) and match in r.stderr
    (out / ".affine_aug.json").unlink()
    if content.startswith("{"):
        return  # an object: job.json holds an identity (compared, not trusted)
    (out / ".affine_aug").mkdir()
    (out / ".affine_aug" / "job.json").write_text(content)
    r = gen(src, out)
    assert r.returncode == 2 and f"{out / '.affine_aug' / 'job.json'}: " in one_line(r)


def test_a_class_folder_named_like_the_manifest(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png", "manifest.json/b.png"])
    r = gen(src, tmp_path / "out")
    assert (
        r.returncode == 2 and "a class folder named manifest.json would meet the job's own manifest.json" in one_line(r)
    )
    assert gen(src, tmp_path / "npz", "--format", "npz", "--size", "8", "8").returncode == 0  # no folders there
    assert gen(src, tmp_path / "npz", "--format", "npz", "--size", "8", "8").returncode == 0


def test_preview_out_that_cannot_be_written(tmp_path):
    r = run_cli("preview", "mild", "--out", tmp_path, "--n", "1")
    assert r.returncode == 2 and f"--out {tmp_path}: is a folder" in one_line(r)
    r = run_cli("preview", "mild", "--out", "/proc/p.png", "--n", "1")
    assert r.returncode == 2 and "--out /proc/p.png: cannot write" in one_line(r)


def test_non_utf8_file_name_with_parquet(tmp_path):
    src = images(tmp_path / "in", ["cat/a.png"])
    bad = os.fsencode(src / "cat") + b"/b\xff.png"
    with open(bad, "wb") as f:
        f.write((src / "cat" / "a.png").read_bytes())
    r = gen(src, tmp_path / "out", "--format", "parquet")
    assert r.returncode == 1 and "b\\udcff.png: the file name is not valid UTF-8" in one_line(r)
    r = gen(src, tmp_path / "out", "--format", "parquet", "--skip-bad")
    assert r.returncode == 0 and json.loads((tmp_path / "out" / "_manifest.json").read_text())["skipped_count"] == 1
    assert gen(src, tmp_path / "folder").returncode == 0  # other formats keep the name as it is
    assert os.path.exists(os.fsencode(tmp_path / "folder" / "cat") + b"/b\xff_png_000.png")


def test_gtsrb_messages(tmp_path):
    from affine_aug.gtsrb import make_synthetic

    data = tmp_path / "data"
    make_synthetic(data, tracks_per_class=1, frames=2, test_per_class=1)
    r = run_cli("gtsrb", "--root", data, "--out", tmp_path / "o", "--shard-size", "0", "--quiet")
    assert r.returncode == 2 and "--shard-size must be in [1, 100000], got 0" in one_line(r)
    csv = data / "GTSRB" / "Final_Training" / "Images" / "00003" / "GT-00003.csv"
    csv.write_bytes(csv.read_bytes() + "00009_00009.ppm;30;30;5;5;25;25;3\n".encode("latin-1") + b"\xe9\n")
    r = run_cli("gtsrb", "--root", data, "--out", tmp_path / "o", "--quiet")
    assert r.returncode == 1 and f"{csv}:5: not UTF-8 text (byte 0xe9" in one_line(r)


def test_num_cpus_zero_and_bad_addresses_are_refused_in_seconds(tmp_path):
    pytest.importorskip("ray")
    import http.server
    import threading

    src = images(tmp_path / "in", ["cat/a.png"])
    t = time.time()
    r = gen(src, tmp_path / "out", "--engine", "ray", "--num-cpus", "0")
    assert r.returncode == 2 and "--num-cpus must be at least 1" in one_line(r)
    r = gen(src, tmp_path / "out", "--engine", "ray", "--address", "127.0.0.1:notaport")
    assert r.returncode == 2 and "--address 127.0.0.1:notaport: expected HOST:PORT with a port number" in one_line(r)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        r = gen(src, tmp_path / "out", "--engine", "ray", "--address", address, timeout=60)
        assert (
            r.returncode == 2
            and f"cannot start or reach Ray at {address}: the service there is not a Ray cluster" in one_line(r)
        )
    finally:
        server.shutdown()
    assert time.time() - t < 60


def test_a_grpc_service_that_is_not_ray_is_one_line(tmp_path):
    """An HTTP/2 server that greets as gRPC servers do (SETTINGS) and then says nothing."""
    pytest.importorskip("ray")
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))

    threading.Thread(target=serve, daemon=True).start()
    try:
        port = listener.getsockname()[1]
        src = images(tmp_path / "in", ["cat/a.png"])
        t = time.time()
        r = gen(
            src,
            tmp_path / "out",
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            timeout=120,
            env={"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")},
        )
        assert (
            r.returncode == 2
            and f"cannot start or reach Ray at 127.0.0.1:{port}: the gRPC service there does not answer" in one_line(r)
        )
        assert time.time() - t < 40
    finally:
        listener.close()


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def test_ctrl_c_during_the_imports_is_one_line(tmp_path):
    """The console script's entry point (what `affine-aug` runs), interrupted while the
    library's imports run: from when numpy's first extension is mapped, then later (the
    job is long enough, 1,000 copies, that the last signals still find it running)."""
    src = images(tmp_path / "in", ["cat/a.png"], size=(128, 128))
    code = "import sys, _affine_aug_cli; sys.exit(_affine_aug_cli.main())"
    for k, delay in enumerate((0.0, 0.03, 0.08, 0.15, 0.25)):
        p = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "generate",
                "--config",
                "mild",
                "--input",
                str(src),
                "--output",
                str(tmp_path / f"o{k}"),
                "--copies",
                "1000",
                "--quiet",
            ],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.time() + 30
        while time.time() < deadline and "numpy" not in _maps(p.pid):
            time.sleep(0.002)
        time.sleep(delay)
        assert p.poll() is None, f"the job ended before the signal at {delay} s: make it longer"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 130 and err.strip().count("\n") == 0 and "interrupted" in err, (
            delay,
            p.returncode,
            err[-2000:],
        )
