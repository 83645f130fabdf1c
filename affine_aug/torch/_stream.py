"""The keyed sampler and a transform's call-order stream as torch custom ops.

``torch.compile`` cannot trace the numpy sampler, nor the process checks of a transform's
stream (``os.getpid``, the DataLoader worker's seed); as custom ops both run at run
time, inside a compiled graph as in eager code, so ``RandomAffine`` compiles with
``fullgraph=True`` and draws exactly what it draws eagerly:

    affine_aug::sample     (config text, seed, ids, H, W) → (N, 3, 3) float64 CPU matrices;
                           a pure function of its arguments (keyed draws)
    affine_aug::next_keys  (stream, n, seed) → the next ``n`` sample keys of the stream
                           (int64 CPU), advancing it in place

Integers of 64 bits (seeds, keys) travel as int64 holding their bits: ``-1`` is
``2**64 - 1``. A stream is an int64 CPU tensor ``[pid, seed, counter]``: the process that
owns it, the seed of its draws in that process and the next key. A new process (a
DataLoader worker, a forked or spawned copy) starts its own stream at key 0, with the
worker's seed mixed in.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from ..config import AffineConfig, load_config
from ..sampling import _splitmix64, sample

__all__ = ["as_bits", "config_text", "new_stream", "next_keys", "sample_matrices"]

_PID, _SEED, _COUNTER = range(3)
_CONFIGS: dict[str, AffineConfig] = {}  # configs by their text (each parsed once per process)
_CONFIGS_KEPT = 64


def as_bits(value: int) -> int:
    """A 64-bit unsigned integer as the int64 with its bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _unsigned(bits: int) -> int:
    return bits + (1 << 64) if bits < 0 else bits


def config_text(config: AffineConfig) -> str:
    """The canonical text of a config (sorted JSON of its ``to_dict``): what the sample op
    receives. The config is remembered under it, so this process never parses it back."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    if text not in _CONFIGS:
        if len(_CONFIGS) >= _CONFIGS_KEPT:
            _CONFIGS.clear()
        _CONFIGS[text] = config
    return text


def _config(text: str) -> AffineConfig:
    config = _CONFIGS.get(text)
    if config is None:  # another process made the text: parse it once here
        config = _CONFIGS[text] = load_config(json.loads(text))
    return config


def _combine(*values: int) -> int:
    """A 64-bit seed from several integers (SplitMix64 chaining)."""
    h = np.array([0x6A09E667F3BCC908], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in values:
            h = _splitmix64(h ^ np.array([v & (2**64 - 1)], dtype=np.uint64))
    return int(h[0])


def new_stream() -> torch.Tensor:
    """A stream that has not drawn yet (its first draw starts it in the calling process)."""
    return torch.zeros(3, dtype=torch.int64)


def advance(stream: torch.Tensor, n: int, seed: int | None) -> tuple[int, int]:
    """``(seed, first key)`` of the next ``n`` draws of ``stream``, which moves on by ``n``.

    ``seed``: the transform's seed, or ``None`` for ``torch.initial_seed()``. Read when the
    stream starts in a process: in a DataLoader worker it is mixed with the worker's seed
    and id, so workers never repeat each other; a copy in a new process restarts at key 0.
    """
    s = stream.numpy()  # shares the tensor's memory
    pid = os.getpid()
    if s[_PID] != pid:
        info = torch.utils.data.get_worker_info()
        base = seed if seed is not None else torch.initial_seed()
        if s[_PID] != 0 or info is not None:
            s[_COUNTER] = 0
        s[_PID], s[_SEED] = pid, as_bits(base if info is None else _combine(base, info.seed, info.id))
    start = int(s[_COUNTER])
    s[_COUNTER] = start + n
    return _unsigned(int(s[_SEED])), start


@torch.library.custom_op("affine_aug::next_keys", mutates_args=("stream",))
def _next_keys_op(stream: torch.Tensor, n: int, seed: int | None) -> torch.Tensor:
    """The next ``n`` keys of ``stream`` (int64), advanced in place; ``seed`` as int64 bits."""
    _, start = advance(stream, n, None if seed is None else _unsigned(seed))
    return torch.arange(start, start + n, dtype=torch.int64)


@_next_keys_op.register_fake
def _next_keys_fake(stream, n, seed):
    return stream.new_empty((n,))


def next_keys(stream: torch.Tensor, n: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys, seed)``: the next ``n`` keys of ``stream`` and the seed they are drawn
    under (a 1-element int64 tensor, bits), as tensors that torch.compile traces."""
    keys = torch.ops.affine_aug.next_keys(stream, n, None if seed is None else as_bits(seed))
    return keys, stream[_SEED : _SEED + 1]


@torch.library.custom_op("affine_aug::sample", mutates_args=())
def _sample_op(config: str, seed: torch.Tensor, ids: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """:func:`affine_aug.sample` of the config with text ``config`` (:func:`config_text`),
    seed ``seed`` (one int64, bits) and keys ``ids`` (int64 bits) for ``(height, width)``
    images: ``(N, 3, 3)`` float64 forward pixel matrices on the CPU."""
    keys = ids.detach().cpu().numpy().astype(np.int64, copy=False).view(np.uint64)
    batch = sample(_config(config), keys, size=(height, width), seed=_unsigned(int(seed.reshape(-1)[0])))
    return torch.from_numpy(batch.matrices)


@_sample_op.register_fake
def _sample_fake(config, seed, ids, height, width):
    return torch.empty((ids.shape[0], 3, 3), dtype=torch.float64, device="cpu")


def sample_matrices(config_text_: str, seed: torch.Tensor, ids: torch.Tensor, size) -> torch.Tensor:
    """The sample op: ``(N, 3, 3)`` float64 CPU matrices for keys ``ids`` under ``seed``."""
    return torch.ops.affine_aug.sample(config_text_, seed, ids, size[0], size[1])
