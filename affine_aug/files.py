"""Writing files so that nothing is ever half-written: the one atomic writer of the library.

Every file affine_aug writes (configs, images, shards, records, manifests) goes through
:func:`write_atomic`: the bytes go to a temporary file (by default ``.NAME.PID.partial``
next to the target; jobs keep theirs in ``OUT/.affine_aug/tmp/``), are flushed and
fsynced, and the file is renamed onto the target. A reader sees the old file or the new
one, never a part; on any failure the temporary file is removed and the target is left
as it was. Temporary names end in ``.partial``, so they never match an output glob.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["sha256_file", "write_atomic", "write_atomic_many"]

BIG = 64 << 20  # bytes from which the checksum is computed during the fsync


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(fd: int, failed: list) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        failed.append(e)


def write_atomic(target, data, tmp_dir=None, durable: bool = True) -> str:
    """Write ``data`` (bytes, str, or a callable given the open binary file) to ``target``
    atomically; return the sha256 of what was written. Raises ``OSError`` (the target is
    untouched and no temporary file is left). ``durable=False`` skips the fsync: for
    intermediate files that are checked against their sha256 before any use (a crash may
    then lose them, never make them pass for complete)."""
    target = Path(target)
    tmp_dir = Path(tmp_dir) if tmp_dir is not None else target.parent
    tmp = tmp_dir / f".{target.name}.{os.getpid()}.partial"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if isinstance(data, (bytes, str)):
                f.write(data.encode() if isinstance(data, str) else data)
            else:
                data(f)
            f.flush()
            if not durable:
                digest = sha256_file(tmp)
            elif f.tell() < BIG:
                os.fsync(f.fileno())
                digest = sha256_file(tmp)
            else:  # hash while the kernel writes it back (both release the GIL)
                failed: list = []
                sync = threading.Thread(target=_fsync, args=(f.fileno(), failed))
                sync.start()
                try:
                    digest = sha256_file(tmp)
                finally:
                    sync.join()
                if failed:
                    raise failed[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        return digest
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _naming(e: OSError, target: Path) -> OSError:
    return OSError(e.errno, e.strerror or str(e), str(target))


def write_atomic_many(items, tmp_dir, threads: int = 8) -> list:
    """Write many files as :func:`write_atomic` does each, their fsyncs overlapped.

    ``items``: ``(target, bytes)`` pairs, an iterable (each pair may be made while the ones
    before it are synced). Each file's bytes go to a temporary file in ``tmp_dir``, which a
    pool of threads fsyncs while the next ones are written; only when every file is on disk
    are they renamed onto their targets, in order. So a target appears only with all its
    bytes durable, as with :func:`write_atomic`, and the file system can commit many
    fsyncs at once instead of one after another. Returns the sha256 of each file; raises
    ``OSError`` whose ``filename`` is the target, every temporary file removed.
    """
    tmp_dir = Path(tmp_dir)
    written, syncs = [], []  # (target, temporary file, sha256); the fsync of each
    pool = ThreadPoolExecutor(threads, thread_name_prefix="affine_aug-fsync")
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        for k, (target, data) in enumerate(items):
            target = Path(target)
            tmp = tmp_dir / f".{k}.{target.name}.{os.getpid()}.partial"
            written.append((target, tmp, hashlib.sha256(data).hexdigest()))
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
            except OSError as e:
                raise _naming(e, target) from None
            syncs.append(pool.submit(_fsync_path, tmp))
        for sync, (target, _, _) in zip(syncs, written):
            try:
                sync.result()
            except OSError as e:
                raise _naming(e, target) from None
        for target, tmp, _ in written:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            except OSError as e:
                raise _naming(e, target) from None
        return [digest for _, _, digest in written]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for _, tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(wait=True)
