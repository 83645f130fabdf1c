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

    OUT/manifest.json            identity, shards (name, rows, sha256, node), skipped files;
                                 ``_manifest.json`` for parquet (Parquet readers of a folder skip ``_`` names)
    OUT/part-NNNNN.{npz,tar,parquet}   or, for ``folder``, OUT/<class>/<path>_<ext>_<copy>.png
    OUT/.affine_aug.lock         held by the running job (a file: no reader takes it for data)
    OUT/.affine_aug/             the state while the job runs (a complete job packs it into
                                 ``OUT/.affine_aug.json``, so that ``ImageFolder("OUT")`` sees classes only;
                                 a rerun unpacks it):
      job.json                   the identity, written before the first shard
      targets.json               every file the job will write, written before the first shard
      token                      (Ray) what each worker must read there: the proof it sees the driver's output
      shards/                    one record per finished shard (the resume state)
      parts/, splits/            gtsrb npz: shard parts, and the record of each SPLIT.npz
                                 joined from them (the parts are deleted once joined)
      tmp/                       temporary files (never match an output glob), cleaned

Only files that these records list are ever replaced or deleted: an output that holds no
job is refused (even with ``--overwrite``), and so is a job whose planned file is already
there unlisted. ``--overwrite`` of another job deletes every file its records list,
planned or written (a killed run's files go too), and the folders left empty.

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
import shutil
import socket
import stat
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .config import load_config
from .errors import AffineAugError
from .files import sha256_file, write_atomic, write_atomic_many
from .kernel import set_num_threads
from .conventions import BORDER_OFFLINE, MAX_COPIES, copy_key
from .pipeline import IMAGE_EXTENSIONS, MAX_PIXELS, BadImage, augment_images, output_reduction, read_source
from .sampling import sample
from .png import check_encoder, default_encoder, encode_png

__all__ = ["FORMATS", "Job", "JobError", "plan_generate", "run_job", "run_shard", "start_ray", "stop_ray"]

FORMATS = ("folder", "npz", "webdataset", "parquet")
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
SHARD_SUFFIX = {"npz": ".npz", "webdataset": ".tar", "parquet": ".parquet"}
STATE = ".affine_aug"  # the job's state folder inside the output, while the job runs
PACKED = ".affine_aug.json"  # the state of a complete job, packed into one file (no folder left in the way of readers)
LOCK = ".affine_aug.lock"  # held by the running job
OWN_NAMES = ("manifest.json", "_manifest.json")


class JobError(AffineAugError):
    """A job that cannot run as asked: identity mismatch, locked output, bad places, an unusable Ray cluster."""


class JobDataError(AffineAugError):
    """Bad data, a failed write or a failed shard while running: names the file or the shard."""


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
    problems: list = field(default_factory=list)  # bad rows or unreadable folders found while planning (skipped)
    links: list = field(default_factory=list)  # symbolic links not followed ("rel -> target (why)")
    token: str = ""  # set by run_job for Ray: what a worker must find in OUT/.affine_aug/token

    @property
    def rows(self) -> int:
        return sum(len(_copies(self, row)) for s in self.shards for row in s["rows"])


# ----------------------------------------------------------------------------- planning


def _why(e: OSError) -> str:
    return "no space left on device" if e.errno == 28 else (e.strerror or str(e)).lower()


def _inside(path: str, root_real: str) -> bool:
    return path == root_real or path.startswith(root_real.rstrip(os.sep) + os.sep)


@dataclass
class _Listing:
    """What walking an ImageFolder tree found: see :func:`_listing`."""

    files: list = field(default_factory=list)  # (relative path, label, bytes, mtime in ns)
    ignored: dict = field(default_factory=dict)  # unsupported extension -> count
    odd: list = field(default_factory=list)  # image-named entries that are not regular files
    links: list = field(default_factory=list)  # "rel -> target": symbolic links not followed
    problems: list = field(default_factory=list)  # unreadable folders skipped (--skip-bad)


def _walk(folder: str, rel: str, label: int, root_real: str, ancestors: tuple, found: _Listing, skip_bad: bool) -> None:
    """One class's files, depth first in name order. Symbolic links are followed where
    their target lies inside the input (and is not a folder being walked: a loop);
    every other link is listed in ``found.links`` and not read."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        message = f"{folder}: cannot read the folder ({_why(e)})"
        if not skip_bad:
            raise JobDataError(f"{message} (use --skip-bad to skip it)") from None
        found.problems.append(message + "; its images were skipped")
        return
    for entry in entries:
        name, path = entry.name, os.path.join(folder, entry.name)
        sub = f"{rel}/{name}"
        suffix = os.path.splitext(name)[1].lower()
        is_image = suffix in IMAGE_EXTENSIONS
        real = None
        if entry.is_symlink():
            real = os.path.realpath(path)
            if not _inside(real, root_real) or real in ancestors:
                why = "a loop" if real in ancestors else "outside the input"
                found.links.append(f"{sub} -> {os.readlink(path)} ({why})")
                continue
        try:
            st = os.stat(path)
        except OSError as e:
            if real is not None:  # a link inside the input to nothing that can be read
                found.links.append(f"{sub} -> {os.readlink(path)} ({_why(e)})")
            elif is_image:
                found.odd.append(sub)
            continue
        if stat.S_ISDIR(st.st_mode):
            if name.startswith("."):
                continue
            if is_image:
                found.odd.append(sub)
            _walk(path, sub, label, root_real, ancestors + (real or os.path.realpath(path),), found, skip_bad)
        elif not is_image:
            if not name.startswith("."):
                found.ignored[suffix or "(none)"] = found.ignored.get(suffix or "(none)", 0) + 1
        elif stat.S_ISREG(st.st_mode):
            found.files.append((sub, label, st.st_size, st.st_mtime_ns))
        else:
            found.odd.append(sub)


def _listing(root: Path, skip_bad: bool = False) -> tuple[list, _Listing]:
    """Classes (first-level folders, hidden ones left out) and what :func:`_walk` found in them."""
    try:
        if not root.is_dir():
            raise JobError(f"--input {root}: not a folder")
        with os.scandir(root) as it:
            top = sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise JobError(f"--input {root}: cannot read the folder ({_why(e)})") from None
    root_real = os.path.realpath(root)
    found, classes = _Listing(), []
    for entry in top:
        path = os.path.join(root, entry.name)
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.is_symlink() and not _inside(os.path.realpath(path), root_real):
            found.links.append(f"{entry.name} -> {os.readlink(path)} (outside the input)")
            continue
        classes.append(entry.name)
    if not classes:
        raise JobError(f"--input {root}: expected class subfolders (an ImageFolder tree)")
    for label, name in enumerate(classes):
        path = os.path.join(root, name)
        _walk(path, name, label, root_real, (root_real, os.path.realpath(path)), found, skip_bad)
    found.files.sort(key=lambda f: f[0])
    found.odd.sort()
    return classes, found


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


def plan_generate(
    input,
    output,
    *,
    config,
    copies: int,
    size=None,
    fmt: str = "folder",
    image_format: str = "png",
    quality: int = 95,
    seed: int | None = None,
    border: str = BORDER_OFFLINE,
    shard_size: int = 64,
    skip_bad: bool = False,
    overrides=None,
    png_level: int = 1,
    full_decode: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> Job:
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
        raise JobError(
            f"--max-pixels must be an integer in [1, {MAX_PIXELS}] (Pillow refuses larger images), got {max_pixels!r}"
        )
    if isinstance(png_level, bool) or not isinstance(png_level, int) or not 0 <= png_level <= 9:
        raise JobError(
            f"--png-level must be an integer in [0, 9] (0 stores, 1 is fastest, 9 smallest), got {png_level!r}"
        )
    if not 1 <= shard_size <= 100_000:
        raise JobError(f"--shard-size must be in [1, 100000], got {shard_size}")
    if border not in ("edge", "constant"):
        raise JobError(f"--border must be 'edge' or 'constant', got {border!r}")
    check_places(inp, out)
    classes, found = _listing(inp, skip_bad)
    files, problems = found.files, found.problems
    if found.odd and not skip_bad:
        raise JobDataError(
            f"{inp / found.odd[0]}: named like an image but not a regular file (use --skip-bad to skip it)"
        )
    if fmt == "folder" and set(classes) & set(OWN_NAMES):
        name = sorted(set(classes) & set(OWN_NAMES))[0]
        raise JobError(
            f"--input {inp}: a class folder named {name} would meet "
            f"the job's own {name} in --format folder output: rename it"
        )
    if fmt == "parquet":  # names are stored as text: a name that is not UTF-8 cannot be
        bad = [f for f in files if not _utf8(f[0])]
        if bad and not skip_bad:
            raise JobDataError(
                f"{inp / bad[0][0]}: the file name is not valid UTF-8, which "
                "--format parquet stores as text: rename it (or use --skip-bad)"
            )
        problems += [f"{inp / f[0]}: the file name is not valid UTF-8 (--format parquet)" for f in bad]
        files = [f for f in files if _utf8(f[0])]
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
        "png_encoder": png_encoder() if fmt != "npz" and image_format == "png" else None,  # affine_aug.png
        "decode": None if size is None else ("full" if full_decode else "reduced"),  # affine_aug.pipeline.read_source
        "max_pixels": max_pixels,
        "border": border,
        "shard_size": shard_size,
        "images": len(files),
        "input_digest": digest_lines(f"{rel}\t{size_}\t{mtime}" for rel, _, size_, mtime in files),
        "key": "copy j of image i (sorted by relative path) uses sample key (i << 20) | j",
    }
    rows = [[i, rel, label] for i, (rel, label, _, _) in enumerate(files)]
    stats = [[size_, mtime] for _, _, size_, mtime in files]
    shards = [
        {"name": f"part-{k:05d}", "rows": rows[s : s + shard_size], "stats": stats[s : s + shard_size]}
        for k, s in enumerate(range(0, len(rows), shard_size))
    ]
    return Job(
        _absolute(inp),
        _absolute(out),
        identity,
        classes,
        shards,
        found.ignored,
        found.odd,
        skip_bad,
        quality,
        png_level=png_level,
        max_pixels=max_pixels,
        problems=problems,
        links=found.links,
    )


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _absolute(path: Path) -> str:
    """The path as the driver sees it, made absolute without resolving links: workers on
    other nodes (with another working directory) must name the same place."""
    return os.path.abspath(path)


# ----------------------------------------------------------------------------- one shard


def target_name(rel: str, copy: int, image_format: str) -> str:
    """Output path of copy ``copy`` of input ``rel`` (``cls/sub/a.png`` → ``cls/sub/a_png_003.png``).

    Unique for any input tree: the folders are kept and the source extension, as it is
    written (``A.PNG`` → ``A_PNG_000.png``, ``A.png`` → ``A_png_000.png``), is part of the
    name; the extensions read contain no ``_``, so ``a.png`` and ``a.jpg`` never meet.
    """
    folder, _, name = rel.rpartition("/")
    stem, ext = os.path.splitext(name)
    return (
        f"{folder}/{stem}_{ext[1:]}_{copy:03d}.{image_format}"
        if folder
        else f"{stem}_{ext[1:]}_{copy:03d}.{image_format}"
    )


def _folder_file(job: Job, shard: dict, row, copy: int) -> str:
    """Where copy ``copy`` of a plan row goes in ``folder`` output."""
    ext = job.identity["image_format"]
    if job.kind == "gtsrb":  # SPLIT/CLASS/INDEX_COPY.png: index in the split's sorted list
        return f"{shard['split']}/{row[2]:05d}/{row[0]:06d}_{copy:03d}.{ext}"
    return target_name(row[1], copy, ext)


def manifest_name(fmt: str) -> str:
    """``manifest.json``; ``_manifest.json`` for parquet, as Parquet readers of a folder
    (pyarrow, Ray Data) skip names that start with ``_`` or ``.`` and would read any other."""
    return "_manifest.json" if fmt == "parquet" else "manifest.json"


def planned_files(job: Job) -> list:
    """Every file the job will write in its output (relative paths), its manifest included."""
    fmt = job.identity["format"]
    if fmt == "folder":
        files = [_folder_file(job, s, row, j) for s in job.shards for row in s["rows"] for j in _copies(job, row)]
    elif job.kind == "gtsrb":
        files = [f"{split}.npz" for split in dict.fromkeys(s["split"] for s in job.shards)]
    else:
        files = [s["name"] + SHARD_SUFFIX[fmt] for s in job.shards]
    return files + [manifest_name(fmt)]


def png_encoder() -> str:
    """The PNG encoder a new job names (:func:`affine_aug.png.default_encoder`)."""
    try:
        return default_encoder()
    except ValueError as e:
        raise JobError(str(e)) from None


def _encode(image: np.ndarray, image_format: str, job: Job) -> bytes:
    if image_format == "png":  # (H, W, 3) uint8, or (H, W, 1) uint16: 16-bit grey
        return encode_png(image, job.png_level, job.identity.get("png_encoder"))
    buf = io.BytesIO()
    kwargs = {"quality": job.quality}
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)  # (H, W, 1) uint16: 16-bit grey PNG
    pil.save(buf, format=IMAGE_FORMATS[image_format], **kwargs)
    return buf.getvalue()


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


def _node() -> str:
    ray = sys.modules.get("ray")  # a Ray worker has imported it; importing it here would slow every local worker
    try:
        if ray is not None and ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not a Ray process: the host name says enough
        pass
    return socket.gethostname()


def _copies(job: Job, row) -> range:
    """Copies made of one plan row: ``generate`` makes ``copies`` augmented ones (0..copies-1);
    ``gtsrb`` rows carry their count, copy 0 being the plain (crop + resize only) original."""
    return range(row[5] + 1) if job.kind == "gtsrb" else range(job.identity["copies"])


def _check_shared(job: Job, shard: dict) -> None:
    """On a Ray worker: the output and the shard's inputs must be the places the driver saw
    (the driver's token in the output's state folder; each input's size and time)."""
    state = Path(job.output) / STATE
    try:
        seen = (state / "token").read_text()
    except OSError:
        seen = None
    where = f"the Ray worker on {socket.gethostname()}"
    if seen != job.token:
        raise JobError(
            f"--output {job.output}: {where} does not see the driver's output there; storage must be shared: "
            "input and output on storage every node mounts at the same path"
        )
    for row, (size, mtime) in zip(shard["rows"], shard.get("stats", [])):
        path = os.path.join(job.input, row[1])
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns) != (size, mtime):
            raise JobError(
                f"{path}: {where} sees it {'missing' if st is None else 'changed'} (unlike the driver); storage "
                "must be shared: input and output on storage every "
                "node mounts at the same path, unchanged during the job"
            )
    if job.identity.get("png_encoder"):
        try:
            check_encoder(job.identity["png_encoder"])
        except ValueError as e:
            raise JobError(f"{where}: {e}") from None


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
    warped, matrices = augment_images(
        images,
        keys,
        cfg,
        seed=ident["seed"],
        size=None if size is None else tuple(size),
        border=ident["border"],
        boxes=boxes if size is not None else None,
        plain=copy == 0 if gtsrb else None,
        reduced=factors,
    )
    del images
    per_class = {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    stats = {
        "name": shard["name"],
        "rows": len(keys),
        "node": _node(),
        "per_class": per_class,
        "skipped": skipped,
        "scaled_16bit": deep,
        "kept_16bit": kept,
    }
    if fmt == "folder":
        ext = ident["image_format"]
        rows = zip(index, sources, labels, copy)
        rels = [_folder_file(job, shard, [int(i), src, int(y)], int(j)) for i, src, y, j in rows]
        encoded = ((out / rel, _encode(warped[k], ext, job)) for k, rel in enumerate(rels))
        files = dict(zip(rels, _write_many(encoded, tmp_dir)))
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
    write_npz(
        f,
        {
            "x": _npz_column(x),
            "y": _npz_column(cols["label"]),
            "source": _npz_column(source),
            "copy": _npz_column(cols["copy"]),
            "key": _npz_column(cols["key"]),
            "matrix": _npz_column(np.asarray(cols["matrix"], dtype=np.float64).reshape(-1, 3, 3)),
        },
    )


def _sample_json(cols: dict, k: int) -> dict:
    return {
        "source": cols["source"][k],
        "copy": int(cols["copy"][k]),
        "key": int(cols["key"][k]),
        "label": int(cols["label"][k]),
        "matrix": np.asarray(cols["matrix"][k]).tolist(),
    }


def _write_tar(f, cols: dict, job: Job) -> None:
    """WebDataset tar: per sample ``KEY.<image format>``, ``KEY.cls``, ``KEY.json``; the
    headers are fixed (mtime 0, root owner, mode 0644), so the bytes depend on the content only."""
    ext = job.identity["image_format"]
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for k in range(len(cols["key"])):
            stem = f"{int(cols['key'][k] >> np.uint64(20)):08d}_{int(cols['copy'][k]):03d}"
            members = [
                (ext, _encode(cols["x"][k], ext, job)),
                ("cls", str(int(cols["label"][k])).encode()),
                ("json", json.dumps(_sample_json(cols, k), sort_keys=True).encode()),
            ]
            for suffix, data in members:
                info = tarfile.TarInfo(f"{stem}.{suffix}")
                info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = (
                    len(data),
                    0,
                    0o644,
                    0,
                    0,
                    "",
                    "",
                )
                tar.addfile(info, io.BytesIO(data))


def _write_parquet(f, cols: dict, job: Job) -> None:
    """Parquet with ``image`` as a Hugging Face Image feature (struct of bytes and path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ext = job.identity["image_format"]
    n = len(cols["key"])
    images = [{"bytes": _encode(cols["x"][k], ext, job), "path": None} for k in range(n)]
    table = pa.table(
        {
            "image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "label": pa.array(cols["label"], type=pa.int64()),
            "source": pa.array(cols["source"], type=pa.string()),
            "copy": pa.array(cols["copy"], type=pa.int64()),
            "key": pa.array(cols["key"], type=pa.uint64()),
            "matrix": pa.array(
                [np.asarray(m).reshape(-1).tolist() for m in cols["matrix"]], type=pa.list_(pa.float64(), 9)
            ),
        }
    )
    features = {
        "image": {"_type": "Image"},
        "label": {"names": list(job.classes), "_type": "ClassLabel"},
        "source": {"dtype": "string", "_type": "Value"},
        "copy": {"dtype": "int64", "_type": "Value"},
        "key": {"dtype": "uint64", "_type": "Value"},
        "matrix": {"feature": {"dtype": "float64", "_type": "Value"}, "length": 9, "_type": "Sequence"},
    }
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
                    split.get("parts", {}).get(shard["name"]) == rec["sha256"]
                    and _verified(out / split["file"], split["sha256"], cache)
                )
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
    if executor not in ("local", "ray"):
        raise JobError(f"executor must be 'local' or 'ray', got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise JobError(f"--workers must be an integer in [1, 256], got {workers!r}")
    if executor == "ray" and num_cpus is not None and num_cpus < 1:
        raise JobError(f"--num-cpus must be at least 1 (a Ray instance without CPUs can run no shard), got {num_cpus}")
    out = Path(job.output)
    state = out / STATE
    if out.is_dir() and not os.path.lexists(out / PACKED) and not os.path.lexists(state / "job.json"):
        _refuse_if_foreign(out)  # before the lock file is made: nothing is left in a folder that is not ours
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except OSError as e:
        raise JobError(f"--output {out}: cannot write there ({_why(e)})") from None
    try:
        _prepare(job, out, state, overwrite)
        t0 = time.perf_counter()
        done = _finished(job, state)
        todo = [s for s in job.shards if s["name"] not in done]
        bar = progress(total=job.rows, initial=sum(r["rows"] for r in done.values())) if progress else None
        results = dict(done)
        run = _run_ray if executor == "ray" else (_run_processes if workers > 1 else _run_inline)
        token = _write_token(state) if executor == "ray" else ""
        light = replace(job, shards=[], token=token)  # what a worker needs besides its shard: sent once
        joiner = _SplitJoiner(job, results, state) if job.kind == "gtsrb" and job.identity["format"] == "npz" else None
        try:
            for stats in run(light, todo, workers=workers, address=address, num_cpus=num_cpus, lock=lock):
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
        manifest = _manifest(job, results, len(done), files, t0, t_shards)
        _pack(out, state)
        _write_atomic(json.dumps(manifest, indent=1, sort_keys=True), out / manifest_name(job.identity["format"]), out)
        return manifest
    finally:
        os.close(lock)


def _prepare(job: Job, out: Path, state: Path, overwrite: bool) -> None:
    """Check the output against the job (identity, foreign files) and write the job's records."""
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
    planned = planned_files(job)
    _refuse_foreign_files(out, state, planned)
    (state / "tmp").mkdir(parents=True, exist_ok=True)
    _write_json(previous, job.identity)
    _write_json(state / "targets.json", planned)
    (out / manifest_name(job.identity["format"])).unlink(missing_ok=True)


def _write_token(state: Path) -> str:
    """A fresh token in the output's state folder: a worker that does not read it there
    does not see the driver's output (see :func:`_check_shared`)."""
    import secrets

    token = secrets.token_hex(16)
    _write_atomic(token, state / "token", state / "tmp")
    return token


def _manifest(job: Job, results: dict, resumed: int, files, t0: float, t_shards: float) -> dict:
    manifest = {
        **job.identity,
        "input": job.input,
        "classes": job.classes,
        "rows": sum(results[s["name"]]["rows"] for s in job.shards),
        "shards": [
            {k: results[s["name"]].get(k) for k in ("name", "rows", "sha256", "node", "file")} for s in job.shards
        ],
        "skipped": job.problems + [x for s in job.shards for x in results[s["name"]].get("skipped", [])],
        "not_regular_files": job.not_regular,
        "links_not_followed": job.links,
        "ignored_extensions": job.ignored,
        "scaled_16bit": [x for s in job.shards for x in results[s["name"]].get("scaled_16bit", [])],
        "kept_16bit": [x for s in job.shards for x in results[s["name"]].get("kept_16bit", [])],
        "resumed_shards": resumed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    manifest["skipped_count"] = len(manifest["skipped"]) + len(job.not_regular) + len(job.links)
    if job.kind == "gtsrb":
        manifest["counts"] = {}
        for split in dict.fromkeys(s["split"] for s in job.shards):
            per_class = {}
            for shard in (s for s in job.shards if s["split"] == split):
                for label, n in results[shard["name"]]["per_class"].items():
                    per_class[label] = per_class.get(label, 0) + n
            manifest["counts"][split] = {
                "total": sum(per_class.values()),
                "per_class": dict(sorted(per_class.items(), key=lambda kv: int(kv[0]))),
            }
        if files is not None:
            manifest["files"] = files
        else:
            manifest["files"] = {
                split: f"{c['total']} files under {split}/<class>/" for split, c in manifest["counts"].items()
            }
        # join_s: what the joins added after the last shard (they run beside the shards)
        manifest["timings"] = {
            "shards_s": round(t_shards - t0, 3),
            "join_s": round(time.perf_counter() - t_shards, 3),
            "total_s": round(time.perf_counter() - t0, 3),
        }
    return manifest


def _run_inline(job, todo, **_):
    for shard in todo:
        yield run_shard(job, shard)


def _run_processes(job, todo, *, workers, lock=None, **_):
    """Shards on ``workers`` forked processes, one shard at a time each. A worker that dies
    (killed, out of memory) fails its shard at once, named; Ctrl-C stops them all."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx, queue, busy = mp.get_context("fork"), list(todo), {}
    try:
        for _ in range(min(workers, len(queue))):
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_loop, args=(job, child, os.getpid(), lock), daemon=True)
            proc.start()
            child.close()
            busy[conn] = (proc, queue.pop(0))
            conn.send(busy[conn][1])
        while busy:
            ready = set(wait(list(busy) + [proc.sentinel for proc, _ in busy.values()]))
            for conn, (proc, shard) in list(busy.items()):
                if conn not in ready and proc.sentinel not in ready:
                    continue
                kind, value = _receive(conn, proc)
                if kind == "died":
                    raise JobDataError(
                        f"shard {shard['name']}: its worker process (pid {proc.pid}) died ({value}) while "
                        "writing it; the shards finished so far are kept: rerun to resume"
                    ) from None
                if kind == "error":
                    raise value
                if queue:
                    busy[conn] = (proc, queue.pop(0))
                    conn.send(busy[conn][1])
                else:
                    conn.send(None)
                    del busy[conn]
                yield value
    finally:
        for _conn, (proc, _) in busy.items():
            proc.kill()
        for p in mp.active_children():
            p.join(timeout=5)


def _receive(conn, proc):
    """``("ok", stats)``, ``("error", exception)`` or ``("died", how)`` from one worker."""
    try:
        if conn.poll():
            return conn.recv()
    except (EOFError, OSError):
        pass
    proc.join(timeout=5)
    code = proc.exitcode
    if code is not None and code < 0:
        import signal

        how = f"killed by {signal.Signals(-code).name}" + (", as the out-of-memory killer does" if code == -9 else "")
    else:
        how = f"exit status {code}"
    return "died", how


def _worker_loop(job, conn, parent: int, lock) -> None:
    """A forked worker: shards in, statistics (or the error) out, until told to stop.
    It dies with its driver, and drops its copy of the output's lock so that a killed
    driver's output is free as soon as the driver is gone."""
    import signal

    _die_with_parent(parent)
    if lock is not None:
        os.close(lock)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops its workers
    set_num_threads(1)  # one process per core: the kernel's threads must not oversubscribe
    while True:
        try:
            shard = conn.recv()
        except (EOFError, OSError):
            return
        if shard is None:
            return
        try:
            reply = ("ok", run_shard(job, shard))
        except BaseException as e:  # noqa: BLE001 - handed to the driver, which reports it
            reply = (
                "error",
                e
                if isinstance(e, (JobError, JobDataError, BadImage))
                else JobDataError(f"shard {shard['name']}: {type(e).__name__}: {e}"),
            )
        conn.send(reply)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), and check that the
    parent is not already gone."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


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
    target = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        if num_cpus is not None and not target and num_cpus < 1:
            raise JobError(
                f"--num-cpus must be at least 1 (a Ray instance without CPUs can run no shard), got {num_cpus}"
            )
        if target and target != "auto" and "://" not in target:
            _probe(target)  # fail in seconds, not after Ray's long connection retries
        try:
            with _native_stderr_muted():  # Ray's C++ connection log lines: the error below says it in one line
                ray.init(
                    address=address,
                    num_cpus=None if address else num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except Exception as e:  # noqa: BLE001 - connection refused, bad token, ...: one clear line
            where = target or "a new local instance"
            raise JobError(f"cannot start or reach Ray at {where}: {' '.join(str(e).split())[:300]}") from None
        global _RAY_OURS
        _RAY_OURS = True
        # the other shards' errors once one has stopped the job: the job's own message says it all
        os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise JobError(
            f"the Ray cluster at {target or 'a local instance'} has no CPUs: no shard could ever be scheduled"
        )
    if warm:
        task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_ray_warm)
        for _ in range(cpus):
            task.remote()  # not waited for: the workers it starts serve the shards


class _native_stderr_muted:
    """File descriptor 2 goes to a scratch file while the block runs (what C++ libraries
    print there is dropped); Python's ``sys.stderr`` keeps writing to the terminal."""

    def __enter__(self):
        import tempfile

        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            self.scratch = tempfile.TemporaryFile()
            os.dup2(self.scratch.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.scratch.close()
        return False


_RAY_OURS = False  # whether start_ray connected (stop_ray leaves a caller's own connection alone)


def stop_ray() -> None:
    """Disconnect from Ray if :func:`start_ray` connected: at once, as Ray's own exit hook
    takes about three times as long (measured here: 0.9 s against 0.3 s)."""
    global _RAY_OURS
    if _RAY_OURS:
        import ray

        _RAY_OURS = False
        with _native_stderr_muted():
            ray.shutdown()


def _ray_warm() -> None:
    set_num_threads(1)


RAY_RETRIES = 3  # times Ray reruns a shard whose worker died


def _run_ray(job, todo, *, address=None, num_cpus=None, **_):
    import ray

    start_ray(address, num_cpus)
    # SPREAD: shards go round the nodes rather than filling the driver's node first
    task = ray.remote(num_cpus=1, max_retries=RAY_RETRIES, scheduling_strategy="SPREAD")(_ray_shard)
    limit = max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)  # keep every CPU busy, bound driver memory
    pending, queue, job_ref = {}, list(todo), ray.put(job)
    watch = _ClusterWatch(ray)
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                shard = queue.pop(0)
                pending[task.remote(job_ref, shard)] = shard["name"]
            ready = []
            while not ready:
                watch.check()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            name = pending.pop(ready[0])
            yield _ray_result(ray, ready[0], name)
    finally:
        watch.stop()


def _ray_result(ray, ref, name: str) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, (JobDataError, JobError)):
            raise type(cause)(str(cause)) from None
        raise JobDataError(
            f"shard {name} failed on Ray: {type(cause or e).__name__}: {' '.join(str(cause or e).split())[:200]}"
        ) from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as e:
        raise JobDataError(
            f"shard {name}: its Ray worker died {RAY_RETRIES + 1} times ({type(e).__name__}, Ray's retries "
            "are used up); the shards finished so far are kept: rerun to resume"
        ) from None
    except ray.exceptions.RayError as e:
        raise JobError(f"shard {name}: Ray failed ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


class _ClusterWatch:
    """Probes the cluster's GCS once a second on a thread; ``check()`` raises when it has
    stopped answering for three seconds (Ray itself waits a minute, then exits the process).
    Where the main thread cannot notice (stuck in Ray), ``HARD_EXIT`` (the CLI sets it) is
    called with the message."""

    HARD_EXIT = None

    def __init__(self, ray):
        import threading

        self.lost, self.halt = None, threading.Event()
        try:
            host, _, port = ray.get_runtime_context().gcs_address.rpartition(":")
            self.where = (host, int(port))
        except Exception:  # noqa: BLE001 - no address known: nothing to watch
            return
        self.thread = threading.Thread(target=self._watch, name="affine_aug-ray-watch", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        failures = 0
        while not self.halt.wait(1.0):
            try:
                socket.create_connection(self.where, timeout=1.0).close()
                failures = 0
            except OSError:
                failures += 1
            if failures >= 3:
                self.lost = (
                    f"the Ray cluster at {self.where[0]}:{self.where[1]} stopped answering during the job; "
                    "the shards finished so far are kept: rerun to resume"
                )
                if not self.halt.wait(5.0) and _ClusterWatch.HARD_EXIT is not None:
                    _ClusterWatch.HARD_EXIT(self.lost)
                return

    def check(self) -> None:
        if self.lost:
            raise JobError(self.lost)

    def stop(self) -> None:
        self.halt.set()


def _probe(address: str) -> None:
    """Fail in seconds where ``address`` is no Ray cluster: a closed port, a bad address,
    or a service that does not answer an HTTP/2 (gRPC) greeting as Ray's GCS does."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise JobError(f"--address {address}: expected HOST:PORT with a port number (as `ray start --head` prints it)")
    hint = "is `ray start --head` running there?"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5) as conn:
            conn.settimeout(5)
            conn.sendall(
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
            )  # preface, empty SETTINGS
            reply = b""
            while len(reply) < 9:
                data = conn.recv(9 - len(reply))
                if not data:
                    break
                reply += data
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise JobError(f"cannot start or reach Ray at {address}: {why} ({hint})") from None
    if len(reply) < 9 or reply[3] != 4:  # an HTTP/2 server answers with its SETTINGS frame (type 4)
        raise JobError(
            f"cannot start or reach Ray at {address}: the service there "
            f"is not a Ray cluster (it does not speak gRPC; {hint})"
        )
    _probe_gcs(address, hint)


GCS_PROBE_S = (
    15.0  # a Ray GCS answers in well under a second; other gRPC services keep Ray's client waiting for minutes
)


def _probe_gcs(address: str, hint: str) -> None:
    """Ask the gRPC service at ``address`` for a key as Ray's GCS keeps it, on a thread
    given ``GCS_PROBE_S``; errors are left to ``ray.init`` (auth, versions), only silence fails."""
    import threading

    def ask():
        try:
            from ray._raylet import GcsClient

            GcsClient(address=address).internal_kv_get(b"session_name", b"session", timeout=5)
        except Exception:  # noqa: BLE001 - an answer, even an error: a GCS is there
            pass

    with _native_stderr_muted():
        thread = threading.Thread(target=ask, name="affine_aug-gcs-probe", daemon=True)
        thread.start()
        thread.join(GCS_PROBE_S)
    if thread.is_alive():
        raise JobError(
            f"cannot start or reach Ray at {address}: the gRPC service there does not answer as Ray's GCS does "
            f"(no answer in {GCS_PROBE_S:.0f} s; {hint})"
        )


def _ray_shard(job, shard):
    set_num_threads(1)  # Ray runs one task per CPU
    _check_shared(job, shard)
    return run_shard(job, shard)


def job_summary(job: Job) -> dict:
    """Plain data describing a plan (for printing or inspection)."""
    return {k: v for k, v in asdict(job).items() if k != "shards"} | {"shards": len(job.shards), "rows": job.rows}
