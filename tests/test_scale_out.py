"""Ray Data and Hugging Face datasets integration (the ray and hf extras)."""

import numpy as np
import pytest
from PIL import Image

import affine_aug as aa
from affine_aug.pipeline import _augment_images
from conftest import uint8_images

CFG = {"rotate": [-30, 30], "scale": [0.8, 1.2], "flip": {"horizontal": 0.5}}


# --------------------------------------------------------------------------- AffineAugment (no cluster needed)


def test_affine_augment_dense_readonly_and_params():
    from affine_aug.ray import AffineAugment

    imgs = np.stack(uint8_images(6))
    imgs.flags.writeable = False
    keys = np.arange(100, 106)
    batch = {"image": imgs, "key": keys, "label": np.arange(6)}
    out = AffineAugment(CFG, seed=3, return_params=True)(batch)
    expect, m = _augment_images(list(imgs), keys, aa.load_config(CFG), seed=3)
    np.testing.assert_array_equal(out["image"], np.stack(expect))
    np.testing.assert_array_equal(out["matrix"], m)
    assert out["label"] is batch["label"] and batch["image"] is imgs  # input untouched
    # the transform of a row depends on its key only: any split of the batch agrees
    half = AffineAugment(CFG, seed=3)({"image": imgs[3:], "key": keys[3:]})
    np.testing.assert_array_equal(half["image"], out["image"][3:])


def test_affine_augment_ragged_and_resize():
    from affine_aug.ray import AffineAugment

    imgs = uint8_images(5, ragged=True)
    col = np.empty(5, dtype=object)
    col[:] = imgs
    out = AffineAugment(CFG)({"image": col, "key": np.arange(5)})
    assert out["image"].dtype == object and [o.shape for o in out["image"]] == [i.shape for i in imgs]
    sized = AffineAugment(CFG, size=(8, 9), output_column="aug")({"image": col, "key": np.arange(5)})
    assert sized["aug"].shape == (5, 8, 9, 3) and sized["image"] is col


@pytest.mark.parametrize(
    "batch, match",
    [
        (
            {"img": np.zeros((1, 4, 4, 3), np.uint8), "key": np.arange(1)},
            r"column 'image' not in the batch; columns are \['img', 'key'\]",
        ),
        ({"image": np.zeros((1, 4, 4, 3), np.uint8)}, r"column 'key' not in the batch"),
        (
            {"image": np.zeros((1, 4, 4, 3), np.float32), "key": np.arange(1)},
            r"column 'image', row 0: expected a uint8 \(H, W\) or \(H, W, C\) image, got dtype float32",
        ),
        (
            {"image": np.array([b"\x89PNG..."], dtype=object), "key": np.arange(1)},
            r"column 'image', row 0: expected a decoded uint8 image array, got bytes",
        ),
        (
            {"image": np.zeros((1, 4, 4, 3), np.uint8), "key": np.array([0.5])},
            r"column 'key': expected non-negative integer sample keys, got dtype float64",
        ),
        (
            {"image": np.zeros((2, 4, 4, 3), np.uint8), "key": np.array([1, -2])},
            r"column 'key', row 1: sample keys must be non-negative",
        ),
    ],
)
def test_affine_augment_bad_input(batch, match):
    from affine_aug.ray import AffineAugment

    with pytest.raises((KeyError, ValueError), match=match):
        AffineAugment(CFG)(batch)


# --------------------------------------------------------------------------- Ray local cluster


def test_ray_partitioning_does_not_change_results(ray_local):
    from affine_aug.ray import AffineAugment

    imgs = uint8_images(24)
    items = [{"image": im, "key": k} for k, im in enumerate(imgs)]
    results = []
    for blocks, batch_size in ((1, 24), (5, 4)):
        ds = ray_local.data.from_items(items).repartition(blocks).random_shuffle(seed=blocks)
        ds = ds.map_batches(AffineAugment(CFG, seed=1), batch_format="numpy", batch_size=batch_size)
        results.append({int(r["key"]): np.asarray(r["image"]) for r in ds.take_all()})
    assert sorted(results[0]) == list(range(24))
    for k in range(24):
        np.testing.assert_array_equal(results[0][k], results[1][k])
    expect, _ = _augment_images(imgs, np.arange(24), aa.load_config(CFG), seed=1)
    np.testing.assert_array_equal(results[0][5], expect[5])


# --------------------------------------------------------------------------- Hugging Face datasets


@pytest.fixture()
def hf_dataset():
    datasets = pytest.importorskip("datasets")
    imgs = [Image.fromarray(im) for im in uint8_images(10, ragged=True)]
    return datasets.Dataset.from_dict(
        {"image": imgs, "label": list(range(10))},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}),
    )


def test_hf_map_num_proc_invariant_and_fingerprint(hf_dataset, tmp_path):
    from affine_aug.hf import MapAugment

    one = hf_dataset.map(
        MapAugment(CFG, seed=2), batched=True, with_indices=True, num_proc=1, batch_size=3, load_from_cache_file=False
    )
    two = hf_dataset.map(
        MapAugment(CFG, seed=2), batched=True, with_indices=True, num_proc=2, batch_size=4, load_from_cache_file=False
    )
    for a, b in zip(one, two):
        np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert one[0]["label"] == 0
    other = hf_dataset.map(
        MapAugment(CFG, seed=3), batched=True, with_indices=True, num_proc=1, batch_size=3, load_from_cache_file=False
    )
    again = hf_dataset.map(
        MapAugment(CFG, seed=2), batched=True, with_indices=True, num_proc=1, batch_size=3, load_from_cache_file=False
    )
    assert other._fingerprint != one._fingerprint  # the cache key includes the seed (and the config)
    assert again._fingerprint == one._fingerprint
    changed = hf_dataset.map(
        MapAugment({**CFG, "rotate": 5}, seed=2),
        batched=True,
        with_indices=True,
        num_proc=1,
        batch_size=3,
        load_from_cache_file=False,
    )
    assert changed._fingerprint != one._fingerprint
    assert any(not np.array_equal(np.asarray(a["image"]), np.asarray(b["image"])) for a, b in zip(one, other))


def test_hf_with_transform_per_epoch_only_when_asked(hf_dataset):
    from affine_aug.hf import OnTheFly, add_keys

    ds = add_keys(hf_dataset)
    fixed = OnTheFly(CFG, seed=0)
    view = ds.with_transform(fixed)
    first = np.asarray(view[4]["image"])
    np.testing.assert_array_equal(first, np.asarray(view[4]["image"]))  # same row, same transform
    with pytest.raises(ValueError, match=r"set_epoch needs OnTheFly\(\.\.\., per_epoch=True\)"):
        fixed.set_epoch(1)
    varying = OnTheFly(CFG, seed=0, per_epoch=True)
    view = ds.with_transform(varying)
    e0 = np.asarray(view[4]["image"])
    np.testing.assert_array_equal(e0, first)  # epoch 0 is the plain keyed draw
    changed = 0
    for e in (1, 2, 3):
        varying.set_epoch(e)
        changed += not np.array_equal(np.asarray(view[4]["image"]), e0)
    assert changed >= 2
    with pytest.raises(KeyError, match=r"column 'key' not in the batch \(add it with affine_aug.hf.add_keys\)"):
        hf_dataset.with_transform(OnTheFly(CFG))[0]


def test_hf_bad_rows_named():
    from affine_aug.hf import MapAugment

    with pytest.raises(
        ValueError, match=r"column 'image', row 1: expected an image \(PIL image or uint8 array\), got bytes"
    ):
        MapAugment(CFG)({"image": [np.zeros((4, 4, 3), np.uint8), b"abc"]}, [0, 1])
    with pytest.raises(KeyError, match=r"column 'image' not in the batch"):
        MapAugment(CFG)({"img": []}, [])


def test_hf_fingerprint_covers_the_library_version(monkeypatch):
    pytest.importorskip("datasets")
    from datasets.fingerprint import Hasher

    import affine_aug
    from affine_aug.hf import MapAugment

    a = Hasher.hash(MapAugment(CFG, seed=2))
    monkeypatch.setattr(affine_aug, "__version__", "999.0")
    b = Hasher.hash(MapAugment(CFG, seed=2))
    assert a != b
