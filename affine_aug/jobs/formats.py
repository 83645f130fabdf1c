"""Output formats: how one shard's samples become bytes.

A shard format is a suffix and a writer of one shard into one open file (Ray Data's
``FileDatasink.write_block_to_file``, webdataset's ``ShardWriter``): it knows nothing of
places, temporary files or retries, which the engine handles (``files.write_atomic``).
``folder`` is the one format without shard files: each image is its own file.

    FORMATS                  the names ``--format`` takes
    SHARD_FORMATS[name]      ShardFormat(suffix, write), write(f, block, job)
    Block                    one shard's samples, column by column
    encode_image(...)        one image as PNG, JPEG or WebP bytes
    write_npz(f, columns)    an npz streamed column by column (a kind that joins shard files uses it too)
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..png import default_encoder, encode_png
from .errors import JobError

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


@dataclass
class Block:
    """One shard's samples, column by column (sample ``k`` is row ``k`` of each)."""

    images: list  # warped (H, W, C) arrays
    labels: np.ndarray  # int64
    sources: list  # where each sample came from: a relative path, or a source index
    copies: np.ndarray  # int64: copy j of its source
    keys: np.ndarray  # uint64 sample keys (conventions.copy_key)
    matrices: np.ndarray  # (N, 3, 3) source-to-destination
    source_dtype: type = str  # the npz ``source`` column's dtype

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class ShardFormat:
    """A format that writes one file per shard: its suffix, and ``write(f, block, job)``."""

    suffix: str
    write: Callable


def png_encoder() -> str:
    """The PNG encoder a new job names (:func:`affine_aug.png.default_encoder`)."""
    try:
        return default_encoder()
    except ValueError as e:
        raise JobError(str(e)) from None


def encode_image(image: np.ndarray, image_format: str, job) -> bytes:
    """One image as ``image_format`` bytes: (H, W, 3) uint8, or (H, W, 1) uint16 (16-bit
    grey PNG), with the job's quality or PNG level and encoder."""
    if image_format == "png":
        return encode_png(image, job.png_level, job.identity.get("png_encoder"))
    buf = io.BytesIO()
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.save(buf, format=IMAGE_FORMATS[image_format], quality=job.quality)
    return buf.getvalue()


def _encode_sample(block: Block, k: int, job) -> bytes:
    return encode_image(block.images[k], job.identity["image_format"], job)


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


def _write_npz_shard(f, block: Block, job) -> None:
    x = np.asarray(block.images) if len(block.images) else np.zeros((0, *job.identity["size"], 3), np.uint8)
    write_npz(
        f,
        {
            "x": _npz_column(x),
            "y": _npz_column(block.labels),
            "source": _npz_column(np.asarray(block.sources, dtype=block.source_dtype)),
            "copy": _npz_column(block.copies),
            "key": _npz_column(block.keys),
            "matrix": _npz_column(np.asarray(block.matrices, dtype=np.float64).reshape(-1, 3, 3)),
        },
    )


def _sample_json(block: Block, k: int) -> dict:
    return {
        "source": block.sources[k],
        "copy": int(block.copies[k]),
        "key": int(block.keys[k]),
        "label": int(block.labels[k]),
        "matrix": np.asarray(block.matrices[k]).tolist(),
    }


def _tar_member(name: str, data: bytes) -> tarfile.TarInfo:
    """A fixed header (mtime 0, root owner, mode 0644): the bytes depend on the content only."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    return info


def _write_tar(f, block: Block, job) -> None:
    """WebDataset tar: per sample ``KEY.<image format>``, ``KEY.cls``, ``KEY.json``."""
    ext = job.identity["image_format"]
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for k in range(len(block)):
            stem = f"{int(block.keys[k] >> np.uint64(20)):08d}_{int(block.copies[k]):03d}"
            members = [
                (ext, _encode_sample(block, k, job)),
                ("cls", str(int(block.labels[k])).encode()),
                ("json", json.dumps(_sample_json(block, k), sort_keys=True).encode()),
            ]
            for suffix, data in members:
                tar.addfile(_tar_member(f"{stem}.{suffix}", data), io.BytesIO(data))


def _hf_features(classes) -> dict:
    """The Hugging Face ``datasets`` features of a Parquet shard (its schema metadata)."""
    return {
        "image": {"_type": "Image"},
        "label": {"names": list(classes), "_type": "ClassLabel"},
        "source": {"dtype": "string", "_type": "Value"},
        "copy": {"dtype": "int64", "_type": "Value"},
        "key": {"dtype": "uint64", "_type": "Value"},
        "matrix": {"feature": {"dtype": "float64", "_type": "Value"}, "length": 9, "_type": "Sequence"},
    }


def _write_parquet(f, block: Block, job) -> None:
    """Parquet with ``image`` as a Hugging Face Image feature (struct of bytes and path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = [{"bytes": _encode_sample(block, k, job), "path": None} for k in range(len(block))]
    table = pa.table(
        {
            "image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "label": pa.array(block.labels, type=pa.int64()),
            "source": pa.array(block.sources, type=pa.string()),
            "copy": pa.array(block.copies, type=pa.int64()),
            "key": pa.array(block.keys, type=pa.uint64()),
            "matrix": pa.array(
                [np.asarray(m).reshape(-1).tolist() for m in block.matrices], type=pa.list_(pa.float64(), 9)
            ),
        }
    )
    features = _hf_features(job.classes)
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(table, f, compression="zstd", use_dictionary=False, write_statistics=False)


SHARD_FORMATS = {
    "npz": ShardFormat(".npz", _write_npz_shard),
    "webdataset": ShardFormat(".tar", _write_tar),
    "parquet": ShardFormat(".parquet", _write_parquet),
}
FORMATS = ("folder", *SHARD_FORMATS)
SHARD_SUFFIX = {name: fmt.suffix for name, fmt in SHARD_FORMATS.items()}
