"""One exception root; seeds, borders and keys checked at construction by one private module."""

import numpy as np
import pytest

import affine_aug
from affine_aug import AffineAugError, ConfigError


def test_config_errors_and_bad_images_share_the_root(tmp_path):
    from affine_aug.pipeline import BadImage, load_image

    with pytest.raises(AffineAugError, match=r"unknown key 'rotat'"):
        affine_aug.load_config({"rotat": 3})
    assert issubclass(ConfigError, ValueError)  # code that catches ValueError still catches it
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(AffineAugError, match=r"x\.png: not an image file Pillow can read") as info:
        load_image(tmp_path / "x.png")
    assert type(info.value) is BadImage
    assert affine_aug.errors.__all__ == ["AffineAugError"] and "AffineAugError" in affine_aug.__all__


def test_key_and_seed_coercion_lives_in_one_place():
    from affine_aug import _checks, conventions, sampling

    assert conventions.as_keys is _checks.as_keys and conventions.as_seed is _checks.as_seed
    assert sampling.as_keys is _checks.as_keys


@pytest.mark.parametrize(
    "seed, got", [(-1, "-1"), (2**64, "18446744073709551616"), (1.5, "1.5"), ("3", "'3'"), (True, "True")]
)
def test_seeds_are_checked_at_construction_everywhere(seed, got):
    from affine_aug.hf import MapAugment, OnTheFly
    from affine_aug.ray import AffineAugment

    match = r"seed must be an integer in \[0, 2\*\*64\), got " + got
    for cls in (MapAugment, OnTheFly, AffineAugment):
        with pytest.raises(ValueError, match=match):
            cls({"rotate": 5}, seed=seed)
    torch_transforms = pytest.importorskip("affine_aug.torch")
    with pytest.raises(ValueError, match=match):
        torch_transforms.RandomAffine({"rotate": 5}, seed=seed)
    assert MapAugment({"rotate": 5}, seed=np.uint64(2**64 - 1)).seed == 2**64 - 1


def test_hf_border_is_checked_at_construction():
    from affine_aug.hf import MapAugment, OnTheFly

    for cls in (MapAugment, OnTheFly):
        with pytest.raises(
            ValueError, match=r"unknown border 'edges' \(did you mean 'edge'\?\); expected one of constant, edge"
        ):
            cls({"rotate": 5}, border="edges")
