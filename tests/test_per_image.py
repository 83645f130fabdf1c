"""The one-key and one-image paths give the same bits as the batch paths."""

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import _one, sampling
from affine_aug.matrix import invert
from conftest import EVERY_KIND

CONFIGS = [
    EVERY_KIND,
    "mild",
    {"rotate": {"dist": "choice", "values": [0, 90, 180, 270, -90]}, "flip": {"horizontal": 0.5, "vertical": 0.5}},
    {
        "rotate": [-180, 180],
        "shear": {"x": [-20, 20], "y": [-20, 20]},
        "translate": {"x": [-3, 3], "y": [-3, 3], "unit": "px"},
        "p": 0.5,
    },
    {"scale": {"dist": "normal", "mean": 1, "std": 0.1}},
    {},
    {"rotate": 90, "scale": 2, "translate": {"x": 0.5, "y": 0}},
]
KEYS = np.concatenate(
    [
        np.arange(150, dtype=np.uint64),
        np.random.default_rng(1).integers(0, 2**63, 50).astype(np.uint64),
        np.array([2**64 - 1], np.uint64),
    ]
)


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
@pytest.mark.parametrize("seed", [0, 2**64 - 1])
def test_one_key_is_row_k_of_the_batch_bit_for_bit(config, seed):
    cfg = aa.load_config(config)
    batch = aa.sample(cfg, KEYS, (37, 53), seed=seed)
    for i, k in enumerate(KEYS.tolist()):
        one = aa.sample(cfg, [k], (37, 53), seed=seed)
        assert one.matrices.tobytes() == batch.matrices[i : i + 1].tobytes(), (i, k)
        assert one.keys.dtype == np.uint64 and one.keys.tolist() == [k] and one.size == (37, 53) and one.seed == seed
        for name in sampling._PARAMS:
            assert one.params[name].dtype == batch.params[name].dtype
            assert one.params[name].tobytes() == batch.params[name][i : i + 1].tobytes(), (name, i)


def test_one_key_path_is_taken_for_every_key_type(monkeypatch):
    calls = []
    real = sampling._sample_one
    monkeypatch.setattr(sampling, "_sample_one", lambda *a: calls.append(a) or real(*a))
    for keys in ([3], np.array([3]), np.array([3], np.uint64), 3, (3,)):
        b = aa.sample("mild", keys, (8, 8))
        assert len(b) == 1 and b.keys.tolist() == [3]
    assert len(calls) == 5
    aa.sample("mild", [3, 4], (8, 8))
    assert len(calls) == 5


def test_one_key_params_mapping():
    p = aa.sample("mild", [3], (8, 8)).params
    assert list(p) == list(sampling._PARAMS) and len(p) == 12 and set(p.keys()) == set(sampling._PARAMS)
    assert all(v.shape == (1,) for v in p.values()) and p["applied"].dtype == bool
    assert "rotate" in repr(p)
    with pytest.raises(KeyError):
        p["nope"]


def test_one_key_errors_match_the_batch():
    with pytest.raises(ValueError, match=r"keys must be integers in \[0, 2\*\*64\), got -1"):
        aa.sample("mild", [-1], (8, 8))
    with pytest.raises(ValueError, match=r"size must be a pair of positive integers \(H, W\)"):
        aa.sample("mild", [1], (0, 8))
    with pytest.raises(ValueError, match=r"size must be a pair of positive integers \(H, W\)"):
        aa.sample("mild", [1], (8.5, 8))


def test_uniform_one_equals_uniform_keyed():
    keys = KEYS.tolist()
    for seed in (0, 1, 2**63 + 5):
        for stream in (1, 4, 101):
            ref = sampling.uniform_keyed(seed, KEYS, stream)
            assert [sampling._uniform_one(seed, k, stream) for k in keys] == ref.tolist()


def _random_matrices(n, rng):
    m = np.zeros((n, 3, 3))
    m[:, :2, :2] = rng.normal(0, 1, (n, 2, 2))
    m[:, :2, 2] = rng.normal(0, 50, (n, 2))
    m[:, 2, 2] = 1
    return m


def test_invert_one_has_the_bits_of_invert():
    rng = np.random.default_rng(0)
    m = _random_matrices(500, rng)
    m[:20, :2, :2] = [[0, 1], [-1, 0]]  # quarter turns and flips: exact cases
    m[20:40, :2, :2] = [[-1, 0], [0, 1]]
    inv = invert(m)
    for i in range(len(m)):
        one = _one.invert_one(*m[i, :2].reshape(-1).tolist())
        assert np.array(one).tobytes() == inv[i, :2].reshape(-1).tobytes()
    assert _one.invert_one(1.0, 2.0, 0.0, 2.0, 4.0, 0.0) is None  # singular: invert raises
    assert _one.invert_one(1e-300, 0.0, 0.0, 0.0, 1e-300, 0.0) is None  # an inverse beyond float64


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_one_image_path_equals_the_batch_path(dtype, interpolation, monkeypatch):
    rng = np.random.default_rng(1)
    taken = []
    real = _one.warp_one

    def counted(*a):
        r = real(*a)
        taken.append(r is not None)
        return r

    monkeypatch.setattr(aa.warp, "warp_one", counted)
    for shape in [(1, 17, 23, 3), (1, 17, 23), (1, 9, 6, 4)]:
        img = (rng.random(shape) * 255).astype(dtype)
        for k in range(6):
            m = aa.sample(CONFIGS[0], [k], shape[1:3]).matrices
            for border in ("constant", "edge", "reflect", "mirror", "wrap"):
                kw = dict(
                    interpolation=interpolation,
                    border=border,
                    fill=3,
                    out_size=(11, 19),
                    cubic_a=-0.75 if k % 3 else -0.5,
                )
                fast = aa.warp_affine(img, m[0] if k % 2 else m, **kw)
                slow = aa.warp_affine(img, m.tolist(), **kw)  # a list: the general path
                assert fast.dtype == slow.dtype and fast.shape == slow.shape == (1, 11, 19) + shape[3:]
                assert fast.tobytes() == slow.tobytes()
    assert sum(taken) == len(taken) // 2  # every ndarray call took the fast path, no list call did


def test_one_image_path_leaves_the_rest_to_the_general_path():
    img = np.zeros((1, 8, 8, 3), np.uint8)
    eye = np.eye(3)
    cases = [
        dict(images=img, matrices=eye, antialias=True),
        dict(images=img, matrices=eye, backend="numpy"),
        dict(images=img, matrices=eye, out=np.empty_like(img)),
        dict(images=img[:, ::2], matrices=eye),
        dict(images=np.zeros((2, 8, 8), np.uint8), matrices=eye),
        dict(images=img, matrices=eye.astype(np.float32)),
        dict(images=img, matrices=np.zeros((3, 3))),
        dict(images=img, matrices=np.full((3, 3), np.nan)),
        dict(images=img.astype(np.int8), matrices=eye),
        dict(images=img, matrices=eye, border="wrapp"),
    ]
    for c in cases:
        c = {
            "out_size": None,
            "interpolation": "bilinear",
            "border": "constant",
            "fill": 0,
            "antialias": False,
            "backend": "auto",
            "out": None,
            "cubic_a": -0.5,
            **c,
        }
        assert _one.warp_one(**c) is None
    with pytest.raises(ValueError, match="singular or too ill-conditioned"):
        aa.warp_affine(img, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"bottom row of a 3x3 matrix must be \[0, 0, 1\]"):
        aa.warp_affine(img, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        aa.warp_affine(img, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="unknown border 'wrapp' \\(did you mean 'wrap'\\?\\)"):
        aa.warp_affine(img, eye, border="wrapp")
    with pytest.raises(ValueError, match=r"fill has 2 values but the images have 3 channels"):
        aa.warp_affine(img, eye, fill=[1, 2])
    with pytest.raises(ValueError, match=r"out_size must be a pair of positive integers"):
        aa.warp_affine(img, eye, out_size=(0, 3))
