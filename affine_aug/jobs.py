"""Offline generation as a job: plan → run_shard → executor → manifest.

    plan_generate(...)   metadata only: the input listing, its digest, the job's identity
                         and shards of source images (keys follow ``conventions.copy_key``);
                         ``gtsrb.plan_gtsrb`` plans the GTSRB job the same way from its CSVs
    run_shard(job, s)    read, augment, encode and write one shard atomically; returns only
                         its statistics (rows, sha256, node, files)
    run_job(job, ...)    lock the output, check the identity, verify finished shards, run
                         the rest in-process, in local processes or as Ray tasks, then write
                         ``manifest.json`` (last: an output without it is not complete)
    start_ray(..., warm=True) / stop_ray()
                         connect to Ray before planning, so that its workers start while
                         the plan is made, and disconnect at once at the end (the CLI does)

Every executor calls the same ``run_shard``, so their bytes are identical. Where things go:

    OUT/manifest.json            identity, shards (name, rows, sha256, node), skipped files
    OUT/part-NNNNN.{npz,tar,parquet}   or, for ``folder``, OUT/<class>/<path>_<ext>_<copy>.png
    OUT/.affine_aug/job.json     the identity, written before the first shard
    OUT/.affine_aug/shards/      one record per finished shard (the resume state)
    OUT/.affine_aug/parts/, splits/   gtsrb npz: shard parts, and the record of each SPLIT.npz
                                 joined from them (the parts are deleted once joined)
    OUT/.affine_aug/tmp/         temporary files (never match an output glob), cleaned
    OUT/.affine_aug/lock         held by the running job

Python use::

    from affine_aug.jobs import plan_generate, run_job
    job = plan_generate("images/", "out/", config="mild", copies=4, size=(64, 64), fmt="webdataset")
    manifest = run_job(job, workers=2)          # or executor="ray", address="HOST:PORT"
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .config import load_config
from .files import sha256_file, write_atomic
from .kernel import set_num_threads
from .conventions import BORDER_OFFLINE, MAX_COPIES, copy_key
from .pipeline import IMAGE_EXTENSIONS, MAX_PIXELS, BadImage, augment_images, output_reduction, read_source
from .sampling import sample
from .png import encode_png

__all__ = ["FORMATS", "Job", "JobError", "plan_generate", "run_job", "run_shard", "start_ray", "stop_ray"]

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
    copy ``j`` of source ``index`` uses sample key ``copy_key(index, j)``. ``kind="gtsrb"``
    jobs (planned by :func:`affine_aug.gtsrb.plan_gtsrb`) have shards of one ``split`` and
    rows ``[index, path, label, roi, (width, height), augmented copies, "file.csv:line"]``.
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
    kind: str = "generate"
    png_level: int = 1  # zlib level of PNG outputs (affine_aug.png)
    max_pixels: int = MAX_PIXELS  # larger sources are refused before decoding
    problems: list = field(default_factory=list)  # bad rows found while planning (skipped)

    @property
    def rows(self) -> int:
        return sum(len(_copies(self, row)) for s in self.shards for row in s["rows"])


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


def digest_lines(lines) -> str:
    """sha256 of text lines (each ended by a newline): listings, file tables."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def check_places(inp: Path, out: Path, flags=("--input", "--output"), inside_ok: bool = False) -> None:
    """Refuse an output inside the input (it would be read back next time; ``inside_ok``
    where the input is listed by CSVs, as GTSRB's), equal to it, around it, or a file."""
    i, o = inp.resolve(), out.resolve()
    if o == i:
        raise JobError(f"{flags[1]} {out} is {flags[0]} itself: choose another folder for the output")
    if i in o.parents and not inside_ok:
        raise JobError(f"{flags[1]} {out} lies inside {flags[0]} {inp}: it would be read back as input on the next run")
    if o in i.parents:
        raise JobError(f"{flags[0]} {inp} lies inside {flags[1]} {out}: choose an output folder outside the input")
    if out.exists() and not out.is_dir():
        raise JobError(f"{flags[1]} {out}: exists and is not a folder")


def plan_generate(input, output, *, config, copies: int, size=None, fmt: str = "folder", image_format: str = "png",
                  quality: int = 95, seed: int | None = None, border: str = BORDER_OFFLINE, shard_size: int = 64,
                  skip_bad: bool = False, overrides=None, png_level: int = 1, full_decode: bool = False,
                  max_pixels: int = MAX_PIXELS) -> Job:
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
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or not 1 <= max_pixels <= MAX_PIXELS:
        raise JobError(f"--max-pixels must be an integer in [1, {MAX_PIXELS}] (Pillow refuses larger images), got {max_pixels!r}")
    if isinstance(png_level, bool) or not isinstance(png_level, int) or not 0 <= png_level <= 9:
        raise JobError(f"--png-level must be an integer in [0, 9] (0 stores, 1 is fastest, 9 smallest), got {png_level!r}")
    if not 1 <= shard_size <= 100_000:
        raise JobError(f"--shard-size must be in [1, 100000], got {shard_size}")
    if border not in ("edge", "constant"):
        raise JobError(f"--border must be 'edge' or 'constant', got {border!r}")
    check_places(inp, out)
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
        "png_level": png_level if fmt != "npz" and image_format == "png" else None,
        "decode": None if size is None else ("full" if full_decode else "reduced"),  # affine_aug.pipeline.read_source
        "max_pixels": max_pixels,
        "border": border,
        "shard_size": shard_size,
        "images": len(files),
        "input_digest": digest_lines(f"{rel}\t{size_}\t{mtime}" for rel, _, size_, mtime in files),
        "key": "copy j of image i (sorted by relative path) uses sample key (i << 20) | j",
    }
    rows = [[i, rel, label] for i, (rel, label, _, _) in enumerate(files)]
    shards = [{"name": f"part-{k:05d}", "rows": rows[s : s + shard_size]} for k, s in enumerate(range(0, len(rows), shard_size))]
    return Job(str(inp), str(out), identity, classes, shards, ignored, odd, skip_bad, quality, png_level=png_level,
               max_pixels=max_pixels)


# ----------------------------------------------------------------------------- one shard


def target_name(rel: str, copy: int, image_format: str) -> str:
    """Output path of copy ``copy`` of input ``rel`` (``cls/sub/a.png`` → ``cls/sub/a_png_003.png``).

    Unique for any input tree: the folders are kept and the source extension is part of
    the name (the extensions read contain no ``_``), so ``a.png`` and ``a.jpg`` never meet.
    """
    p = Path(rel)
    return (p.parent / f"{p.stem}_{p.suffix.lstrip('.').lower()}_{copy:03d}.{image_format}").as_posix()


def _encode(image: np.ndarray, image_format: str, quality: int, png_level: int = 1) -> bytes:
    if image_format == "png":  # (H, W, 3) uint8, or (H, W, 1) uint16: 16-bit grey
        return encode_png(image, png_level)
    buf = io.BytesIO()
    kwargs = {} if image_format == "png" else {"quality": quality}
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)  # (H, W, 1) uint16: 16-bit grey PNG
    pil.save(buf, format=IMAGE_FORMATS[image_format], **kwargs)
    return buf.getvalue()


def _write_atomic(data_or_writer, target: Path, tmp_dir: Path, durable: bool = True) -> str:
    """:func:`affine_aug.files.write_atomic` with the job's error: a named target, exit 1."""
    try:
        return write_atomic(target, data_or_writer, tmp_dir, durable)
    except OSError as e:
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


def _copies(job: Job, row) -> range:
    """Copies made of one plan row: ``generate`` makes ``copies`` augmented ones (0..copies-1);
    ``gtsrb`` rows carry their count, copy 0 being the plain (crop + resize only) original."""
    return range(row[5] + 1) if job.kind == "gtsrb" else range(job.identity["copies"])


def _keeps_16bit(job: Job) -> bool:
    """Whether 16-bit sources stay 16-bit: per-image PNG outputs (folder, webdataset,
    parquet) hold them; npz shards (one uint8 RGB array) and JPEG/WebP do not."""
    return job.kind == "generate" and job.identity["format"] != "npz" and job.identity["image_format"] == "png"


def _reduction(job: Job, row, cfg):
    """How a generate job with --size may shrink a source while reading it (None: it may not)."""
    if job.kind != "generate" or job.identity.get("decode") != "reduced":
        return None
    size, n = tuple(job.identity["size"]), job.identity["copies"]
    keys = copy_key(np.full(n, row[0]), np.arange(n))
    return output_reduction(size, lambda: sample(cfg, keys, size=size, seed=job.identity["seed"]).matrices)


def _read_row(job: Job, row, cfg=None) -> tuple[np.ndarray, bool, int, tuple]:
    """The source of a row, its depth, the factor it was shrunk by and its full (width, height)."""
    path = os.path.join(job.input, row[1])
    try:
        plan = _reduction(job, row, cfg)
        img, deep, factor = read_source(path, keep_16bit=_keeps_16bit(job), max_pixels=job.max_pixels, factor_for=plan)
        if job.kind == "gtsrb" and (img.shape[1], img.shape[0]) != tuple(row[4]):
            raise BadImage(f"{path}: image is {img.shape[1]}x{img.shape[0]} but the CSV says {row[4][0]}x{row[4][1]}")
    except BadImage as e:
        where = f" (listed at {row[6]})" if job.kind == "gtsrb" else ""
        raise BadImage(f"{e}{where}") from None
    return img, deep, factor, (img.shape[1], img.shape[0]) if factor == 1 else plan.size


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
    ident = job.identity
    out = Path(job.output)
    state = out / STATE
    tmp_dir = state / "tmp"
    fmt, size, gtsrb = ident["format"], ident["size"], job.kind == "gtsrb"
    cfg = load_config(ident["config"])
    images, index, copy, labels, sources, boxes, skipped, deep = [], [], [], [], [], [], [], []
    kept = []  # 16-bit sources kept 16-bit (grey, to PNG); ``deep`` lists those scaled to 8 bits
    factors = []  # what each source was shrunk by when read (affine_aug.pipeline.read_source)
    for row in shard["rows"]:
        try:
            img, was_deep, factor, full_size = _read_row(job, row, cfg)
        except BadImage as e:
            if not job.skip_bad:
                raise JobDataError(f"{e} (use --skip-bad to skip bad files)") from None
            skipped.append(str(e))
            continue
        if was_deep:
            (kept if img.dtype == np.uint16 else deep).append(row[1])
        for j in _copies(job, row):
            images.append(img)
            index.append(row[0])
            copy.append(j)
            labels.append(row[2])
            sources.append(row[1])
            boxes.append(row[3] if gtsrb else (0, 0, *full_size))
            factors.append(factor)
    index, copy, labels = (np.array(v, dtype=np.int64) for v in (index, copy, labels))
    keys = copy_key(index, copy)
    warped, matrices = augment_images(images, keys, cfg, seed=ident["seed"], size=None if size is None else tuple(size),
                                      border=ident["border"], boxes=boxes if size is not None else None,
                                      plain=copy == 0 if gtsrb else None, reduced=factors)
    del images
    per_class = {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    stats = {"name": shard["name"], "rows": len(keys), "node": _node(), "per_class": per_class, "skipped": skipped,
             "scaled_16bit": deep, "kept_16bit": kept}
    if fmt == "folder":
        ext = ident["image_format"]
        files = {}
        for k in range(len(keys)):
            if gtsrb:  # SPLIT/CLASS/INDEX_COPY.png: index in the split's sorted list
                rel = f"{shard['split']}/{labels[k]:05d}/{index[k]:06d}_{copy[k]:03d}.{ext}"
            else:
                rel = target_name(sources[k], int(copy[k]), ext)
            files[rel] = _write_atomic(_encode(warped[k], ext, job.quality, job.png_level), out / rel, tmp_dir)
        stats["files"] = files
        stats["sha256"] = digest_lines(f"{rel}\t{files[rel]}" for rel in sorted(files))
    else:
        # gtsrb's npz parts wait in the state folder until they are joined into SPLIT.npz
        target = state / "parts" / f"{shard['name']}.npz" if gtsrb else out / (shard["name"] + SHARD_SUFFIX[fmt])
        source = index if gtsrb else sources
        cols = {"x": warped, "label": labels, "source": source, "copy": copy, "key": keys, "matrix": matrices}
        writer = {"npz": _write_npz_shard, "webdataset": _write_tar, "parquet": _write_parquet}[fmt]
        # gtsrb's parts are checked against their sha256 before they are joined or reused: no fsync
        stats["sha256"] = _write_atomic(lambda f: writer(f, cols, job), target, tmp_dir, durable=not gtsrb)
        stats["file"] = target.relative_to(out).as_posix()
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    _write_json(state / "shards" / f"{shard['name']}.json", {**stats, "sources": _shard_digest(shard)})
    return stats


def _shard_digest(shard: dict) -> str:
    return digest_lines(json.dumps(r, separators=(",", ":")) for r in shard["rows"])


def _npz_column(values, dtype=None):
    a = np.asarray(values, dtype=dtype)
    return a.dtype, a.shape, [a]


def write_npz(f, columns: dict) -> None:
    """An ``.npz`` (uncompressed zip of ``.npy``) written column by column, chunk by chunk.

    ``columns[name] = (dtype, shape, chunks)``: the chunks, concatenated along axis 0, make
    an array of ``shape``; each is written as it comes, so a column larger than memory can
    stream through. The zip entries carry a fixed date, so equal arrays give equal bytes
    (``np.savez`` stamps the current time). ``np.load`` reads the result.
    """
    import zipfile

    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, (dtype, shape, chunks) in columns.items():
            dtype = np.dtype(dtype)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
                np.lib.format.write_array_header_2_0(member, header)
                rows = 0
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=dtype)
                    rows += len(chunk)
                    member.write(memoryview(chunk.reshape(-1)).cast("B") if chunk.size else b"")
                if rows != (shape[0] if shape else 1):
                    raise ValueError(f"npz column {name}: chunks hold {rows} rows, the header says {shape[0]}")


def _write_npz_shard(f, cols: dict, job: Job) -> None:
    x = np.asarray(cols["x"]) if len(cols["x"]) else np.zeros((0, *job.identity["size"], 3), np.uint8)
    source = np.asarray(cols["source"], dtype=np.int64 if job.kind == "gtsrb" else str)
    write_npz(f, {"x": _npz_column(x), "y": _npz_column(cols["label"]), "source": _npz_column(source),
                  "copy": _npz_column(cols["copy"]), "key": _npz_column(cols["key"]),
                  "matrix": _npz_column(np.asarray(cols["matrix"], dtype=np.float64).reshape(-1, 3, 3))})


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
            members = [(ext, _encode(cols["x"][k], ext, job.quality, job.png_level)), ("cls", str(int(cols["label"][k])).encode()),
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
    images = [{"bytes": _encode(cols["x"][k], ext, job.quality, job.png_level), "path": None} for k in range(n)]
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
    _write_atomic(json.dumps(data, indent=1, sort_keys=True), path, path.parent)


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
        raise JobError(f"another affine-aug job (pid {other or '?'}) is writing to {state.parent}; wait for it or use another output folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _verified(path: Path, sha256: str, cache: dict) -> bool:
    if path not in cache:
        try:
            cache[path] = sha256_file(path) if path.is_file() else None
        except OSError:
            cache[path] = None
    return cache[path] == sha256


def _finished(job: Job, state: Path) -> dict:
    """Records of shards already written whose bytes still match their sha256 (a gtsrb npz
    part already joined into its split file counts when that file still matches)."""
    done, cache = {}, {}
    out = Path(job.output)
    joined = {}
    for path in (state / "splits").glob("*.json") if (state / "splits").is_dir() else []:
        try:
            joined[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    for shard in job.shards:
        path = state / "shards" / f"{shard['name']}.json"
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_text())
            ok = rec["sources"] == _shard_digest(shard)
            if ok and "file" in rec:
                split = joined.get(shard.get("split"), {})
                ok = _verified(out / rec["file"], rec["sha256"], cache) or (
                    split.get("parts", {}).get(shard["name"]) == rec["sha256"] and _verified(out / split["file"], split["sha256"], cache))
            elif ok:
                ok = all(_verified(out / rel, h, cache) for rel, h in rec["files"].items())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            done[shard["name"]] = rec
    return done


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


def _remove_previous(out: Path, state: Path) -> int:
    """Delete what a previous job here made (its records list every file); nothing else."""
    removed = 0
    records = [p for d in ("shards", "splits") if (state / d).is_dir() for p in sorted((state / d).glob("*.json"))]
    for path in records:
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
            columns = {col: (first[col].dtype, (rows, *first[col].shape[1:]), _column_chunks(paths, col, stop))
                       for col in ("x", "y", "source", "copy", "key", "matrix")}
        record = {"file": target.name, "parts": parts,
                  "sha256": _write_atomic(lambda f: write_npz(f, columns), target, state / "tmp")}
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
        self.left = {split: {s["name"] for s in job.shards if s["split"] == split} - set(results) for split in self.splits}
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
        light = replace(job, shards=[])  # what a worker needs besides its shard: sent once, not per shard's plan
        joiner = _SplitJoiner(job, results, state) if job.kind == "gtsrb" and job.identity["format"] == "npz" else None
        try:
            for stats in run(light, todo, workers=workers, address=address, num_cpus=num_cpus):
                results[stats["name"]] = stats
                if joiner is not None:
                    joiner.add(stats["name"])
                if bar is not None:
                    bar.update(stats["rows"])
            t_shards = time.perf_counter()
            files = joiner.finish() if joiner is not None else None
        except BaseException:
            if joiner is not None:
                joiner.stop()
            raise
        if bar is not None:
            bar.close()
        manifest = {
            **job.identity,
            "input": job.input,
            "classes": job.classes,
            "rows": sum(results[s["name"]]["rows"] for s in job.shards),
            "shards": [{k: results[s["name"]].get(k) for k in ("name", "rows", "sha256", "node", "file")} for s in job.shards],
            "skipped": job.problems + [x for s in job.shards for x in results[s["name"]].get("skipped", [])],
            "not_regular_files": job.not_regular,
            "ignored_extensions": job.ignored,
            "scaled_16bit": [x for s in job.shards for x in results[s["name"]].get("scaled_16bit", [])],
            "kept_16bit": [x for s in job.shards for x in results[s["name"]].get("kept_16bit", [])],
            "resumed_shards": len(done),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        manifest["skipped_count"] = len(manifest["skipped"]) + len(job.not_regular)
        if job.kind == "gtsrb":
            manifest["counts"] = {}
            for split in dict.fromkeys(s["split"] for s in job.shards):
                per_class = {}
                for shard in (s for s in job.shards if s["split"] == split):
                    for label, n in results[shard["name"]]["per_class"].items():
                        per_class[label] = per_class.get(label, 0) + n
                manifest["counts"][split] = {"total": sum(per_class.values()),
                                             "per_class": dict(sorted(per_class.items(), key=lambda kv: int(kv[0])))}
            if files is not None:
                manifest["files"] = files
            else:
                manifest["files"] = {split: f"{c['total']} files under {split}/<class>/" for split, c in manifest["counts"].items()}
            # join_s: what the joins added after the last shard (they run beside the shards)
            manifest["timings"] = {"shards_s": round(t_shards - t0, 3), "join_s": round(time.perf_counter() - t_shards, 3),
                                   "total_s": round(time.perf_counter() - t0, 3)}
        _write_json(out / "manifest.json", manifest)
        return manifest
    finally:
        os.close(lock)


def _run_inline(job, todo, **_):
    for shard in todo:
        yield run_shard(job, shard)


_WORKER_JOB = None  # the job, inherited by forked workers (each task then carries only its shard)


def _worker_init(job=None) -> None:
    import signal

    global _WORKER_JOB
    _WORKER_JOB = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    set_num_threads(1)  # one process per core: the kernel's threads must not oversubscribe


def _run_processes(job, todo, *, workers, **_):
    import multiprocessing as mp

    pool = mp.get_context("fork").Pool(workers, initializer=_worker_init, initargs=(job,))
    try:
        for stats in pool.imap_unordered(_shard_task, todo):
            yield stats
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _shard_task(shard):
    return run_shard(_WORKER_JOB, shard)


def start_ray(address=None, num_cpus=None, warm: bool = False) -> None:
    """Connect to Ray unless connected: the cluster at ``address`` (or ``RAY_ADDRESS``),
    else a new local instance with ``num_cpus``. With ``warm``, one tiny task per CPU
    makes Ray start the job's workers now, so that they start while the driver still
    plans (``generate`` and ``gtsrb`` do this; a worker takes about a second to start)."""
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
        global _RAY_OURS
        _RAY_OURS = True
    if warm:
        task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_ray_warm)
        for _ in range(int(ray.cluster_resources().get("CPU", 1))):
            task.remote()  # not waited for: the workers it starts serve the shards


_RAY_OURS = False  # whether start_ray connected (stop_ray leaves a caller's own connection alone)


def stop_ray() -> None:
    """Disconnect from Ray if :func:`start_ray` connected: at once, as Ray's own exit hook
    takes about three times as long (measured here: 0.9 s against 0.3 s)."""
    global _RAY_OURS
    if _RAY_OURS:
        import ray

        ray.shutdown()
        _RAY_OURS = False


def _ray_warm() -> None:
    set_num_threads(1)


def _run_ray(job, todo, *, address=None, num_cpus=None, **_):
    import ray

    start_ray(address, num_cpus)
    # SPREAD: shards go round the nodes rather than filling the driver's node first
    task = ray.remote(num_cpus=1, max_retries=3, scheduling_strategy="SPREAD")(_ray_shard)
    limit = max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)  # keep every CPU busy, bound driver memory
    pending, queue, job_ref = [], list(todo), ray.put(job)
    while queue or pending:
        while queue and len(pending) < limit:
            pending.append(task.remote(job_ref, queue.pop(0)))
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
    set_num_threads(1)  # Ray runs one task per CPU
    return run_shard(job, shard)


def job_summary(job: Job) -> dict:
    """Plain data describing a plan (for printing or inspection)."""
    return {k: v for k, v in asdict(job).items() if k != "shards"} | {"shards": len(job.shards), "rows": job.rows}
