import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import affine_aug as aa
from affine_aug.dist import _ndtri
from conftest import EVERY_KIND as FULL

SIZE = (24, 32)


def test_batch_shape_and_params():
    b = aa.sample(FULL, np.arange(10), size=SIZE, seed=1)
    assert b.matrices.shape == (10, 3, 3) and b.matrices.dtype == np.float64 and len(b) == 10
    assert set(b.params) == {
        "rotate",
        "scale_x",
        "scale_y",
        "shear_x",
        "shear_y",
        "translate_x",
        "translate_y",
        "center_x",
        "center_y",
        "flip_x",
        "flip_y",
        "applied",
    }
    assert all(v.shape == (10,) for v in b.params.values())
    assert b.seed == 1 and b.size == SIZE


def test_empty_batch():
    b = aa.sample(FULL, [], size=SIZE)
    assert b.matrices.shape == (0, 3, 3) and all(v.shape == (0,) for v in b.params.values())


def test_keyed_independent_of_batching_and_order():
    keys = np.arange(1000, 1200)
    whole = aa.sample(FULL, keys, size=SIZE, seed=5).matrices
    parts = np.concatenate([aa.sample(FULL, keys[i : i + 7], size=SIZE, seed=5).matrices for i in range(0, 200, 7)])
    rev = aa.sample(FULL, keys[::-1], size=SIZE, seed=5).matrices[::-1]
    single = aa.sample(FULL, [keys[123]], size=SIZE, seed=5).matrices[0]
    assert np.array_equal(whole, parts) and np.array_equal(whole, rev) and np.array_equal(whole[123], single)


def test_other_seed_differs_and_config_seed_is_default():
    keys = np.arange(50)
    a = aa.sample(FULL, keys, size=SIZE, seed=1).params["rotate"]
    b = aa.sample(FULL, keys, size=SIZE, seed=2).params["rotate"]
    assert np.mean(a == b) < 0.5
    with_seed = aa.sample({**FULL, "seed": 2}, keys, size=SIZE).params["rotate"]
    assert np.array_equal(with_seed, b)
    assert np.array_equal(aa.sample({**FULL, "seed": 2}, keys, size=SIZE, seed=1).params["rotate"], a)


def test_distinct_keys_give_distinct_draws():
    r = aa.sample({"rotate": [-180, 180]}, np.arange(10000), size=SIZE).params["rotate"]
    assert len(np.unique(r)) == 10000


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=20), st.integers(0, 2**64 - 1))
def test_draw_depends_only_on_seed_and_key(keys, seed):
    batch = aa.sample(FULL, keys, size=SIZE, seed=seed).matrices
    for i, k in enumerate(keys):
        assert np.array_equal(batch[i], aa.sample(FULL, [k], size=SIZE, seed=seed).matrices[0])


def test_params_agree_with_matrices():
    b = aa.sample(FULL, np.arange(300), size=SIZE, seed=3)
    p = b.params
    expect = aa.affine_matrix(
        SIZE,
        rotate=p["rotate"],
        scale=np.stack([p["scale_x"], p["scale_y"]], -1),
        shear=np.stack([p["shear_x"], p["shear_y"]], -1),
        translate=np.stack([p["translate_x"], p["translate_y"]], -1),
        center=np.stack([p["center_x"], p["center_y"]], -1),
        flip=np.stack([p["flip_x"], p["flip_y"]], -1),
        order=FULL["order"],
    )
    np.testing.assert_allclose(b.matrices, expect, atol=1e-12)
    na = ~p["applied"]
    assert na.any() and np.array_equal(b.matrices[na], np.broadcast_to(np.eye(3), (na.sum(), 3, 3)))
    assert not p["flip_x"][na].any() and np.all(p["scale_x"][na] == 1) and np.all(p["rotate"][na] == 0)


def test_fraction_and_pixel_translation():
    keys = np.arange(20)
    frac = aa.sample({"translate": {"x": 0.25, "y": -0.5}}, keys, size=(10, 40)).params
    assert np.all(frac["translate_x"] == 10) and np.all(frac["translate_y"] == -5)
    px = aa.sample({"translate": {"x": 3, "y": -2, "unit": "px"}}, keys, size=(10, 40)).params
    assert np.all(px["translate_x"] == 3) and np.all(px["translate_y"] == -2)


def test_isotropic_scale_uses_one_draw():
    p = aa.sample({"scale": [0.5, 2]}, np.arange(50), size=SIZE).params
    assert np.array_equal(p["scale_x"], p["scale_y"])


def _ks(cfg_value, cdf, n=4000):
    r = aa.sample({"rotate": cfg_value}, np.arange(n), size=SIZE, seed=11).params["rotate"]
    return stats.kstest(r, cdf).pvalue


def test_distribution_laws():
    assert _ks([-10, 30], stats.uniform(-10, 40).cdf) > 1e-3
    assert _ks({"dist": "normal", "mean": 3, "std": 2}, stats.norm(3, 2).cdf) > 1e-3
    tn = stats.truncnorm((-1 - 0) / 4, (6 - 0) / 4, loc=0, scale=4)
    assert _ks({"dist": "normal", "mean": 0, "std": 4, "low": -1, "high": 6}, tn.cdf) > 1e-3
    upper_tail = stats.truncnorm(3, 5, loc=0, scale=1)  # only the upper tail is kept
    assert _ks({"dist": "normal", "mean": 0, "std": 1, "low": 3, "high": 5}, upper_tail.cdf) > 1e-3
    assert _ks({"dist": "loguniform", "low": 0.5, "high": 8}, stats.loguniform(0.5, 8).cdf) > 1e-3


def test_truncated_normal_is_truncated_not_clipped():
    r = aa.sample(
        {"rotate": {"dist": "normal", "mean": 0, "std": 10, "low": -1, "high": 1}}, np.arange(5000), size=SIZE
    ).params["rotate"]
    assert r.min() >= -1 and r.max() <= 1
    assert np.mean(np.abs(r) == 1) == 0  # clipping would pile mass on the bounds


def test_choice_frequencies_and_probabilities():
    r = aa.sample(
        {"rotate": {"dist": "choice", "values": [0, 90, 180], "weights": [1, 2, 1]}}, np.arange(8000), size=SIZE
    ).params["rotate"]
    counts = np.array([np.sum(r == v) for v in (0, 90, 180)])
    assert counts.sum() == 8000
    assert stats.chisquare(counts, [2000, 4000, 2000]).pvalue > 1e-3
    p = aa.sample({"p": 0.3, "flip": {"horizontal": 0.5}}, np.arange(8000), size=SIZE).params
    assert abs(p["applied"].mean() - 0.3) < 0.03
    assert abs(p["flip_x"].mean() - 0.15) < 0.02


def test_ndtri_accuracy():
    p = np.concatenate([np.linspace(1e-12, 0.02, 200), np.linspace(0.02, 0.98, 200), 1 - np.linspace(1e-12, 0.02, 200)])
    np.testing.assert_allclose(_ndtri(p), stats.norm.ppf(p), rtol=2e-9, atol=2e-9)


@pytest.mark.parametrize(
    "keys, match",
    [
        ([-1, 2], r"keys must be integers in \[0, 2\*\*64\), got -1"),
        ([2**64], r"keys must be integers in \[0, 2\*\*64\), got 18446744073709551616"),
        (np.array([-1, 2]), r"keys must be non-negative integers, got -1"),
        ([0.5, 1.0], r"keys must be non-negative integers, got dtype float64"),
        ([[1, 2]], r"keys must be a 1-D sequence of sample ids, got shape \(1, 2\)"),
        ([True, False], r"got dtype bool"),
    ],
)
def test_bad_keys(keys, match):
    with pytest.raises(ValueError, match=match):
        aa.sample({}, keys, size=SIZE)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        aa.sample({}, [0], size=SIZE, seed=seed)


def test_sample_reads_paths_and_rejects_bad_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("rotate: 10\n")
    assert np.all(aa.sample(p, [1, 2], size=SIZE).params["rotate"] == 10)
    with pytest.raises(aa.ConfigError, match="unknown key"):
        aa.sample({"rotat": 1}, [1], size=SIZE)
    with pytest.raises(ValueError, match="size must be a pair of positive integers"):
        aa.sample({}, [1], size=(0, 3))
