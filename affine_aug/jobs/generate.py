"""The ``generate`` job: an ImageFolder tree, each image augmented ``copies`` times.

plan_generate(...)   list the tree (classes are its first-level folders), check the
                     options and plan the shards (rows ``SourceRow(index, path, label)``)
target_name(...)     where a copy goes in ``folder`` output
HOOKS                what the engine asks of a ``generate`` job (see ``plan.JobKind``)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import load_config
from ..conventions import BORDER_OFFLINE, MAX_COPIES, copy_key
from ..pipeline import _IMAGE_EXTENSIONS, MAX_PIXELS, output_reduction
from ..sampling import sample
from .errors import JobDataError, JobError, _why
from .formats import FORMATS, IMAGE_FORMATS, png_encoder
from .plan import (
    Job,
    SourceRow,
    _absolute,
    _check_border,
    _check_places,
    _check_shard_size,
    _cut_shards,
    _digest_lines,
    _identity,
)
from .state import OWN_NAMES

__all__ = ["plan_generate", "target_name"]


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
        is_image = suffix in _IMAGE_EXTENSIONS
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


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_options(copies, fmt, image_format, size, quality, max_pixels, png_level, shard_size, border):
    """The options of a ``generate`` job, checked in the order the command names them; returns ``size``."""
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
    _check_shard_size(shard_size)
    _check_border(border)
    return size


def _usable_files(inp: Path, fmt: str, classes: list, found: _Listing, skip_bad: bool) -> tuple[list, list]:
    """The listed images the job can take, and the problems met (``--skip-bad``), or the error."""
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
        raise JobError(f"--input {inp}: no images ({', '.join(_IMAGE_EXTENSIONS)}) in the class folders")
    return files, problems


def _sources(inp: Path, fmt: str, skip_bad: bool) -> tuple[list, _Listing, list, list]:
    """The classes, what the listing found, the images the job takes and the problems met."""
    classes, found = _listing(inp, skip_bad)
    return (classes, found, *_usable_files(inp, fmt, classes, found, skip_bad))


def _shards(files: list, shard_size: int) -> list:
    """The listed images as rows (index in the sorted listing, path, label), in shards."""
    rows = [SourceRow(i, rel, label) for i, (rel, label, _, _) in enumerate(files)]
    stats = [[size_, mtime] for _, _, size_, mtime in files]
    return _cut_shards(rows, stats, shard_size)


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
    cfg = load_config(config, overrides=overrides)
    inp, out = Path(input), Path(output)
    size = _check_options(copies, fmt, image_format, size, quality, max_pixels, png_level, shard_size, border)
    _check_places(inp, out)
    classes, found, files, problems = _sources(inp, fmt, skip_bad)
    identity = _identity(
        cfg,
        seed if seed is not None else (cfg.seed or 0),
        copies=copies,
        size=list(size) if size else None,
        format=fmt,
        image_format=image_format if fmt != "npz" else None,
        quality=quality if fmt != "npz" and image_format != "png" else None,
        png_level=png_level if fmt != "npz" and image_format == "png" else None,
        png_encoder=png_encoder() if fmt != "npz" and image_format == "png" else None,  # affine_aug.png
        decode=None if size is None else ("full" if full_decode else "reduced"),  # affine_aug.pipeline.read_source
        max_pixels=max_pixels,
        border=border,
        shard_size=shard_size,
        images=len(files),
        input_digest=_digest_lines(f"{rel}\t{size_}\t{mtime}" for rel, _, size_, mtime in files),
        key="copy j of image i (sorted by relative path) uses sample key (i << 20) | j",
    )
    return Job(
        _absolute(inp),
        _absolute(out),
        identity,
        classes,
        _shards(files, shard_size),
        found.ignored,
        found.odd,
        skip_bad,
        quality,
        png_level=png_level,
        max_pixels=max_pixels,
        problems=problems,
        links=found.links,
    )


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


class _Generate:
    """The ``generate`` kind's hooks (see :class:`affine_aug.jobs.plan.JobKind`)."""

    source_dtype = str  # the source's relative path

    def copies(self, job: Job, row) -> range:
        return range(job.identity["copies"])

    def folder_file(self, job: Job, shard: dict, row, copy: int) -> str:
        return target_name(row.path, copy, job.identity["image_format"])

    def shard_file(self, job: Job, shard: dict, suffix: str) -> tuple[str, bool]:
        return shard["name"] + suffix, True

    def output_files(self, job: Job, suffix: str) -> list:
        return [s["name"] + suffix for s in job.shards]

    def read_options(self, job: Job, row, cfg) -> tuple[bool, object]:
        # 16-bit sources stay 16-bit where every output is its own PNG (folder, webdataset,
        # parquet); npz shards (one uint8 RGB array) and JPEG/WebP do not hold them
        ident = job.identity
        keep_16bit = ident["format"] != "npz" and ident["image_format"] == "png"
        if ident.get("decode") != "reduced":  # with --size, a source may be shrunk while it is read
            return keep_16bit, None
        size, n = tuple(ident["size"]), ident["copies"]
        keys = copy_key(np.full(n, row.index), np.arange(n))
        return keep_16bit, output_reduction(size, lambda: sample(cfg, keys, size=size, seed=ident["seed"]).matrices)

    def check_source(self, row, path: str, image) -> None:
        pass

    def where(self, row) -> str:
        return ""

    def sample(self, row, copy: int, full_size: tuple) -> tuple:
        return row.path, (0, 0, *full_size)

    def plain(self, copies):
        return None

    def joiner(self, job: Job, results: dict, state: Path):
        return None

    def kept_in_join(self, job: Job, shard: dict, record: dict, verified) -> bool:
        return False

    def complete_manifest(self, job: Job, results: dict, manifest: dict, joined, t0: float, t_shards: float) -> None:
        pass


HOOKS = _Generate()
