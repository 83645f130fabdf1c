"""Ray Data integration (install the ``ray`` extra): keyed augmentation inside
``Dataset.map_batches``, and the Ray engine of ``affine-aug generate``.

The transform of a row depends only on ``(seed, key)`` where ``key`` comes from a column
of the data, never on how Ray partitions, orders or batches the rows. The offline job
engine runs its shards as Ray tasks (``affine_aug.jobs``, ``generate --engine ray``).
"""

from __future__ import annotations

import numpy as np

from ._checks import as_seed, check_key_column
from .config import load_config
from .pipeline import _augment_images

__all__ = ["AffineAugment"]


def _check_image(img, column: str, row: int) -> np.ndarray:
    if isinstance(img, (bytes, bytearray, str)):
        raise ValueError(
            f"column {column!r}, row {row}: expected a decoded uint8 image array, got {type(img).__name__} "
            "(decode it first, e.g. with ray.data.read_images)"
        )
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or 0 in a.shape:
        raise ValueError(
            f"column {column!r}, row {row}: expected a uint8 (H, W) "
            f"or (H, W, C) image, got dtype {a.dtype} shape {a.shape}"
        )
    return a


class AffineAugment:
    """Callable for ``Dataset.map_batches(AffineAugment(...), batch_format="numpy")``.

    Args:
        config: YAML path, mapping or AffineConfig (validated here, on the driver).
        seed: the seed; row transforms depend only on (seed, key column value).
        image_column / key_column: input columns. Images are a dense ``(N, H, W[, C])``
            uint8 array or an object array of differently sized ``(H, W[, C])`` arrays.
        output_column: where results go (default: replace ``image_column``).
        size: ``(H, W)`` to resize every image to in the same resampling (dense output);
            default: each image keeps its size.
        border: ``"edge"`` or ``"constant"`` (zero fill).
        return_params: also return the ``(N, 3, 3)`` forward matrices in column ``matrix``.

    The input batch is never modified (Ray may hand out read-only arrays): a new dict
    is returned with the other columns passed through.

    Examples:
        >>> import numpy as np
        >>> aug = AffineAugment({"rotate": [-10, 10]}, seed=0)
        >>> batch = {"image": np.zeros((2, 8, 8, 3), np.uint8), "key": np.array([0, 1])}  # as map_batches hands it
        >>> aug(batch)["image"].shape
        (2, 8, 8, 3)
    """

    def __init__(
        self,
        config,
        *,
        seed: int = 0,
        image_column: str = "image",
        key_column: str = "key",
        output_column: str | None = None,
        size=None,
        border: str = "edge",
        return_params: bool = False,
    ) -> None:
        self.config = load_config(config)
        self.seed = as_seed(seed)
        self.image_column = image_column
        self.key_column = key_column
        self.output_column = output_column or image_column
        self.size = None if size is None else (int(size[0]), int(size[1]))
        if border not in ("edge", "constant"):
            raise ValueError(f"border must be 'edge' or 'constant', got {border!r}")
        self.border = border
        self.return_params = return_params

    def __call__(self, batch: dict) -> dict:
        for column in (self.image_column, self.key_column):
            if column not in batch:
                raise KeyError(f"column {column!r} not in the batch; columns are {sorted(batch)}")
        raw = batch[self.image_column]
        keys = check_key_column(batch[self.key_column], self.key_column)
        images = [_check_image(img, self.image_column, r) for r, img in enumerate(raw)]
        if len(images) != len(keys):
            raise ValueError(f"columns {self.image_column!r} and {self.key_column!r} differ in length")
        grey = [im.ndim == 2 for im in images]
        images = [im[..., None] if g else im for im, g in zip(images, grey)]
        by_channels = {im.shape[2] for im in images}
        if len(by_channels) > 1:
            raise ValueError(
                f"column {self.image_column!r}: images in one batch "
                f"must share a channel count, got {sorted(by_channels)}"
            )
        out, m = _augment_images(images, keys, self.config, seed=self.seed, size=self.size, border=self.border)
        out = [o[..., 0] if g else o for o, g in zip(out, grey)]
        result = dict(batch)
        if len({o.shape for o in out}) <= 1 and (self.size is not None or raw.dtype != object):
            result[self.output_column] = np.stack(out) if out else np.zeros((0,) + raw.shape[1:], np.uint8)
        else:
            column = np.empty(len(out), dtype=object)
            column[:] = out
            result[self.output_column] = column
        if self.return_params:
            result["matrix"] = m
        return result
