"""The one-key and one-image paths give the same bits as the batch paths."""

import numpy as np
import pytest

import affine_aug as aa
from affine_aug import _one, kernel, sampling
from affine_aug.matrix import _STEPS as STEPS
from affine_aug.matrix import invert
from conftest import EVERY_KIND, random_images


@pytest.fixture(params=["compiled", "python"])
def entry(request, monkeypatch):
    """Each one-key and one-image path: through the compiled CPython entry
    (``csrc/fastpath.c``), and without it (Python ints and floats, ctypes)."""
    if request.param == "python":
        monkeypatch.setattr(kernel, "FASTPATH", None)
    elif kernel.FASTPATH is None:
        pytest.skip("the CPython entry was not built")
    return request.param


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
def test_one_key_is_row_k_of_the_batch_bit_for_bit(config, seed, entry):
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
    import dataclasses

    b = aa.sample("mild", [3], (8, 8))
    assert type(b) is aa.AffineBatch and repr(b).startswith("AffineBatch(matrices=array(") and len(b) == 1
    assert [f.name for f in dataclasses.fields(b)] == list(vars(b))  # every field set, nothing else
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.seed = 1
    p = b.params
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
def test_one_image_path_equals_the_batch_path(dtype, interpolation, monkeypatch, entry):
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


def test_one_image_path_leaves_the_rest_to_the_general_path(entry):
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


FLIPS = [
    {"flip": {"horizontal": 1.0}},
    {"flip": {"vertical": 0.5}, "p": 0.7},
    {"rotate": 90, "translate": {"x": 2, "unit": "px"}},
]


@pytest.mark.parametrize("config", FLIPS, ids=range(len(FLIPS)))
def test_constant_transforms_are_made_once_and_handed_out_as_copies(config, entry):
    """A config of constants draws only its coins: its matrix is made once per size and
    flips, with the batch's bits, and every call gets its own array."""
    cfg = aa.load_config(config)
    batch = aa.sample(cfg, KEYS[:60], (37, 53), seed=3)
    for i, k in enumerate(KEYS[:60].tolist()):
        one = aa.sample(cfg, [k], (37, 53), seed=3)
        assert one.matrices.tobytes() == batch.matrices[i : i + 1].tobytes()
        one.matrices[0, 0, 2] = 1e9  # the caller's to change
    assert sampling._plan(cfg, 3).matrices is not None
    again = aa.sample(cfg, KEYS[:60], (37, 53), seed=3)
    assert again.matrices.tobytes() == batch.matrices.tobytes()
    assert sampling._plan(aa.load_config("mild"), 3).matrices is None  # random values: nothing kept


def test_plans_are_per_config_and_seed():
    a, b = aa.load_config({"rotate": [-5, 5]}), aa.load_config({"rotate": [-5, 5]})
    assert sampling._plan(a, 0) is sampling._plan(a, 0)
    assert sampling._plan(a, 0) is not sampling._plan(a, 1)
    assert sampling._plan(a, 0) is not sampling._plan(b, 0)
    assert sampling._plan(a, 0).hashes != sampling._plan(a, 1).hashes


@pytest.mark.skipif(kernel.FASTPATH is None, reason="the CPython entry was not built")
def test_compiled_uniforms_have_the_bits_of_the_python_ones():
    hashes = tuple(sampling._stream_hash(seed, stream) for seed in (0, 2**64 - 1) for stream in (1, 4, 12, 101))
    for k in KEYS.tolist():
        assert kernel.FASTPATH.uniforms(k, hashes) == sampling._uniforms_one(k, hashes)
        assert sampling._uniforms_one(k, hashes[:1]) == (sampling._uniform_one(0, k, 1),)
    assert kernel.FASTPATH.uniforms(5, ()) == ()
    with pytest.raises(OverflowError):
        kernel.FASTPATH.uniforms(2**64, hashes)


@pytest.mark.skipif(kernel.FASTPATH is None, reason="the CPython entry was not built")
def test_compiled_compose_has_the_bits_of_the_python_one():
    rng = np.random.default_rng(4)
    orders = [STEPS, ("translate", "rotate", "shear", "scale"), ("shear", "scale", "translate", "rotate")]
    for i in range(400):
        rot = float(rng.choice([0.0, 90.0, -180.0, rng.uniform(-180, 180)]))
        sx, sy = (float(v) for v in rng.choice([1.0, rng.uniform(0.3, 3)], 2))
        shx, shy = (float(v) for v in rng.choice([0.0, rng.uniform(-40, 40)], 2))
        tx, ty, cx, cy = (float(v) for v in rng.uniform(-50, 50, 4))
        fx, fy = bool(i % 2), bool(i % 3 == 0)
        order = orders[i % 3]
        want = sampling._compose_one(rot, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order) + (0.0, 0.0, 1.0)
        got = sampling._matrix_one((rot, sx, sy, shx, shy, tx, ty, cx, cy), fx, fy, order,
                                   tuple(STEPS.index(n) for n in order), kernel.FASTPATH)  # fmt: skip
        assert got.shape == (1, 3, 3) and got.tobytes() == np.array(want).tobytes(), i
    with pytest.raises(ValueError, match="step codes are 0 to 3"):
        kernel.FASTPATH.compose_into(np.empty((1, 3, 3)), *([0.0] * 10), False, False, (4,))
    with pytest.raises(ValueError, match="a C-contiguous float64 array of 9 values"):
        kernel.FASTPATH.compose_into(np.empty((2, 3)), *([0.0] * 10), False, False, (0,))


@pytest.mark.skipif(kernel.FASTPATH is None, reason="the CPython entry was not built")
def test_the_compiled_entry_declines_what_is_not_the_plain_case():
    """warp_one returns False (nothing written) for anything but the plain case; the
    general path then decides, with its checks."""
    img = np.arange(8 * 9 * 3, dtype=np.uint8).reshape(1, 8, 9, 3)
    eye = np.eye(3)
    warp = kernel.FASTPATH.warp_one

    def declines(images=img, matrices=eye, out=None, fill=None):
        out = np.zeros_like(img) if out is None else out
        before = out.copy()
        done = warp(images, matrices, out, 1, 0, fill, -0.5, 1)
        assert done or out.tobytes() == before.tobytes()  # declined: nothing written
        return not done

    assert not declines()  # the plain case is done
    assert not declines(matrices=eye[:2]) and not declines(matrices=eye[None]) and not declines(matrices=eye.T.T)
    assert not declines(matrices=np.asfortranarray(eye))  # any strides for the matrix
    for bad in [
        dict(images=img[:, ::2]),  # not contiguous
        dict(images=img.astype(np.int8)),
        dict(images=img.astype(">f8"), out=np.zeros(img.shape, ">f8")),  # not native
        dict(images=img.astype(np.float32)),  # out of another dtype
        dict(out=np.zeros((1, 8, 9, 4), np.uint8)),  # other channels
        dict(out=np.zeros((1, 8, 9), np.uint8)),
        dict(images=np.zeros((2, 8, 9, 3), np.uint8)),
        dict(images=np.zeros((1, 0, 9, 3), np.uint8), out=np.zeros((1, 0, 9, 3), np.uint8)),
        dict(matrices=eye.astype(np.float32)),
        dict(matrices=np.stack([eye, eye])),
        dict(matrices=np.zeros((3, 3))),  # singular
        dict(matrices=np.diag([1e-300, 1e-300, 1.0])),  # an inverse beyond float64
        dict(matrices=np.array([[1.0, 0, 0], [0, 1, 0], [0, 1, 1]])),  # projective
        dict(matrices=np.array([[1.0, 0, np.inf], [0, 1, 0]])),
        dict(fill=np.zeros(2)),
        dict(fill=np.zeros(3, np.float32)),
    ]:
        assert declines(**bad), bad
    readonly = np.zeros_like(img)
    readonly.flags.writeable = False
    assert not warp(img, eye, readonly, 1, 0, None, -0.5, 1)
    kept = img.copy()
    kept.flags.writeable = False  # read-only images are fine
    out = np.zeros_like(img)
    assert warp(kept, eye, out, 1, 0, np.array([1.0, 2, 3]), -0.5, 1) and out.tobytes() == img.tobytes()


def _flips(h, w):
    """Flips, the half turn and quarter turns, alone and with integer shifts that move part
    of the row outside the image (so the copies' SIMD spans start and end anywhere)."""
    out = []
    for fx, fy in [(True, False), (False, True), (True, True)]:
        f = aa.affine_matrix((h, w), flip=(fx, fy))
        out += [f] + [aa.affine_matrix((h, w), translate=t) @ f for t in [(5, -2), (-37, 3), (1, 0)]]
    out += [aa.affine_matrix((h, w), translate=(-3, 1)) @ aa.affine_matrix((h, h), rotate=r) for r in (90, 270)]
    return np.stack(out)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect", "mirror", "wrap"])
def test_flips_through_the_one_image_call_are_copies_with_the_warps_bytes(dtype, border, entry):
    """Random images of 1 to 4 channels and widths around the copies' 32- and 48-byte
    blocks, one per call: the counter says the copy path was taken, and the bytes are the
    warp path's (copies off) and, for plain flips, numpy's."""
    rng = np.random.default_rng(11)
    sizes = [(1, (7, 97)), (2, (6, 70)), (3, (9, 101)), (4, (5, 67)), (3, (4, 16)), (3, (45, 38)), (1, (40, 35))]
    for c, (h, w) in sizes:
        img = random_images(dtype, (1, h, w, c) if c > 1 else (1, h, w), rng)
        for i, m in enumerate(_flips(h, w)):
            interpolation = ("nearest", "bilinear", "bicubic")[i % 3]
            kw = dict(border=border, fill=[7] * c if c > 1 else 7, interpolation=interpolation)
            copied = aa.warp_affine(img, m, **kw)
            assert kernel._last_exact_count() == 1, (c, w, i)
            was = kernel._set_permutation_copies(False)
            try:
                warped = aa.warp_affine(img, m, **kw)
                assert kernel._last_exact_count() == 0
            finally:
                kernel._set_permutation_copies(was)
            assert copied.tobytes() == warped.tobytes(), (c, w, i)
        for axes, m in [((2,), _flips(h, w)[0]), ((1,), _flips(h, w)[4]), ((1, 2), _flips(h, w)[8])]:
            assert aa.warp_affine(img, m, border=border).tobytes() == np.flip(img, axes).tobytes()


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_random_affine_on_cpu_tensors_takes_the_planar_kernel_with_the_torch_warpers_bytes(dtype, monkeypatch):
    """A CPU tensor without gradient goes to the planar kernel at once (the torch warper's
    checks and op dispatch skipped): the same bytes as the torch warper, for images,
    batches, masks and videos; a bad fill keeps its message."""
    torch = pytest.importorskip("torch")
    from torchvision import tv_tensors

    from affine_aug.torch import RandomAffine, functional, kernels

    calls = []
    real = kernels._warp_cpu
    monkeypatch.setattr(kernels, "_warp_cpu", lambda *a: calls.append(a[0].shape) or real(*a))
    rng = np.random.default_rng(2)
    cfg = {"rotate": [-30, 30], "scale": [0.8, 1.2], "flip": {"horizontal": 0.5}, "p": 0.9}
    inputs = [
        torch.from_numpy(random_images(np.dtype(dtype), (3, 13, 17), rng)),
        torch.from_numpy(random_images(np.dtype(dtype), (2, 4, 9, 11), rng)),
        tv_tensors.Video(torch.from_numpy(random_images(np.dtype(dtype), (2, 3, 8, 10), rng))),
    ]
    for border, fill in [("constant", 5), ("reflect", 0), ("constant", [1, 2, 3])]:
        for x in inputs:
            if isinstance(fill, list) and (x.shape[-3] != 3 or isinstance(x, tv_tensors.Video)):
                continue  # per-channel fills of videos are repeated per frame (test_torch covers them)
            t = RandomAffine(
                cfg, seed=4, border=border, fill=fill, interpolation="bicubic" if x.ndim == 4 else "bilinear"
            )
            got = t(x)
            n = x.shape[0] if x.ndim == 4 and not isinstance(x, tv_tensors.Video) else 1
            m = t.params_for(np.arange(n, dtype=np.uint64), tuple(x.shape[-2:]), 4, batched=n > 1)["matrices"]
            per = x.as_subclass(torch.Tensor).reshape(n, -1, *x.shape[-2:])
            kw = dict(interpolation=t.interpolation, border=border, fill=fill)
            want = functional.warp_affine(per, torch.from_numpy(m), **kw)
            assert got.dtype == x.dtype and got.shape == x.shape
            assert got.as_subclass(torch.Tensor).reshape(want.shape).numpy().tobytes() == want.numpy().tobytes()
    assert len(calls) >= 6
    with pytest.raises(ValueError, match=r"fill must be a number or 3 numbers \(one per channel\), got \[1, 2\]"):
        RandomAffine(cfg, seed=0, fill=[1, 2])(inputs[0])
    grad = inputs[0].float().requires_grad_()
    before = len(calls)
    RandomAffine(cfg, seed=0)(grad).sum().backward()  # a gradient: the torch warper, with autograd
    assert len(calls) == before and grad.grad is not None


@pytest.mark.skipif(kernel.FASTPATH is None, reason="the CPython entry was not built")
def test_the_compiled_batch_call_is_the_ctypes_call():
    """kernel.warp_into through the CPython entry gives the ctypes call's bytes; buffers
    that are not the plain (N, H, W, C) case give None (kernel.warp_into then uses ctypes)."""
    rng = np.random.default_rng(8)
    imgs = random_images(np.float32, (3, 9, 11, 2), rng)
    inv = invert(np.stack([aa.affine_matrix((9, 11), rotate=r, scale=1.3) for r in (5.0, 50.0, -70.0)]))
    fill = np.array([1.5, -2.0])
    out = np.empty((3, 7, 12, 2), np.float32)
    assert kernel.FASTPATH.warp_into(imgs, inv, out, fill, 2, 3, -0.75, 2) == 0
    ref = np.empty_like(out)
    assert kernel._warp_ctypes(kernel._LIB, imgs, inv, ref, fill, 2, 3, -0.75, 2) == 0
    assert out.tobytes() == ref.tobytes()
    warp = kernel.FASTPATH.warp_into
    assert warp(imgs[:, ::2], inv, out, fill, 1, 0, -0.5, 1) is None
    assert warp(imgs, inv[:2], out, fill, 1, 0, -0.5, 1) is None
    assert warp(imgs, inv, out[..., :1].copy(), fill, 1, 0, -0.5, 1) is None
    assert warp(imgs, inv, out.astype(np.float64), fill, 1, 0, -0.5, 1) is None
    assert warp(imgs, inv, out, fill[:1], 1, 0, -0.5, 1) is None
    assert warp(imgs, inv, out, fill, 1, 9, -0.5, 1) == -1  # the kernel's own refusal
