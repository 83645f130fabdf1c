"""The planar kernel on torch's OpenMP team (affine_aug/torch/_cpu.py, csrc/threads.c):
the same bytes as on threads of the call's own; not where torch runs on one thread, not in
a process that may be a fork of one that ran OpenMP threads, and off with
AFFINE_AUG_TORCH_OPENMP=0."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import affine_aug as aa  # noqa: E402
from affine_aug.torch import _cpu, warp_affine  # noqa: E402

# the team is used where torch runs on OpenMP (Linux), unless this test process may itself
# be a fork of one that ran OpenMP threads (its parent maps a runtime)
OPENMP = "parallel backend: OpenMP" in torch.__config__.parallel_info() and sys.platform.startswith("linux")
OPENMP = OPENMP and not _cpu._forked_from_openmp()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="torch does not run on OpenMP here, or its parent does")


def _batch(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 3, 40, 56, generator=g)
    x = (x * 255).to(dtype) if dtype == torch.uint8 else x.to(dtype)
    m = torch.from_numpy(aa.sample({"rotate": [-40, 40], "scale": [0.7, 1.3]}, list(range(6)), (40, 56)).matrices)
    return x, m


@pytest.fixture
def threads():
    kept = aa.get_num_threads(), torch.get_num_threads()
    aa.set_num_threads(3)
    torch.set_num_threads(2)
    yield
    aa.set_num_threads(kept[0])
    torch.set_num_threads(kept[1])
    assert _cpu._use_torch_openmp() is OPENMP


def _warps(x, m, interpolation):
    """the forward, and the gradient of the images where they are float"""
    y = warp_affine(x, m, interpolation=interpolation, border="reflect")
    if not x.is_floating_point():
        return y, None
    xg = x.clone().requires_grad_(True)
    warp_affine(xg, m, interpolation=interpolation).sum().backward()
    return y, xg.grad


@needs_openmp
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
def test_the_team_gives_the_bytes_of_threads_of_the_calls_own(threads, dtype, interpolation):
    x, m = _batch(dtype)
    assert _cpu._use_torch_openmp() is True
    calls = _cpu.team_calls()
    y_team, g_team = _warps(x, m, interpolation)
    assert _cpu.team_calls() > calls
    _cpu._LIB.aa_use_openmp(None)
    calls = _cpu.team_calls()
    y_own, g_own = _warps(x, m, interpolation)
    assert _cpu.team_calls() == calls
    assert torch.equal(y_team, y_own)
    assert (g_team is None and g_own is None) or torch.equal(g_team, g_own)
    reference = aa.warp_affine(
        x.permute(0, 2, 3, 1).numpy(), m.numpy(), interpolation=interpolation, border="reflect", backend="numpy"
    )
    err = np.abs(y_team.permute(0, 2, 3, 1).double().numpy() - reference.astype(np.float64)).max()
    assert err <= (1 if dtype == torch.uint8 else 1e-4)


@needs_openmp
def test_one_torch_thread_means_threads_of_the_calls_own(threads):
    torch.set_num_threads(1)  # as in a DataLoader worker: the team has no threads to lend
    calls = _cpu.team_calls()
    x, m = _batch(torch.float32)
    warp_affine(x, m)
    assert _cpu.team_calls() == calls


@needs_openmp
def test_one_torch_thread_holds_in_every_python_thread(threads):
    # OpenMP's thread count is per thread: the kernel asks torch's, which is global
    torch.set_num_threads(1)
    calls = _cpu.team_calls()
    x, m = _batch(torch.float32)
    worker = threading.Thread(target=warp_affine, args=(x, m))
    worker.start()
    worker.join()
    assert _cpu.team_calls() == calls


def _run(script: str, tmp_path, env=None):
    """script run by a shell, so that its parent process is not this one (which maps
    torch's OpenMP runtime: the script would take itself for a fork of it)"""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    command = f'"{sys.executable}" "{path}"; status=$?; exit $status'
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def _fork_child_passes(tmp_path, before: str, child: str) -> None:
    """Runs the script `before`, forks, runs `child` in the child (which sets `ok`), and
    checks that the child ended with ok true, without hanging."""
    script = (
        "import os\n"
        + textwrap.dedent(before)
        + "pid = os.fork()\nif pid == 0:\n"
        + textwrap.indent(textwrap.dedent(child), "    ")
        + "    os._exit(0 if ok else 3)\n"
        + "_, status = os.waitpid(pid, 0)\nprint('child', os.waitstatus_to_exitcode(status))\n"
    )
    r = _run(script, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["child", "0"]


@needs_openmp
def test_a_forked_child_warps_on_threads_of_its_own_and_does_not_hang(tmp_path):
    # The parent's team is not usable in the child: its threads were not forked. (torch's
    # own parallel operators hang there, as after any of torch's: the child compares with
    # numpy.)
    before = """
        import torch, affine_aug as aa
        from affine_aug.torch import _cpu, warp_affine
        torch.set_num_threads(2); aa.set_num_threads(2)
        x = torch.rand(8, 3, 64, 64); m = torch.eye(3).repeat(8, 1, 1); m[:, 0, 1] = 0.3
        before = warp_affine(x, m)
        (torch.rand(2000, 2000) * 2).sum()  # torch's team started, and spinning
        assert _cpu.team_calls() == 1
        """
    child = """
        ok = (warp_affine(x, m).numpy() == before.numpy()).all() and _cpu.team_calls() == 1
        """
    _fork_child_passes(tmp_path, before, child)


@needs_openmp
def test_a_fork_child_that_imports_the_warper_first_keeps_threads_of_its_own(tmp_path):
    # the parent ran torch's team and never imported affine_aug.torch: the child's runtime
    # believes in threads that stayed behind in the parent
    before = """
        import torch
        torch.set_num_threads(2)
        (torch.rand(2000, 2000) * 2).sum()
        """
    child = """
        import numpy as np, affine_aug as aa
        from affine_aug.torch import _cpu, warp_affine
        aa.set_num_threads(2)
        x = np.random.default_rng(0).random((8, 3, 64, 64), dtype=np.float32)
        m = np.eye(3); m[0, 1] = 0.3
        y = warp_affine(torch.from_numpy(x), torch.from_numpy(np.repeat(m[None], 8, 0))).numpy()
        ref = aa.warp_affine(x.transpose(0, 2, 3, 1), m, backend="numpy").transpose(0, 3, 1, 2)
        ok = not _cpu.TORCH_OPENMP and np.abs(y - ref).max() < 1e-4
        """
    _fork_child_passes(tmp_path, before, child)


@needs_openmp
def test_a_process_whose_parent_maps_openmp_keeps_threads_of_its_own(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from affine_aug.torch import _cpu\nprint(_cpu.TORCH_OPENMP)\n")
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"  # this test process maps torch's runtime


def test_the_switch_keeps_threads_of_the_calls_own(tmp_path):
    r = _run(
        """
        import torch, affine_aug as aa
        from affine_aug.torch import _cpu, warp_affine
        torch.set_num_threads(2); aa.set_num_threads(2)
        m = torch.eye(3).repeat(8, 1, 1); m[:, 0, 1] = 0.3
        warp_affine(torch.rand(8, 3, 64, 64), m)
        print(_cpu.TORCH_OPENMP, _cpu.team_calls())
        """,
        tmp_path,
        env={"AFFINE_AUG_TORCH_OPENMP": "0"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "0"]


def test_a_child_process_does_not_join_the_team(tmp_path):
    r = _run(
        """
        import multiprocessing as mp

        def probe(q):
            from affine_aug.torch import _cpu
            q.put(_cpu.TORCH_OPENMP)

        if __name__ == "__main__":
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            p = ctx.Process(target=probe, args=(q,))
            p.start()
            print(q.get(timeout=60))
            p.join()
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_without_a_runtime_the_kernel_keeps_threads_of_its_own(threads, monkeypatch):
    monkeypatch.setattr(_cpu, "_torch_openmp", lambda: None)
    assert _cpu._use_torch_openmp() is False
    calls = _cpu.team_calls()
    x, m = _batch(torch.float32)
    warp_affine(x, m)
    assert _cpu.team_calls() == calls
