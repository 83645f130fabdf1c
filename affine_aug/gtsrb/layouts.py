"""Reading GTSRB's layouts (labels always come from the ``ClassId`` column, never from
folder names): see :mod:`affine_aug.gtsrb` for the layouts and the ROI convention."""

from __future__ import annotations

import csv
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import AffineAugError

__all__ = ["DataError", "GtsrbSample", "read_gtsrb"]

NUM_CLASSES = 43
COLUMNS = ("Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")

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


def _read_rows(csv_path: Path, sep: str) -> list:
    """The CSV's rows (the header first), or a :class:`DataError` naming the file and line."""
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
    return rows


def _sample(csv_path: Path, line: int, row: list, idx: list, name_at: int, base: Path) -> GtsrbSample:
    """One CSV row as a sample, or a :class:`DataError` naming the file and line."""
    integer = _INTEGER.fullmatch
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
            f"{csv_path}:{line}: bad ROI {roi} for a {w}x{h} image (need 0 <= X1 < X2 <= Width, 0 <= Y1 < Y2 <= Height)"
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
    return GtsrbSample(path, roi, label, track, (w, h), f"{csv_path}:{line}", (st.st_size, st.st_mtime_ns))


def _read_csv(csv_path: Path, base: Path, sep: str, name_column: str, problems: list) -> list[GtsrbSample]:
    rows = _read_rows(csv_path, sep)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in (name_column,) + COLUMNS if c not in header]
    if missing:
        hint = " (an unlabelled test CSV? give the labelled GT-final_test.csv)" if missing == ["ClassId"] else ""
        raise DataError(f"{csv_path}:1: missing column(s) {', '.join(missing)}; header is {sep.join(header)}{hint}")
    col = {c: header.index(c) for c in header}
    idx = [col[c] for c in COLUMNS]
    out, fields = [], len(header)
    for line, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != fields:
                if not "".join(row).strip():
                    continue  # a blank line
                raise DataError(f"{csv_path}:{line}: expected {fields} fields, got {len(row)}")
            out.append(_sample(csv_path, line, row, idx, col[name_column], base))
        except DataError as e:
            problems.append(str(e))
    return out


def _candidates(root: Path) -> list:
    """(training folder, test folder, torchvision's test CSV) of the official and torchvision layouts."""
    return [
        (root / "GTSRB" / "Final_Training" / "Images", root / "GTSRB" / "Final_Test" / "Images", None),
        (root / "Final_Training" / "Images", root / "Final_Test" / "Images", None),
        (
            root / "gtsrb" / "GTSRB" / "Training",
            root / "gtsrb" / "GTSRB" / "Final_Test" / "Images",
            root / "gtsrb" / "GT-final_test.csv",
        ),
        (root / "GTSRB" / "Training", root / "GTSRB" / "Final_Test" / "Images", root / "GT-final_test.csv"),
    ]


def _read_folders(train_dir: Path, test_dir: Path, tv_csv, test_csv, problems: list) -> dict:
    """The official or torchvision layout: one CSV per class folder, then the test CSV."""
    splits, train = {}, []
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
    return splits


def _read_kaggle(root: Path, test_csv, problems: list) -> dict:
    """Kaggle's layout: ``Train.csv`` and ``Test.csv`` with a ``Path`` column relative to ``root``."""
    if not (root / "Train.csv").is_file():
        raise DataError(
            f"{root}: no GTSRB layout found (looked for GTSRB/Final_Training/Images, "
            "gtsrb/GTSRB/Training and Train.csv)"
        )
    splits = {"train": _read_csv(root / "Train.csv", root, ",", "Path", problems)}
    test = Path(test_csv) if test_csv else root / "Test.csv"
    if test.is_file():
        splits["test"] = _read_csv(test, root, ",", "Path", problems)
    return splits


def read_gtsrb(root, test_csv=None, problems: list | None = None) -> dict[str, list[GtsrbSample]]:
    """Find and read the GTSRB layout under ``root``: ``{"train": [...], "test": [...]}``.

    ``test`` is absent when there is no test set. Rows that are bad (non-numeric field,
    bad ROI, missing file) raise :class:`DataError`, or are appended to ``problems`` as
    messages when a list is given (the ``--skip-bad`` mode).
    """
    root = Path(root)
    strict = problems is None
    problems = [] if strict else problems
    for train_dir, test_dir, tv_csv in _candidates(root):
        if train_dir.is_dir():
            splits = _read_folders(train_dir, test_dir, tv_csv, test_csv, problems)
            break
    else:
        splits = _read_kaggle(root, test_csv, problems)
    if strict and problems:
        raise DataError(problems[0])
    if not splits.get("train"):
        raise DataError(f"{root}: the training set is empty")
    return splits
