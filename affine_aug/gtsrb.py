"""GTSRB (German Traffic Sign Recognition Benchmark): reading its layouts, a synthetic
stand-in, and the preprocessing job (ROI crop + resize + random affine in one resampling).

Layouts read (labels always come from the ``ClassId`` column, never from folder names):

* official: ``GTSRB/Final_Training/Images/000NN/TTTTT_FFFFF.ppm`` with ``GT-000NN.csv``
  in each class folder; test images ``GTSRB/Final_Test/Images/NNNNN.ppm`` with
  ``GT-final_test.csv`` next to them (or given explicitly). CSVs are ``;``-separated:
  ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``.
* torchvision: ``root/gtsrb/GTSRB/Training/000NN/...`` (CSVs in the class folders) and
  ``root/gtsrb/GTSRB/Final_Test/Images`` with ``root/gtsrb/GT-final_test.csv``.
* Kaggle: ``root/Train.csv`` / ``root/Test.csv``, comma-separated, with a ``Path`` column
  relative to ``root`` (PNG files).

ROI convention: ``Roi.X1, Roi.Y1`` are the first sign pixel, ``Roi.X2, Roi.Y2`` one past
the last (exclusive). The published data shows it: a 29x30 image with ROI (5, 6, 24, 25)
has 5-pixel margins on every side only if X2/Y2 are exclusive (GTSRB promises >= 5 px).
The ROI is therefore the pixel-edge box ``(X1, Y1, X2, Y2)``, the convention of boxes
everywhere in this library.

Tracks: a training file ``TTTTT_FFFFF`` is frame FFFFF of track TTTTT (one physical
sign seen 30 times as the car approaches). Validation holds out whole tracks.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .config import load_config
from .errors import AffineAugError
from .conventions import MAX_COPIES
from .jobs import Job, JobError, check_places, digest_lines, png_encoder, run_job, start_ray
from .sampling import STREAMS, uniform_keyed

__all__ = ["DataError", "GtsrbSample", "make_synthetic", "plan_gtsrb", "preprocess", "read_gtsrb"]

NUM_CLASSES = 43
# Images per class in the real GTSRB training (39,209) and test (12,630) sets.
TRAIN_COUNTS = (210, 2220, 2250, 1410, 1980, 1860, 420, 1440, 1410, 1470, 2010, 1320, 2100, 2160, 780,
                630, 420, 1110, 1200, 210, 360, 330, 390, 510, 270, 1500, 600, 240, 540, 270, 450, 780,
                240, 689, 420, 1200, 390, 210, 2070, 300, 360, 240, 240)  # fmt: skip
TEST_COUNTS = (60, 720, 750, 450, 660, 630, 150, 450, 450, 480, 660, 420, 690, 720, 270, 210, 150, 360,
               390, 60, 90, 90, 120, 150, 90, 480, 180, 60, 150, 90, 150, 270, 60, 210, 120, 390, 120,
               60, 690, 90, 90, 60, 90)  # fmt: skip
COLUMNS = ("Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
SYNTHETIC_MARKER = "affine_aug_synthetic.json"  # written last by make_synthetic


_INTEGER = re.compile(r"[+-]?\d+")
_TRACK = re.compile(r"(?:\d+_)?(\d+)_(\d+)")  # TTTTT_FFFFF (training) or NNNNN (test): track, frame


class DataError(AffineAugError):
    """Bad dataset content: names the file (and CSV line) at fault."""


@dataclass(frozen=True)
class GtsrbSample:
    path: Path
    roi: tuple[int, int, int, int]  # (x1, y1, x2, y2), pixel edges, x2/y2 exclusive
    label: int
    track: int  # -1 when unknown (test images)
    size: tuple[int, int]  # (width, height) as the CSV states
    where: str  # "file.csv:line" for messages
    file_stat: tuple[int, int] = (0, 0)  # (bytes, mtime in ns) when read: part of the job's input digest


# ----------------------------------------------------------------------------- reading


def _read_csv(csv_path: Path, base: Path, sep: str, name_column: str, problems: list) -> list[GtsrbSample]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"{csv_path}: cannot read ({(e.strerror or str(e)).lower()})") from None
    except UnicodeDecodeError as e:
        line = csv_path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(
            f"{csv_path}:{line}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})"
        ) from None
    rows = list(csv.reader(text.splitlines(), delimiter=sep))
    if not rows:
        raise DataError(f"{csv_path}: empty CSV")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in (name_column,) + COLUMNS if c not in header]
    if missing:
        hint = " (an unlabelled test CSV? give the labelled GT-final_test.csv)" if missing == ["ClassId"] else ""
        raise DataError(f"{csv_path}:1: missing column(s) {', '.join(missing)}; header is {sep.join(header)}{hint}")
    col = {c: header.index(c) for c in header}
    idx = [col[c] for c in COLUMNS]
    name_at = col[name_column]
    out = []
    fields, integer = len(header), _INTEGER.fullmatch
    for line, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != fields:
                if not "".join(row).strip():
                    continue  # a blank line
                raise DataError(f"{csv_path}:{line}: expected {fields} fields, got {len(row)}")
            cells = [row[i].strip() for i in idx]
            if not all(map(integer, cells)):
                c, cell = next((c, cell) for c, cell in zip(COLUMNS, cells) if not integer(cell))
                raise DataError(f"{csv_path}:{line}: {c} is not an integer: {cell!r}")
            w, h, x1, y1, x2, y2, label = map(int, cells)
            name = row[name_at].strip()
            path = base / name
            roi = (x1, y1, x2, y2)
            if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                raise DataError(
                    f"{csv_path}:{line}: bad ROI {roi} for a {w}x{h} image "
                    "(need 0 <= X1 < X2 <= Width, 0 <= Y1 < Y2 <= Height)"
                )
            if not 0 <= label < 1000:
                raise DataError(f"{csv_path}:{line}: ClassId {label} out of range")
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):
                raise DataError(f"{csv_path}:{line}: image {name} not found ({path})")
            m = _TRACK.fullmatch(os.path.splitext(os.path.basename(name))[0])
            track = int(m.group(1)) if m else -1
            out.append(GtsrbSample(path, roi, label, track, (w, h), f"{csv_path}:{line}", (st.st_size, st.st_mtime_ns)))
        except DataError as e:
            problems.append(str(e))
    return out


def read_gtsrb(root, test_csv=None, problems: list | None = None) -> dict[str, list[GtsrbSample]]:
    """Find and read the GTSRB layout under ``root``: ``{"train": [...], "test": [...]}``.

    ``test`` is absent when there is no test set. Rows that are bad (non-numeric field,
    bad ROI, missing file) raise :class:`DataError`, or are appended to ``problems`` as
    messages when a list is given (the ``--skip-bad`` mode).
    """
    root = Path(root)
    strict = problems is None
    problems = [] if strict else problems
    splits: dict[str, list[GtsrbSample]] = {}
    candidates = [
        (root / "GTSRB" / "Final_Training" / "Images", root / "GTSRB" / "Final_Test" / "Images", None),
        (root / "Final_Training" / "Images", root / "Final_Test" / "Images", None),
        (
            root / "gtsrb" / "GTSRB" / "Training",
            root / "gtsrb" / "GTSRB" / "Final_Test" / "Images",
            root / "gtsrb" / "GT-final_test.csv",
        ),
        (root / "GTSRB" / "Training", root / "GTSRB" / "Final_Test" / "Images", root / "GT-final_test.csv"),
    ]
    for train_dir, test_dir, tv_csv in candidates:
        if train_dir.is_dir():
            train = []
            for class_dir in sorted(p for p in train_dir.iterdir() if p.is_dir()):
                csv_path = class_dir / f"GT-{class_dir.name}.csv"
                if not csv_path.is_file():
                    raise DataError(f"{class_dir}: no {csv_path.name} in the class folder")
                train += _read_csv(csv_path, class_dir, ";", "Filename", problems)
            splits["train"] = train
            found = (
                [Path(test_csv)]
                if test_csv
                else [p for p in (test_dir / "GT-final_test.csv", tv_csv) if p is not None and p.is_file()]
            )
            if test_csv and not Path(test_csv).is_file():
                raise DataError(f"{test_csv}: test CSV not found")
            if found:
                splits["test"] = _read_csv(found[0], test_dir, ";", "Filename", problems)
            break
    else:
        if (root / "Train.csv").is_file():
            splits["train"] = _read_csv(root / "Train.csv", root, ",", "Path", problems)
            test = Path(test_csv) if test_csv else root / "Test.csv"
            if test.is_file():
                splits["test"] = _read_csv(test, root, ",", "Path", problems)
        else:
            raise DataError(
                f"{root}: no GTSRB layout found (looked for GTSRB/Final_Training/Images, "
                "gtsrb/GTSRB/Training and Train.csv)"
            )
    if strict and problems:
        raise DataError(problems[0])
    if not splits.get("train"):
        raise DataError(f"{root}: the training set is empty")
    return splits


# ----------------------------------------------------------------------------- synthetic data

_RED, _BLUE, _WHITE, _YELLOW, _BLACK = (200, 20, 30), (20, 60, 180), (245, 245, 245), (250, 200, 20), (20, 20, 20)


def _draw_sign(label: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A sign-like drawing for class ``label`` on an RGBA canvas of ``size`` pixels."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    s = size - 1
    shape = label % 5
    if shape == 0:  # round, red ring
        d.ellipse([0, 0, s, s], fill=_RED)
        d.ellipse([s * 0.15, s * 0.15, s * 0.85, s * 0.85], fill=_WHITE)
    elif shape == 1:  # triangle, red border
        d.polygon([(s / 2, 0), (s, s), (0, s)], fill=_RED)
        d.polygon([(s / 2, s * 0.25), (s * 0.83, s * 0.9), (s * 0.17, s * 0.9)], fill=_WHITE)
    elif shape == 2:  # blue disc
        d.ellipse([0, 0, s, s], fill=_BLUE)
    elif shape == 3:  # diamond, yellow
        d.polygon([(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)], fill=_WHITE)
        d.polygon([(s / 2, s * 0.15), (s * 0.85, s / 2), (s / 2, s * 0.85), (s * 0.15, s / 2)], fill=_YELLOW)
    else:  # octagon, red
        r = s / 2
        pts = [(r + r * np.cos(np.pi / 8 + k * np.pi / 4), r + r * np.sin(np.pi / 8 + k * np.pi / 4)) for k in range(8)]
        d.polygon(pts, fill=_RED)
    # class-specific glyph: bars encoding label // 5 (0..8)
    ink = _WHITE if shape in (2, 4) else _BLACK
    code = label // 5
    for k in range(4):
        if code >> k & 1 or k == 3:
            x0 = s * (0.3 + 0.1 * k)
            d.rectangle([x0, s * (0.42 - 0.05 * (k % 2)), x0 + max(1, s * 0.06), s * 0.68], fill=ink)
    return im


def make_synthetic(
    root, *, tracks_per_class: int = 2, frames: int = 30, test_per_class: int = 10, full: bool = False, seed: int = 0
) -> dict[str, int]:
    """Write a synthetic GTSRB in the official layout under ``root``.

    43 classes of drawn sign-like shapes on noisy backgrounds; tracks of ``frames``
    images growing in size as the sign approaches; sizes 15-250 px, not square, with a
    10% (>= 5 px) margin around the sign; per-class CSVs with exclusive X2/Y2.
    ``full`` gives the real counts (39,209 training, 12,630 test images, real class
    imbalance, tracks of 30). Otherwise each class gets ``tracks_per_class`` tracks of
    ``frames`` frames (and class sizes still follow the real imbalance, at least one
    track each). Returns the number of images per split.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    train_dir = root / "GTSRB" / "Final_Training" / "Images"
    test_dir = root / "GTSRB" / "Final_Test" / "Images"
    train_dir.mkdir(parents=True, exist_ok=True)
    test_dir.mkdir(parents=True, exist_ok=True)
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
    biggest = max(TRAIN_COUNTS)

    def render(label: int, sign: int, r: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int, int]]:
        margin = max(5, int(round(sign * 0.1)))
        w = sign + 2 * margin + int(r.integers(0, 3))
        h = sign + 2 * margin + int(r.integers(0, 3))
        bg = r.integers(40, 200, 3)
        noise = r.normal(0, 12, (h, w, 3))
        grad = np.linspace(-20, 20, w)[None, :, None]
        canvas = Image.fromarray(np.clip(bg + noise + grad, 0, 255).astype(np.uint8))
        x1, y1 = (
            margin + int(r.integers(0, w - sign - 2 * margin + 1)),
            margin + int(r.integers(0, h - sign - 2 * margin + 1)),
        )
        sign_image = _draw_sign(label, sign, r)
        canvas.paste(sign_image, (x1, y1), sign_image)
        return canvas, (x1, y1, x1 + sign, y1 + sign)

    n_train = 0
    for label in range(NUM_CLASSES):
        class_dir = train_dir / f"{label:05d}"
        class_dir.mkdir(exist_ok=True)
        if full:
            count = TRAIN_COUNTS[label]
        else:
            count = max(1, round(tracks_per_class * TRAIN_COUNTS[label] / biggest)) * frames
        lines = [header]
        n_frames = 30 if full else frames
        for track in range((count + n_frames - 1) // n_frames):
            start = float(np.clip(rng.lognormal(np.log(28), 0.45), 12, 150))  # size at the first frame
            for frame in range(min(n_frames, count - track * n_frames)):
                sign = int(np.clip(round(start * (1 + 1.2 * frame / max(1, n_frames - 1))), 12, 205))
                img, roi = render(label, sign, rng)
                name = f"{track:05d}_{frame:05d}.ppm"
                img.save(class_dir / name, format="PPM")
                lines.append(f"{name};{img.width};{img.height};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{label}\n")
        (class_dir / f"GT-{label:05d}.csv").write_text("".join(lines))
        n_train += count
    lines = [header]
    index = 0
    for label in range(NUM_CLASSES):
        count = TEST_COUNTS[label] if full else test_per_class
        for _ in range(count):
            sign = int(np.clip(rng.lognormal(np.log(40), 0.5), 12, 205))
            img, roi = render(label, sign, rng)
            name = f"{index:05d}.ppm"
            img.save(test_dir / name, format="PPM")
            lines.append(f"{name};{img.width};{img.height};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{label}\n")
            index += 1
    (test_dir / "GT-final_test.csv").write_text("".join(lines))
    counts = {"train": n_train, "test": index}
    (root / SYNTHETIC_MARKER).write_text(
        json.dumps(
            {
                "seed": seed,
                "full": full,
                "tracks_per_class": tracks_per_class,
                "frames": frames,
                "test_per_class": test_per_class,
                **counts,
            }
        )
    )
    return counts


# ----------------------------------------------------------------------------- preprocessing


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
    from . import __version__

    cfg = load_config(config, overrides=overrides)
    if fmt not in ("npz", "folder"):
        raise JobError(f"--format must be 'npz' or 'folder', got {fmt!r}")
    if size <= 0 or size > 1 << 14:
        raise JobError(f"--size must be in [1, 16384], got {size}")
    if copies < 0 or val_tracks < 0:
        raise JobError(f"--copies and --val-tracks must be non-negative, got {copies} and {val_tracks}")
    if not 1 <= shard_size <= 100_000:
        raise JobError(f"--shard-size must be in [1, 100000], got {shard_size}")
    if copies >= MAX_COPIES:
        raise JobError(
            f"--copies must be below {MAX_COPIES} (copy j of image i uses sample key (i << 20) | j), got {copies}"
        )
    if border not in ("edge", "constant"):
        raise JobError(f"--border must be 'edge' or 'constant', got {border!r}")
    root, out = Path(root), Path(out)
    check_places(root, out, ("--root", "--out"), inside_ok=True)  # only CSV-listed files are read
    root = Path(os.path.abspath(root))  # as the driver sees it: workers elsewhere must name the same place
    problems: list | None = [] if skip_bad else None
    splits = read_gtsrb(root, test_csv=test_csv, problems=problems)
    train_all = sorted(splits["train"], key=lambda s: (s.label, s.track, str(s.path)))
    train_idx, val_idx = split_tracks(train_all, val_tracks, seed)
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

    root_prefix = str(root) + os.sep

    def row(i, s, n_aug):
        p = str(s.path)
        rel = p[len(root_prefix) :] if p.startswith(root_prefix) else os.path.relpath(p, root)
        return [i, rel, s.label, list(s.roi), list(s.size), n_aug, s.where]

    tests = splits.get("test", [])
    rows = {
        "train": [row(i, train_all[i], counts[i]) for i in train_idx],
        "val": [row(i, train_all[i], 0) for i in val_idx],
    }
    stats = {
        "train": [list(train_all[i].file_stat) for i in train_idx],
        "val": [list(train_all[i].file_stat) for i in val_idx],
    }
    if "test" in splits:
        rows["test"] = [row(i, s, 0) for i, s in enumerate(tests)]
        stats["test"] = [list(s.file_stat) for s in tests]
    shards = [
        {
            "name": f"{split}-{k:05d}",
            "split": split,
            "rows": r[s0 : s0 + shard_size],
            "stats": stats[split][s0 : s0 + shard_size],
        }
        for split, r in rows.items()
        for k, s0 in enumerate(range(0, max(1, len(r)), shard_size))
    ]

    def listing():
        for s in train_all + tests:
            yield f"{s.path}\t{s.roi}\t{s.label}\t{s.size}\t{s.file_stat[0]}\t{s.file_stat[1]}"

    identity = {
        "library": "affine_aug",
        "job": "gtsrb",
        "version": __version__,
        "config": cfg.to_dict(),
        "seed": int(seed),
        "size": [size, size],
        "copies": copies,
        "val_tracks": val_tracks,
        "balance": balance,
        "format": fmt,
        "image_format": "png",
        "png_encoder": png_encoder() if fmt == "folder" else None,  # affine_aug.png
        "border": border,
        "shard_size": shard_size,
        "images": len(train_all) + len(tests),
        "input_digest": digest_lines(listing()),
        "key": (
            "copy j of image i (training: sorted by class, track, path; test: CSV order) uses sample key (i << 20) | j"
        ),
        "roi": "Roi.X2/Roi.Y2 exclusive; the ROI is the pixel-edge box (X1, Y1, X2, Y2)",
    }
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
    (exclusive X2/Y2, see the module docstring) composed with a random affine drawn for
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
    job = plan_gtsrb(
        root,
        out,
        config=config,
        size=size,
        copies=copies,
        seed=seed,
        val_tracks=val_tracks,
        balance=balance,
        fmt=fmt,
        skip_bad=skip_bad,
        test_csv=test_csv,
        border=border,
        overrides=overrides,
        shard_size=shard_size,
    )
    return run_job(
        job,
        executor=engine,
        workers=workers,
        address=address,
        num_cpus=num_cpus,
        overwrite=overwrite,
        progress=progress,
    )
