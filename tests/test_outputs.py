"""Recycled memory for large outputs (affine_aug.outputs): reused only once every array and
view on it has died, within the limits, and never changing a result."""

import threading

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import outputs


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    """Recycle from 64 KB up, so that the tests need no 32 MB arrays; default limits after."""
    monkeypatch.setattr(outputs, "SMALLEST", 64 << 10)
    aa.set_output_cache(0)
    aa.set_output_cache()
    yield
    aa.set_output_cache(0)
    aa.set_output_cache()


def batch(seed, n=4, size=96):
    rng = np.random.default_rng(seed)
    imgs = rng.random((n, size, size, 3), dtype=np.float32)
    m = aa.affine_matrix((size, size), rotate=rng.uniform(-30, 30, n), scale=rng.uniform(0.8, 1.2, n))
    return imgs, m


def test_a_dead_output_is_reused_and_results_do_not_change():
    imgs, m = batch(0)
    first = aa.warp_affine(imgs, m)
    where, expected = first.ctypes.data, first.copy()
    assert isinstance(first.base, outputs._Lease) and first.flags.c_contiguous and first.flags.writeable
    del first
    assert aa.get_output_cache()["kept"] == 1
    again = aa.warp_affine(imgs, m)
    assert again.ctypes.data == where  # the same memory, written again
    np.testing.assert_array_equal(again, expected)
    assert aa.get_output_cache()["kept"] == 0


def test_memory_in_use_is_never_handed_out():
    imgs, m = batch(1)
    other_imgs, other_m = batch(2)
    a = aa.warp_affine(imgs, m)
    kept = a.copy()
    view = a[1:3, ::2]  # a view keeps the memory of its base
    view_before = view.copy()
    b = aa.warp_affine(other_imgs, other_m)
    assert not np.shares_memory(a, b)
    del a
    c = aa.warp_affine(other_imgs, other_m)
    assert not np.shares_memory(view, c) and not np.shares_memory(b, c)
    np.testing.assert_array_equal(view, view_before)
    np.testing.assert_array_equal(view, kept[1:3, ::2])
    del view
    assert aa.get_output_cache()["kept"] == 1  # only now


def test_limits_and_switching_off():
    size = outputs.SMALLEST
    arrays = [outputs.empty((size,), np.uint8) for _ in range(4)]
    del arrays
    assert aa.get_output_cache()["kept"] == 2  # the default: at most two blocks
    aa.set_output_cache(blocks=1)
    assert aa.get_output_cache()["kept"] == 1
    aa.set_output_cache(blocks=8, nbytes=3 * size)
    arrays = [outputs.empty((size,), np.uint8) for _ in range(5)]
    del arrays
    assert aa.get_output_cache()["kept"] == 3 and aa.get_output_cache()["kept_bytes"] == 3 * size
    aa.set_output_cache(0)
    assert aa.get_output_cache()["kept"] == 0
    a = outputs.empty((size,), np.uint8)
    assert not isinstance(a.base, outputs._Lease)
    del a
    assert aa.get_output_cache()["kept"] == 0


def test_small_outputs_are_plain_arrays():
    a = outputs.empty((8, 8, 3), np.float32)
    assert a.base is None and a.shape == (8, 8, 3) and a.dtype == np.float32
    del a
    assert aa.get_output_cache()["kept"] == 0


def test_only_the_same_size_is_reused():
    size = outputs.SMALLEST
    a = outputs.empty((size,), np.uint8)
    where = a.ctypes.data
    del a
    b = outputs.empty((2 * size,), np.uint8)
    assert b.ctypes.data != where and aa.get_output_cache()["kept"] == 1
    c = outputs.empty((size // 4,), np.float32)  # the same bytes, another dtype and shape
    assert c.ctypes.data == where and c.shape == (size // 4,) and c.dtype == np.float32


@pytest.mark.parametrize(
    "args, name",
    [((-1,), "blocks"), ((1.5,), "blocks"), ((True,), "blocks"), ((2, -5), "nbytes"), ((2, "1G"), "nbytes")],
)
def test_bad_limits_are_refused(args, name):
    with pytest.raises(ValueError, match=f"set_output_cache: {name} must be an integer >= 0"):
        aa.set_output_cache(*args)


def test_threads_that_warp_and_drop_at_once_get_their_own_results():
    cases = [batch(seed) for seed in range(4)]
    expected = [aa.warp_affine(imgs, m).copy() for imgs, m in cases]
    errors = []

    def work(k):
        imgs, m = cases[k]
        for _ in range(20):
            out = aa.warp_affine(imgs, m)
            if not np.array_equal(out, expected[k]):
                errors.append(k)
            del out

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert aa.get_output_cache()["kept"] <= 2
