"""Hugging Face ``datasets`` helpers (the library is only imported by the caller).

* :class:`MapAugment` — for ``Dataset.map(fn, batched=True, with_indices=True, num_proc=N)``:
  offline augmentation keyed by the row index, so ``num_proc`` and ``batch_size`` do not
  change the result. It is a plain object holding the config and seed, so the cache
  fingerprint ``datasets`` computes from it changes whenever they change.
* :class:`OnTheFly` — for ``Dataset.with_transform(fn)``: training-time augmentation.
  ``with_transform`` does not pass row indices, so the rows carry a key column
  (:func:`add_keys`); the same row gets the same transform on every access unless
  ``per_epoch=True``, where :meth:`OnTheFly.set_epoch` moves to new draws.

Two traps, written here because the libraries around do not say them:

* ``with_indices=True`` on an ``IterableDataset`` numbers rows in the order they stream,
  which depends on sharding and shuffling: it is not a row key. Give such rows a key
  column of their own (e.g. ``add_keys`` before ``to_iterable_dataset``) and use
  :class:`OnTheFly`, which reads keys from the data.
* DataLoader workers hold copies of the dataset and of its transform. ``OnTheFly`` keeps
  its epoch in memory shared with them, so :meth:`OnTheFly.set_epoch` reaches workers
  that are already running (``persistent_workers=True``) too. Call it before iterating
  the epoch's loader.

Images may be PIL images (the ``Image`` feature), uint8 numpy arrays or nested lists of
integers in 0..255 (an ``Array3D(dtype="uint8")`` column without a format); results come
back in the same kind. 16-bit greyscale images (``datasets`` decodes a 16-bit PNG as mode
``I;16``) are scaled to 8 bits with rounding, never clipped, by the rule of the offline
engine (:func:`affine_aug.pipeline.load_image`), and come back as mode ``L``. Sample key of
row i: its key (:class:`MapAugment`: the row index;
:class:`OnTheFly`: the key column), and with ``per_epoch`` in epoch e
:func:`affine_aug.conventions.epoch_key` ``(e, i)``.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from ._checks import BORDERS, as_keys, as_seed, check_choice
from ._epoch import SharedEpoch
from .config import load_config
from .conventions import BORDER_OFFLINE, epoch_key
from .pipeline import _augment_images, _scale_to_8bit

__all__ = ["MapAugment", "OnTheFly", "add_keys"]


def _to_array(img, column: str, row: int) -> np.ndarray:
    where = f"column {column!r}, row {row}"
    if isinstance(img, PIL.Image.Image):
        return _pil_to_array(img, where)
    if isinstance(img, (bytes, bytearray, str)) or img is None:
        raise ValueError(f"{where}: expected an image (PIL image or uint8 array), got {type(img).__name__}")
    try:
        a = np.asarray(img)
    except ValueError:  # nested lists of unequal lengths
        raise ValueError(f"{where}: expected a uint8 (H, W[, C]) image, got nested lists of unequal lengths") from None
    if isinstance(img, (list, tuple)) and a.dtype.kind in "iu" and a.size and 0 <= a.min() and a.max() <= 255:
        a = a.astype(np.uint8)  # nested lists (an Array3D(dtype="uint8") column without a format) hold Python ints
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or 0 in a.shape:
        raise ValueError(f"{where}: expected a uint8 (H, W[, C]) image, got dtype {a.dtype} shape {a.shape}")
    return a


def _pil_to_array(img: PIL.Image.Image, where: str) -> np.ndarray:
    """RGB and L as they are; 16- and 32-bit integer greyscale (``I;16*``, ``I``, as ``datasets``
    decodes a 16-bit PNG) scaled to 8 bits by the engine's rule; other modes as RGB."""
    if img.mode in ("RGB", "L"):
        return np.asarray(img)
    if img.mode.startswith("I") or img.mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        if img.mode == "F" or grey.min() < 0 or grey.max() > 65535:
            raise ValueError(
                f"{where}: unsupported pixel format (mode {img.mode}, values {grey.min():g}..{grey.max():g})"
            )
        return _scale_to_8bit(grey)
    return np.asarray(img.convert("RGB"))


def _like(out: np.ndarray, img):
    """A result in the kind of its input: PIL image, nested list or array."""
    if isinstance(img, PIL.Image.Image):
        return PIL.Image.fromarray(out)
    return out.tolist() if isinstance(img, (list, tuple)) else out


def _augment(batch: dict, keys, image_column: str, output_column: str, config, seed: int, size, border: str) -> dict:
    if image_column not in batch:
        raise KeyError(f"column {image_column!r} not in the batch; columns are {sorted(batch)}")
    raw = batch[image_column]
    arrays = [_to_array(img, image_column, r) for r, img in enumerate(raw)]
    grey = [a.ndim == 2 for a in arrays]
    out, _ = _augment_images(
        [a[..., None] if g else a for a, g in zip(arrays, grey)], keys, config, seed=seed, size=size, border=border
    )
    out = [o[..., 0] if g else o for o, g in zip(out, grey)]
    result = dict(batch)
    result[output_column] = [_like(o, img) for o, img in zip(out, raw)]
    return result


class MapAugment:
    """``ds.map(MapAugment(config, seed=0), batched=True, with_indices=True, num_proc=N)``.

    Examples:
        >>> import numpy as np
        >>> aug = MapAugment({"rotate": [-10, 10]}, seed=0)
        >>> out = aug({"image": [np.zeros((8, 8, 3), np.uint8)], "label": [4]}, [0])  # what ds.map hands it
        >>> out["image"][0].shape, out["label"]
        ((8, 8, 3), [4])
    """

    def __init__(
        self,
        config,
        *,
        seed: int = 0,
        image_column: str = "image",
        output_column: str | None = None,
        size=None,
        border: str = BORDER_OFFLINE,
    ) -> None:
        from . import __version__

        self.config = load_config(config)
        self.seed = as_seed(seed)
        self.version = __version__  # part of the cache fingerprint: a new library never reuses a stale cache
        self.image_column = image_column
        self.output_column = output_column or image_column
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.border = check_choice(border, BORDERS, "border")

    def __call__(self, batch: dict, indices) -> dict:
        keys = np.asarray(indices, dtype=np.int64)
        if keys.ndim != 1:
            raise ValueError("MapAugment needs with_indices=True and batched=True")
        return _augment(
            batch,
            keys.astype(np.uint64),
            self.image_column,
            self.output_column,
            self.config,
            self.seed,
            self.size,
            self.border,
        )


def add_keys(dataset, column: str = "key"):
    """The dataset with a ``column`` of row indices (the keys :class:`OnTheFly` reads)."""
    return dataset.add_column(column, np.arange(len(dataset), dtype=np.int64))


class OnTheFly:
    """``ds = add_keys(ds); ds.with_transform(OnTheFly(config, seed=0))``: augmentation at access time.

    Examples:
        >>> import numpy as np
        >>> aug = OnTheFly({"rotate": [-10, 10]}, seed=0, per_epoch=True)
        >>> rows = {"image": [np.zeros((8, 8), np.uint8)], "key": [0]}  # what a with_transform view hands it
        >>> aug(rows)["image"][0].shape
        (8, 8)
        >>> aug.set_epoch(1)  # reaches running DataLoader workers too
    """

    def __init__(
        self,
        config,
        *,
        seed: int = 0,
        image_column: str = "image",
        key_column: str = "key",
        size=None,
        border: str = BORDER_OFFLINE,
        per_epoch: bool = False,
    ) -> None:
        self.config = load_config(config)
        self.seed = as_seed(seed)
        self.image_column = image_column
        self.key_column = key_column
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.border = check_choice(border, BORDERS, "border")
        self.per_epoch = per_epoch
        self._epoch = SharedEpoch(0)

    @property
    def epoch(self) -> int:
        return self._epoch.get()

    def set_epoch(self, epoch: int) -> None:
        """Move to epoch ``epoch``'s draws (only with ``per_epoch=True``; otherwise an error).
        DataLoader workers already running see it too (the epoch is in shared memory)."""
        if not self.per_epoch:
            raise ValueError(
                "set_epoch needs OnTheFly(..., per_epoch=True): without it every access gives the same transform"
            )
        self._epoch.set(epoch)

    def __call__(self, batch: dict) -> dict:
        if self.key_column not in batch:
            raise KeyError(
                f"column {self.key_column!r} not in the batch (add it with affine_aug.hf.add_keys); "
                f"columns are {sorted(batch)}"
            )
        keys = as_keys(batch[self.key_column], f"column {self.key_column!r}")
        if self.per_epoch:
            keys = epoch_key(self.epoch, keys)
        return _augment(
            batch, keys, self.image_column, self.image_column, self.config, self.seed, self.size, self.border
        )
