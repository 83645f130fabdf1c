"""Keys' parameter ``cubic_a`` on every public warper, against an explicit float64 Keys reference."""

import math

import numpy as np
import pytest

import affine_aug as aa

M = aa.affine_matrix((11, 14), rotate=17.0, scale=1.3, translate=(0.7, -1.1), center=(6.5, 5.0))


def keys(d, a):
    """Keys (1981) cubic convolution kernel, written from its definition."""
    d = abs(d)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0


def reference(img, m, a):
    """Bicubic warp, edge border, one output pixel at a time in float64."""
    h, w = img.shape
    inv = np.linalg.inv(m)
    out = np.zeros_like(img)
    for y in range(h):
        for x in range(w):
            sx, sy, _ = inv @ np.array([x, y, 1.0])
            x0, y0 = math.floor(sx), math.floor(sy)
            total = 0.0
            for j in range(y0 - 1, y0 + 3):
                for i in range(x0 - 1, x0 + 3):
                    v = img[min(max(j, 0), h - 1), min(max(i, 0), w - 1)]
                    total += keys(sx - i, a) * keys(sy - j, a) * v
            out[y, x] = total
    return out


IMG = np.random.default_rng(0).random((11, 14))


@pytest.mark.parametrize("a", [-0.75, -0.5, -1.0])
@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_numpy_warp_affine_cubic_a_is_keys(a, backend):
    got = aa.warp_affine(IMG[None], M, interpolation="bicubic", border="edge", cubic_a=a, backend=backend)[0]
    np.testing.assert_allclose(got, reference(IMG, M, a), rtol=0, atol=1e-12)


def test_default_is_minus_one_half_and_the_parameter_matters():
    default = aa.warp_affine(IMG[None], M, interpolation="bicubic", border="edge")[0]
    np.testing.assert_allclose(default, reference(IMG, M, -0.5), rtol=0, atol=1e-12)
    opencv = aa.warp_affine(IMG[None], M, interpolation="bicubic", border="edge", cubic_a=-0.75)[0]
    assert np.abs(opencv - default).max() > 1e-3


def test_torch_warp_affine_and_random_affine_cubic_a_is_keys():
    torch = pytest.importorskip("torch")
    from affine_aug.torch import RandomAffine, warp_affine

    x = torch.from_numpy(IMG)[None, None]
    for a in (-0.75, -0.5):
        ref = reference(IMG, M, a)
        got = warp_affine(x, torch.from_numpy(M), interpolation="bicubic", border="edge", cubic_a=a)[0, 0].numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    for image, tol in ((x[0], 1e-12), (x[0].float(), 1e-5), (x[0].half(), 2e-3)):  # kernel, kernel, torch path
        t = RandomAffine(
            {"rotate": [-30, 30], "scale": 1.3}, seed=0, interpolation="bicubic", border="edge", cubic_a=-0.75
        )
        m = aa.sample(t.config, [0], size=IMG.shape, seed=0).matrices[0]
        got = t(image)[0].double().numpy()
        np.testing.assert_allclose(got, reference(image[0].double().numpy(), m, -0.75), rtol=0, atol=tol)


BAD = [
    (-1.5, r"got -1\.5"),
    (0.25, r"got 0\.25"),
    (float("nan"), r"got nan"),
    (math.inf, r"got inf"),
    ("a", r"got 'a'"),
    (True, r"got True"),
    (None, r"got None"),
]


@pytest.mark.parametrize("value, got", BAD)
def test_bad_cubic_a_is_refused_everywhere(value, got):
    match = (
        r"cubic_a \(Keys' bicubic parameter\) must be a number in "
        r"\[-1, 0\], e\.g\. -0\.5 \(PIL\) or -0\.75 \(OpenCV, torch\), " + got
    )
    with pytest.raises(ValueError, match=match):
        aa.warp_affine(IMG[None], M, interpolation="bicubic", cubic_a=value)
    torch = pytest.importorskip("torch")
    from affine_aug.torch import RandomAffine, warp_affine

    with pytest.raises(ValueError, match=match):
        warp_affine(torch.zeros(1, 1, 4, 4), torch.eye(3), cubic_a=value)
    with pytest.raises(ValueError, match=match):
        RandomAffine({"rotate": 5}, cubic_a=value)
