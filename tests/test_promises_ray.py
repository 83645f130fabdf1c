"""The job engine on a real two-node Ray cluster on loopback, as a user meets it: the
cluster started from another folder, the command in a subprocess, real kills."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _ray_cluster import cluster, ray_env
from conftest import generate_args, cli_command, cli_env, one_line, run_cli
from test_promises_jobs import images

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

LONG = 5.0  # seconds: the warm job of the Ctrl-C test lasts at least this


def run(*args, cwd, timeout=300, prefix=()):
    return run_cli(*args, cwd=cwd, timeout=timeout, env=ray_env(), prefix=prefix)


def files_of(out: Path) -> dict:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith((".affine_aug", "manifest"))
    }


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    started_in = tmp_path_factory.mktemp("ray_started_here")  # the workers' working folder: not the driver's
    with cluster(2, cwd=started_in, tag="p") as (address, groups):
        yield address


def gen_args(inp, out, *extra, copies=2):
    return generate_args(inp, out, "--shard-size", 2, *extra, copies=copies)


def test_relative_paths_are_the_drivers(head, tmp_path):
    """Old code: the workers resolved both paths against the folder of `ray start`."""
    images(tmp_path / "in1", [f"{c}/{k}.png" for c in ("a", "b") for k in range(3)])
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = run(*gen_args("../in1", "relout", "--engine", "ray", "--address", head), cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((work / "relout" / "manifest.json").read_text())
    assert m["rows"] == 12 and m["input"] == str(tmp_path / "in1")
    assert run(*gen_args("../in1", "local"), cwd=work).returncode == 0
    assert files_of(work / "relout") == files_of(work / "local") and len(files_of(work / "local")) == 12


def test_gtsrb_relative_root_on_ray(head, tmp_path):
    from affine_aug.gtsrb import make_synthetic

    make_synthetic(tmp_path / "gt", tracks_per_class=1, frames=2, test_per_class=1)
    work = tmp_path / "w"
    work.mkdir()
    r = run(
        "gtsrb",
        "--root",
        "../gt",
        "--out",
        "g_ray",
        "--quiet",
        "--engine",
        "ray",
        "--address",
        head,
        "--shard-size",
        "16",
        cwd=work,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert run("gtsrb", "--root", "../gt", "--out", "g_local", "--quiet", cwd=work).returncode == 0
    assert files_of(work / "g_ray") == files_of(work / "g_local")


@pytest.mark.parametrize("private", ["output", "input"])
def test_storage_that_workers_do_not_share_is_refused(head, tmp_path, private):
    """The driver runs in its own mount namespace with a tmpfs the Ray workers do not see."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (mount namespaces)")
    src = images(tmp_path / "in", ["a/1.png", "a/2.png", "b/3.png"])
    mine = tmp_path / "mine"
    mine.mkdir()
    inp, out = (src, mine / "out") if private == "output" else (mine / "in", tmp_path / "out")
    script = f'mount -t tmpfs tmpfs {mine} && cp -a {src} {mine}/in && exec "$@"'
    r = run(
        *gen_args(inp, out, "--engine", "ray", "--address", head),
        cwd=tmp_path,
        prefix=("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"),
    )
    assert r.returncode == 2, r.stderr[-3000:]
    assert "storage must be shared" in one_line(r)
    assert not list(mine.iterdir()) and not (tmp_path / "out" / "manifest.json").exists()


def test_ray_data_reads_a_parquet_output(tmp_path):
    """As the README writes it (a relative path: a local instance; Ray Data's workers on a
    cluster resolve paths in their own folder, as ours did before)."""
    images(tmp_path / "in", ["a/1.png", "b/2.png", "b/3.png"])
    assert run(*gen_args("in", "out", "--format", "parquet", "--size", "8", "8"), cwd=tmp_path).returncode == 0
    code = (
        "import ray; ray.init(num_cpus=1, log_to_driver=False, include_dashboard=False); "
        "print(ray.data.read_parquet('out').count())"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(ray_env()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and r.stdout.split()[-1] == "6", r.stderr[-3000:]


def _ray_shard_workers() -> list:
    """Pids of the Ray workers now running a shard (Ray titles a busy worker with its task)."""
    pids = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmd.read_bytes().startswith(b"ray::_ray_shard"):
                pids.append(int(cmd.parent.name))
        except OSError:
            pass
    return pids


def test_a_shard_out_of_retries_is_one_line(head, tmp_path):
    images(tmp_path / "in", [f"a/{k:02d}.png" for k in range(8)], size=(64, 64))
    args = gen_args("in", "out", "--engine", "ray", "--address", head, "--size", "512", "512", copies=30)
    p = subprocess.Popen(
        cli_command(*args),
        cwd=tmp_path,
        env=cli_env(ray_env()),
        stderr=subprocess.PIPE,
        text=True,
    )
    kills, deadline = 0, time.time() + 200
    while p.poll() is None and time.time() < deadline:
        for pid in _ray_shard_workers():
            try:
                os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would, again and again
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1, err[-3000:]
    one_line(err)
    assert "its Ray worker died 4 times" in err and "Ray's retries are used up" in err and kills >= 4


def test_ctrl_c_near_the_end_of_a_ray_job(head, tmp_path):
    # a job long enough that its imports (about 1.5 s) are a small part of it: grown until
    # its warm run lasts LONG seconds, whatever the machine's speed
    images(tmp_path / "in", [f"a/{k}.png" for k in range(4)], size=(256, 256))

    def job_time(name, copies):
        t = time.time()
        args = gen_args("in", name, "--engine", "ray", "--address", head, copies=copies)
        assert run(*args, cwd=tmp_path).returncode == 0
        return time.time() - t

    copies = 24
    job_time("cold", copies)  # the later runs are warm, as the interrupted ones are
    took = job_time("warm", copies)
    for step in range(4):
        if took >= LONG:
            break
        copies = math.ceil(copies * max(2.0, LONG / took))
        took = job_time(f"longer{step}", copies)
    codes = []  # Ctrl-C from the middle of the job to just after its end
    for k, part in enumerate((0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05)):
        delay = max(1.5, part * took)
        args = gen_args("in", f"out{k}", "--engine", "ray", "--address", head, copies=copies)
        p = subprocess.Popen(
            cli_command(*args),
            cwd=tmp_path,
            env=cli_env(ray_env()),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        codes.append(p.returncode)
        if p.returncode == 0:
            assert f"wrote {4 * copies} images" in out and not err
        else:
            assert p.returncode == 130 and err.strip().count("\n") == 0 and "interrupted" in err, (
                delay,
                p.returncode,
                err[-2000:],
            )
    assert 130 in codes, (codes, took, copies)


def test_the_cluster_dying_mid_job_is_one_line(tmp_path):
    images(tmp_path / "in", [f"a/{k:02d}.png" for k in range(16)], size=(64, 64))
    with cluster(1, cwd=tmp_path, tag="d") as (address, groups):
        args = gen_args("in", "out", "--engine", "ray", "--address", address, "--size", "384", "384", copies=20)
        p = subprocess.Popen(
            cli_command(*args),
            cwd=tmp_path,
            env=cli_env(ray_env()),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline and not _ray_shard_workers():
            time.sleep(0.1)
        for group in groups:
            os.killpg(group, signal.SIGKILL)
        t = time.time()
        _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and time.time() - t < 30, (p.returncode, err[-3000:])
    assert err.count("\n") == 1 and "stopped answering during the job" in err, err[-3000:]
