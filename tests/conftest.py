"""Helpers the test modules share (as torchvision's ``test/common_utils.py``): files, random
images and matrices, the command line in a subprocess, and a local Ray instance. Import the
plain helpers with ``from conftest import random_images``; fixtures need no import."""

import ctypes
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import affine_aug as aa

ROOT = Path(__file__).resolve().parents[1]  # the checkout: its package is the one the command runs


# A config that uses every distribution kind, both flips, a custom order and p < 1.
EVERY_KIND = {
    "rotate": [-30, 30],
    "scale": {"x": {"dist": "loguniform", "low": 0.5, "high": 2}, "y": [0.8, 1.2]},
    "shear": {"x": {"dist": "normal", "mean": 0, "std": 5, "low": -10, "high": 10}, "y": [-3, 3]},
    "translate": {"x": [-0.1, 0.1], "y": {"dist": "choice", "values": [-0.2, 0, 0.2]}},
    "flip": {"horizontal": 0.5, "vertical": 0.3},
    "center": {"x": [0.4, 0.6], "y": 0.5},
    "order": ["shear", "scale", "translate", "rotate"],
    "p": 0.8,
}


def write(tmp_path, content, name="c.yaml", dedent=True):
    """``content`` written to ``tmp_path / name``: bytes as they are, text dedented unless
    ``dedent=False`` (a hostile file keeps its indentation)."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content) if dedent else content)
    return path


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_images(dtype, shape, seed=0):
    """Images of ``shape``: integers over the dtype's whole range, floats standard normal.
    ``seed`` may be a Generator, whose stream then continues."""
    rng = _rng(seed)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def uint8_images(n, seed=0, ragged=False):
    """``n`` RGB uint8 images of 12x14 (with ``ragged``, heights 12, 13, 14 in turn)."""
    rng = _rng(seed)
    return [rng.integers(0, 256, (12 + (k % 3 if ragged else 0), 14, 3), dtype=np.uint8) for k in range(n)]


def random_matrices(n, size, rng, strength=1.0):
    """``n`` forward matrices for ``(H, W)`` images: any rotation, scales within e^±0.5,
    shears to 20°, shifts to 30% of the size (all times ``strength``)."""
    rng = _rng(rng)
    return aa.affine_matrix(
        size,
        rotate=rng.uniform(-180, 180, n) * strength,
        scale=np.exp(rng.uniform(-0.5, 0.5, (n, 2)) * strength),
        shear=rng.uniform(-20, 20, (n, 2)) * strength,
        translate=rng.uniform(-0.3, 0.3, (n, 2)) * np.array(size[::-1]) * strength,
    )


def sampled_matrices(config, n, size, seed=0):
    """The matrices ``config`` draws for keys ``0 .. n-1``."""
    return aa.sample(config, np.arange(n), size=size, seed=seed).matrices


@contextmanager
def simd(on: bool):
    """Every kernel call inside on (or off) the AVX2 and AVX-512 interiors (aa_set_simd, a debug
    hook)."""
    from affine_aug import kernel

    lib = kernel._lib()
    lib.aa_set_simd.argtypes, lib.aa_set_simd.restype = [ctypes.c_int], ctypes.c_int
    was = lib.aa_set_simd(int(on))
    try:
        yield
    finally:
        lib.aa_set_simd(was)


def cli_command(*args) -> list:
    """The argv of ``affine-aug ARGS``: ``python -m affine_aug.cli`` (for ``subprocess.Popen``)."""
    return [sys.executable, "-m", "affine_aug.cli", *map(str, args)]


def cli_env(env=None) -> dict:
    """The environment of the command: this one (or ``env``) with the checkout on the path."""
    return {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}


def generate_args(inp, out, *extra, copies=1, config="mild") -> list:
    """The arguments of a quiet ``affine-aug generate`` of ``inp`` into ``out``, then ``extra``."""
    return ["generate", "--config", config, "--input", str(inp), "--output", str(out), "--copies", str(copies),
            "--quiet", *map(str, extra)]  # fmt: skip


def run_cli(*args, cwd=None, timeout=300, env=None, preexec_fn=None, prefix=()):
    """``affine-aug ARGS`` as a user runs it, in a subprocess (after the ``prefix`` command,
    as ``env``); returns the finished process, its output as text."""
    return subprocess.run(
        [*prefix, *cli_command(*args)],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def one_line(r) -> str:
    """The stderr of a finished process (or that text), which must be exactly one line (no traceback)."""
    err = r if isinstance(r, str) else r.stderr
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    return err


def cli_error(r, code: int, message: str) -> None:
    """The command exited with ``code`` and its last line of stderr says ``message`` (no traceback)."""
    assert r.returncode == code and message in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr, (
        r.returncode,
        r.stderr[-3000:],
    )


@pytest.fixture(scope="module")
def ray_local():
    """Ray in this process with two CPUs (progress bars off), for the module's tests."""
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
