"""Epochs reach DataLoader workers that are already running, and epoch keys follow the key layout."""

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision import tv_tensors  # noqa: E402

from affine_aug import sample  # noqa: E402
from affine_aug.conventions import epoch_key  # noqa: E402
from affine_aug.torch import AugmentedDataset  # noqa: E402

CFG = {"rotate": [-30, 30], "scale": [0.8, 1.2], "translate": [-0.1, 0.1]}


class Images(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return tv_tensors.Image(torch.rand(3, 12, 12, generator=g)), i


def _as_list(batch):
    return batch


def _epochs(ds, loader, epochs):
    """Per epoch, the images by index, read through ``loader``."""
    out = []
    for e in epochs:
        ds.set_epoch(e)
        seen = {}
        for batch in loader:
            for img, i in batch:
                seen[i] = img
        out.append(seen)
    return out


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(context):
    ds = AugmentedDataset(Images(), CFG, seed=3)
    workers = 2 if context == "fork" else 1  # a spawned worker imports torch afresh: one is enough
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=2,
        num_workers=workers,
        persistent_workers=True,
        multiprocessing_context=context,
        collate_fn=_as_list,
    )
    got = _epochs(ds, loader, [0, 1, 0])
    for e, seen in zip([0, 1, 0], got):
        ds.set_epoch(e)
        for i in range(len(ds)):
            assert torch.equal(seen[i], ds[i][0]), (e, i)  # what this process computes for (epoch, index)
    assert all(not torch.equal(got[0][i], got[1][i]) for i in range(len(ds)))  # epoch 1 is new draws


def _keyed_matrix(key, size=(12, 12), seed=3):
    return sample(CFG, np.array([key], dtype=np.uint64), size=size, seed=seed).matrices


def test_item_keys_are_epoch_keys():
    ds = AugmentedDataset(Images(), CFG, seed=3, interpolation="nearest")
    ds.set_epoch(5)
    img = Images()[4][0]
    m = _keyed_matrix(int(epoch_key(5, [4])[0]))
    from affine_aug.torch import warp_affine

    expected = warp_affine(img.as_subclass(torch.Tensor), torch.as_tensor(m), interpolation="nearest")
    assert torch.equal(ds[4][0].as_subclass(torch.Tensor), expected)
    with pytest.raises(
        IndexError, match=r"index 1099511627776 out of range for keyed augmentation \(0 <= index < 2\*\*40\)"
    ):
        ds[2**40]
    with pytest.raises(ValueError, match=r"epoch must be an integer in \[0, 2\*\*23\), got 8388608"):
        ds.set_epoch(2**23)
    with pytest.raises(ValueError, match=r"epoch must be an integer in \[0, 2\*\*23\), got 1.0"):
        ds.set_epoch(1.0)


def test_copies_of_the_epoch_are_independent_outside_worker_start():
    ds = AugmentedDataset(Images(), CFG, seed=3)
    ds.set_epoch(4)
    twin, thawed = copy.deepcopy(ds), pickle.loads(pickle.dumps(ds))
    assert twin.epoch == thawed.epoch == 4
    ds.set_epoch(7)
    assert (twin.epoch, thawed.epoch, ds.epoch) == (4, 4, 7)
    from affine_aug._epoch import SharedEpoch

    shared = SharedEpoch(2)
    assert pickle.loads(pickle.dumps(shared)).get() == 2


# --------------------------------------------------------------------------- Hugging Face


@pytest.fixture()
def keyed_rows():
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    from affine_aug.hf import add_keys

    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)) for _ in range(6)]
    ds = datasets.Dataset.from_dict({"image": imgs}, features=datasets.Features({"image": datasets.Image()}))
    return add_keys(ds)


def test_on_the_fly_set_epoch_reaches_persistent_workers(keyed_rows):
    from affine_aug.hf import OnTheFly

    transform = OnTheFly(CFG, seed=1, per_epoch=True)
    view = keyed_rows.with_transform(transform)
    loader = torch.utils.data.DataLoader(
        view, batch_size=2, num_workers=2, persistent_workers=True, collate_fn=lambda b: b
    )
    got = []
    for e in (0, 1):
        transform.set_epoch(e)
        got.append({row["key"]: np.asarray(row["image"]) for batch in loader for row in batch})
    for e in (0, 1):
        transform.set_epoch(e)
        for i in range(len(view)):
            np.testing.assert_array_equal(got[e][i], np.asarray(view[i]["image"]))
    assert all(not np.array_equal(got[0][i], got[1][i]) for i in range(len(view)))


def test_on_the_fly_keys_are_epoch_keys(keyed_rows):
    from affine_aug.hf import OnTheFly

    transform = OnTheFly(CFG, seed=1, per_epoch=True)
    transform.set_epoch(3)
    row = {"image": [np.zeros((10, 10, 3), np.uint8)], "key": [2**40]}
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\*\*40\) for keyed augmentation, got 1099511627776"):
        transform(row)  # (3 << 40) | 2**40 would be the key of item 0 of epoch 4
    out = OnTheFly(CFG, seed=1)({"image": [np.zeros((10, 10, 3), np.uint8)], "key": [2**40]})
    assert out["image"][0].shape == (10, 10, 3)  # without per_epoch keys are taken as they are
    with pytest.raises(ValueError, match=r"column 'key' must be non-negative integers, got dtype float64"):
        OnTheFly(CFG)({"image": [np.zeros((4, 4), np.uint8)], "key": [0.5]})
    hashed = pickle.loads(pickle.dumps(transform))
    assert hashed.epoch == 3


def test_on_the_fly_on_an_empty_slice(keyed_rows):
    from affine_aug.hf import OnTheFly

    for size in (None, (8, 8)):
        empty = keyed_rows.with_transform(OnTheFly(CFG, size=size))[0:0]
        assert empty["image"] == [] and empty["key"] == []
