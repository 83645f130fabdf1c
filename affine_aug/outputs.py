"""Memory for large output arrays, recycled from one call to the next.

glibc hands an allocation over its mmap threshold (32 MB at most) back to the OS as soon
as numpy frees it, so the next array of that size comes as fresh pages that the OS must
zero on first write. Smaller blocks it keeps and hands out again. A training loop that
warps a 128 x 224 x 224 x 3 float32 batch (77 MB) per step therefore paid for 77 MB of
page faults per call, and a uint8 batch (19 MB) did not: measured on this project's
2-core machine, 7 ms of a 25 ms warp at 2 threads.

:func:`empty` gives arrays of at least :data:`SMALLEST` bytes whose memory, once every
array and view using it has died, is kept for the next array of exactly that size: at
most two blocks and 512 MiB by default (:func:`set_output_cache`). Below that size it is
``np.empty``. The memory is uninitialised either way, as with ``np.empty``."""

from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["empty", "set_output_cache", "get_output_cache"]

SMALLEST = 32 << 20  # glibc's largest mmap threshold: below it, malloc recycles on its own
_limits = {"blocks": 2, "bytes": 512 << 20}
# Kept uint8 blocks, oldest first: _returned is appended to by whichever thread drops an
# array's last reference (one atomic append, no lock: that can happen inside any code, even
# while this module holds _lock); _free is touched only under _lock.
_returned: list[np.ndarray] = []
_free: list[np.ndarray] = []
_lock = threading.Lock()


def set_output_cache(blocks: int = 2, nbytes: int = 512 << 20) -> None:
    """Keep at most ``blocks`` freed output blocks of at most ``nbytes`` bytes in all for
    reuse (0 turns the recycling off and frees what is kept)."""
    for name, v in (("blocks", blocks), ("nbytes", nbytes)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"set_output_cache: {name} must be an integer >= 0, got {v!r}")
    with _lock:
        _limits["blocks"], _limits["bytes"] = int(blocks), int(nbytes)
        _collect()
        while _free and (len(_free) > _limits["blocks"] or sum(m.nbytes for m in _free) > _limits["bytes"]):
            _free.pop(0)


def get_output_cache() -> dict:
    """The limits, and the blocks kept now: ``{"blocks", "nbytes", "kept", "kept_bytes"}``."""
    kept = _free + _returned
    return {
        "blocks": _limits["blocks"],
        "nbytes": _limits["bytes"],
        "kept": len(kept),
        "kept_bytes": sum(m.nbytes for m in kept),
    }


def _collect() -> None:
    """Move the returned blocks to _free (under _lock)."""
    while True:
        try:
            _free.append(_returned.pop(0))
        except IndexError:
            return


class _Lease:
    """The base of one array on a recycled block: numpy holds it while any array or view of
    that memory lives; when it dies, the block is kept for the next call."""

    __slots__ = ("block", "__array_interface__")

    def __init__(self, block: np.ndarray, shape: tuple, dtype: np.dtype):
        self.block = block
        self.__array_interface__ = {
            "shape": shape,
            "typestr": dtype.str,
            "data": (block.ctypes.data, False),
            "version": 3,
        }

    def __del__(self):
        try:
            kept = _free + _returned  # one list operation: a consistent snapshot
            if len(kept) < _limits["blocks"] and sum(m.nbytes for m in kept) + self.block.nbytes <= _limits["bytes"]:
                _returned.append(self.block)
        except Exception:  # at interpreter exit, when this module's globals may be gone: nothing to keep
            pass


def empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, C-contiguous, on a recycled block when it is large."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SMALLEST or not _limits["blocks"] or dtype.hasobject:
        return np.empty(shape, dtype)
    block = None
    with _lock:
        _collect()
        for k in range(len(_free) - 1, -1, -1):  # the newest block of that size
            if _free[k].nbytes == nbytes:
                block = _free.pop(k)
                break
    if block is None:
        block = np.empty(nbytes, np.uint8)
    return np.asarray(_Lease(block, shape, dtype))
