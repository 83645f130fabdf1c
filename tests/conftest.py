"""Helpers the test modules share (as torchvision's ``test/common_utils.py``): files, random
images and matrices, and a local Ray instance. Import the plain helpers with
``from conftest import random_images``; fixtures need no import."""

import textwrap

import numpy as np
import pytest

import affine_aug as aa


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


@pytest.fixture(scope="module")
def ray_local():
    """Ray in this process with two CPUs (progress bars off), for the module's tests."""
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
