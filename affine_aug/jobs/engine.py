"""The engine: run a planned job's shards and record them.

    run_shard(job, shard)   read, augment, encode and write one shard atomically; return
                            its statistics (also saved as the shard's record)
    run_job(job, ...)       lock the output, check it against the job, verify finished
                            shards, run the rest on an executor, then write the manifest
                            (last: an output without it is not complete)

What a row means (its copies, where its files go, how its source is read) is its kind's
(``job.hooks``, see :class:`affine_aug.jobs.plan.JobKind`); the engine knows none of them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import load_config
from ..conventions import copy_key
from ..pipeline import BadImage, _augment_images, read_source
from .errors import JobDataError, JobError, _why
from .executors import executor_for, node_name
from .formats import SHARD_FORMATS, Block, encode_image
from .plan import Job, _digest_lines
from .state import PACKED, STATE, _finished, _lock, _pack, _prepare, _record_shard, _refuse_if_foreign, _write_atomic
from .state import _write_many, _write_token

__all__ = ["manifest_name", "planned_files", "run_job", "run_shard"]


def manifest_name(fmt: str) -> str:
    """``manifest.json``; ``_manifest.json`` for parquet, as Parquet readers of a folder
    (pyarrow, Ray Data) skip names that start with ``_`` or ``.`` and would read any other."""
    return "_manifest.json" if fmt == "parquet" else "manifest.json"


def planned_files(job: Job) -> list:
    """Every file the job will write in its output (relative paths), its manifest included."""
    fmt, kind = job.identity["format"], job.hooks
    if fmt == "folder":
        files = [
            kind.folder_file(job, s, row, j) for s in job.shards for row in s["rows"] for j in kind.copies(job, row)
        ]
    else:
        files = kind.output_files(job, SHARD_FORMATS[fmt].suffix)
    return files + [manifest_name(fmt)]


# ----------------------------------------------------------------------------- one shard


@dataclass
class _Source:
    """One row's source as read: its image, the factor it was shrunk by, its full (width, height)."""

    row: object
    image: np.ndarray
    factor: int
    full_size: tuple


def _read_row(job: Job, row, cfg) -> tuple[_Source, bool]:
    """The source of a row, and whether it was 16-bit."""
    kind, path = job.hooks, os.path.join(job.input, row.path)
    try:
        keep_16bit, plan = kind.read_options(job, row, cfg)
        img, deep, factor = read_source(path, keep_16bit=keep_16bit, max_pixels=job.max_pixels, factor_for=plan)
        kind.check_source(row, path, img)
    except BadImage as e:
        raise BadImage(f"{e}{kind.where(row)}") from None
    return _Source(row, img, factor, (img.shape[1], img.shape[0]) if factor == 1 else plan.size), deep


def _read_shard(job: Job, shard: dict, cfg) -> tuple[list, dict]:
    """The shard's sources, and what reading them found: ``skipped`` (bad files, with
    ``--skip-bad``), ``scaled_16bit`` (16-bit sources scaled to 8 bits with rounding) and
    ``kept_16bit`` (kept 16-bit: grey, to PNG)."""
    sources, notes = [], {"skipped": [], "scaled_16bit": [], "kept_16bit": []}
    for row in shard["rows"]:
        try:
            source, was_deep = _read_row(job, row, cfg)
        except BadImage as e:
            if not job.skip_bad:
                raise JobDataError(f"{e} (use --skip-bad to skip bad files)") from None
            notes["skipped"].append(str(e))
            continue
        if was_deep:
            notes["kept_16bit" if source.image.dtype == np.uint16 else "scaled_16bit"].append(row.path)
        sources.append(source)
    return sources, notes


def _augment(job: Job, sources: list, cfg) -> tuple[Block, list]:
    """Every copy of every source, augmented in one call: the shard's block, and the
    ``(row, copy)`` of each of its samples."""
    kind, ident = job.hooks, job.identity
    samples = [(s, j) for s in sources for j in kind.copies(job, s.row)]
    values = [kind.sample(s.row, j, s.full_size) for s, j in samples]
    index = np.array([s.row.index for s, _ in samples], dtype=np.int64)
    copy = np.array([j for _, j in samples], dtype=np.int64)
    labels = np.array([s.row.label for s, _ in samples], dtype=np.int64)
    keys = copy_key(index, copy)
    size = ident["size"]
    warped, matrices = _augment_images(
        [s.image for s, _ in samples],
        keys,
        cfg,
        seed=ident["seed"],
        size=None if size is None else tuple(size),
        border=ident["border"],
        boxes=[box for _, box in values] if size is not None else None,
        plain=kind.plain(copy),
        reduced=[s.factor for s, _ in samples],
    )
    block = Block(warped, labels, [v for v, _ in values], copy, keys, matrices, kind.source_dtype)
    return block, [(s.row, j) for s, j in samples]


def _write_folder(job: Job, shard: dict, block: Block, samples: list) -> dict:
    """``folder`` output: each sample its own image file; the statistics' ``files`` and ``sha256``."""
    out, ext = Path(job.output), job.identity["image_format"]
    rels = [job.hooks.folder_file(job, shard, row, j) for row, j in samples]
    encoded = ((out / rel, encode_image(block.images[k], ext, job)) for k, rel in enumerate(rels))
    files = dict(zip(rels, _write_many(encoded, out / STATE / "tmp")))
    return {"files": files, "sha256": _digest_lines(f"{rel}\t{files[rel]}" for rel in sorted(files))}


def _write_shard_file(job: Job, shard: dict, block: Block) -> dict:
    """A shard format's one file for the shard; the statistics' ``file`` and ``sha256``."""
    out, fmt = Path(job.output), SHARD_FORMATS[job.identity["format"]]
    rel, durable = job.hooks.shard_file(job, shard, fmt.suffix)
    sha = _write_atomic(lambda f: fmt.write(f, block, job), out / rel, out / STATE / "tmp", durable=durable)
    return {"sha256": sha, "file": rel}


def run_shard(job: Job, shard: dict) -> dict:
    """Read, augment, encode and write one shard atomically; return its statistics.

    The statistics (also saved as the shard's record) are ``name``, ``rows``, ``sha256``
    (of the shard file, or of its files' names and digests for ``folder``), ``node``,
    ``seconds``, ``file`` or ``files``, ``per_class`` (rows per label), ``skipped`` and
    ``scaled_16bit`` or ``kept_16bit`` (source paths: 16-bit sources scaled to 8 bits with
    rounding, or kept 16-bit where every output is its own PNG). ``job`` may come without its ``shards`` (workers get
    it so): only ``shard`` is read.
    """
    t0 = time.perf_counter()
    cfg = load_config(job.identity["config"])
    sources, notes = _read_shard(job, shard, cfg)
    block, samples = _augment(job, sources, cfg)
    del sources
    stats = {
        "name": shard["name"],
        "rows": len(block),
        "node": node_name(),
        "per_class": {str(k): int(v) for k, v in zip(*np.unique(block.labels, return_counts=True))},
        **notes,
    }
    if job.identity["format"] == "folder":
        stats.update(_write_folder(job, shard, block, samples))
    else:
        stats.update(_write_shard_file(job, shard, block))
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    _record_shard(Path(job.output) / STATE, shard, stats)
    return stats


# ----------------------------------------------------------------------------- the job


def _check_run(executor: str, workers, num_cpus) -> None:
    if executor not in ("local", "ray"):
        raise JobError(f"executor must be 'local' or 'ray', got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise JobError(f"--workers must be an integer in [1, 256], got {workers!r}")
    if executor == "ray" and num_cpus is not None and num_cpus < 1:
        raise JobError(f"--num-cpus must be at least 1 (a Ray instance without CPUs can run no shard), got {num_cpus}")


def _locked(out: Path, state: Path) -> int:
    """Make the output folder and hold its lock (a folder that holds no job is refused
    first: nothing is left in a folder that is not ours)."""
    if out.is_dir() and not os.path.lexists(out / PACKED) and not os.path.lexists(state / "job.json"):
        _refuse_if_foreign(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _lock(out)
    except OSError as e:
        raise JobError(f"--output {out}: cannot write there ({_why(e)})") from None


def run_job(
    job: Job,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    overwrite: bool = False,
    progress=None,
) -> dict:
    """Run a planned job to completion (resuming a finished part); return the manifest.

    executor: ``"local"`` (in-process; ``workers > 1`` uses that many local processes)
    or ``"ray"`` (one Ray task per shard; ``address`` of a cluster, else a local instance
    with ``num_cpus``). Raises :class:`JobError` (the job cannot run as asked) or
    :class:`JobDataError` (bad data, a failed write or shard).
    """
    _check_run(executor, workers, num_cpus)
    out = Path(job.output)
    state = out / STATE
    lock = _locked(out, state)
    try:
        manifest_file = manifest_name(job.identity["format"])
        _prepare(job, out, state, overwrite, planned_files(job), manifest_file)
        t0 = time.perf_counter()
        done = _finished(job, state)
        token = _write_token(state) if executor == "ray" else ""
        light = replace(job, shards=[], token=token)  # what a worker needs besides its shard: sent once
        todo = [s for s in job.shards if s["name"] not in done]
        run = executor_for(executor, workers)
        shards = run(light, todo, work=run_shard, workers=workers, address=address, num_cpus=num_cpus, lock=lock)
        results, joined, t_shards = _collect(job, shards, done, state, progress)
        manifest = _manifest(job, results, len(done), joined, t0, t_shards)
        _pack(out, state)
        _write_atomic(json.dumps(manifest, indent=1, sort_keys=True), out / manifest_file, out)
        return manifest
    finally:
        os.close(lock)


def _collect(job: Job, shards, done: dict, state: Path, progress) -> tuple[dict, object, float]:
    """Every shard's statistics as the executor yields them, fed to the kind's joiner (if
    any) and the progress bar; returns the results, the joined files and when the last shard ended."""
    bar = progress(total=job.rows, initial=sum(r["rows"] for r in done.values())) if progress else None
    results = dict(done)
    joiner = job.hooks.joiner(job, results, state)
    try:
        for stats in shards:
            results[stats["name"]] = stats
            if joiner is not None:
                joiner.add(stats["name"])
            if bar is not None:
                bar.update(stats["rows"])
        t_shards = time.perf_counter()
        joined = joiner.finish() if joiner is not None else None
    except BaseException:
        if joiner is not None:
            joiner.stop()
        raise
    if bar is not None:
        bar.close()
    return results, joined, t_shards


def _manifest(job: Job, results: dict, resumed: int, joined, t0: float, t_shards: float) -> dict:
    def gathered(key: str) -> list:
        return [x for s in job.shards for x in results[s["name"]].get(key, [])]

    manifest = {
        **job.identity,
        "input": job.input,
        "classes": job.classes,
        "rows": sum(results[s["name"]]["rows"] for s in job.shards),
        "shards": [
            {k: results[s["name"]].get(k) for k in ("name", "rows", "sha256", "node", "file")} for s in job.shards
        ],
        "skipped": job.problems + gathered("skipped"),
        "not_regular_files": job.not_regular,
        "links_not_followed": job.links,
        "ignored_extensions": job.ignored,
        "scaled_16bit": gathered("scaled_16bit"),
        "kept_16bit": gathered("kept_16bit"),
        "resumed_shards": resumed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    manifest["skipped_count"] = len(manifest["skipped"]) + len(job.not_regular) + len(job.links)
    job.hooks.complete_manifest(job, results, manifest, joined, t0, t_shards)
    return manifest
