"""Hostile and extreme input to the core: every case must give a clean error or a sane result."""

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import affine_aug as aa
from affine_aug import ConfigError
from conftest import write


# --------------------------------------------------------------------------- accepted, then broken


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"rotate": [-1e308, 1e308]},
            r"rotate: rotate must lie within \[-3600, 3600\] degrees, got \[-1e\+308, 1e\+308\]",
        ),
        ({"translate": {"x": 1e308}}, r"translate\.x: translate must lie within \[-10, 10\] image sizes, got 1e\+308"),
        (
            {"translate": {"x": 1e6, "unit": "px"}},
            r"translate\.x: translate must lie within \[-100000, 100000\] pixels",
        ),
        ({"center": {"x": 1e308}}, r"center\.x: center must lie within \[-10, 10\] relative to \(W-1, H-1\)"),
        ({"scale": 1e300}, r"scale: scale must lie within \[0.001, 1000\], got 1e\+300"),
        ({"scale": 1e-300}, r"scale: scale must lie within \[0.001, 1000\], got 1e-300"),
        ({"scale": {"x": 1e-300, "y": 1e300}}, r"scale\.x: scale must lie within \[0.001, 1000\], got 1e-300"),
        (
            {"scale": {"dist": "loguniform", "low": 5e-324, "high": 1e308}},
            r"scale: scale must lie within \[0.001, 1000\]",
        ),
        (
            {"rotate": {"dist": "normal", "mean": 0, "std": 1e308}},
            r"rotate: rotate must lie within .* \(a normal reaches mean \+- 8.3 std",
        ),
        (
            {"shear": {"x": 45, "y": 45}},
            r"shear: x and y shear together come too close to a singular matrix: det = 1 - tan\(x\) tan\(y\) reaches",
        ),
        ({"shear": {"x": [-40, 40], "y": [-50, 50]}}, r"shear: x and y shear together come too close"),
        ({"scale": 1e200, "shear": {"x": 45, "y": 45}}, r"scale: scale must lie within"),
        ({"translate": {}}, r"translate: expected x and/or y, got an empty mapping"),
        ({"scale": {}}, r"scale: expected x and/or y, got an empty mapping"),
        ({"center": {}}, r"center: expected x and/or y, got an empty mapping"),
    ],
)
def test_configs_that_would_break_sampling_are_refused(data, match):
    with pytest.raises(ConfigError, match=match):
        aa.load_config(data)


def test_translate_unit_alone_means_no_translation():
    cfg = aa.load_config({"translate": {"unit": "px"}})
    assert np.array_equal(aa.sample(cfg, [0, 1], size=(8, 8)).matrices, np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_bounds_are_inclusive_and_sample_finite_matrices():
    cfg = aa.load_config(
        {
            "rotate": [-3600, 3600],
            "scale": {"x": [1e-3, 1e3], "y": 1e3},
            "shear": {"x": [-80, 80]},
            "translate": [-10, 10],
            "center": {"x": [-10, 10], "y": 10},
        }
    )
    for size in [(1, 1), (32, 32), (4096, 4096)]:
        m = aa.sample(cfg, np.arange(2000), size=size).matrices
        assert np.isfinite(m).all()
        aa.invert(m)  # well enough conditioned to invert


def test_huge_choice_weights_are_normalised_safely():
    cfg = aa.load_config({"rotate": {"dist": "choice", "values": [1, 2], "weights": [1e308, 1e308]}})
    r = aa.sample(cfg, np.arange(4000), size=(8, 8)).params["rotate"]
    assert 0.45 < np.mean(r == 1) < 0.55
    cfg = aa.load_config({"rotate": {"dist": "choice", "values": [1, 2], "weights": [5e-324, 0]}})
    assert (aa.sample(cfg, np.arange(100), size=(8, 8)).params["rotate"] == 1).all()


# --------------------------------------------------------------------------- no tracebacks


@pytest.mark.parametrize(
    "text, match",
    [
        ("? [a, b]\n: 1\n", r":1: <top level>: keys must be plain names, got a sequence"),
        ("rotate: {dist: [1]}\n", r"rotate\.dist: unknown distribution \[1\]"),
        ("rotate: " + "9" * 400 + "\n", r"rotate: expected a finite number, got an integer of 400 digits"),
        ("rotate: " + "[" * 5000 + "\n", r"invalid YAML: nested deeper than 64 levels"),
        ("rotate: 1\x01\n", r"invalid YAML: .*special characters are not allowed"),
        ("rotate: 1\x00\n", r"invalid YAML: .*special characters are not allowed"),
        ("extends: " + "x" * 300 + ".yaml\n", r"c\.yaml:1: extends: .*(File name too long|not found)"),
        ("1: 2\n", r"1: unknown key '1'"),
        ("rotate: {dist: uniform, low: 0, high: 1, 7: 2}\n", r"rotate\.7: unknown key '7'"),
    ],
)
def test_bad_files_give_config_errors(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        aa.load_config(write(tmp_path, text, dedent=False))


def test_bad_arguments_give_config_errors():
    with pytest.raises(ConfigError, match=r"'a\\x00b': a file name cannot contain a NUL character"):
        aa.load_config("a\0b")
    with pytest.raises(ConfigError, match=r"override 1: keys must be dotted key paths \(strings\), got int"):
        aa.load_config({}, overrides={1: 2})
    with pytest.raises(ConfigError, match=r"overrides must be a list of 'key.path=value' strings or a mapping"):
        aa.load_config({}, overrides="rotate=1")


def test_billion_laughs_fails_fast(tmp_path):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(
            f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]"
        )
    p = write(tmp_path, "\n".join(lines) + "\n", dedent=False)
    assert p.stat().st_size < 1000
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=r"more than 100000 values once aliases are expanded"):
        aa.load_config(p)
    assert time.perf_counter() - t < 5


def test_only_bounded_regular_files_are_read(tmp_path):
    p = write(tmp_path, "extends: /dev/zero\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1: extends: /dev/zero: not a regular file"):
        aa.load_config(p)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    p = write(tmp_path, f"extends: {fifo}\n", "d.yaml")
    with pytest.raises(ConfigError, match=r"d\.yaml:1: extends: .*fifo\.yaml: not a regular file"):
        aa.load_config(p)
    with pytest.raises(ConfigError, match=r"fifo\.yaml: not a regular file"):
        aa.load_config(fifo)
    big = write(tmp_path, "#" * (1 << 20) + "\nrotate: 1\n", "big.yaml")
    with pytest.raises(ConfigError, match=r"big\.yaml: config file is 1048587 bytes, more than the 1048576 allowed"):
        aa.load_config(big)


def test_extends_cannot_be_overridden(tmp_path):
    write(tmp_path, "rotate: 5\n", "base.yaml")
    with pytest.raises(ConfigError, match=r"override 'extends': extends cannot be overridden"):
        aa.load_config({}, overrides=[f"extends={tmp_path / 'base.yaml'}"])
    with pytest.raises(ConfigError, match=r"override 'extends': extends cannot be overridden"):
        aa.load_config({}, overrides={"extends": "base.yaml"})


# --------------------------------------------------------------------------- API edges


def test_keys_as_python_lists_of_big_integers():
    b = aa.sample({"rotate": [-10, 10]}, [2**63, 1], size=(8, 8))
    assert b.keys.dtype == np.uint64 and b.keys[0] == 2**63
    assert np.array_equal(b.matrices[1], aa.sample({"rotate": [-10, 10]}, np.array([1]), size=(8, 8)).matrices[0])


@pytest.mark.parametrize("size", [(math.inf, 1), (math.nan, 1), (2**70, 1), (1.5, 2), (0, 3)])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match=r"size must be a pair of positive integers \(H, W\)"):
        aa.sample({}, [0], size=size)


def test_conditioning_not_determinant_decides_invertibility():
    m = np.diag([1e6, 1e-6, 1.0])
    assert np.allclose(aa.invert(m) @ m, np.eye(3))
    with pytest.raises(
        ValueError, match=r"matrix \(0,\) is singular or too ill-conditioned to invert: condition number inf"
    ):
        aa.invert([[1e200, 1e200, 0], [1e200, 1e200, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"condition number 1e\+14 \(the limit is 1e\+12\)"):
        aa.invert(np.diag([1e7, 1e-7, 1.0]))
    with pytest.raises(ValueError, match=r"matrix \(1,\) is singular"):
        aa.invert([np.eye(3), np.diag([0.0, 1.0, 1.0])])


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_degenerate_matrices_are_refused_by_the_warper(backend):
    img = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"singular or too ill-conditioned"):
        aa.warp_affine(img, [[1e200, 1e200, 0], [1e200, 1e200, 0], [0, 0, 1]], backend=backend)
    with pytest.raises(ValueError, match=r"bottom row of a 3x3 matrix must be \[0, 0, 1\]"):
        aa.warp_affine(img, [[1, 0, 0], [0, 1, 0], [0, 1e-3, 1]], backend=backend)


# The extreme-matrix table every backend passes: (name, forward matrix).
EXTREME = [
    ("scale 1e-12", np.diag([1e-12, 1e-12, 1.0])),
    ("scale 1e-9 off centre", np.array([[1e-9, 0, 3.3], [0, 1e-9, 2.2], [0, 0, 1.0]])),
    ("scale 1e12", np.diag([1e12, 1e12, 1.0])),
    ("shift 1e15", np.array([[1, 0, 1e15], [0, 1, -1e15], [0, 0, 1.0]])),
    ("shift 3e9", np.array([[1, 0, 3e9 + 0.3], [0, 1, -3e9 + 0.7], [0, 0, 1.0]])),
    ("anisotropic 1e6", np.diag([1e6, 1e-6, 1.0])),
    ("tiny rotation and scale", np.array([[1e-9, -1e-9, 3], [1e-9, 1e-9, 2], [0, 0, 1.0]])),
]
BORDERS = ["constant", "edge", "reflect", "mirror", "wrap"]


def explicit_bilinear(img, m, border, fill=0.0):
    """Output pixel by pixel from the inverse matrix, with exact integer border maps."""
    inv = np.linalg.inv(m)
    h, w = img.shape
    out = np.zeros((h, w))

    def value(yy, xx):
        def index(i, n):
            if 0 <= i < n:
                return i
            if border == "constant":
                return None
            if border == "edge":
                return min(max(i, 0), n - 1)
            if border == "wrap":
                return i % n
            if border == "reflect":
                i %= 2 * n
                return i if i < n else 2 * n - 1 - i
            if n == 1:
                return 0
            i %= 2 * n - 2
            return i if i < n else 2 * n - 2 - i

        iy, ix = index(yy, h), index(xx, w)
        return fill if iy is None or ix is None else img[iy, ix]

    for y in range(h):
        for x in range(w):
            sx = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
            sy = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
            if border in ("constant", "edge"):  # far away: every neighbour is fill / edge
                sx, sy = min(max(sx, -2.0), w + 1.0), min(max(sy, -2.0), h + 1.0)
            x0, y0 = math.floor(sx), math.floor(sy)
            fx, fy = sx - x0, sy - y0
            top = (1 - fx) * value(y0, x0) + fx * value(y0, x0 + 1)
            bottom = (1 - fx) * value(y0 + 1, x0) + fx * value(y0 + 1, x0 + 1)
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


@pytest.mark.parametrize("backend", ["c", "numpy", "torch"])
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("name, m", EXTREME, ids=[e[0] for e in EXTREME])
def test_extreme_matrices_match_an_explicit_reference(backend, border, name, m):
    img = np.random.default_rng(0).random((7, 9))
    expected = explicit_bilinear(img, m, border)
    if backend == "torch":
        torch = pytest.importorskip("torch")
        from affine_aug.torch import warp_affine as warp_t

        got = (
            warp_t(torch.from_numpy(img)[None, None], torch.from_numpy(m))[0, 0].numpy()
            if border == "constant"
            else warp_t(torch.from_numpy(img)[None, None], torch.from_numpy(m), border=border)[0, 0].numpy()
        )
    else:
        got = aa.warp_affine(img[None], m, border=border, backend=backend)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    u8 = np.round(img * 255).astype(np.uint8)
    if backend != "torch":  # uint8 never reads out of bounds and stays within one level
        got8 = aa.warp_affine(np.repeat(u8[None, ..., None], 3, -1), m, border=border, backend=backend)[0, ..., 0]
        assert np.abs(got8.astype(float) - explicit_bilinear(u8.astype(float), m, border)).max() <= 1.0


# --------------------------------------------------------------------------- 16-bit images


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from affine_aug.pipeline import _read_image, load_image

    grey = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    img, deep = _read_image(path)
    assert deep and img.dtype == np.uint8 and img.shape == (64, 64, 3)
    expected = np.floor(grey * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    assert np.array_equal(img[..., 0], expected) and np.array_equal(load_image(path)[..., 1], expected)
    assert (img == 255).mean() < 0.01


# --------------------------------------------------------------------------- fuzz


_scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e-300, 1e300, 5e-324, 1e308, 89.999, 45, 80, 1e-3, 1e3, 3600]),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "x",
                    "y",
                    "unit",
                    "dist",
                    "low",
                    "high",
                    "mean",
                    "std",
                    "value",
                    "values",
                    "weights",
                    "horizontal",
                    "vertical",
                    "é",
                    "1",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)
_configs = st.dictionaries(
    st.sampled_from(["rotate", "scale", "shear", "translate", "flip", "p", "order", "center", "seed", "bogus"]),
    _values,
    max_size=6,
)


def _check_sane(cfg):
    for size in [(1, 1), (32, 32), (4096, 4096)]:
        m = aa.sample(cfg, np.arange(3000, dtype=np.uint64) * np.uint64(2654435761), size=size).matrices
        assert np.isfinite(m).all()
        cond = aa.matrix.condition_numbers(m)
        assert (cond < 1e8).all(), (cfg, float(cond.max()))
    m = aa.sample(cfg, np.arange(4), size=(8, 8)).matrices
    aa.warp_affine(np.zeros((4, 8, 8, 3), np.uint8), m)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_configs)
def test_fuzz_mappings(data):
    try:
        cfg = aa.load_config(data)
    except ConfigError:
        return
    _check_sane(cfg)


_yaml_pieces = st.lists(
    st.sampled_from(
        [
            "rotate: ",
            "scale: ",
            "shear: ",
            "translate: ",
            "center: ",
            "{x: ",
            "y: ",
            "}",
            "[",
            "]",
            ", ",
            "1e308",
            "-1e308",
            "0",
            "45",
            "80",
            "1e-3",
            "&a ",
            "*a",
            "? ",
            ": ",
            "\n",
            "  ",
            "- ",
            "{dist: normal, mean: 0, std: ",
            "{dist: loguniform, low: ",
            "high: ",
            "!!python/object:os.system ",
            "'x'",
            '"\\u0000"',
            "é: ",
            "~",
            ".inf",
            ".nan",
            "extends: /dev/zero",
            "p: 2",
        ]
    ),
    max_size=25,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_yaml_pieces)
def test_fuzz_yaml_documents(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text)
    try:
        cfg = aa.load_config(path)
    except ConfigError:
        return
    _check_sane(cfg)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "text",
    ["scale: 1e200\nshear: {x: 45, y: 45}\n", "rotate: " + "[" * 5000 + "\n", "? [a, b]\n: 1\n", "rotate: 1\x00\n"],
)
def test_cli_exit_2_with_one_line(tmp_path, text):
    p = write(tmp_path, text, dedent=False)
    for args in (["validate", str(p)], ["preview", str(p), "--out", str(tmp_path / "x.png")]):
        r = subprocess.run([sys.executable, "-m", "affine_aug.cli", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("affine-aug: error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert not (tmp_path / "x.png").exists()
