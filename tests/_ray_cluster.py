"""A real Ray cluster on loopback for the tests: ``ray start`` nodes of one CPU each, each in
its own session (its processes form one group, stopped by group), with a short
``--temp-dir`` and one ``RAY_AUTH_MODE`` for nodes and drivers."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RAY_BIN = Path(sys.executable).with_name("ray")


def ray_env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}


@contextlib.contextmanager
def cluster(nodes: int = 2, cwd=None, tag: str = "c"):
    """Yields ``(address, groups)``: the head's ``127.0.0.1:PORT`` and each node's process group."""
    port = 20000 + (os.getpid() * 7 + ord(tag[0])) % 20000
    temps = [Path(f"/tmp/r{tag}{os.getpid() % 10000}{k}") for k in range(nodes)]
    groups = []
    try:
        for k in range(nodes):
            args = (
                ["--head", "--port", str(port), "--include-dashboard", "false"]
                if k == 0
                else ["--address", f"127.0.0.1:{port}"]
            )
            p = subprocess.Popen(
                [str(RAY_BIN), "start", *args, "--num-cpus", "1", "--temp-dir", str(temps[k]), "--disable-usage-stats"],
                env=ray_env(),
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            groups.append(p.pid)
            _, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-2000:]
        yield f"127.0.0.1:{port}", groups
    finally:
        stop(groups)
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


def stop(groups) -> None:
    """Stop only the processes these nodes started: their process groups (Ray's agents
    rename themselves, so their command lines no longer name the temp dirs)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        time.sleep(1)
