"""A job's plan: plain data that says what to make, decided before anything is read.

    Job          the plan (identity, shards of rows, what the listing found); picklable
    SourceRow    one row of a ``generate`` plan: (index, path, label)
    JobKind      the hooks through which a kind of job (``generate``, ``gtsrb``) tells the
                 engine what its rows mean; ``Job.hooks`` finds its kind's
    _identity    the identity every kind's job records (library, version, config, seed, ...)
    _cut_shards  rows (and their files' size and time) cut into named shards

A shard is ``{"name": ..., "rows": [row, ...], "stats": [[bytes, mtime_ns], ...]}`` (a kind
may add keys, as ``split``). Rows are named tuples: their JSON is the list of their fields,
which the shard's record digests.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple, Protocol

from ..pipeline import MAX_PIXELS
from .errors import JobError

# the module of each kind of job, and its hooks there (looked up when first used, so that
# a worker that unpickles a job finds its kind)
KINDS = {"generate": "affine_aug.jobs.generate", "gtsrb": "affine_aug.gtsrb.job"}


class SourceRow(NamedTuple):
    """One source image of a ``generate`` plan."""

    index: int  # in the sorted listing: copy j uses sample key copy_key(index, j)
    path: str  # relative to the input
    label: int


class JobKind(Protocol):
    """What the engine asks a kind of job. ``row`` is one of the kind's plan rows."""

    def copies(self, job: Job, row) -> range:
        """The copies made of ``row`` (copy ``j`` uses sample key ``copy_key(row.index, j)``)."""

    def folder_file(self, job: Job, shard: dict, row, copy: int) -> str:
        """Where copy ``copy`` of ``row`` goes in ``folder`` output (relative to the output)."""

    def shard_file(self, job: Job, shard: dict, suffix: str) -> tuple[str, bool]:
        """Where a shard file goes (relative to the output) and whether it must be made durable."""

    def output_files(self, job: Job, suffix: str) -> list:
        """The files that a job in a shard format leaves in its output (its manifest aside)."""

    def read_options(self, job: Job, row, cfg) -> tuple[bool, object]:
        """How to read ``row``'s source: (keep 16-bit, reduction plan or None; see ``pipeline.read_source``)."""

    def check_source(self, row, path: str, image) -> None:
        """Raise ``BadImage`` where the decoded source disagrees with the plan."""

    def where(self, row) -> str:
        """What a message about ``row``'s source adds (where the row was listed), or ``""``."""

    def sample(self, row, copy: int, full_size: tuple) -> tuple:
        """The ``source`` column's value and the box (pixel edges) resized to the output."""

    source_dtype: type  # the npz ``source`` column's dtype

    def plain(self, copies):
        """Which copies are not augmented (a boolean array), or None: all are."""

    def joiner(self, job: Job, results: dict, state: Path):
        """An object joining shard files as their groups complete (``add(name)``, ``finish()``
        returning ``{file: sha256}``, ``stop()``), or None."""

    def kept_in_join(self, job: Job, shard: dict, record: dict, verified) -> bool:
        """Whether a finished shard whose file is gone lives on, whole, in a joined file."""

    def complete_manifest(self, job: Job, results: dict, manifest: dict, joined, t0: float, t_shards: float) -> None:
        """Add the kind's entries to the manifest (counts, joined files, timings: the job
        started at ``t0`` and its last shard ended at ``t_shards``, ``time.perf_counter()``)."""


@cache
def _hooks(kind: str) -> JobKind:
    return importlib.import_module(KINDS[kind]).HOOKS


@dataclass(frozen=True)
class Job:
    """A planned job: plain data (picklable, sent to workers and Ray tasks as it is).

    ``shards[k]`` is ``{"name": "part-00000", "rows": [SourceRow(index, path, label), ...]}``;
    copy ``j`` of source ``index`` uses sample key ``copy_key(index, j)``. ``kind="gtsrb"``
    jobs (planned by :func:`affine_aug.gtsrb.plan_gtsrb`) have shards of one ``split`` and
    rows ``GtsrbRow(index, path, label, roi, size, augmented, where)``.
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
    def hooks(self) -> JobKind:
        """The hooks of this job's kind."""
        return _hooks(self.kind)

    @property
    def rows(self) -> int:
        return sum(len(self.hooks.copies(self, row)) for s in self.shards for row in s["rows"])


def job_summary(job: Job) -> dict:
    """Plain data describing a plan (for printing or inspection)."""
    return {k: v for k, v in asdict(job).items() if k != "shards"} | {"shards": len(job.shards), "rows": job.rows}


def _identity(cfg, seed: int, **fields) -> dict:
    """The identity of a job (what must match for a rerun to resume it): the library and
    its version, the resolved config and the seed, then the kind's own ``fields``."""
    from .. import __version__

    return {"library": "affine_aug", "version": __version__, "config": cfg.to_dict(), "seed": int(seed), **fields}


def _cut_shards(rows: list, stats: list, shard_size: int, name="part", keep_empty=False, **extra) -> list:
    """``rows`` (and their sources' ``[bytes, mtime_ns]``) cut into shards ``NAME-00000``, ...,
    each with the ``extra`` keys; with ``keep_empty``, no rows still make one, empty, shard."""
    starts = range(0, max(1, len(rows)) if keep_empty else len(rows), shard_size)
    return [
        {"name": f"{name}-{k:05d}", **extra, "rows": rows[s : s + shard_size], "stats": stats[s : s + shard_size]}
        for k, s in enumerate(starts)
    ]


def _check_shard_size(shard_size: int) -> None:
    if not 1 <= shard_size <= 100_000:
        raise JobError(f"--shard-size must be in [1, 100000], got {shard_size}")


def _check_border(border: str) -> None:
    if border not in ("edge", "constant"):
        raise JobError(f"--border must be 'edge' or 'constant', got {border!r}")


def _digest_lines(lines) -> str:
    """sha256 of text lines (each ended by a newline): listings, file tables."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _check_places(inp: Path, out: Path, flags=("--input", "--output"), inside_ok: bool = False) -> None:
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


def _absolute(path) -> str:
    """The path as the driver sees it, made absolute without resolving links: workers on
    other nodes (with another working directory) must name the same place."""
    return os.path.abspath(path)
