"""The GTSRB preprocessing job: ROI crop + resize + random affine in one resampling, on
the job engine (:mod:`affine_aug.jobs`).

    split_tracks(...)   which training samples go to validation (whole tracks)
    plan_gtsrb(...)     read the CSVs and plan the job (rows ``GtsrbRow``, shards of one split)
    preprocess(...)     plan and run it
    HOOKS               what the engine asks of a ``gtsrb`` job (see ``jobs.plan.JobKind``);
                        its npz splits are joined by :mod:`affine_aug.gtsrb.join`
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import load_config
from ..conventions import MAX_COPIES
from ..jobs.engine import run_job
from ..jobs.errors import JobError
from ..jobs.formats import png_encoder
from ..jobs.plan import Job, _check_border, _check_places, _check_shard_size, _cut_shards, _digest_lines, _identity
from ..jobs.ray_executor import start_ray
from ..jobs.state import STATE
from ..pipeline import BadImage
from ..sampling import STREAMS, uniform_keyed
from .join import _kept_in_join, _SplitJoiner
from .layouts import NUM_CLASSES, GtsrbSample, read_gtsrb

__all__ = ["GtsrbRow", "plan_gtsrb", "preprocess", "split_tracks"]


class GtsrbRow(NamedTuple):
    """One source image of a GTSRB plan."""

    index: int  # in its split's list: copy j uses sample key copy_key(index, j)
    path: str  # relative to the root
    label: int  # ClassId
    roi: list  # [x1, y1, x2, y2], pixel edges (X2/Y2 exclusive)
    size: list  # [width, height] as the CSV states
    augmented: int  # augmented copies (1..augmented); copy 0 is the original
    where: str  # "file.csv:line"


def split_tracks(samples: list[GtsrbSample], val_tracks: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and validation samples: ``val_tracks`` whole tracks per class held out.

    Which tracks is a keyed draw on (seed, class, track); a class keeps at least one
    training track. Samples with unknown track count as one track each.
    """
    by_class: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_class.setdefault(s.label, []).append(i)
    held: set = set()
    for label, idx in by_class.items():
        tracks = sorted({samples[i].track if samples[i].track >= 0 else -1 - i for i in idx})
        k = min(val_tracks, len(tracks) - 1)
        if k <= 0:
            continue
        keys = np.array([label * 1_000_003 + (t % 1_000_003) for t in tracks], dtype=np.uint64)
        rank = np.argsort(uniform_keyed(seed, keys, STREAMS["track_split"]), kind="stable")
        held |= {(label, tracks[r]) for r in rank[:k]}
    val = [i for i, s in enumerate(samples) if (s.label, s.track if s.track >= 0 else -1 - i) in held]
    vset = set(val)
    return [i for i in range(len(samples)) if i not in vset], val


def _check_options(fmt, size, copies, val_tracks, shard_size, border) -> None:
    if fmt not in ("npz", "folder"):
        raise JobError(f"--format must be 'npz' or 'folder', got {fmt!r}")
    if size <= 0 or size > 1 << 14:
        raise JobError(f"--size must be in [1, 16384], got {size}")
    if copies < 0 or val_tracks < 0:
        raise JobError(f"--copies and --val-tracks must be non-negative, got {copies} and {val_tracks}")
    _check_shard_size(shard_size)
    if copies >= MAX_COPIES:
        raise JobError(
            f"--copies must be below {MAX_COPIES} (copy j of image i uses sample key (i << 20) | j), got {copies}"
        )
    _check_border(border)


def _augmented_counts(train_all: list, train_idx: list, copies: int, balance: bool) -> dict:
    """Augmented copies per training sample: ``copies`` each, more for smaller classes with
    ``balance`` (up to the largest class's count)."""
    counts = {i: copies for i in train_idx}
    if balance:
        per_class = Counter(train_all[i].label for i in train_idx)
        target = max(per_class.values()) * (copies + 1)
        for label, n in per_class.items():
            members = [i for i in train_idx if train_all[i].label == label]
            for k in range(target - n * (copies + 1)):
                counts[members[k % n]] += 1
    if counts and max(counts.values()) >= MAX_COPIES:
        raise JobError(
            f"--balance would need {max(counts.values())} copies of "
            f"one image; at most {MAX_COPIES - 1} fit the key layout"
        )
    return counts


def _split_shards(root: Path, splits: dict, train_all: list, train_idx, val_idx, counts, shard_size) -> list:
    """The shards of every split (``train``, ``val``, then ``test`` where there is one)."""
    root_prefix = str(root) + os.sep

    def row(i: int, s: GtsrbSample, n_aug: int) -> GtsrbRow:
        p = str(s.path)
        rel = p[len(root_prefix) :] if p.startswith(root_prefix) else os.path.relpath(p, root)
        return GtsrbRow(i, rel, s.label, list(s.roi), list(s.size), n_aug, s.where)

    members = {
        "train": [(i, train_all[i], counts[i]) for i in train_idx],
        "val": [(i, train_all[i], 0) for i in val_idx],
    }
    if "test" in splits:
        members["test"] = [(i, s, 0) for i, s in enumerate(splits["test"])]
    return [
        shard
        for split, group in members.items()
        for shard in _cut_shards(
            [row(*m) for m in group], [list(m[1].file_stat) for m in group], shard_size, split, True, split=split
        )
    ]


def _gtsrb_identity(cfg, seed, size, copies, val_tracks, balance, fmt, border, shard_size, samples) -> dict:
    listing = (f"{s.path}\t{s.roi}\t{s.label}\t{s.size}\t{s.file_stat[0]}\t{s.file_stat[1]}" for s in samples)
    return {
        "job": "gtsrb",
        **_identity(
            cfg,
            seed,
            size=[size, size],
            copies=copies,
            val_tracks=val_tracks,
            balance=balance,
            format=fmt,
            image_format="png",
            png_encoder=png_encoder() if fmt == "folder" else None,  # affine_aug.png
            border=border,
            shard_size=shard_size,
            images=len(samples),
            input_digest=_digest_lines(listing),
            key=(
                "copy j of image i (training: sorted by class, track, path; test: CSV order) "
                "uses sample key (i << 20) | j"
            ),
            roi="Roi.X2/Roi.Y2 exclusive; the ROI is the pixel-edge box (X1, Y1, X2, Y2)",
        ),
    }


def plan_gtsrb(
    root,
    out,
    *,
    config="gtsrb",
    size: int = 32,
    copies: int = 0,
    seed: int = 0,
    val_tracks: int = 1,
    balance: bool = False,
    fmt: str = "npz",
    skip_bad: bool = False,
    test_csv=None,
    border: str = "edge",
    overrides=None,
    shard_size: int = 256,
) -> Job:
    """Plan the GTSRB preprocessing job (metadata only: the CSVs are read, no image).

    Splits: ``train`` (augmented), ``val`` (whole tracks held out, see :func:`split_tracks`)
    and ``test``; each is cut into shards of ``shard_size`` source images. Copy 0 of an
    image is the original (ROI crop + resize only), copies ``1..copies`` (more with
    ``balance``) are augmented; validation and test images are never augmented.
    """
    cfg = load_config(config, overrides=overrides)
    _check_options(fmt, size, copies, val_tracks, shard_size, border)
    root, out = Path(root), Path(out)
    _check_places(root, out, ("--root", "--out"), inside_ok=True)  # only CSV-listed files are read
    root = Path(os.path.abspath(root))  # as the driver sees it: workers elsewhere must name the same place
    problems: list | None = [] if skip_bad else None
    splits = read_gtsrb(root, test_csv=test_csv, problems=problems)
    train_all = sorted(splits["train"], key=lambda s: (s.label, s.track, str(s.path)))
    train_idx, val_idx = split_tracks(train_all, val_tracks, seed)
    counts = _augmented_counts(train_all, train_idx, copies, balance)
    shards = _split_shards(root, splits, train_all, train_idx, val_idx, counts, shard_size)
    samples = train_all + splits.get("test", [])
    identity = _gtsrb_identity(cfg, seed, size, copies, val_tracks, balance, fmt, border, shard_size, samples)
    return Job(
        str(root),
        os.path.abspath(out),
        identity,
        [str(k) for k in range(NUM_CLASSES)],
        shards,
        skip_bad=skip_bad,
        kind="gtsrb",
        problems=list(problems or []),
    )


def preprocess(
    root,
    out,
    *,
    config="gtsrb",
    size: int = 32,
    copies: int = 0,
    seed: int = 0,
    val_tracks: int = 1,
    balance: bool = False,
    fmt: str = "npz",
    skip_bad: bool = False,
    workers: int = 1,
    test_csv=None,
    border: str = "edge",
    progress=None,
    overrides=None,
    engine: str = "local",
    address=None,
    num_cpus=None,
    overwrite: bool = False,
    shard_size: int = 256,
) -> dict:
    """Preprocess GTSRB under ``root`` into ``out`` on the job engine; return the manifest.

    Every output image is one resampling of its source: ROI → ``size`` x ``size``
    (exclusive X2/Y2, see :mod:`affine_aug.gtsrb`) composed with a random affine drawn for
    key ``(i << 20) | j`` (image i of the sorted training list, copy j >= 1), with a
    Gaussian prefilter when it shrinks. Outputs: ``train.npz``, ``val.npz``, ``test.npz``
    (``x`` uint8 (N, size, size, 3), ``y``, ``source`` (i), ``copy`` (j), ``key``,
    ``matrix``) or, with ``fmt="folder"``, ``SPLIT/CLASS/IIIIII_JJJ.png``; then
    ``manifest.json`` (last) with counts per class and checksums. Images stream through
    shards (``shard_size`` sources each), so memory does not grow with the data set; a
    killed run resumes where it stopped (see :mod:`affine_aug.jobs`), with the same bytes
    whatever ``workers`` or ``engine``.
    """
    if engine == "ray":
        start_ray(address, num_cpus, warm=True)  # Ray's workers start while the CSVs are read
    plan = dict(config=config, size=size, copies=copies, seed=seed, val_tracks=val_tracks, balance=balance)
    plan |= dict(fmt=fmt, skip_bad=skip_bad, test_csv=test_csv, border=border, overrides=overrides)
    job = plan_gtsrb(root, out, **plan, shard_size=shard_size)
    run = dict(workers=workers, address=address, num_cpus=num_cpus, overwrite=overwrite, progress=progress)
    return run_job(job, executor=engine, **run)


class _Gtsrb:
    """The ``gtsrb`` kind's hooks (see :class:`affine_aug.jobs.plan.JobKind`)."""

    source_dtype = np.int64  # the source's index in its split

    def copies(self, job: Job, row) -> range:
        return range(row.augmented + 1)

    def folder_file(self, job: Job, shard: dict, row, copy: int) -> str:
        # SPLIT/CLASS/INDEX_COPY.png: index in the split's sorted list
        return f"{shard['split']}/{row.label:05d}/{row.index:06d}_{copy:03d}.{job.identity['image_format']}"

    def shard_file(self, job: Job, shard: dict, suffix: str) -> tuple[str, bool]:
        # npz parts wait in the state folder until they are joined into SPLIT.npz; they are
        # checked against their sha256 before they are joined or reused: no fsync
        return f"{STATE}/parts/{shard['name']}{suffix}", False

    def output_files(self, job: Job, suffix: str) -> list:
        return [f"{split}{suffix}" for split in dict.fromkeys(s["split"] for s in job.shards)]

    def read_options(self, job: Job, row, cfg) -> tuple[bool, object]:
        return False, None

    def check_source(self, row, path: str, image) -> None:
        if (image.shape[1], image.shape[0]) != tuple(row.size):
            raise BadImage(
                f"{path}: image is {image.shape[1]}x{image.shape[0]} but the CSV says {row.size[0]}x{row.size[1]}"
            )

    def where(self, row) -> str:
        return f" (listed at {row.where})"

    def sample(self, row, copy: int, full_size: tuple) -> tuple:
        return row.index, row.roi

    def plain(self, copies):
        return copies == 0  # copy 0: the original, ROI crop + resize only

    def joiner(self, job: Job, results: dict, state: Path):
        return _SplitJoiner(job, results, state) if job.identity["format"] == "npz" else None

    def kept_in_join(self, job: Job, shard: dict, record: dict, verified) -> bool:
        return _kept_in_join(job, shard, record, verified)

    def complete_manifest(self, job: Job, results: dict, manifest: dict, joined, t0: float, t_shards: float) -> None:
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
        if joined is not None:
            manifest["files"] = joined
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


HOOKS = _Gtsrb()
