"""Joining a GTSRB npz job's shard parts into one ``SPLIT.npz`` per split.

Each shard of an npz job writes its part into the output's state folder
(``.affine_aug/parts/``); as soon as a split's last part is written, :class:`_SplitJoiner`
streams its parts, in plan order, into ``OUT/SPLIT.npz`` on a thread, records the join
(``.affine_aug/splits/SPLIT.json``: the file, its sha256 and the parts' sha256) and
deletes the parts. A resumed job counts a joined part as finished while its split file
still matches its record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..jobs.errors import JobDataError, JobError
from ..jobs.formats import write_npz
from ..jobs.plan import Job
from ..jobs.state import STATE, _verified, _write_atomic, _write_json


def _stored_array(path: Path, name: str) -> np.ndarray:
    """Array ``name`` of an npz this job wrote (stored, not compressed), read straight from
    its offset: no zip CRC pass, as the file's sha256 was checked (resume) or it was just
    written."""
    import zipfile

    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        info = zf.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return np.load(path)[name]
        f.seek(info.header_offset + 26)
        skip = int.from_bytes(f.read(2), "little") + int.from_bytes(f.read(2), "little")  # name, extra field
        f.seek(skip, os.SEEK_CUR)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran or dtype.hasobject:
            return np.load(path)[name]
        a = np.empty(shape, dtype)
        if f.readinto(memoryview(a.reshape(-1)).cast("B")) != a.nbytes:
            raise JobDataError(f"{path}: truncated part")
        return a


def _column_chunks(paths, col, stop=None):
    for path in paths:
        if stop is not None and stop.is_set():
            raise JobError("stopped")
        yield _stored_array(path, col)


def _join_split(job: Job, results: dict, state: Path, split: str, stop=None) -> tuple[str, str]:
    """gtsrb npz: stream one split's parts, in plan order, into ``OUT/SPLIT.npz`` (one part
    in memory at a time), record it, then delete the parts. Returns ``(file, sha256)``."""
    out = Path(job.output)
    names = [s["name"] for s in job.shards if s["split"] == split]
    parts = {n: results[n]["sha256"] for n in names}
    record_path = state / "splits" / f"{split}.json"
    target = out / f"{split}.npz"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("parts") != parts or not _verified(target, record.get("sha256"), {}):
        paths = [out / results[n]["file"] for n in names]
        rows = sum(results[n]["rows"] for n in names)
        with np.load(paths[0]) as first:
            columns = {
                col: (first[col].dtype, (rows, *first[col].shape[1:]), _column_chunks(paths, col, stop))
                for col in ("x", "y", "source", "copy", "key", "matrix")
            }
        record = {
            "file": target.name,
            "parts": parts,
            "sha256": _write_atomic(lambda f: write_npz(f, columns), target, state / "tmp"),
        }
        _write_json(record_path, record)
    for n in names:
        (out / results[n]["file"]).unlink(missing_ok=True)
    return target.name, record["sha256"]


class _SplitJoiner:
    """Joins each gtsrb npz split on a thread as soon as its last part is written, while
    the shards of the later splits still run (the join is I/O and hashing, which release
    the GIL). ``add(name)`` after each shard; ``finish()`` waits and returns
    ``{file: sha256}`` in plan order; ``stop()`` abandons a join between two parts (its
    temporary file is removed; a stopped run joins again when resumed)."""

    def __init__(self, job: Job, results: dict, state: Path):
        import queue
        import threading

        self.job, self.results, self.state = job, results, state
        self.splits = list(dict.fromkeys(s["split"] for s in job.shards))
        self.left = {
            split: {s["name"] for s in job.shards if s["split"] == split} - set(results) for split in self.splits
        }
        self.of = {s["name"]: s["split"] for s in job.shards}
        self.files, self.error = {}, None
        self.ready, self.halt = queue.Queue(), threading.Event()
        self.thread = threading.Thread(target=self._work, name="affine_aug-join", daemon=True)
        self.thread.start()
        for split in self.splits:
            if not self.left[split]:
                self.ready.put(split)

    def add(self, name: str) -> None:
        if self.error is not None:
            raise self.error
        left = self.left[self.of[name]]
        left.discard(name)
        if not left:
            self.ready.put(self.of[name])

    def _work(self) -> None:
        while len(self.files) < len(self.splits):
            split = self.ready.get()
            if split is None:
                return
            try:
                name, sha = _join_split(self.job, self.results, self.state, split, self.halt)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                self.error = e
                return
            self.files[split] = (name, sha)

    def finish(self) -> dict:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return dict(self.files[split] for split in self.splits)

    def stop(self) -> None:
        self.halt.set()
        self.ready.put(None)
        self.thread.join(timeout=2.0)


def _kept_in_join(job, shard: dict, record: dict, verified) -> bool:
    """Whether a finished part (its file deleted once joined) lives on in its split's
    file: the split's record lists the part's sha256, and the file still matches."""
    state = Path(job.output) / STATE
    try:
        split = json.loads((state / "splits" / f"{shard['split']}.json").read_text())
    except (OSError, ValueError):
        split = {}
    return split.get("parts", {}).get(shard["name"]) == record["sha256"] and verified(
        Path(job.output) / split["file"], split["sha256"]
    )
