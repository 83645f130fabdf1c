"""Offline generation as a job: plan → run_shard → executor → manifest.

    plan_generate(...)   metadata only: the input listing, its digest, the job's identity
                         and shards of source images (keys follow ``conventions.copy_key``)
    run_shard(job, s)    read, augment, encode and write one shard atomically; returns only
                         its statistics (rows, sha256, node, files)
    run_job(job, ...)    lock the output, check the identity, verify finished shards, run
                         the rest in-process, in local processes or as Ray tasks, then write
                         ``manifest.json`` (last: an output without it is not complete)

Every executor calls the same ``run_shard``, so their bytes are identical. Where things go:

    OUT/manifest.json            identity, shards (name, rows, sha256, node), skipped files
    OUT/part-NNNNN.{npz,tar,parquet}   or, for ``folder``, OUT/<class>/<path>_<ext>_<copy>.png
    OUT/.affine_aug/job.json     the identity, written before the first shard
    OUT/.affine_aug/shards/      one record per finished shard (the resume state)
    OUT/.affine_aug/tmp/         temporary files (never match an output glob), cleaned
    OUT/.affine_aug/lock         held by the running job

Python use::

    from affine_aug.jobs import plan_generate, run_job
    job = plan_generate("images/", "out/", config="mild", copies=4, size=(64, 64), fmt="webdataset")
    manifest = run_job(job, executor="processes", workers=2)
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import socket
import stat
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .config import load_config
from .conventions import BORDER_OFFLINE, MAX_COPIES, copy_key
from .pipeline import IMAGE_EXTENSIONS, BadImage, augment_images, read_image

__all__ = ["FORMATS", "Job", "JobError", "plan_generate", "run_job", "run_shard"]

FORMATS = ("folder", "npz", "webdataset", "parquet")
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
SHARD_SUFFIX = {"npz": ".npz", "webdataset": ".tar", "parquet": ".parquet"}
STATE = ".affine_aug"


class JobError(Exception):
    """A job that cannot run as asked (exit 2): identity mismatch, locked output, bad places."""


class JobDataError(Exception):
    """Bad data or a failed write while running (exit 1): names the file."""


@dataclass(frozen=True)
class Job:
    """A planned job: plain data (picklable, sent to workers and Ray tasks as it is).

    ``shards[k]`` is ``{"name": "part-00000", "rows": [[index, relative path, label], ...]}``;
    copy ``j`` of source ``index`` uses sample key ``copy_key(index, j)``.
    """

    input: str
    output: str
    identity: dict
    classes: list
    shards: list
    ignored: dict = field(default_factory=dict)  # unsupported extension -> count
    not_regular: list = field(default_factory=list)  # image-named entries that are not files
    skip_bad: bool = False
    quality: int = 95

    @property
    def rows(self) -> int:
        return sum(len(s["rows"]) for s in self.shards) * self.identity["copies"]


# ----------------------------------------------------------------------------- planning


def _listing(root: Path) -> tuple[list, list, dict, list]:
    """Classes, (relative path, label) of every image, ignored extensions, non-regular entries."""
    if not root.is_dir():
        raise JobError(f"--input {root}: not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise JobError(f"--input {root}: expected class subfolders (an ImageFolder tree)")
    files, ignored, odd = [], {}, []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for entry in sorted(filenames + [d for d in dirnames if Path(d).suffix.lower() in IMAGE_EXTENSIONS]):
                path = Path(dirpath) / entry
                rel = path.relative_to(root).as_posix()
                suffix = path.suffix.lower()
                if suffix not in IMAGE_EXTENSIONS:
                    if not entry.startswith("."):
                        ignored[suffix or "(none)"] = ignored.get(suffix or "(none)", 0) + 1
                    continue
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode):
                    odd.append(rel)
                    continue
                files.append((rel, label, st.st_size, st.st_mtime_ns))
    dirnames_as_images = {rel for rel in odd}
    files.sort(key=lambda f: f[0])
    return classes, files, ignored, sorted(dirnames_as_images)


def _digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _check_places(inp: Path, out: Path) -> None:
    i, o = inp.resolve(), out.resolve()
    if o == i or i in o.parents:
        raise JobError(f"--output {out} lies inside --input {inp}: it would be read back as input on the next run")
    if o in i.parents:
        raise JobError(f"--input {inp} lies inside --output {out}: choose an output folder outside the input")
    if out.exists() and not out.is_dir():
        raise JobError(f"--output {out}: exists and is not a folder")


def plan_generate(input, output, *, config, copies: int, size=None, fmt: str = "folder", image_format: str = "png",
                  quality: int = 95, seed: int | None = None, border: str = BORDER_OFFLINE, shard_size: int = 64,
                  skip_bad: bool = False, overrides=None) -> Job:
    """Plan the augmentation of an ImageFolder tree (metadata only; nothing is read or written).

    Copy ``j`` of image ``i`` (images sorted by their path relative to ``input``) uses
    sample key ``(i << 20) | j``. ``size=(H, W)`` resizes every output in the same
    resampling; without it each image keeps its size (``folder`` only).
    """
    from . import __version__

    cfg = load_config(config, overrides=overrides)
    inp, out = Path(input), Path(output)
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies < MAX_COPIES:
        raise JobError(f"--copies must be an integer in [1, {MAX_COPIES}), got {copies!r}")
    if fmt not in FORMATS:
        raise JobError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if image_format not in IMAGE_FORMATS:
        raise JobError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if fmt == "npz" and size is None:
        raise JobError("--format npz stores one array per shard: give --size H W")
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if min(size) < 1 or max(size) > 1 << 14:
            raise JobError(f"--size must be two integers in [1, 16384], got {size}")
    if not 1 <= quality <= 100:
        raise JobError(f"--quality must be in [1, 100], got {quality}")
    if not 1 <= shard_size <= 100_000:
        raise JobError(f"--shard-size must be in [1, 100000], got {shard_size}")
    if border not in ("edge", "constant"):
        raise JobError(f"--border must be 'edge' or 'constant', got {border!r}")
    _check_places(inp, out)
    classes, files, ignored, odd = _listing(inp)
    if odd and not skip_bad:
        raise JobDataError(f"{inp / odd[0]}: named like an image but not a regular file (use --skip-bad to skip it)")
    if not files:
        raise JobError(f"--input {inp}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders")
    seed = seed if seed is not None else (cfg.seed or 0)
    identity = {
        "library": "affine_aug",
        "version": __version__,
        "config": cfg.to_dict(),
        "seed": int(seed),
        "copies": copies,
        "size": list(size) if size else None,
        "format": fmt,
        "image_format": image_format if fmt != "npz" else None,
        "quality": quality if fmt != "npz" and image_format != "png" else None,
        "border": border,
        "shard_size": shard_size,
        "images": len(files),
        "input_digest": _digest(f"{rel}\t{size_}\t{mtime}" for rel, _, size_, mtime in files),
        "key": "copy j of image i (sorted by relative path) uses sample key (i << 20) | j",
    }
    rows = [[i, rel, label] for i, (rel, label, _, _) in enumerate(files)]
    shards = [{"name": f"part-{k:05d}", "rows": rows[s : s + shard_size]} for k, s in enumerate(range(0, len(rows), shard_size))]
    return Job(str(inp), str(out), identity, classes, shards, ignored, odd, skip_bad, quality)


# ----------------------------------------------------------------------------- one shard


def target_name(rel: str, copy: int, image_format: str) -> str:
    """Output path of copy ``copy`` of input ``rel`` (``cls/sub/a.png`` → ``cls/sub/a_png_003.png``).

    Unique for any input tree: the folders are kept and the source extension is part of
    the name (the extensions read contain no ``_``), so ``a.png`` and ``a.jpg`` never meet.
    """
    p = Path(rel)
    return (p.parent / f"{p.stem}_{p.suffix.lstrip('.').lower()}_{copy:03d}.{image_format}").as_posix()


def _encode(image: np.ndarray, image_format: str, quality: int) -> bytes:
    buf = io.BytesIO()
    kwargs = {} if image_format == "png" else {"quality": quality}
    Image.fromarray(image).save(buf, format=IMAGE_FORMATS[image_format], **kwargs)
    return buf.getvalue()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(data_or_writer, target: Path, tmp_dir: Path) -> str:
    """Write bytes (or call ``writer(file)``) to a temporary file, then rename it onto
    ``target``; returns the sha256 of what was written. Nothing is left on failure."""
    tmp = tmp_dir / f"{target.name}.{os.getpid()}.partial"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if isinstance(data_or_writer, bytes):
                f.write(data_or_writer)
            else:
                data_or_writer(f)
            f.flush()
            os.fsync(f.fileno())
        digest = _sha256_file(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        return digest
    except OSError as e:
        tmp.unlink(missing_ok=True)
        why = "no space left on device" if e.errno == 28 else (e.strerror or str(e))
        raise JobDataError(f"{target}: cannot write ({why})") from None


def _node() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - ray missing or not a Ray process: the host name says enough
        pass
    return socket.gethostname()


def run_shard(job: Job, shard: dict) -> dict:
    """Read, augment, encode and write one shard atomically; return its statistics.

    The statistics (also saved as the shard's record) are ``name``, ``rows``, ``sha256``
    (of the shard file, or of its files' names and digests for ``folder``), ``node``,
    ``seconds``, ``files`` (folder), ``skipped`` and ``scaled_16bit`` (source paths).
    """
    t0 = time.perf_counter()
    ident = job.identity
    out, inp = Path(job.output), Path(job.input)
    state = out / STATE
    tmp_dir = state / "tmp"
    copies, fmt, size = ident["copies"], ident["format"], ident["size"]
    cfg = load_config(ident["config"])
    images, rows, skipped, deep = [], [], [], []
    for index, rel, label in shard["rows"]:
        try:
            img, was_deep = read_image(inp / rel)
        except BadImage as e:
            if not job.skip_bad:
                raise JobDataError(f"{e} (use --skip-bad to skip bad files)") from None
            skipped.append(str(e))
            continue
        if was_deep:
            deep.append(rel)
        images.append(img)
        rows.append((index, rel, label))
    n = len(rows)
    index = np.repeat(np.array([r[0] for r in rows], dtype=np.int64), copies)
    copy = np.tile(np.arange(copies, dtype=np.int64), n)
    keys = copy_key(index, copy)
    warped, matrices = augment_images([im for im in images for _ in range(copies)], keys, cfg, seed=ident["seed"],
                                      size=None if size is None else tuple(size), border=ident["border"])
    labels = np.repeat(np.array([r[2] for r in rows], dtype=np.int64), copies)
    sources = [r[1] for r in rows for _ in range(copies)]
    stats = {"name": shard["name"], "rows": len(keys), "node": _node(), "skipped": skipped, "scaled_16bit": deep}
    if fmt == "folder":
        files = {}
        for k in range(len(keys)):
            rel = target_name(sources[k], int(copy[k]), ident["image_format"])
            files[rel] = _write_atomic(_encode(warped[k], ident["image_format"], job.quality), out / rel, tmp_dir)
        stats["files"] = files
        stats["sha256"] = _digest(f"{rel}\t{files[rel]}" for rel in sorted(files))
    else:
        target = out / (shard["name"] + SHARD_SUFFIX[fmt])
        cols = {"x": warped, "label": labels, "source": sources, "copy": copy, "key": keys, "matrix": matrices}
        writer = {"npz": _write_npz, "webdataset": _write_tar, "parquet": _write_parquet}[fmt]
        stats["sha256"] = _write_atomic(lambda f: writer(f, cols, job), target, tmp_dir)
        stats["file"] = target.name
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    _write_json(state / "shards" / f"{shard['name']}.json", {**stats, "sources": _digest(f"{r[0]}\t{r[1]}" for r in shard["rows"])})
    return stats


def _write_npz(f, cols: dict, job: Job) -> None:
    x = np.stack(cols["x"]) if len(cols["x"]) else np.zeros((0, *job.identity["size"], 3), np.uint8)
    np.savez(f, x=x, y=cols["label"], source=np.array(cols["source"], dtype=str), copy=cols["copy"], key=cols["key"],
             matrix=np.asarray(cols["matrix"]).reshape(-1, 3, 3))


def _sample_json(cols: dict, k: int) -> dict:
    return {"source": cols["source"][k], "copy": int(cols["copy"][k]), "key": int(cols["key"][k]),
            "label": int(cols["label"][k]), "matrix": np.asarray(cols["matrix"][k]).tolist()}


def _write_tar(f, cols: dict, job: Job) -> None:
    """WebDataset tar: per sample ``KEY.<image format>``, ``KEY.cls``, ``KEY.json``; the
    headers are fixed (mtime 0, root owner, mode 0644), so the bytes depend on the content only."""
    ext = job.identity["image_format"]
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for k in range(len(cols["key"])):
            stem = f"{int(cols['key'][k] >> np.uint64(20)):08d}_{int(cols['copy'][k]):03d}"
            members = [(ext, _encode(cols["x"][k], ext, job.quality)), ("cls", str(int(cols["label"][k])).encode()),
                       ("json", json.dumps(_sample_json(cols, k), sort_keys=True).encode())]
            for suffix, data in members:
                info = tarfile.TarInfo(f"{stem}.{suffix}")
                info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
                tar.addfile(info, io.BytesIO(data))


def _write_parquet(f, cols: dict, job: Job) -> None:
    """Parquet with ``image`` as a Hugging Face Image feature (struct of bytes and path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ext = job.identity["image_format"]
    n = len(cols["key"])
    images = [{"bytes": _encode(cols["x"][k], ext, job.quality), "path": None} for k in range(n)]
    table = pa.table({
        "image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "label": pa.array(cols["label"], type=pa.int64()),
        "source": pa.array(cols["source"], type=pa.string()),
        "copy": pa.array(cols["copy"], type=pa.int64()),
        "key": pa.array(cols["key"], type=pa.uint64()),
        "matrix": pa.array([np.asarray(m).reshape(-1).tolist() for m in cols["matrix"]], type=pa.list_(pa.float64(), 9)),
    })
    features = {"image": {"_type": "Image"}, "label": {"names": list(job.classes), "_type": "ClassLabel"},
                "source": {"dtype": "string", "_type": "Value"}, "copy": {"dtype": "int64", "_type": "Value"},
                "key": {"dtype": "uint64", "_type": "Value"},
                "matrix": {"feature": {"dtype": "float64", "_type": "Value"}, "length": 9, "_type": "Sequence"}}
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(table, f, compression="zstd", use_dictionary=False, write_statistics=False)


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the job


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key == "input_digest":
                out.append(f"the input listing changed ({old.get('images')} images then, {new.get('images')} now, or files changed)")
            elif key != "images":
                a, b = json.dumps(old.get(key), sort_keys=True), json.dumps(new.get(key), sort_keys=True)
                out.append(f"{key}: {a[:80]} in the output, {b[:80]} now")
    return out


def _lock(state: Path):
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 64).decode(errors="replace").strip()
        os.close(fd)
        raise JobError(f"another affine-aug job (pid {other or '?'}) is writing to {state.parent}; wait for it or use another --output") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _finished(job: Job, state: Path) -> dict:
    """Records of shards already written whose bytes still match their sha256."""
    done = {}
    out = Path(job.output)
    for shard in job.shards:
        path = state / "shards" / f"{shard['name']}.json"
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_text())
            ok = rec["sources"] == _digest(f"{r[0]}\t{r[1]}" for r in shard["rows"])
            if ok and "file" in rec:
                ok = (out / rec["file"]).is_file() and _sha256_file(out / rec["file"]) == rec["sha256"]
            elif ok:
                ok = all((out / rel).is_file() and _sha256_file(out / rel) == h for rel, h in rec["files"].items())
        except (OSError, ValueError, KeyError):
            ok = False
        if ok:
            done[shard["name"]] = rec
    return done


def _remove_previous(out: Path, state: Path) -> int:
    """Delete what a previous job here made (its records list every file); nothing else."""
    removed = 0
    for path in sorted((state / "shards").glob("*.json")) if (state / "shards").is_dir() else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for rel in ([rec["file"]] if "file" in rec else list(rec.get("files", {}))):
            target = out / rel
            if target.is_file():
                target.unlink()
                removed += 1
        path.unlink()
    (out / "manifest.json").unlink(missing_ok=True)
    return removed


def run_job(job: Job, *, executor: str = "local", workers: int = 1, address: str | None = None,
            num_cpus: int | None = None, overwrite: bool = False, progress=None) -> dict:
    """Run a planned job to completion (resuming a finished part); return the manifest.

    executor: ``"local"`` (in-process; ``workers > 1`` uses that many local processes)
    or ``"ray"`` (one Ray task per shard; ``address`` of a cluster, else a local instance
    with ``num_cpus``). Raises :class:`JobError` (exit 2) or :class:`JobDataError` (exit 1).
    """
    if executor not in ("local", "ray"):
        raise JobError(f"executor must be 'local' or 'ray', got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise JobError(f"--workers must be an integer in [1, 256], got {workers!r}")
    out = Path(job.output)
    state = out / STATE
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(state)
    except OSError as e:
        raise JobError(f"--output {out}: cannot write there ({e.strerror or e})") from None
    try:
        for stale in (state / "tmp").glob("*.partial") if (state / "tmp").is_dir() else []:
            stale.unlink(missing_ok=True)
        (state / "tmp").mkdir(exist_ok=True)
        previous = state / "job.json"
        if previous.is_file():
            old = json.loads(previous.read_text())
            diff = _differences(old, job.identity)
            if diff and not overwrite:
                raise JobError(f"--output {out} holds another job's output: " + "; ".join(diff) + ". Use --overwrite to replace it")
            if diff:
                _remove_previous(out, state)
        elif any(p.name != STATE for p in out.iterdir()) and not overwrite:
            raise JobError(f"--output {out} is not empty and holds no affine_aug job: choose an empty or new folder")
        _write_json(previous, job.identity)
        (out / "manifest.json").unlink(missing_ok=True)
        t0 = time.perf_counter()
        done = _finished(job, state)
        todo = [s for s in job.shards if s["name"] not in done]
        bar = progress(total=job.rows, initial=sum(r["rows"] for r in done.values())) if progress else None
        results = dict(done)
        run = _run_ray if executor == "ray" else (_run_processes if workers > 1 else _run_inline)
        for stats in run(job, todo, workers=workers, address=address, num_cpus=num_cpus):
            results[stats["name"]] = stats
            if bar is not None:
                bar.update(stats["rows"])
        if bar is not None:
            bar.close()
        manifest = {
            **job.identity,
            "input": job.input,
            "classes": job.classes,
            "rows": sum(results[s["name"]]["rows"] for s in job.shards),
            "shards": [{k: results[s["name"]].get(k) for k in ("name", "rows", "sha256", "node", "file")} for s in job.shards],
            "skipped": [x for s in job.shards for x in results[s["name"]].get("skipped", [])],
            "not_regular_files": job.not_regular,
            "ignored_extensions": job.ignored,
            "scaled_16bit": [x for s in job.shards for x in results[s["name"]].get("scaled_16bit", [])],
            "resumed_shards": len(done),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        manifest["skipped_count"] = len(manifest["skipped"]) + len(job.not_regular)
        _write_json(out / "manifest.json", manifest)
        return manifest
    finally:
        os.close(lock)


def _run_inline(job, todo, **_):
    for shard in todo:
        yield run_shard(job, shard)


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    try:
        import numba

        numba.set_num_threads(1)  # one process per core: the kernel's threads must not oversubscribe
    except Exception:  # noqa: BLE001
        pass


def _run_processes(job, todo, *, workers, **_):
    import multiprocessing as mp

    pool = mp.get_context("fork").Pool(workers, initializer=_worker_init)
    try:
        for stats in pool.imap_unordered(_shard_task, [(job, s) for s in todo]):
            yield stats
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _shard_task(args):
    return run_shard(*args)


def _run_ray(job, todo, *, address=None, num_cpus=None, **_):
    import logging

    try:
        import ray
    except ImportError:
        raise JobError("--engine ray needs the ray extra: pip install 'affine_aug[ray]'") from None
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS")
        if target and target != "auto" and "://" not in target:
            _probe(target)  # fail in seconds, not after Ray's long connection retries
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)
        except Exception as e:  # noqa: BLE001 - connection refused, bad token, ...: one clear line
            where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
            raise JobError(f"cannot start or reach Ray at {where}: {' '.join(str(e).split())[:300]}") from None
    task = ray.remote(num_cpus=1, max_retries=3)(_ray_shard)
    limit = max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)  # keep every CPU busy, bound driver memory
    pending, queue = [], list(todo)
    while queue or pending:
        while queue and len(pending) < limit:
            pending.append(task.remote(job, queue.pop(0)))
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            yield ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, (JobDataError, JobError)):
                raise type(cause)(str(cause)) from None
            raise


def _probe(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as e:
        raise JobError(f"cannot start or reach Ray at {address}: {e.strerror or e} (is `ray start --head` running there?)") from None


def _ray_shard(job, shard):
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass
    return run_shard(job, shard)


def job_summary(job: Job) -> dict:
    """Plain data describing a plan (for printing or inspection)."""
    return {k: v for k, v in asdict(job).items() if k != "shards"} | {"shards": len(job.shards), "rows": job.rows}
