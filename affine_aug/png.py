"""PNG encoding for the offline outputs: fast, deterministic, readable by any PNG reader.

Pillow's encoder tries PNG's five row filters on every row and keeps the best; that
choice alone costs about as much as deflating at level 1. Here every row takes the
"Up" filter (its difference to the row above: one numpy subtraction for the whole
image), which compresses photos about as well, and the image is deflated once at the
chosen level (0 stores, 1 is fastest, 9 smallest).

Two deflate libraries, named with their versions (see :func:`encoders`):

* ``libdeflate``, from the optional ``deflate`` package (``pip install affine_aug[png]``),
  the default where it is installed. Its compressor has no code chosen by CPU features
  (only the checksum is, and a checksum has one value), so its bytes depend on its
  version, the level and the pixels.
* ``zlib``, Python's own, the fallback. Level 1 is zlib's level 1 with its run-length
  strategy (``Z_RLE``), which suits filtered image rows; levels 2 to 9 are zlib's levels.

The encoder is part of a job's identity (``png_encoder``): the same job gives the same
bytes wherever its encoder is installed, and a process that has another refuses to
write for it (:func:`check_encoder`). ``AFFINE_AUG_PNG_ENCODER=zlib`` (or ``libdeflate``)
chooses the encoder new jobs name.

Layout written: the signature, ``IHDR`` (8 or 16 bits; grey, grey + alpha, RGB or
RGBA; no interlace), one ``IDAT``, ``IEND``. 16-bit samples are big-endian, as PNG
stores them.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

__all__ = ["LEVELS", "check_encoder", "default_encoder", "encode_png", "encoders"]

LEVELS = range(10)
ENV = "AFFINE_AUG_PNG_ENCODER"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type


def _zlib(data: memoryview, level: int) -> bytes:
    strategy = zlib.Z_RLE if level == 1 else zlib.Z_DEFAULT_STRATEGY
    deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return deflate.compress(data) + deflate.flush()


def encoders() -> dict:
    """``{name: deflate(data, level) -> zlib stream}`` of the deflate libraries this
    process has; each name carries the version its bytes depend on, e.g.
    ``"zlib 1.2.13"`` or ``"libdeflate 1.25 (deflate 0.9.0)"``."""
    found = {f"zlib {zlib.ZLIB_RUNTIME_VERSION}": _zlib}
    try:
        import deflate
    except ImportError:
        return found
    bundled = _LIBDEFLATE.get(deflate.__version__)
    name = f"libdeflate{f' {bundled}' if bundled else ''} (deflate {deflate.__version__})"
    return {name: deflate.zlib_compress, **found}


# the libdeflate each release of the ``deflate`` package bundles (its CHANGELOG)
_LIBDEFLATE = {"0.9.0": "1.25", "0.8.1": "1.24", "0.8.0": "1.23"}


def default_encoder() -> str:
    """The encoder a new job names: ``$AFFINE_AUG_PNG_ENCODER`` (``zlib`` or
    ``libdeflate``) if set, else libdeflate where installed, else zlib."""
    by_library = {name.split()[0]: name for name in encoders()}
    want = os.environ.get(ENV, "").strip()
    if want not in ("", "zlib", "libdeflate"):
        raise ValueError(f"{ENV} must be 'zlib' or 'libdeflate', got {want!r}")
    if not want:
        return by_library.get("libdeflate", by_library["zlib"])
    if want not in by_library:  # zlib is always there
        raise ValueError(f"{ENV}=libdeflate, but the deflate package is not installed: pip install 'affine_aug[png]'")
    return by_library[want]


def check_encoder(name: str) -> None:
    """Raise ``ValueError`` unless this process has the encoder ``name`` (library and version)."""
    have = encoders()
    if name not in have:
        raise ValueError(
            f"the job's PNG encoder is {name}, this process has {' and '.join(have)}: install the same "
            "deflate library everywhere the job runs (pip install 'affine_aug[png]' pins it), or start the job "
            f"again with one that every process has ({ENV}=zlib and --overwrite)"
        )


def _chunk(kind: bytes, data) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + bytes(data) + struct.pack(">I", crc)


def _filtered(a: np.ndarray) -> np.ndarray:
    """The image's rows as PNG scanlines, each its filter byte then its Up differences."""
    h = a.shape[0]
    rows = np.ascontiguousarray(a, dtype=">u2" if a.dtype == np.uint16 else np.uint8).view(np.uint8).reshape(h, -1)
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG filters are
    return filtered


def encode_png(image: np.ndarray, level: int = 1, encoder: str | None = None) -> bytes:
    """PNG bytes of ``image``: ``(H, W)`` or ``(H, W, C)`` with C in 1..4, uint8 or uint16.

    ``level``: the compression level, 0 (stored) to 9 (smallest, slowest). ``encoder``:
    a name from :func:`encoders` (default :func:`default_encoder`).
    """
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or int(level) not in LEVELS:
        raise ValueError(f"PNG compression level must be an integer in [0, 9], got {level!r}")
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in _COLOUR_TYPES or a.dtype not in (np.uint8, np.uint16) or 0 in a.shape:
        raise ValueError(f"PNG needs a non-empty (H, W) or (H, W, 1..4) uint8 or uint16 image, got {a.dtype} {a.shape}")
    if encoder is None:
        encoder = default_encoder()
    else:
        check_encoder(encoder)
    h, w, c = a.shape
    data = encoders()[encoder](memoryview(_filtered(a).reshape(-1)), int(level))
    header = struct.pack(">IIBBBBB", w, h, 8 * a.dtype.itemsize, _COLOUR_TYPES[c], 0, 0, 0)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")))
