"""Keyed, vectorized sampling: config + sample keys → parameters → (N, 3, 3) matrices.

Randomness is counter-based: every random number is a hash of (seed, key, stream), where
``stream`` names the parameter. The transform drawn for sample key ``k`` under seed
``s`` therefore depends on ``(s, k)`` alone, never on batch size, order, worker count
or process. There is no global RNG and no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kernel
from .config import AffineConfig, load_config
from ._checks import MAX_SIDE, as_keys, as_seed, check_size
from ._deprecated import renamed
from .dist import Dist, draw
from .matrix import _STEPS, _compose_steps

__all__ = ["STREAMS", "AffineBatch", "sample", "uniform_keyed"]

# One stream per parameter: adding a parameter never changes the draws of the others.
STREAMS = {
    "applied": 1,
    "flip_x": 2,
    "flip_y": 3,
    "rotate": 4,
    "scale_x": 5,
    "scale_y": 6,
    "shear_x": 7,
    "shear_y": 8,
    "translate_x": 9,
    "translate_y": 10,
    "center_x": 11,
    "center_y": 12,
    "track_split": 101,  # GTSRB: which tracks are held out for validation
}
_PARAMS = ("rotate", "scale_x", "scale_y", "shear_x", "shear_y", "translate_x", "translate_y",
          "center_x", "center_y", "flip_x", "flip_y", "applied")  # fmt: skip

_GOLDEN_INT = 0x9E3779B97F4A7C15
_GOLDEN = np.uint64(_GOLDEN_INT)
_MASK = (1 << 64) - 1
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: a bijective 64-bit hash (uint64 arithmetic wraps)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _splitmix64_int(x: int) -> int:
    """:func:`_splitmix64` of one Python int in ``[0, 2**64)`` (the same bits)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=1024)
def _stream_hash(seed: int, stream: int) -> int:
    """The hash of ``(seed, stream)`` that every key of that stream is mixed with."""
    return _splitmix64_int(seed ^ ((stream * _GOLDEN_INT) & _MASK))


def uniform_keyed(seed: int, keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in the open interval (0, 1), one per key, a pure function of (seed, key, stream)."""
    s = np.uint64(_stream_hash(int(seed), int(stream)))
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(keys.astype(np.uint64) ^ s) + _GOLDEN)
    return ((h >> _S11).astype(np.float64) + 0.5) * 2.0**-53


def _uniform_one(seed: int, key: int, stream: int) -> float:
    """:func:`uniform_keyed` of one key, in Python ints and floats (the same bits)."""
    h = _splitmix64_int((_splitmix64_int(key ^ _stream_hash(seed, stream)) + _GOLDEN_INT) & _MASK)
    return (float(h >> 11) + 0.5) * 2.0**-53


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True, eq=False)
class AffineBatch:
    """A batch of sampled transforms.

    Attributes:
        matrices: ``(N, 3, 3)`` float64 forward pixel matrices (source → destination,
            ``(x, y)``, pixel centres on integers).
        params: mapping of ``(N,)`` arrays: ``rotate`` (deg), ``scale_x``, ``scale_y``,
            ``shear_x``, ``shear_y`` (deg), ``translate_x``, ``translate_y`` (pixels),
            ``center_x``, ``center_y`` (pixels), ``flip_x``, ``flip_y``, ``applied`` (bool).
            Samples that were not applied hold identity values.
        keys: ``(N,)`` uint64 sample keys; seed: the seed used; size: ``(H, W)``.
    """

    matrices: np.ndarray
    params: Mapping[str, np.ndarray]
    keys: np.ndarray
    seed: int
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.matrices)


def sample(config, keys, size, seed: int | None = None) -> AffineBatch:
    """Draw one transform per sample key.

    Args:
        config: an :class:`AffineConfig`, a mapping, or a path to a YAML file.
        keys: ``(N,)`` non-negative integer sample ids. The transform for key ``k``
            depends only on ``(seed, k)``.
        size: ``(H, W)`` of the images the matrices are for (centre, fraction units).
        seed: overrides the config's ``seed``; default ``config.seed``, else 0.

    Returns:
        :class:`AffineBatch` with ``(N, 3, 3)`` forward pixel matrices and their params.

    Examples:
        >>> batch = sample({"rotate": [-10, 10]}, keys=[0, 1, 2], size=(32, 32), seed=0)
        >>> batch.matrices.shape
        (3, 3, 3)
        >>> again = sample({"rotate": [-10, 10]}, keys=[1], size=(32, 32), seed=0)  # key 1 alone
        >>> bool((again.matrices[0] == batch.matrices[1]).all())
        True
    """
    cfg = config if isinstance(config, AffineConfig) else load_config(config)
    h, w = _size(size)
    seed = seed if seed is not None else (cfg.seed if cfg.seed is not None else 0)
    seed = seed if type(seed) is int and 0 <= seed < 1 << 64 else as_seed(seed)
    if type(keys) is list and len(keys) == 1 and type(keys[0]) is int and 0 <= keys[0] < 1 << 64:
        return _sample_one(cfg, keys[0], h, w, seed)
    keys = as_keys(keys)
    if len(keys) == 1:
        return _sample_one(cfg, int(keys[0]), h, w, seed)

    return _sample_batch(cfg, keys, h, w, seed)


def _sample_batch(cfg: AffineConfig, keys: np.ndarray, h: int, w: int, seed: int) -> AffineBatch:
    """:func:`sample` of checked ``(N,)`` uint64 keys, vectorized over the batch."""
    n = len(keys)
    p = _draw_params(cfg, keys, h, w, seed)
    m = _compose_steps(
        p["rotate"],
        p["scale_x"],
        p["scale_y"],
        p["shear_x"],
        p["shear_y"],
        p["translate_x"],
        p["translate_y"],
        p["center_x"],
        p["center_y"],
        p["flip_x"],
        p["flip_y"],
        cfg.order,
    )
    matrices = np.array(np.broadcast_to(m, (n, 3, 3)))
    params = {k: np.array(np.broadcast_to(p[k], (n,))) for k in _PARAMS}
    if not np.all(p["applied"]):
        matrices[~params["applied"]] = np.eye(3)
    matrices += 0.0  # -0.0 -> 0.0: entries are the same bits as the one-key path gives
    return AffineBatch(matrices, params, keys, seed, (h, w))


def _draw_params(cfg: AffineConfig, keys: np.ndarray, h: int, w: int, seed: int) -> dict:
    """Every parameter of :data:`_PARAMS` drawn for each key: ``(N,)`` arrays, or scalars
    for constants (they broadcast); samples not applied hold identity values."""

    def u(name):
        return uniform_keyed(seed, keys, STREAMS[name])

    def value(name, d: Dist):  # constants need no random numbers (scalars broadcast below)
        return float(d.value) if d.kind == "constant" else draw(d, u(name))

    def coin(name, prob: float):
        return np.bool_(prob >= 1.0) if prob <= 0.0 or prob >= 1.0 else u(name) < prob

    applied = coin("applied", cfg.p)
    p = {
        "rotate": value("rotate", cfg.rotate),
        "scale_x": value("scale_x", cfg.scale_x),
        "shear_x": value("shear_x", cfg.shear_x),
        "shear_y": value("shear_y", cfg.shear_y),
        "translate_x": value("translate_x", cfg.translate_x),
        "translate_y": value("translate_y", cfg.translate_y),
    }
    p["scale_y"] = p["scale_x"] if cfg.scale_y is None else value("scale_y", cfg.scale_y)
    if cfg.translate_unit == "fraction":
        p["translate_x"] = p["translate_x"] * w
        p["translate_y"] = p["translate_y"] * h
    if not np.all(applied):
        neutral = {"scale_x": 1.0, "scale_y": 1.0}
        p = {k: np.where(applied, v, neutral.get(k, 0.0)) for k, v in p.items()}
    p["center_x"] = value("center_x", cfg.center_x) * (w - 1)
    p["center_y"] = value("center_y", cfg.center_y) * (h - 1)
    p["flip_x"] = applied & coin("flip_x", cfg.flip_horizontal)
    p["flip_y"] = applied & coin("flip_y", cfg.flip_vertical)
    p["applied"] = applied
    return p


def _size(size) -> tuple[int, int]:
    """:func:`check_size` with a shortcut for a tuple or list of two valid ints."""
    if type(size) in (tuple, list) and len(size) == 2:
        h, w = size
        if type(h) is int and type(w) is int and 0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE:
            return h, w
    return check_size(size, "size")


_NEUTRAL = (0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)  # rotate, scale x / y, shear x / y, translate x / y
_IDENTITY = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
# the parameters of a transform, in the order of _compose_one (scale_y: None for isotropic)
_VALUES = ("rotate", "scale_x", "scale_y", "shear_x", "shear_y", "translate_x", "translate_y", "center_x", "center_y")
_COINS = ("applied", "flip_x", "flip_y")
_STEP_CODES = {name: i for i, name in enumerate(_STEPS)}  # csrc/fastpath.c: compose_into


@dataclass(frozen=True)
class _Plan:
    """What one config draws under one seed, worked out once: the stream hashes of the
    draws it makes (``hashes``, in the order ``uniforms`` returns them), and per value
    and coin how it is made: ``(0, constant)``, ``(1, low, high - low, i)`` (uniform),
    ``(2, dist, i)`` (another distribution) or, for a coin, ``(0, outcome)`` and
    ``(1, probability, i)``, ``i`` the index of its uniform."""

    hashes: tuple
    values: tuple
    coins: tuple
    order: tuple | None  # step codes, None where the order is not valid (_compose_steps raises)
    # where every value is a constant, the values and the matrix depend on (H, W, applied,
    # flip_x, flip_y) alone: made once each, or None
    matrices: dict | None


def _make_plan(cfg: AffineConfig, seed: int) -> _Plan:
    streams = []

    def drawn(name):
        streams.append(STREAMS[name])
        return len(streams) - 1

    def value(name, d):
        if d is None:
            return None
        if d.kind == "constant":
            return (0, float(d.value))
        if d.kind == "uniform":
            return (1, d.low, d.high - d.low, drawn(name))
        return (2, d, drawn(name))

    def coin(name, prob):
        return (0, prob >= 1.0) if prob <= 0.0 or prob >= 1.0 else (1, prob, drawn(name))

    values = tuple(value(name, getattr(cfg, name)) for name in _VALUES)
    coins = tuple(coin(name, prob) for name, prob in zip(_COINS, (cfg.p, cfg.flip_horizontal, cfg.flip_vertical)))
    order = tuple(_STEP_CODES[n] for n in cfg.order) if sorted(cfg.order) == sorted(_STEPS) else None
    constant = all(v is None or v[0] == 0 for v in values)
    return _Plan(tuple(_stream_hash(seed, s) for s in streams), values, coins, order, {} if constant else None)


_PLANS: dict = {}  # (id(config), seed) -> (config, plan); the config kept alive, so its id stays its own
_KEPT_SIZES = 4096  # the most (size, coin outcome) matrices a plan of constants keeps


def _plan(cfg: AffineConfig, seed: int) -> _Plan:
    entry = _PLANS.get((id(cfg), seed))
    if entry is not None and entry[0] is cfg:
        return entry[1]
    if len(_PLANS) >= 256:
        _PLANS.clear()
    plan = _make_plan(cfg, seed)
    _PLANS[id(cfg), seed] = (cfg, plan)
    return plan


def _uniforms_one(key: int, hashes: tuple) -> tuple:
    """:func:`_uniform_one` of one key for each stream hash (the same bits)."""
    return tuple(
        (float(_splitmix64_int((_splitmix64_int(key ^ s) + _GOLDEN_INT) & _MASK) >> 11) + 0.5) * 2.0**-53
        for s in hashes
    )


def _value_one(v, u: tuple) -> float:
    if v[0] == 0:
        return v[1]
    if v[0] == 1:
        return v[1] + u[v[3]] * v[2]
    return float(draw(v[1], np.array([u[v[2]]]))[0])


def _sample_one(cfg: AffineConfig, key: int, h: int, w: int, seed: int) -> AffineBatch:
    """:func:`sample` of one key in Python floats: the same draws and the same matrix bits
    as row ``k`` of a batch (tested), without numpy's cost per operation on tiny arrays.
    Transcendental functions are numpy's, as in the batch; the hashes and the matrix
    product are the compiled ``csrc/fastpath.c`` where it was built (the same bits)."""
    values, flags, matrices, kept = _drawn_one(cfg, _plan(cfg, seed), key, h, w)
    batch = object.__new__(AffineBatch)  # its fields set as __init__ sets them, without its cost per field
    batch.__dict__.update(
        matrices=matrices.copy() if kept else matrices,
        params=_OneParams(values, flags),
        keys=np.array([key], dtype=np.uint64),
        seed=seed,
        size=(h, w),
    )
    return batch


def _drawn_one(cfg: AffineConfig, plan: _Plan, key: int, h: int, w: int) -> tuple:
    """One key's values (:data:`_VALUES`), flags ``(flip_x, flip_y, applied)``, ``(1, 3, 3)``
    matrix under ``plan`` (``_plan(cfg, seed)``), and whether that matrix is the one the
    plan keeps for a config of constants (to be copied before it is handed out, never
    written)."""
    fast = kernel.FASTPATH
    u = fast.uniforms(key, plan.hashes) if fast is not None else _uniforms_one(key, plan.hashes)
    applied, fx, fy = plan.coins
    applied = applied[1] if applied[0] == 0 else u[applied[2]] < applied[1]
    fx = applied and (fx[1] if fx[0] == 0 else u[fx[2]] < fx[1])
    fy = applied and (fy[1] if fy[0] == 0 else u[fy[2]] < fy[1])
    if plan.matrices is None:
        values, matrices = _transform_one(cfg, plan, u, h, w, applied, fx, fy, fast)
        return values, (fx, fy, applied), matrices, False
    # constants: the transform depends on the size and the coins alone, made once each
    made = plan.matrices.get((h, w, applied, fx, fy))
    if made is None:
        if len(plan.matrices) >= _KEPT_SIZES:  # images of many sizes: start again
            plan.matrices.clear()
        made = plan.matrices[h, w, applied, fx, fy] = _transform_one(cfg, plan, u, h, w, applied, fx, fy, fast)
    return made[0], (fx, fy, applied), made[1], True


def _transform_one(cfg, plan: _Plan, u: tuple, h: int, w: int, applied: bool, fx: bool, fy: bool, fast) -> tuple:
    """The values (:data:`_VALUES`, scale_y filled in) and the (1, 3, 3) matrix of one key."""
    rot_, sx_, sy_, shx_, shy_, tx_, ty_, cx_, cy_ = plan.values
    if applied:
        rot, sx, shx, shy = _value_one(rot_, u), _value_one(sx_, u), _value_one(shx_, u), _value_one(shy_, u)
        tx, ty = _value_one(tx_, u), _value_one(ty_, u)
        sy = sx if sy_ is None else _value_one(sy_, u)
        if cfg.translate_unit == "fraction":
            tx, ty = tx * w, ty * h
    else:
        rot, sx, sy, shx, shy, tx, ty = _NEUTRAL
    cx, cy = _value_one(cx_, u) * (w - 1), _value_one(cy_, u) * (h - 1)
    values = (rot, sx, sy, shx, shy, tx, ty, cx, cy)
    if not applied:
        return values, _IDENTITY.copy()
    return values, _matrix_one(values, fx, fy, cfg.order, plan.order, fast)


def _matrix_one(values: tuple, fx: bool, fy: bool, order: tuple, codes: tuple | None, fast) -> np.ndarray:
    """The (1, 3, 3) matrix of one transform: :func:`_compose_one`, or its compiled twin."""
    rot, sx, sy, shx, shy, tx, ty, cx, cy = values
    if fast is None or codes is None:
        m = _compose_one(rot, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order)
        return np.array(m + (0.0, 0.0, 1.0)).reshape(1, 3, 3)
    c, s = _cos_sin_deg_one(rot)
    matrices = np.empty((1, 3, 3))
    fast.compose_into(matrices, c, s, _tan_deg_one(shx), _tan_deg_one(shy), sx, sy, tx, ty, cx, cy, fx, fy, codes)
    return matrices


class _OneParams(Mapping):
    """The params of a one-key batch, made into ``(1,)`` arrays when first read (a caller
    that only warps never pays for them)."""

    __slots__ = ("_arrays", "_values")

    def __init__(self, floats: tuple, flags: tuple):
        self._values, self._arrays = (floats, flags), None

    def _made(self) -> dict:
        if self._arrays is None:
            floats, flags = np.array(self._values[0]), np.array(self._values[1])
            arrays = {k: floats[i : i + 1] for i, k in enumerate(_PARAMS[:9])}
            arrays.update((k, flags[i : i + 1]) for i, k in enumerate(_PARAMS[9:]))
            self._arrays = arrays
        return self._arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self._made()[name]

    def __iter__(self):
        return iter(_PARAMS)

    def __len__(self) -> int:
        return len(_PARAMS)

    def __repr__(self) -> str:
        return repr(self._made())


def _cos_sin_deg_one(angle: float) -> tuple[float, float]:
    """:func:`affine_aug.matrix._cos_sin_deg` of one angle."""
    if angle % 90.0 == 0.0:
        k = round(angle / 90.0) % 4
        return (1.0, 0.0, -1.0, 0.0)[k], (0.0, 1.0, 0.0, -1.0)[k]
    rad = np.deg2rad(angle)
    return float(np.cos(rad)), float(np.sin(rad))


def _tan_deg_one(angle: float) -> float:
    return 0.0 if angle == 0.0 else float(np.tan(np.deg2rad(angle)))


def _compose_one(rot, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order) -> tuple:
    """:func:`affine_aug.matrix._compose_steps` of one transform, in Python floats: the
    same operations in the same order, so the same values (the products with a constant
    0 or 1 that it skips change nothing but the sign of a zero, and both paths add 0.0 at
    the end). Returns the top two rows, row by row."""
    if order is not _STEPS and sorted(order) != sorted(_STEPS):
        _compose_steps(rot, sx, sy, shx, shy, tx, ty, cx, cy, fx, fy, order)  # raises its error
    c, s = _cos_sin_deg_one(rot)
    steps = {
        "scale": (sx, 0.0, 0.0, sy, 0.0, 0.0),
        "shear": (1.0, _tan_deg_one(shx), _tan_deg_one(shy), 1.0, 0.0, 0.0),
        "rotate": (c, s, -s, c, 0.0, 0.0),
        "translate": (1.0, 0.0, 0.0, 1.0, tx, ty),
    }
    a, b, c2, d, ox, oy = (-1.0 if fx else 1.0, 0.0, 0.0, -1.0 if fy else 1.0, 0.0, 0.0)
    for name in order:  # matrix._then_apply written out: the products it skips only give zeros
        a1, b1, c1, d1, x1, y1 = steps[name]
        a, b, c2, d, ox, oy = (
            a1 * a + b1 * c2,
            a1 * b + b1 * d,
            c1 * a + d1 * c2,
            c1 * b + d1 * d,
            a1 * ox + b1 * oy + x1,
            c1 * ox + d1 * oy + y1,
        )
    return (a + 0.0, b + 0.0, ox + cx - (a * cx + b * cy) + 0.0, c2 + 0.0, d + 0.0, oy + cy - (c2 * cx + d * cy) + 0.0)


__getattr__ = renamed(
    __name__,
    {
        "PARAMS": "affine_aug.sampling._PARAMS",
        "splitmix64": "affine_aug.sampling._splitmix64",
    },
)
