"""The images the tuning page may read, and bounded decoding.

The server reads only (a) the image files it was started with, (b) image files inside
the folders it was started with, and (c) uploads. A name from the page is looked up,
never joined blindly: folder entries are resolved and must stay inside their folder
(``..``, absolute names and symlinks leaving the folder are refused). Every decode is
bounded in bytes and in pixels before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..pipeline import _IMAGE_EXTENSIONS

__all__ = ["BadInput", "Sources", "decode_image", "pattern_image"]

MAX_FILE_BYTES = 64 << 20  # an image file the page reads
MAX_UPLOAD_BYTES = 16 << 20  # one upload
MAX_PIXELS = 40_000_000  # decoded width * height, checked from the header before decoding
MAX_LISTED = 5000  # images listed per folder
MAX_UPLOADS = 8  # uploads kept (the oldest is dropped)
MAX_SIDE = 1024  # stored images are shrunk to this longer side once
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "PPM", "GIF", "TIFF")
PATTERN = "pattern"


class BadInput(ValueError):
    """A request the page must refuse: unknown or forbidden name, bad or oversized image."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def pattern_image(size: int = 224) -> np.ndarray:
    """The CLI preview's built-in test card."""
    from ..cli import pattern_image as card

    return card(size)


def decode_image(data: bytes, what: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from encoded bytes, refusing more than MAX_PIXELS before decoding."""
    if len(data) > MAX_UPLOAD_BYTES and what == "upload":
        raise BadInput(f"{what}: {len(data)} bytes, more than the {MAX_UPLOAD_BYTES} allowed", 413)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise BadInput(
                    f"{what}: {w}x{h} pixels, more than the {MAX_PIXELS} allowed (refused before decoding)", 413
                )
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale where it can
            im.load()
            rgb = im.convert("RGB")
    except BadInput:
        raise
    except Image.DecompressionBombError as e:
        raise BadInput(f"{what}: refused as a decompression bomb ({e})", 413) from None
    except UnidentifiedImageError:
        raise BadInput(f"{what}: not an image in a supported format ({', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise BadInput(f"{what}: corrupt or truncated image ({e})") from None
    return shrink(np.asarray(rgb), MAX_SIDE)


def shrink(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` resized so its longer side is at most ``side`` (never enlarged)."""
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return np.ascontiguousarray(img)
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


@dataclass
class Sources:
    """The roots given on the command line and the uploads, by the names the page uses.

    Names: ``pattern``, ``file/<i>`` (the i-th image file given), ``folder/<i>/<relative
    path>`` (an image inside the i-th folder given), ``upload/<n>``.
    """

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    uploads: OrderedDict = field(default_factory=OrderedDict)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_paths(cls, paths) -> Sources:
        files, folders = [], []
        for p in paths:
            path = Path(p)
            try:
                st = path.stat()
            except OSError as e:
                raise BadInput(f"{p}: cannot use it ({e.strerror or e})") from None
            if stat.S_ISDIR(st.st_mode):
                folders.append(path.resolve())
            elif stat.S_ISREG(st.st_mode):
                files.append(path.resolve())
            else:
                raise BadInput(f"{p}: not an image file or a folder")
        return cls(files=files, folders=folders)

    def names(self) -> list[dict]:
        """Every image the page may pick, as ``{"name", "label"}``."""
        out = [{"name": PATTERN, "label": "built-in test pattern"}]
        out += [{"name": f"file/{i}", "label": p.name} for i, p in enumerate(self.files)]
        for i, root in enumerate(self.folders):
            for rel in self._listing(root):
                out.append({"name": f"folder/{i}/{rel}", "label": f"{root.name}/{rel}"})
        with self._lock:
            out += [{"name": name, "label": label} for name, (label, _) in self.uploads.items()]
        return out

    @staticmethod
    def _listing(root: Path) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow folder symlinks
            dirnames.sort()
            for f in sorted(filenames):
                if Path(f).suffix.lower() in _IMAGE_EXTENSIONS:
                    rel = (Path(dirpath) / f).relative_to(root).as_posix()
                    if _inside((root / rel).resolve(), root):
                        found.append(rel)
                        if len(found) >= MAX_LISTED:
                            return found
        return found

    def path_of(self, name: str) -> Path:
        """The file behind a ``file/`` or ``folder/`` name, checked to be one the page may read."""
        kind, _, rest = name.partition("/")
        if kind == "file":
            if not rest.isdigit() or int(rest) >= len(self.files):
                raise BadInput(f"{name!r}: no such image", 404)
            return self.files[int(rest)]
        if kind == "folder":
            index, _, rel = rest.partition("/")
            if not index.isdigit() or int(index) >= len(self.folders) or not rel:
                raise BadInput(f"{name!r}: no such image", 404)
            root = self.folders[int(index)]
            if "\0" in rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise BadInput(f"{name!r}: refused: outside the folders this page was given", 403)
            path = (root / rel).resolve()
            if not _inside(path, root):
                raise BadInput(f"{name!r}: refused: it leads outside the folder {root} (a symlink?)", 403)
            if path.suffix.lower() not in _IMAGE_EXTENSIONS:
                raise BadInput(f"{name!r}: refused: not an image file ({', '.join(_IMAGE_EXTENSIONS)})", 403)
            return path
        raise BadInput(f"{name!r}: no such image", 404)

    def read(self, name: str) -> np.ndarray:
        """The named image as ``(H, W, 3)`` uint8, longer side at most MAX_SIDE."""
        if name == PATTERN:
            return pattern_image()
        if name.startswith("upload/"):
            with self._lock:
                if name not in self.uploads:
                    raise BadInput(f"{name!r}: no such upload (uploads are kept for the last {MAX_UPLOADS})", 404)
                return self.uploads[name][1]
        path = self.path_of(name)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise BadInput(f"{name!r}: not a regular file")
            if st.st_size > MAX_FILE_BYTES:
                raise BadInput(f"{name!r}: {st.st_size} bytes, more than the {MAX_FILE_BYTES} allowed", 413)
            data = path.read_bytes()
        except OSError as e:
            raise BadInput(f"{name!r}: cannot read it ({e.strerror or e})", 404) from None
        return decode_image(data, name)

    def add_upload(self, label: str, data: bytes) -> str:
        img = decode_image(data, "upload")
        with self._lock:
            self._next += 1
            name = f"upload/{self._next}"
            self.uploads[name] = (label[:200] or name, img)
            while len(self.uploads) > MAX_UPLOADS:
                self.uploads.popitem(last=False)
        return name
