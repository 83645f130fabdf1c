"""The Ray executor: one Ray task per shard, and Ray's lifecycle around a job.

``start_ray`` connects (to ``address``, ``RAY_ADDRESS`` or a new local instance), after
probing the address so that a wrong one fails in seconds; ``stop_ray`` disconnects what
``start_ray`` connected. While shards run, :class:`_ClusterWatch` notices a cluster that
stops answering. A worker first checks that it sees the driver's output and inputs
(:func:`_check_shared`): storage must be shared.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..kernel import set_num_threads
from ..png import check_encoder
from .errors import JobDataError, JobError
from .state import STATE

__all__ = ["start_ray", "stop_ray"]


def start_ray(address=None, num_cpus=None, warm: bool = False) -> None:
    """Connect to Ray unless connected: the cluster at ``address`` (or ``RAY_ADDRESS``),
    else a new local instance with ``num_cpus``. With ``warm``, one tiny task per CPU
    makes Ray start the job's workers now, so that they start while the driver still
    plans (``generate`` and ``gtsrb`` do this; a worker takes about a second to start)."""
    import logging

    try:
        import ray
    except ImportError:
        raise JobError("--engine ray needs the ray extra: pip install 'affine_aug[ray]'") from None
    target = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        if num_cpus is not None and not target and num_cpus < 1:
            raise JobError(
                f"--num-cpus must be at least 1 (a Ray instance without CPUs can run no shard), got {num_cpus}"
            )
        if target and target != "auto" and "://" not in target:
            _probe(target)  # fail in seconds, not after Ray's long connection retries
        try:
            with _native_stderr_muted():  # Ray's C++ connection log lines: the error below says it in one line
                ray.init(
                    address=address,
                    num_cpus=None if address else num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except Exception as e:  # noqa: BLE001 - connection refused, bad token, ...: one clear line
            where = target or "a new local instance"
            raise JobError(f"cannot start or reach Ray at {where}: {' '.join(str(e).split())[:300]}") from None
        global _RAY_OURS
        _RAY_OURS = True
        # the other shards' errors once one has stopped the job: the job's own message says it all
        os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise JobError(
            f"the Ray cluster at {target or 'a local instance'} has no CPUs: no shard could ever be scheduled"
        )
    if warm:
        task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_ray_warm)
        for _ in range(cpus):
            task.remote()  # not waited for: the workers it starts serve the shards


class _native_stderr_muted:
    """File descriptor 2 goes to a scratch file while the block runs (what C++ libraries
    print there is dropped); Python's ``sys.stderr`` keeps writing to the terminal."""

    def __enter__(self):
        import tempfile

        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            self.scratch = tempfile.TemporaryFile()
            os.dup2(self.scratch.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.scratch.close()
        return False


_RAY_OURS = False  # whether start_ray connected (stop_ray leaves a caller's own connection alone)


def stop_ray() -> None:
    """Disconnect from Ray if :func:`start_ray` connected: at once, rather than in Ray's own
    exit hook, which is slower."""
    global _RAY_OURS
    if _RAY_OURS:
        import ray

        _RAY_OURS = False
        with _native_stderr_muted():
            ray.shutdown()


def _ray_warm() -> None:
    set_num_threads(1)


RAY_RETRIES = 3  # times Ray reruns a shard whose worker died


def _run_ray(job, todo, *, work=None, address=None, num_cpus=None, **_):
    """Shards as Ray tasks, at most two per CPU in flight; yields each shard's statistics as it ends."""
    import ray

    start_ray(address, num_cpus)
    # SPREAD: shards go round the nodes rather than filling the driver's node first
    task = ray.remote(num_cpus=1, max_retries=RAY_RETRIES, scheduling_strategy="SPREAD")(_ray_shard)
    limit = max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)  # keep every CPU busy, bound driver memory
    pending, queue, job_ref = {}, list(todo), ray.put(job)
    watch = _ClusterWatch(ray)
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                shard = queue.pop(0)
                pending[task.remote(job_ref, shard)] = shard["name"]
            ready = []
            while not ready:
                watch.check()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            name = pending.pop(ready[0])
            yield _ray_result(ray, ready[0], name)
    finally:
        watch.stop()


def _ray_result(ray, ref, name: str) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, (JobDataError, JobError)):
            raise type(cause)(str(cause)) from None
        raise JobDataError(
            f"shard {name} failed on Ray: {type(cause or e).__name__}: {' '.join(str(cause or e).split())[:200]}"
        ) from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as e:
        raise JobDataError(
            f"shard {name}: its Ray worker died {RAY_RETRIES + 1} times ({type(e).__name__}, Ray's retries "
            "are used up); the shards finished so far are kept: rerun to resume"
        ) from None
    except ray.exceptions.RayError as e:
        raise JobError(f"shard {name}: Ray failed ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


class _ClusterWatch:
    """Probes the cluster's GCS once a second on a thread; ``check()`` raises when it has
    stopped answering for three seconds (Ray itself waits a minute, then exits the process).
    Where the main thread cannot notice (stuck in Ray), ``HARD_EXIT`` (the CLI sets it) is
    called with the message."""

    HARD_EXIT = None

    def __init__(self, ray):
        import threading

        self.lost, self.halt = None, threading.Event()
        try:
            host, _, port = ray.get_runtime_context().gcs_address.rpartition(":")
            self.where = (host, int(port))
        except Exception:  # noqa: BLE001 - no address known: nothing to watch
            return
        self.thread = threading.Thread(target=self._watch, name="affine_aug-ray-watch", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        failures = 0
        while not self.halt.wait(1.0):
            try:
                socket.create_connection(self.where, timeout=1.0).close()
                failures = 0
            except OSError:
                failures += 1
            if failures >= 3:
                self.lost = (
                    f"the Ray cluster at {self.where[0]}:{self.where[1]} stopped answering during the job; "
                    "the shards finished so far are kept: rerun to resume"
                )
                if not self.halt.wait(5.0) and _ClusterWatch.HARD_EXIT is not None:
                    _ClusterWatch.HARD_EXIT(self.lost)
                return

    def check(self) -> None:
        if self.lost:
            raise JobError(self.lost)

    def stop(self) -> None:
        self.halt.set()


def _probe(address: str) -> None:
    """Fail in seconds where ``address`` is no Ray cluster: a closed port, a bad address,
    or a service that does not answer an HTTP/2 (gRPC) greeting as Ray's GCS does."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise JobError(f"--address {address}: expected HOST:PORT with a port number (as `ray start --head` prints it)")
    hint = "is `ray start --head` running there?"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5) as conn:
            conn.settimeout(5)
            conn.sendall(
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
            )  # preface, empty SETTINGS
            reply = b""
            while len(reply) < 9:
                data = conn.recv(9 - len(reply))
                if not data:
                    break
                reply += data
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise JobError(f"cannot start or reach Ray at {address}: {why} ({hint})") from None
    if len(reply) < 9 or reply[3] != 4:  # an HTTP/2 server answers with its SETTINGS frame (type 4)
        raise JobError(
            f"cannot start or reach Ray at {address}: the service there "
            f"is not a Ray cluster (it does not speak gRPC; {hint})"
        )
    _probe_gcs(address, hint)


GCS_PROBE_S = (
    15.0  # a Ray GCS answers in well under a second; other gRPC services keep Ray's client waiting for minutes
)


def _probe_gcs(address: str, hint: str) -> None:
    """Ask the gRPC service at ``address`` for a key as Ray's GCS keeps it, on a thread
    given ``GCS_PROBE_S``; errors are left to ``ray.init`` (auth, versions), only silence fails."""
    import threading

    def ask():
        try:
            from ray._raylet import GcsClient

            GcsClient(address=address).internal_kv_get(b"session_name", b"session", timeout=5)
        except Exception:  # noqa: BLE001 - an answer, even an error: a GCS is there
            pass

    with _native_stderr_muted():
        thread = threading.Thread(target=ask, name="affine_aug-gcs-probe", daemon=True)
        thread.start()
        thread.join(GCS_PROBE_S)
    if thread.is_alive():
        raise JobError(
            f"cannot start or reach Ray at {address}: the gRPC service there does not answer as Ray's GCS does "
            f"(no answer in {GCS_PROBE_S:.0f} s; {hint})"
        )


def _ray_shard(job, shard):
    from .engine import run_shard

    set_num_threads(1)  # Ray runs one task per CPU
    _check_shared(job, shard)
    return run_shard(job, shard)


def _check_shared(job, shard: dict) -> None:
    """On a Ray worker: the output and the shard's inputs must be the places the driver saw
    (the driver's token in the output's state folder; each input's size and time)."""
    state = Path(job.output) / STATE
    try:
        seen = (state / "token").read_text()
    except OSError:
        seen = None
    where = f"the Ray worker on {socket.gethostname()}"
    if seen != job.token:
        raise JobError(
            f"--output {job.output}: {where} does not see the driver's output there; storage must be shared: "
            "input and output on storage every node mounts at the same path"
        )
    for row, (size, mtime) in zip(shard["rows"], shard.get("stats", [])):
        path = os.path.join(job.input, row.path)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns) != (size, mtime):
            raise JobError(
                f"{path}: {where} sees it {'missing' if st is None else 'changed'} (unlike the driver); storage "
                "must be shared: input and output on storage every "
                "node mounts at the same path, unchanged during the job"
            )
    if job.identity.get("png_encoder"):
        try:
            check_encoder(job.identity["png_encoder"])
        except ValueError as e:
            raise JobError(f"{where}: {e}") from None
