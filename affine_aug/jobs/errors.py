"""The job engine's two errors, and the reason an ``OSError`` gives, in words."""

from __future__ import annotations

from ..errors import AffineAugError

__all__ = ["JobDataError", "JobError"]


class JobError(AffineAugError):
    """A job that cannot run as asked: identity mismatch, locked output, bad places, an unusable Ray cluster."""


class JobDataError(AffineAugError):
    """Bad data, a failed write or a failed shard while running: names the file or the shard."""


def _why(e: OSError) -> str:
    return "no space left on device" if e.errno == 28 else (e.strerror or str(e)).lower()
