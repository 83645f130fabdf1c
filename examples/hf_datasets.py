"""Hugging Face datasets: offline with Dataset.map, and on the fly with with_transform.

    python examples/hf_datasets.py

MapAugment keys rows by their index, so num_proc and batch_size never change the result;
OnTheFly reads keys from a column (add_keys), as with_transform passes no indices.
"""

import numpy as np
from datasets import ClassLabel, Dataset, Features, Image
from PIL import Image as PILImage

from affine_aug.hf import MapAugment, OnTheFly, add_keys


def tiny_dataset(n=12):
    """n RGB images as the Image feature (PIL images when read), as load_dataset gives them."""
    rng = np.random.default_rng(0)
    images = [PILImage.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)) for _ in range(n)]
    features = Features({"image": Image(), "label": ClassLabel(names=["cat", "dog"])})
    return Dataset.from_dict({"image": images, "label": [i % 2 for i in range(n)]}, features=features)


def main():
    ds = tiny_dataset()
    aug = MapAugment("configs/mild.yaml", seed=0)
    a = ds.map(aug, batched=True, batch_size=5, with_indices=True)
    b = ds.map(aug, batched=True, batch_size=12, with_indices=True)
    assert all(np.array_equal(x, y) for x, y in zip(a["image"], b["image"]))
    print(f"map: {len(a)} rows, equal for batch sizes 5 and 12")

    fly = OnTheFly("configs/mild.yaml", seed=0, per_epoch=True)
    train = add_keys(ds).with_transform(fly)
    first = np.asarray(train[3]["image"])
    assert np.array_equal(first, np.asarray(train[3]["image"]))  # same row, same transform
    fly.set_epoch(1)
    assert not np.array_equal(first, np.asarray(train[3]["image"]))  # a new epoch, new draws
    print("with_transform: row 3 is stable within an epoch and changes with set_epoch")


if __name__ == "__main__":
    main()
