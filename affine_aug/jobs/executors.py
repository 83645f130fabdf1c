"""Where shards run: in the driver's process, or on local forked processes (the Ray
executor is :mod:`affine_aug.jobs.ray_executor`). Every executor calls the same
``work(job, shard)`` (the engine's ``run_shard``) and yields each shard's statistics as
it ends, so their bytes are identical."""

from __future__ import annotations

import os
import socket
import sys

from ..kernel import set_num_threads
from ..pipeline import BadImage
from .errors import JobDataError, JobError


def executor_for(executor: str, workers: int):
    """The executor function for ``run_job``'s ``executor`` and ``workers``."""
    if executor == "ray":
        from .ray_executor import _run_ray

        return _run_ray
    return _run_processes if workers > 1 else _run_inline


def _run_inline(job, todo, *, work, **_):
    for shard in todo:
        yield work(job, shard)


def _run_processes(job, todo, *, work, workers, lock=None, **_):
    """Shards on ``workers`` forked processes, one shard at a time each. A worker that dies
    (killed, out of memory) fails its shard at once, named; Ctrl-C stops them all."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx, queue, busy = mp.get_context("fork"), list(todo), {}
    try:
        for _ in range(min(workers, len(queue))):
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_loop, args=(job, child, os.getpid(), lock, work), daemon=True)
            proc.start()
            child.close()
            busy[conn] = (proc, queue.pop(0))
            conn.send(busy[conn][1])
        while busy:
            ready = set(wait(list(busy) + [proc.sentinel for proc, _ in busy.values()]))
            for conn, (proc, shard) in list(busy.items()):
                if conn not in ready and proc.sentinel not in ready:
                    continue
                kind, value = _receive(conn, proc)
                if kind == "died":
                    raise JobDataError(
                        f"shard {shard['name']}: its worker process (pid {proc.pid}) died ({value}) while "
                        "writing it; the shards finished so far are kept: rerun to resume"
                    ) from None
                if kind == "error":
                    raise value
                if queue:
                    busy[conn] = (proc, queue.pop(0))
                    conn.send(busy[conn][1])
                else:
                    conn.send(None)
                    del busy[conn]
                yield value
    finally:
        for _conn, (proc, _) in busy.items():
            proc.kill()
        for p in mp.active_children():
            p.join(timeout=5)


def _receive(conn, proc):
    """``("ok", stats)``, ``("error", exception)`` or ``("died", how)`` from one worker."""
    try:
        if conn.poll():
            return conn.recv()
    except (EOFError, OSError):
        pass
    proc.join(timeout=5)
    code = proc.exitcode
    if code is not None and code < 0:
        import signal

        how = f"killed by {signal.Signals(-code).name}" + (", as the out-of-memory killer does" if code == -9 else "")
    else:
        how = f"exit status {code}"
    return "died", how


def _worker_loop(job, conn, parent: int, lock, work) -> None:
    """A forked worker: shards in, statistics (or the error) out, until told to stop.
    It dies with its driver, and drops its copy of the output's lock so that a killed
    driver's output is free as soon as the driver is gone."""
    import signal

    _die_with_parent(parent)
    if lock is not None:
        os.close(lock)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops its workers
    set_num_threads(1)  # one process per core: the kernel's threads must not oversubscribe
    while True:
        try:
            shard = conn.recv()
        except (EOFError, OSError):
            return
        if shard is None:
            return
        try:
            reply = ("ok", work(job, shard))
        except BaseException as e:  # noqa: BLE001 - handed to the driver, which reports it
            reply = (
                "error",
                e
                if isinstance(e, (JobError, JobDataError, BadImage))
                else JobDataError(f"shard {shard['name']}: {type(e).__name__}: {e}"),
            )
        conn.send(reply)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), and check that the
    parent is not already gone."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def node_name() -> str:
    """Where this shard runs: the Ray node's id on a Ray worker, else the host name."""
    ray = sys.modules.get("ray")  # a Ray worker has imported it; importing it here would slow every local worker
    try:
        if ray is not None and ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not a Ray process: the host name says enough
        pass
    return socket.gethostname()
