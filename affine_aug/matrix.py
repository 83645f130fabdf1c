"""Pure matrix algebra for 2-D affine transforms (numpy only).

Convention (used by every function here and by the warpers):
    * A matrix maps **source pixel coordinates to destination pixel coordinates**
      (forward direction), as OpenCV's ``warpAffine`` matrix and kornia do.
    * Points are ``(x, y)``: x to the right, y down, origin at the top-left,
      **pixel centres on integer coordinates** (pixel ``(0, 0)`` covers
      ``[-0.5, 0.5) x [-0.5, 0.5)``).
    * Matrices are homogeneous ``(..., 3, 3)`` float64; ``(..., 2, 3)`` is accepted
      wherever a matrix is taken.
    * Sizes are ``(H, W)``.
    * Boxes are ``(x1, y1, x2, y2)`` on pixel *edges* as in torchvision: a box over the
      whole image is ``(0, 0, W, H)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _checks
from ._deprecated import renamed

__all__ = [
    "affine_matrix",
    "as_matrices",
    "compose",
    "from_theta",
    "invert",
    "to_theta",
    "transform_boxes",
    "transform_points",
]

_STEPS = ("scale", "shear", "rotate", "translate")
# Matrices whose 2x2 part has a condition number above this are treated as singular:
# their inverse would lose every significant digit (float64 carries about 16).
_MAX_CONDITION = 1e12


def as_matrices(matrices, name: str = "matrices") -> np.ndarray:
    """Return ``matrices`` as a float64 ``(..., 3, 3)`` array of finite affine matrices.

    Accepts ``(..., 3, 3)`` and ``(..., 2, 3)``. Raises ``ValueError`` naming ``name``
    for any other shape, non-finite entries, or a projective bottom row.
    """
    m = np.asarray(matrices)
    if m.dtype == object or not (np.issubdtype(m.dtype, np.number) or m.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {m.dtype}")
    m = m.astype(np.float64, copy=False)
    if m.ndim < 2 or m.shape[-1] != 3 or m.shape[-2] not in (2, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3) or (..., 2, 3), got {m.shape}")
    if not np.all(np.isfinite(m)):
        bad = np.argwhere(~np.isfinite(m).reshape(-1, m.shape[-2] * 3).all(axis=1))
        raise ValueError(f"{name} contain non-finite values (matrix index {int(bad[0, 0])})")
    if m.shape[-2] == 2:
        bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), m.shape[:-2] + (1, 3))
        return np.concatenate([m, bottom], axis=-2)
    if not np.array_equal(m[..., 2, :], np.broadcast_to([0.0, 0.0, 1.0], m.shape[:-2] + (3,))):
        raise ValueError(f"{name} must be affine: the bottom row of a 3x3 matrix must be [0, 0, 1]")
    return m


def _cos_sin_deg(angle) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of angles in degrees, exact at multiples of 90 degrees."""
    angle = np.asarray(angle, dtype=np.float64)
    rad = np.deg2rad(angle)
    c, s = np.cos(rad), np.sin(rad)
    quarter = np.remainder(angle, 90.0) == 0
    if np.any(quarter):
        k = np.remainder(np.rint(angle / 90.0), 4).astype(np.int64)
        c = np.where(quarter, np.array([1.0, 0.0, -1.0, 0.0])[k], c)
        s = np.where(quarter, np.array([0.0, 1.0, 0.0, -1.0])[k], s)
    return c, s


def _pair(value, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a scalar / (2,) / (N, 2) value into its x and y parts (a scalar means both)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim >= 1 and v.shape[-1] == 2 and v.ndim <= 2:
        return v[..., 0], v[..., 1]
    if v.ndim <= 1:
        return v, v
    raise ValueError(f"{name} must be a scalar, an (x, y) pair or an (N, 2) array, got shape {v.shape}")


def _matrix(a, b, c, d, tx, ty) -> np.ndarray:
    """Stack broadcastable entries into ``(..., 3, 3)`` matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]."""
    a, b, c, d, tx, ty = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, d, tx, ty)))
    m = np.zeros(a.shape + (3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = a, b, tx
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = c, d, ty
    m[..., 2, 2] = 1.0
    return m


def affine_matrix(
    size: Sequence[int],
    *,
    rotate=0.0,
    scale=1.0,
    shear=0.0,
    translate=(0.0, 0.0),
    center=None,
    flip=(False, False),
    order: Sequence[str] = _STEPS,
) -> np.ndarray:
    """Forward pixel matrix for fixed parameters; arrays broadcast to a batch.

    Args:
        size: ``(H, W)`` of the source image (only used for the default centre).
        rotate: degrees, positive is counter-clockwise as seen on screen (as ``np.rot90``).
        scale: ``s`` (isotropic) or ``(sx, sy)``; > 1 enlarges the content.
        shear: degrees; ``a`` (x-shear only) or ``(ax, ay)``. x-shear moves x by
            ``tan(ax) * (y - cy)``, y-shear moves y by ``tan(ay) * (x - cx)``.
        translate: ``(tx, ty)`` in **pixels**; +x right, +y down.
        center: ``(cx, cy)`` in pixels; default the image centre ``((W-1)/2, (H-1)/2)``,
            which makes 90-degree rotations and flips exact pixel permutations.
        flip: ``(horizontal, vertical)`` booleans; a flip mirrors about the centre and is
            applied before every other step.
        order: the order the steps are applied in (default scale, shear, rotate,
            translate, i.e. ``M = T @ C @ R @ Sh @ S @ F @ C^-1``).

    Every argument may be an array; all broadcast together (``(N,)`` per-sample values,
    ``(N, 2)`` for pairs). Returns ``(..., 3, 3)`` float64 (``(3, 3)`` for scalars).

    Examples:
        >>> m = affine_matrix((3, 3), rotate=90)  # about the centre (1, 1), counter-clockwise on screen
        >>> transform_points([[2.0, 1.0]], m).round(12).tolist()  # right of the centre goes above it
        [[1.0, 0.0]]
    """
    h, w = _checks.check_size(size, "size")
    sx, sy = _pair(scale, "scale")
    shx, shy = _pair(shear, "shear")
    if np.ndim(shear) == 0:
        shy = np.zeros_like(shx)
    tx, ty = _pair(translate, "translate")
    if center is None:
        cx, cy = np.float64((w - 1) / 2.0), np.float64((h - 1) / 2.0)
    else:
        cx, cy = _pair(center, "center")
    fx, fy = _pair(flip, "flip")
    return _compose_steps(rotate, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order)


def _compose_steps(rotate, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order=_STEPS) -> np.ndarray:
    """:func:`affine_matrix` on separate, broadcastable x / y parts (angles in degrees)."""
    c, s = _cos_sin_deg(rotate)
    if sorted(order) != sorted(_STEPS):
        raise ValueError(f"order must list each of {list(_STEPS)} exactly once, got {list(order)}")
    # Each step as (a, b, c, d, tx, ty) = [[a, b, tx], [c, d, ty]], composed elementwise:
    # far cheaper than batched 3x3 matrix products, and exact for 0 / +-1 entries.
    steps = {
        "scale": (sx, 0.0, 0.0, sy, 0.0, 0.0),
        "shear": (1.0, np.tan(np.deg2rad(shx)), np.tan(np.deg2rad(shy)), 1.0, 0.0, 0.0),
        "rotate": (c, s, -s, c, 0.0, 0.0),
        "translate": (1.0, 0.0, 0.0, 1.0, tx, ty),
    }

    def sign(flip):
        v = np.where(flip, -1.0, 1.0)
        return float(v) if v.ndim == 0 else v

    m = (sign(fx), 0.0, 0.0, sign(fy), 0.0, 0.0)
    for name in order:
        m = _then_apply(m, steps[name])
    a, b, c2, d, ox, oy = m
    # about the centre: C @ M @ C^-1, i.e. translation t + centre - L @ centre
    return _matrix(a, b, c2, d, ox + cx - (a * cx + b * cy), oy + cy - (c2 * cx + d * cy))


def _then_apply(first, second):
    """Affine (a, b, c, d, tx, ty) tuples: apply ``first``, then ``second``.

    Entries may be arrays or plain floats; products with a float 0 or 1 are skipped, so
    sparse steps (scale, translate) cost almost nothing on large batches.
    """
    a1, b1, c1, d1, x1, y1 = second
    a2, b2, c2, d2, x2, y2 = first
    return (
        _sum_of_products(a1, a2, b1, c2),
        _sum_of_products(a1, b2, b1, d2),
        _sum_of_products(c1, a2, d1, c2),
        _sum_of_products(c1, b2, d1, d2),
        _add(_sum_of_products(a1, x2, b1, y2), x1),
        _add(_sum_of_products(c1, x2, d1, y2), y1),
    )


def _is(x, v: float) -> bool:
    return type(x) is float and x == v


def _mul(x, y):
    if _is(x, 0.0) or _is(y, 0.0):
        return 0.0
    return y if _is(x, 1.0) else x if _is(y, 1.0) else x * y


def _add(x, y):
    return y if _is(x, 0.0) else x if _is(y, 0.0) else x + y


def _sum_of_products(p, q, r, t):
    return _add(_mul(p, q), _mul(r, t))


def compose(*matrices) -> np.ndarray:
    """Chain transforms: ``compose(A, B, C)`` applies A first, then B, then C.

    Returns ``C @ B @ A`` as ``(..., 3, 3)``; batch dimensions broadcast.

    Examples:
        >>> zoom = affine_matrix((4, 4), scale=2.0)  # about the centre (1.5, 1.5)
        >>> shift = affine_matrix((4, 4), translate=(1, 0))
        >>> compose(zoom, shift).tolist()  # zoom first, then shift: shift @ zoom
        [[2.0, 0.0, -0.5], [0.0, 2.0, -1.5], [0.0, 0.0, 1.0]]
    """
    if not matrices:
        raise ValueError("compose needs at least one matrix")
    out = as_matrices(matrices[0], "matrices[0]")
    for i, m in enumerate(matrices[1:], start=1):
        out = as_matrices(m, f"matrices[{i}]") @ out
    return out


def condition_numbers(matrices) -> np.ndarray:
    """Condition number (ratio of singular values) of the 2x2 linear part; inf when singular."""
    return _conditions(as_matrices(matrices))


def _conditions(m: np.ndarray) -> np.ndarray:
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    # scaled first, so that entries of 1e200 neither overflow nor underflow
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.maximum(np.abs(c), np.abs(d)))
    scale = np.where(scale > 0, scale, 1.0)
    a, b, c, d = a / scale, b / scale, c / scale, d / scale
    # singular values of [[a, b], [c, d]] in closed form (a batched SVD is 30x slower):
    # s1, s2 = (p + q) / 2, |p - q| / 2 with p = |(a + d, c - b)|, q = |(a - d, c + b)|
    p, q = np.hypot(a + d, c - b), np.hypot(a - d, c + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p != q, (p + q) / np.abs(p - q), np.inf)


def invert(matrices) -> np.ndarray:
    """Inverse of affine matrices ``(..., 3, 3)`` (or ``(..., 2, 3)``), computed in closed form.

    Exact for permutation-like matrices (flips, 90-degree rotations, integer shifts).
    Raises ``ValueError`` naming the first matrix whose linear part is singular or so
    ill-conditioned (condition number above 1e12) that its inverse would be
    meaningless, or whose inverse does not fit in float64.

    Examples:
        >>> (invert(affine_matrix((4, 4), translate=(3, -2))) + 0.0).tolist()
        [[1.0, 0.0, -3.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]]
    """
    m = as_matrices(matrices)
    cond = _conditions(m)
    bad = ~(cond <= _MAX_CONDITION)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(np.atleast_1d(bad))[0])
        value = np.atleast_1d(cond)[index]
        raise ValueError(
            f"matrix {index} is singular or too ill-conditioned to invert: condition number "
            f"{value:.3g} (the limit is {_MAX_CONDITION:.0e})"
        )
    a, b, tx = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    c, d, ty = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        det = a * d - b * c
        ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
        out = _matrix(ia, ib, ic, id_, -(ia * tx + ib * ty), -(ic * tx + id_ * ty))
    finite = np.isfinite(out).reshape(out.shape[:-2] + (9,)).all(axis=-1)
    if not np.all(finite):
        index = tuple(int(i) for i in np.argwhere(np.atleast_1d(~finite))[0])
        raise ValueError(
            f"matrix {index} cannot be inverted in float64: its entries are too large or too small "
            f"(determinant {np.atleast_1d(det)[index]:.3g})"
        )
    return out


def transform_points(points, matrices) -> np.ndarray:
    """Map ``(x, y)`` points with forward matrices.

    points ``(..., K, 2)``, matrices ``(..., 3, 3)`` / ``(..., 2, 3)``; batch dimensions
    broadcast (e.g. ``(N, K, 2)`` with ``(N, 3, 3)``, or ``(K, 2)`` with one matrix).
    Returns float64 ``(..., K, 2)``.

    Examples:
        >>> transform_points([[0, 0], [3, 1]], [[1, 0, 2], [0, 1, -1]]).tolist()
        [[2.0, -1.0], [5.0, 0.0]]
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., K, 2), got {p.shape}")
    m = as_matrices(matrices)
    lin = m[..., None, :2, :2]
    return (lin @ p[..., None])[..., 0] + m[..., None, :2, 2]


def transform_boxes(boxes, matrices) -> np.ndarray:
    """Enclosing ``(x1, y1, x2, y2)`` boxes of the mapped box corners.

    boxes ``(..., K, 4)`` in pixel-edge coordinates (torchvision's XYXY); they are shifted
    to pixel-centre coordinates (-0.5), mapped, and shifted back (+0.5), so that a box
    follows the warped image exactly. Returns float64 ``(..., K, 4)``; not clamped.

    Examples:
        >>> flip = affine_matrix((2, 4), flip=(True, False))  # mirror a 4-pixel-wide image
        >>> transform_boxes([[0, 0, 1, 2]], flip).tolist()  # the first column's box becomes the last's
        [[3.0, 0.0, 4.0, 2.0]]
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim < 2 or b.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (..., K, 4), got {b.shape}")
    x1, y1, x2, y2 = (b[..., i] - 0.5 for i in range(4))
    corners = np.stack(
        [np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x1, y2], -1), np.stack([x2, y2], -1)],
        axis=-2,
    )  # (..., K, 4, 2)
    m = as_matrices(matrices)
    mapped = (m[..., None, None, :2, :2] @ corners[..., None])[..., 0] + m[..., None, None, :2, 2]
    lo, hi = mapped.min(axis=-2) + 0.5, mapped.max(axis=-2) + 0.5
    return np.concatenate([lo, hi], axis=-1)


def _normalizer(size, align_corners: bool) -> np.ndarray:
    """Matrix taking pixel-centre coordinates to ``affine_grid``'s normalized [-1, 1] ones."""
    h, w = size
    if align_corners:
        if h < 2 or w < 2:
            raise ValueError(f"align_corners=True needs sizes of at least 2 pixels, got {(h, w)}")
        return _matrix(2.0 / (w - 1), 0.0, 0.0, 2.0 / (h - 1), -1.0, -1.0)
    # x_norm = (2 x + 1) / W - 1
    return _matrix(2.0 / w, 0.0, 0.0, 2.0 / h, 1.0 / w - 1.0, 1.0 / h - 1.0)


def to_theta(matrices, in_size, out_size=None, align_corners: bool = False) -> np.ndarray:
    """Convert forward pixel matrices to the ``theta`` of ``torch.nn.functional.affine_grid``.

    ``theta`` maps normalized **output** coordinates to normalized **input** coordinates
    (the opposite direction), each axis in [-1, 1], with ``align_corners`` as named.
    in_size / out_size are ``(H, W)`` (out_size defaults to in_size). Returns ``(..., 2, 3)``.

    Examples:
        >>> theta = to_theta(affine_matrix((4, 4), translate=(2, 0)), (4, 4))  # content 2 px right
        >>> theta.tolist()  # output x samples input x - 2 px, that is -1 in normalized units
        [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    """
    in_size = _checks.check_size(in_size, "in_size")
    out_size = in_size if out_size is None else _checks.check_size(out_size, "out_size")
    inv = invert(matrices)
    theta = _normalizer(in_size, align_corners) @ inv @ invert(_normalizer(out_size, align_corners))
    return theta[..., :2, :]


def from_theta(theta, in_size, out_size=None, align_corners: bool = False) -> np.ndarray:
    """Inverse of :func:`to_theta`: ``affine_grid`` theta ``(..., 2, 3)`` → forward pixel matrices ``(..., 3, 3)``.

    Examples:
        >>> (from_theta([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]], (4, 4)) + 0.0).tolist()
        [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    in_size = _checks.check_size(in_size, "in_size")
    out_size = in_size if out_size is None else _checks.check_size(out_size, "out_size")
    t = as_matrices(theta, "theta")
    inv = invert(_normalizer(in_size, align_corners)) @ t @ _normalizer(out_size, align_corners)
    return invert(inv)


__getattr__ = renamed(
    __name__,
    {
        "MAX_CONDITION": "affine_aug.matrix._MAX_CONDITION",
        "MAX_SIDE": "affine_aug._checks.MAX_SIDE",
        "STEPS": "affine_aug.matrix._STEPS",
        "check_size": "affine_aug._checks.check_size",
        "compose_steps": "affine_aug.matrix._compose_steps",
    },
)
