"""An epoch number shared with the worker processes started from this one.

DataLoader workers hold a copy of the dataset made when they start; with
``persistent_workers=True`` they keep it for the whole run, so an epoch stored as a plain
attribute never reaches them. :class:`SharedEpoch` keeps the number in shared memory:
workers started by fork inherit the memory, workers started by spawn or forkserver
receive it while they are started, and every worker reads the value live. Pickled at any
other time (``copy.deepcopy``, a cache fingerprint, a file) it travels as a plain
number, and the copy is independent.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

from .conventions import check_epoch

__all__ = ["SharedEpoch"]


class SharedEpoch:
    """An epoch number that this process sets and its worker processes read live."""

    def __init__(self, epoch: int = 0) -> None:
        self._value = multiprocessing.RawValue("q", check_epoch(epoch))

    def get(self) -> int:
        return int(self._value.value)

    def set(self, epoch: int) -> None:
        self._value.value = check_epoch(epoch)

    def __getstate__(self) -> dict:
        if multiprocessing.context.get_spawning_popen() is not None:  # a worker being started: share the memory
            return {"value": self._value}
        return {"epoch": self.get()}

    def __setstate__(self, state: dict) -> None:
        self._value = state["value"] if "value" in state else multiprocessing.RawValue("q", state["epoch"])
