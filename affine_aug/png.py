"""PNG encoding for the offline outputs: fast, deterministic, readable by any PNG reader.

Pillow's encoder tries PNG's five row filters on every row and keeps the best; that
choice alone costs about as much as deflating at level 1. Here every row takes the
"Up" filter (its difference to the row above: one numpy subtraction for the whole
image), which compresses photos about as well, and the image is deflated once by
zlib at the chosen level (0 stores, 1 is fastest, 9 smallest). The bytes depend only
on the pixels, the level and the zlib library, never on time or place: equal images
give equal files.

Layout written: the signature, ``IHDR`` (8 or 16 bits; grey, grey + alpha, RGB or
RGBA; no interlace), one ``IDAT``, ``IEND``. 16-bit samples are big-endian, as PNG
stores them.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["LEVELS", "encode_png"]

LEVELS = range(10)
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type


def _chunk(kind: bytes, data) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + bytes(data) + struct.pack(">I", crc)


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of ``image``: ``(H, W)`` or ``(H, W, C)`` with C in 1..4, uint8 or uint16.

    ``level``: zlib's compression level, 0 (stored) to 9 (smallest, slowest).
    """
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or int(level) not in LEVELS:
        raise ValueError(f"PNG compression level must be an integer in [0, 9], got {level!r}")
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in _COLOUR_TYPES or a.dtype not in (np.uint8, np.uint16) or 0 in a.shape:
        raise ValueError(f"PNG needs a non-empty (H, W) or (H, W, 1..4) uint8 or uint16 image, got {a.dtype} {a.shape}")
    h, w, c = a.shape
    bits = 8 * a.dtype.itemsize
    rows = np.ascontiguousarray(a, dtype=">u2" if bits == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG filters are
    deflate = zlib.compressobj(int(level), zlib.DEFLATED, 15, 9)
    data = deflate.compress(memoryview(filtered.reshape(-1))) + deflate.flush()
    header = struct.pack(">IIBBBBB", w, h, bits, _COLOUR_TYPES[c], 0, 0, 0)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")))
