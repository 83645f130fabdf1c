"""affine_aug.Augment: one image per call, the bytes of sample + warp_affine for that key,
through the compiled call where it applies and the general path everywhere else."""

import copy
import pickle
import re
import sys

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import augment, kernel, outputs
from conftest import random_images

CONFIGS = [
    {"flip": {"vertical": 1.0}},  # constants: one matrix per size
    {"flip": {"horizontal": 0.5, "vertical": 0.5}, "p": 0.7},  # constants, coins drawn
    {"rotate": 90},
    "mild",  # values drawn per key
    {"rotate": [-30, 30], "scale": [0.8, 1.2], "flip": {"horizontal": 0.5}},
]
SETTINGS = [
    {},
    {"out_size": (13, 21), "fill": 3, "border": "reflect"},
    {"interpolation": "nearest", "border": "wrap"},
    {"interpolation": "bicubic", "cubic_a": -0.75, "border": "edge"},
    {"antialias": True, "out_size": (9, 11)},
]
compiled = pytest.mark.skipif(kernel.FASTPATH is None, reason="the compiled entry was not built")


def _reference(aug, image, key):
    m = aa.sample(aug.config, [key], image.shape[:2], aug.seed).matrices
    kw = dict(interpolation=aug.interpolation, border=aug.border, fill=aug.fill, antialias=aug.antialias)
    return aa.warp_affine(image[None], m, out_size=aug.out_size, cubic_a=aug.cubic_a, **kw)[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("settings", SETTINGS, ids=range(len(SETTINGS)))
def test_each_call_is_sample_and_warp_affine_for_its_key(dtype, settings):
    rng = np.random.default_rng(1)
    for config in CONFIGS:
        aug = aa.Augment(config, seed=5, **settings)
        for shape in [(17, 23, 3), (17, 23), (12, 12, 1), (12, 12, 5)]:
            image = random_images(dtype, shape, rng)
            for key in [*range(20), 77, 2**64 - 1]:  # every coin outcome, in many orders
                got = aug(image, key)
                assert got.dtype == image.dtype
                np.testing.assert_array_equal(got, _reference(aug, image, key), err_msg=f"{config} {shape} {key}")


def test_exact_cases_are_numpys_flips_and_turns():
    image = random_images(np.uint8, (6, 6, 3), np.random.default_rng(0))
    np.testing.assert_array_equal(aa.Augment({"flip": {"horizontal": 1.0}})(image, 0), image[:, ::-1])
    np.testing.assert_array_equal(aa.Augment({"flip": {"vertical": 1.0}})(image, 0), image[::-1])
    np.testing.assert_array_equal(aa.Augment({"rotate": 90})(image, 0), np.rot90(image))  # counter-clockwise
    np.testing.assert_array_equal(aa.Augment({"p": 0.0, "rotate": 30})(image, 4), image)


def test_the_same_key_gives_the_same_image_and_other_keys_others():
    image = random_images(np.uint8, (20, 24, 3), np.random.default_rng(3))
    a, b = aa.Augment("mild", seed=1), aa.Augment("mild", seed=1)
    outs = [a(image, k) for k in range(6)]
    for k in [5, 0, 3]:  # any order, any instance
        np.testing.assert_array_equal(b(image, k), outs[k])
    assert len({o.tobytes() for o in outs}) == len(outs)
    assert not np.array_equal(aa.Augment("mild", seed=2)(image, 0), outs[0])


def test_sizes_in_turn_each_get_their_own_matrix():
    """The compiled call keeps the inverses of the last image size only: alternating sizes
    and coin outcomes give each its own transform."""
    rng = np.random.default_rng(4)
    aug = aa.Augment({"flip": {"horizontal": 0.5}, "rotate": 90}, seed=2)
    images = [random_images(np.uint8, s, rng) for s in [(8, 8, 3), (8, 10, 3), (5, 5, 3)]]
    for key in range(12):
        image = images[key % 3]
        np.testing.assert_array_equal(aug(image, key), _reference(aug, image, key))


@compiled
def test_the_plain_case_takes_the_compiled_call_and_the_rest_the_general_path(monkeypatch):
    calls = []
    general = augment._general
    monkeypatch.setattr(augment, "_general", lambda *a: calls.append(a[-2:]) or general(*a))
    aug = aa.Augment({"flip": {"horizontal": 0.5}}, seed=1)
    assert type(aug._call).__name__ == "Keyed"
    image = random_images(np.uint8, (9, 14, 3), np.random.default_rng(5))
    for key in range(8):
        aug(image, key)
    aug(image.astype(np.float32), 2**64 - 1)
    assert calls == []  # the plain case never reached the general path
    others = [
        (image[:, ::2], 1),  # not C-contiguous
        (image.astype(np.int16), 1),  # not a kernel dtype
        (image.tolist(), 1),  # not an array
        (image, np.int64(3)),  # not an int key
        (image[None], 1),  # not one image
    ]
    for img, key in others:
        try:
            aug(img, key)
        except ValueError:
            pass
    assert len(calls) == len(others)
    np.testing.assert_array_equal(aug(image[:, ::2], 3), _reference(aug, np.ascontiguousarray(image[:, ::2]), 3))
    np.testing.assert_array_equal(aug(image, np.uint64(3)), aug(image, 3))


@compiled
def test_antialias_and_a_missing_entry_take_the_general_path(monkeypatch):
    assert type(aa.Augment("mild", antialias=True)._call).__name__ == "partial"
    monkeypatch.setattr(kernel, "FASTPATH", None)
    aug = aa.Augment("mild", seed=3)
    image = random_images(np.uint8, (10, 12, 3), np.random.default_rng(6))
    assert type(aug._call).__name__ == "partial"
    np.testing.assert_array_equal(aug(image, 4), _reference(aug, image, 4))


@compiled
def test_large_outputs_come_from_the_recycled_memory(monkeypatch):
    monkeypatch.setattr(outputs, "SMALLEST", 1024)  # read when the Augment is made
    aug = aa.Augment({"flip": {"vertical": 1.0}})
    image = random_images(np.uint8, (20, 30, 3), np.random.default_rng(7))
    out = aug(image, 0)
    assert isinstance(out.base, outputs._Lease)
    np.testing.assert_array_equal(out, image[::-1])
    assert not isinstance(aug(image[:5, :5].copy(), 0).base, outputs._Lease)  # under the size: np.empty


def test_thread_counts_give_the_same_bytes():
    image = random_images(np.float32, (64, 80, 3), np.random.default_rng(8))
    aug = aa.Augment("mild", seed=9)
    was = aa.get_num_threads()
    try:
        aa.set_num_threads(1)
        one = aug(image, 11)
        aa.set_num_threads(2)
        np.testing.assert_array_equal(aug(image, 11), one)
    finally:
        aa.set_num_threads(was)


def test_pickled_and_copied_augments_give_the_same_images():
    aug = aa.Augment({"rotate": [-20, 20], "flip": {"horizontal": 0.5}}, seed=4, fill=[1, 2, 3], out_size=(9, 8))
    image = random_images(np.uint8, (11, 13, 3), np.random.default_rng(9))
    for other in (pickle.loads(pickle.dumps(aug)), copy.deepcopy(aug)):
        assert repr(other) == repr(aug)
        for key in range(5):
            np.testing.assert_array_equal(other(image, key), aug(image, key))


def test_matrix_is_the_sampled_matrix():
    aug = aa.Augment("mild", seed=6)
    np.testing.assert_array_equal(aug.matrix(3, (20, 30)), aa.sample("mild", [3], (20, 30), seed=6).matrices[0])
    assert aa.Augment({"seed": 8, "rotate": [0, 90]}).seed == 8


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"interpolation": "cubic"}, ValueError, "interpolation"),
        ({"border": "zero"}, ValueError, "border"),
        ({"fill": "red"}, TypeError, "fill must be a number"),
        ({"fill": float("nan")}, ValueError, "fill must be finite"),
        ({"antialias": "yes"}, TypeError, "antialias must be True or False"),
        ({"out_size": (0, 5)}, ValueError, "out_size must be a pair of positive integers"),
        ({"cubic_a": 2.0}, ValueError, "cubic_a"),
        ({"seed": -1}, ValueError, "seed must be an integer in [0, 2**64)"),
    ],
)
def test_settings_are_checked_when_the_augment_is_made(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        aa.Augment("mild", **kwargs)


@pytest.mark.parametrize(
    "image, key, message",
    [
        (np.zeros((4, 5, 3), np.uint8), -1, r"key must be an integer in \[0, 2\*\*64\), got -1"),
        (np.zeros((4, 5, 3), np.uint8), 2**64, r"key must be an integer in \[0, 2\*\*64\)"),
        (np.zeros((4, 5, 3), np.uint8), 1.0, r"key must be an integer in \[0, 2\*\*64\), got 1.0"),
        (np.zeros((4, 5, 3), np.uint8), True, r"key must be an integer in \[0, 2\*\*64\), got True"),
        (np.zeros((1, 4, 5, 3), np.uint8), 0, r"one non-empty image \(H, W\) or \(H, W, C\), got shape \(1, 4, 5, 3\)"),
        (np.zeros(5, np.uint8), 0, r"Augment takes one non-empty image \(H, W\) or \(H, W, C\), got shape \(5,\)"),
        (np.zeros((4, 5, 3), np.int32), 0, "images dtype must be one of uint8, uint16, float32, float64, got int32"),
        (np.zeros((0, 5, 3), np.uint8), 0, r"one non-empty image \(H, W\) or \(H, W, C\), got shape \(0, 5, 3\)"),
        (np.zeros((4, 5, 0), np.uint8), 0, r"one non-empty image \(H, W\) or \(H, W, C\), got shape \(4, 5, 0\)"),
    ],
)
def test_bad_calls_get_the_general_paths_errors(image, key, message):
    with pytest.raises(ValueError, match=message):
        aa.Augment({"flip": {"horizontal": 1.0}})(image, key)


def test_a_fill_out_of_range_for_the_images_dtype_is_refused_per_call():
    aug = aa.Augment({"flip": {"horizontal": 1.0}}, fill=300)
    np.testing.assert_array_equal(aug(np.ones((3, 4), np.float32), 0), np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"fill 300 is not an integer in \[0, 255\] as uint8 images need"):
        aug(np.ones((3, 4), np.uint8), 0)
    with pytest.raises(ValueError, match="fill has 2 values but the images have 3 channels"):
        aa.Augment("mild", fill=[1, 2])(np.ones((3, 4, 3), np.uint8), 0)


def test_many_channels_with_and_without_a_fill():
    image = random_images(np.float32, (6, 7, 20), np.random.default_rng(10))
    for fill in (0, 2, list(range(20))):
        aug = aa.Augment({"rotate": [-40, 40]}, seed=1, fill=fill)
        for key in range(4):
            np.testing.assert_array_equal(aug(image, key), _reference(aug, image, key))


def _in_threads(work, n=4):
    """work(t) in n threads at once, switching as often as the interpreter can."""
    import threading

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n)]
    was = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch inside the calls' Python parts too
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(was)


@pytest.mark.parametrize(
    "config, fill, images",
    [
        ({"flip": {"vertical": 1.0}}, 0, [(np.uint8, (4, 5)), (np.uint8, (6, 3))]),  # sizes in turn: the kept inverses
        ({"rotate": 45}, 0.1, [(np.float32, (6, 6)), (np.float64, (6, 6))]),  # dtypes in turn: their fills
    ],
)
def test_python_threads_share_one_augment(config, fill, images):
    """Calls from four threads at once (the kernel runs without the GIL): each gets its own
    image, whatever sizes, dtypes and fills the other threads' calls have."""
    rng = np.random.default_rng(11)
    images = [random_images(d, s, rng) for d, s in images]
    aug = aa.Augment(config, fill=fill, interpolation="nearest")
    want = [_reference(aug, image, 0).tobytes() for image in images]
    bad = []

    def work(t):
        for n in range(20000):
            i = (n + t) % 2 if t < 2 else t % 2
            if aug(images[i], 0).tobytes() != want[i]:
                bad.append((t, n))

    _in_threads(work)
    assert bad == []


def test_settings_are_fixed_once_made():
    aug = aa.Augment("mild", seed=1)
    for name, value in [("seed", 2), ("border", "edge"), ("fill", 3), ("config", "strong")]:
        with pytest.raises(AttributeError, match=f"an Augment's settings are fixed when it is made \\(not '{name}'\\)"):
            setattr(aug, name, value)
    assert pickle.loads(pickle.dumps(aug)).seed == 1


def test_the_size_limit_holds_on_every_path():
    for aug in (aa.Augment({"flip": {"vertical": 1.0}}), aa.Augment("mild", antialias=True)):
        with pytest.raises(ValueError, match=r"up to 1048576, got \(1, 1048577\)"):
            aug(np.zeros((1, 1048577), np.uint8), 0)


def test_a_config_of_constants_keeps_a_bounded_number_of_matrices(monkeypatch):
    from affine_aug import sampling

    monkeypatch.setattr(sampling, "_KEPT_SIZES", 8)
    aug = aa.Augment({"flip": {"horizontal": 0.5}}, seed=12)
    plan = sampling._plan(aug.config, aug.seed)
    rng = np.random.default_rng(13)
    for w in range(1, 30):
        image = random_images(np.uint8, (3, w), rng)
        np.testing.assert_array_equal(aug(image, w), _reference(aug, image, w))
        assert len(plan.matrices) <= 8
