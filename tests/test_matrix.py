import numpy as np
import pytest

import affine_aug as aa
from affine_aug.matrix import as_matrices


def explicit(size, rotate=0.0, scale=(1.0, 1.0), shear=(0.0, 0.0), translate=(0.0, 0.0)):
    """Independent reference: M = T C R Sh S C^-1 written out entry by entry."""
    h, w = size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    t = np.deg2rad(rotate)
    C = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
    Ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    # counter-clockwise on screen (y down): (1, 0) turns towards (0, -1)
    R = np.array([[np.cos(t), np.sin(t), 0], [-np.sin(t), np.cos(t), 0], [0, 0, 1]])
    Sh = np.array([[1, np.tan(np.deg2rad(shear[0])), 0], [np.tan(np.deg2rad(shear[1])), 1, 0], [0, 0, 1]])
    S = np.diag([scale[0], scale[1], 1.0])
    T = np.array([[1, 0, translate[0]], [0, 1, translate[1]], [0, 0, 1.0]])
    return T @ C @ R @ Sh @ S @ Ci


def test_affine_matrix_matches_explicit_product():
    m = aa.affine_matrix((20, 30), rotate=33, scale=(1.2, 0.8), shear=(10, -5), translate=(3, -4))
    np.testing.assert_allclose(m, explicit((20, 30), 33, (1.2, 0.8), (10, -5), (3, -4)), atol=1e-12)


def test_affine_matrix_broadcasts_to_batch():
    rot = np.array([0.0, 10.0, 20.0])
    m = aa.affine_matrix((8, 8), rotate=rot, scale=1.5)
    assert m.shape == (3, 3, 3)
    for i in range(3):
        np.testing.assert_allclose(m[i], explicit((8, 8), rot[i], (1.5, 1.5)), atol=1e-12)
    assert aa.affine_matrix((8, 8)).shape == (3, 3)
    np.testing.assert_array_equal(aa.affine_matrix((8, 8)), np.eye(3))


def test_rotation_direction_is_counter_clockwise_on_screen():
    # a point right of the centre moves to above the centre (smaller y)
    m = aa.affine_matrix((11, 11), rotate=90)
    np.testing.assert_array_equal(aa.transform_points([[8.0, 5.0]], m), [[5.0, 2.0]])


def test_quarter_turns_are_exact():
    for k in range(-4, 5):
        m = aa.affine_matrix((7, 7), rotate=90 * k)
        assert set(np.unique(m[:2, :2])) <= {-1.0, 0.0, 1.0}


def test_shear_moves_x_by_tan_times_y():
    m = aa.affine_matrix((11, 11), shear=45)  # centre (5, 5)
    np.testing.assert_allclose(aa.transform_points([[5.0, 8.0]], m), [[8.0, 8.0]], atol=1e-12)


def test_order_changes_composition():
    default = aa.affine_matrix((10, 10), rotate=90, translate=(3, 0))
    other = aa.affine_matrix((10, 10), rotate=90, translate=(3, 0), order=("translate", "scale", "shear", "rotate"))
    # translating first, then rotating by 90 turns the +x shift into a -y shift
    np.testing.assert_allclose(other @ np.linalg.inv(default) @ [4.5, 4.5, 1], [1.5, 1.5, 1], atol=1e-12)
    with pytest.raises(ValueError, match="exactly once"):
        aa.affine_matrix((10, 10), order=("scale", "rotate"))


def test_compose_applies_first_argument_first():
    a = aa.affine_matrix((10, 10), translate=(2, 0))
    b = aa.affine_matrix((10, 10), scale=2.0, center=(0, 0))
    p = np.array([[1.0, 1.0]])
    np.testing.assert_allclose(aa.transform_points(p, aa.compose(a, b)), [[6.0, 2.0]])
    np.testing.assert_allclose(aa.compose(a, b), b @ a)


def test_invert_round_trip_and_exactness():
    rng = np.random.default_rng(0)
    m = aa.affine_matrix(
        (9, 13),
        rotate=rng.uniform(-180, 180, 50),
        scale=rng.uniform(0.5, 2, (50, 2)),
        shear=rng.uniform(-40, 40, (50, 2)),
        translate=rng.uniform(-5, 5, (50, 2)),
    )
    np.testing.assert_allclose(aa.invert(m) @ m, np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    r = aa.affine_matrix((9, 9), rotate=90, flip=(True, False))
    assert np.array_equal(aa.invert(r) @ r, np.eye(3))


def test_invert_singular_names_matrix():
    m = np.stack([np.eye(3), np.diag([1.0, 0.0, 1.0])])
    with pytest.raises(ValueError, match=r"matrix \(1,\) is singular"):
        aa.invert(m)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4)), r"shape \(\.\.\., 3, 3\) or \(\.\.\., 2, 3\)"),
        (np.array([[1, 0, 0], [0, 1, 0], [0.1, 0, 1]]), "bottom row"),
        (np.array([[np.nan, 0, 0], [0, 1, 0]]), "non-finite"),
        (np.array([["a", "b", "c"]] * 2), "numeric"),
    ],
)
def test_as_matrices_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        as_matrices(bad)


def test_two_by_three_accepted():
    m = aa.affine_matrix((5, 5), rotate=30)
    np.testing.assert_array_equal(as_matrices(m[:2]), m)


def test_transform_points_batched():
    m = np.stack([aa.affine_matrix((10, 10), translate=(1, 2)), aa.affine_matrix((10, 10), scale=2, center=(0, 0))])
    pts = np.array([[[1.0, 1.0], [0.0, 3.0]], [[1.0, 1.0], [0.0, 3.0]]])
    np.testing.assert_allclose(aa.transform_points(pts, m), [[[2, 3], [1, 5]], [[2, 2], [0, 6]]])
    with pytest.raises(ValueError, match=r"points must have shape"):
        aa.transform_points(np.zeros((3, 3)), m)


def test_transform_boxes_pixel_edges():
    # whole-image box under a horizontal flip stays the whole image
    flip = aa.affine_matrix((10, 20), flip=(True, False))
    np.testing.assert_allclose(aa.transform_boxes([[0, 0, 20, 10]], flip), [[0, 0, 20, 10]])
    # a 90 degree rotation of a square image maps the box over columns 0..4 to rows 15..19
    rot = aa.affine_matrix((20, 20), rotate=90)
    np.testing.assert_allclose(aa.transform_boxes([[0, 0, 5, 20]], rot), [[0, 15, 20, 20]])
    with pytest.raises(ValueError, match=r"boxes must have shape"):
        aa.transform_boxes(np.zeros((2, 3)), rot)


def test_theta_matches_torch_affine_grid_convention():
    # independent check without torch: theta maps normalized output coords to normalized input coords
    size, out = (6, 10), (4, 8)
    m = aa.affine_matrix(size, rotate=20, scale=1.3, translate=(1, -2))
    for align in (False, True):
        theta = aa.to_theta(m, size, out, align_corners=align)
        assert theta.shape == (2, 3)
        x, y = 5.0, 2.0  # output pixel
        if align:
            xn, yn = 2 * x / (out[1] - 1) - 1, 2 * y / (out[0] - 1) - 1
        else:
            xn, yn = (2 * x + 1) / out[1] - 1, (2 * y + 1) / out[0] - 1
        sxn, syn = theta @ [xn, yn, 1]
        if align:
            sx, sy = (sxn + 1) * (size[1] - 1) / 2, (syn + 1) * (size[0] - 1) / 2
        else:
            sx, sy = ((sxn + 1) * size[1] - 1) / 2, ((syn + 1) * size[0] - 1) / 2
        np.testing.assert_allclose(m @ [sx, sy, 1], [x, y, 1], atol=1e-12)
        np.testing.assert_allclose(aa.from_theta(theta, size, out, align_corners=align), m, atol=1e-12)
    np.testing.assert_allclose(aa.to_theta(np.eye(3), (5, 7)), [[1, 0, 0], [0, 1, 0]], atol=1e-15)


def test_theta_align_corners_needs_two_pixels():
    with pytest.raises(ValueError, match="at least 2 pixels"):
        aa.to_theta(np.eye(3), (1, 5), align_corners=True)


@pytest.mark.parametrize("size", [(0, 5), (5,), "ab", (2.5, 3)])
def test_bad_size(size):
    with pytest.raises(ValueError, match="positive integers"):
        aa.affine_matrix(size)
