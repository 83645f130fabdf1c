"""A job's state in its output: the lock, the records, resume, and the packing of the
state folder.

    OUT/.affine_aug.lock    held by the running job (its pid written in it)
    OUT/.affine_aug/        the state while the job runs: job.json (the identity),
                            targets.json (every file the job will write), token (Ray),
                            shards/ (one record per finished shard), splits/ (records of
                            files joined from shards), parts/ (shard files waiting to be
                            joined), tmp/ (temporary files)
    OUT/.affine_aug.json    the state of a complete job, packed into one file

Only files that these records list are ever replaced or deleted.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from ..files import sha256_file, write_atomic, write_atomic_many
from .errors import JobDataError, JobError, _why
from .plan import _digest_lines

STATE = ".affine_aug"  # the job's state folder inside the output, while the job runs
PACKED = ".affine_aug.json"  # the state of a complete job, packed into one file (no folder left in the way of readers)
LOCK = ".affine_aug.lock"  # held by the running job
OWN_NAMES = ("manifest.json", "_manifest.json")


def _write_atomic(data_or_writer, target: Path, tmp_dir: Path, durable: bool = True) -> str:
    """:func:`affine_aug.files.write_atomic` with the job's error: :class:`JobDataError` naming the target."""
    try:
        return write_atomic(target, data_or_writer, tmp_dir, durable)
    except OSError as e:
        why = "no space left on device" if e.errno == 28 else (e.strerror or str(e))
        raise JobDataError(f"{target}: cannot write ({why})") from None


def _write_many(items, tmp_dir: Path) -> list:
    """:func:`affine_aug.files.write_atomic_many` with the job's error: :class:`JobDataError` naming the target."""
    try:
        return write_atomic_many(items, tmp_dir)
    except OSError as e:
        why = "no space left on device" if e.errno == 28 else (e.strerror or str(e))
        raise JobDataError(f"{e.filename}: cannot write ({why})") from None


def _write_json(path: Path, data) -> None:
    _write_atomic(json.dumps(data, indent=1, sort_keys=True), path, path.parent)


def _read_json(path: Path, expect: type = dict):
    """A record of ours, or a :class:`JobError` naming it."""
    kind = "object" if expect is dict else "list"
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise JobError(f"{path}: cannot read the job's record ({_why(e)})") from None
    except ValueError as e:
        raise JobError(
            f"{path}: the job's record is damaged ({e}); choose a new --output, or delete this output yourself"
        ) from None
    if not isinstance(data, expect):
        raise JobError(
            f"{path}: the job's record should be a JSON {kind}, it holds a {type(data).__name__}; "
            "choose a new --output, or delete this output yourself"
        )
    return data


def _shard_digest(shard: dict) -> str:
    """What a shard's record calls its ``sources``: the digest of its plan rows as JSON lists."""
    return _digest_lines(json.dumps(r, separators=(",", ":")) for r in shard["rows"])


def _record_shard(state: Path, shard: dict, stats: dict) -> None:
    """Save a finished shard's record: its statistics and the digest of its rows."""
    _write_json(state / "shards" / f"{shard['name']}.json", {**stats, "sources": _shard_digest(shard)})


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key == "input_digest":
                out.append(
                    f"the input listing changed ({old.get('images')} images "
                    f"then, {new.get('images')} now, or files changed)"
                )
            elif key != "images":
                a, b = json.dumps(old.get(key), sort_keys=True), json.dumps(new.get(key), sort_keys=True)
                out.append(f"{key}: {a[:80]} in the output, {b[:80]} now")
    return out


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


def _lock(out: Path) -> int:
    """Hold ``OUT/.affine_aug.lock`` for the job. The holder's pid is written in it; a
    holder that has just died (its worker processes end with it) is waited for briefly."""
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + 3.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip()
            if _alive(other) or time.monotonic() > deadline:
                os.close(fd)
                if _alive(other):
                    raise JobError(
                        f"another affine-aug job (pid {other}) is writing "
                        f"to {out}; wait for it or use another output folder"
                    ) from None
                raise JobError(
                    f"{out} is still locked by the processes of an affine-aug job whose driver (pid {other or '?'}) "
                    "has exited; wait for them to end, or use another output folder"
                ) from None
            time.sleep(0.1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _records(state: Path) -> dict:
    """``{"shards": {name: record}, "splits": {split: record}}`` as saved (damaged ones left out)."""
    found = {}
    for kind in ("shards", "splits"):
        found[kind] = {}
        for path in sorted((state / kind).glob("*.json")) if (state / kind).is_dir() else []:
            try:
                rec = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict):
                found[kind][path.stem] = rec
    return found


def _listed_files(state: Path) -> set:
    """Output files that the records in ``state`` list: the planned files of the job
    (``targets.json``, written before its first shard) and those of its finished shards."""
    listed = set()
    try:
        targets = json.loads((state / "targets.json").read_bytes())
        listed |= {t for t in targets if isinstance(t, str)} if isinstance(targets, list) else set()
    except (OSError, ValueError):
        pass
    for kind in _records(state).values():
        for rec in kind.values():
            files = [rec.get("file")] + list(rec.get("files") or {})
            listed |= {f for f in files if isinstance(f, str)}
    return listed


def _pack(out: Path, state: Path) -> None:
    """A complete job's state becomes one file, ``OUT/.affine_aug.json``: the output then
    holds only what its readers expect (``ImageFolder`` takes every folder for a class)."""
    packed = {
        "job": _read_json(state / "job.json"),
        "targets": _read_json(state / "targets.json", list),
        **_records(state),
    }
    _write_atomic(json.dumps(packed, sort_keys=True, separators=(",", ":")), out / PACKED, state / "tmp")
    shutil.rmtree(state)


def _unpack(out: Path, state: Path) -> None:
    """The state of a complete job back into its folder (the rerun's resume and identity checks read it)."""
    path = out / PACKED
    data = _read_json(path)
    try:
        parts = {"job.json": data["job"], "targets.json": data["targets"]}
        for kind in ("shards", "splits"):
            for name, rec in data[kind].items():
                if "/" in name or name.startswith(".") or not isinstance(rec, dict):
                    raise TypeError(name)
                parts[f"{kind}/{name}.json"] = rec
    except (KeyError, TypeError, AttributeError):
        raise JobError(
            f"{path}: not a job record of affine_aug; choose a new --output, or delete this output yourself"
        ) from None
    for rel, value in parts.items():
        _write_json(state / rel, value)
    path.unlink()


def _foreign_entries(out: Path) -> list:
    """Names in the output besides the job's own state and lock and their temporary files."""
    own = {STATE, PACKED, LOCK}
    return [n for n in sorted(os.listdir(out)) if n not in own and not _own_partial(n)]


def _refuse_if_foreign(out: Path) -> None:
    try:
        foreign = _foreign_entries(out)
    except OSError as e:
        raise JobError(f"--output {out}: cannot read the folder ({_why(e)})") from None
    if foreign:
        raise JobError(
            f"--output {out} is not empty and holds no affine_aug job: choose an empty or new folder "
            "(--overwrite replaces only the output of an affine_aug job)"
        )


def _own_partial(name: str) -> bool:
    return name.endswith(".partial") and any(name.startswith(f".{n}.") for n in (*OWN_NAMES, PACKED))


def _refuse_foreign_files(out: Path, state: Path, planned: list) -> None:
    """Stop before the first shard if a file the job would write is there and no record of
    ours lists it: only files our records list are ever replaced or deleted."""
    listed = _listed_files(state)
    for rel in planned:
        path = os.path.join(out, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            raise JobError(
                f"{path}: a folder where the job writes a file; move it away, or choose an empty or new --output"
            )
        if rel not in listed and os.path.lexists(path):
            raise JobError(
                f"{path}: exists and no record of the job in --output lists it (the job replaces only files it "
                "wrote); move it away, or choose an empty or new --output"
            )


def _verified(path: Path, sha256: str, cache: dict) -> bool:
    if path not in cache:
        try:
            cache[path] = sha256_file(path) if path.is_file() else None
        except OSError:
            cache[path] = None
    return cache[path] == sha256


def _finished(job, state: Path) -> dict:
    """Records of shards already written whose bytes still match their sha256 (a shard file
    already joined into a bigger one counts when the job's kind finds that file whole)."""
    done, cache = {}, {}
    out = Path(job.output)

    def verified(path: Path, sha256: str) -> bool:
        return _verified(path, sha256, cache)

    for shard in job.shards:
        path = state / "shards" / f"{shard['name']}.json"
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_text())
            ok = rec["sources"] == _shard_digest(shard)
            if ok and "file" in rec:
                ok = verified(out / rec["file"], rec["sha256"]) or job.hooks.kept_in_join(job, shard, rec, verified)
            elif ok:
                ok = all(verified(out / rel, h) for rel, h in rec["files"].items())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            done[shard["name"]] = rec
    return done


def _remove_previous(out: Path, state: Path) -> int:
    """Delete what a previous job here made (its records list every file, planned or written,
    so a killed run's files go too), then the folders that this leaves empty; nothing else."""
    removed, parents = 0, set()
    for rel in sorted(_listed_files(state) | {"manifest.json"}):  # manifest.json: the name every older job used
        path = out / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed += 1
            parents.add(path.parent)
    for rel in ("targets.json", "token"):
        (state / rel).unlink(missing_ok=True)
    for kind in ("shards", "splits", "parts"):
        shutil.rmtree(state / kind, ignore_errors=True)
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while folder != out and out in folder.parents:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
            folder = folder.parent
    return removed


def _prepare(job, out: Path, state: Path, overwrite: bool, planned: list, manifest: str) -> None:
    """Check the output against the job (identity, foreign files) and write the job's records
    (``planned``: every file the job will write; ``manifest``: its manifest's name)."""
    try:
        names = os.listdir(out)
    except OSError as e:
        raise JobError(f"--output {out}: cannot read the folder ({_why(e)})") from None
    for name in names:
        if _own_partial(name):
            (out / name).unlink(missing_ok=True)
    if os.path.lexists(out / PACKED):
        _unpack(out, state)
    for stale in (state / "tmp").glob("*.partial") if (state / "tmp").is_dir() else []:
        stale.unlink(missing_ok=True)
    previous = state / "job.json"
    if os.path.lexists(previous):
        diff = _differences(_read_json(previous), job.identity)
        if diff and not overwrite:
            raise JobError(
                f"--output {out} holds another job's output: " + "; ".join(diff) + ". Use --overwrite to replace it"
            )
        if diff:
            _remove_previous(out, state)
    else:
        _refuse_if_foreign(out)
    _refuse_foreign_files(out, state, planned)
    (state / "tmp").mkdir(parents=True, exist_ok=True)
    _write_json(previous, job.identity)
    _write_json(state / "targets.json", planned)
    (out / manifest).unlink(missing_ok=True)


def _write_token(state: Path) -> str:
    """A fresh token in the output's state folder: a worker that does not read it there
    does not see the driver's output (see :func:`_check_shared`)."""
    import secrets

    token = secrets.token_hex(16)
    _write_atomic(token, state / "token", state / "tmp")
    return token
