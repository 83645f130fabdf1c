"""YAML / mapping → validated, frozen :class:`AffineConfig`.

A config describes a *distribution* of affine transforms. Its keys (all optional):

    rotate     degrees, positive = counter-clockwise on screen
    scale      > 0, > 1 enlarges; isotropic, or per axis as {x: ..., y: ...}
    shear      degrees in (-90, 90); a value is the x-shear, or {x: ..., y: ...}
    translate  {x: ..., y: ..., unit: fraction|px}; fraction of W / H by default.
               A single value (not a mapping of axes) is used for both axes, drawn
               independently.
    flip       {horizontal: prob, vertical: prob}
    p          probability that a sample is transformed at all (default 1)
    order      composition order, default [scale, shear, rotate, translate]
    center     {x: ..., y: ...} relative to (W-1, H-1); default {x: 0.5, y: 0.5}
    seed       default seed (a non-negative integer) for sampling
    extends    path of a base config (relative to this file) whose keys this one
               overrides; mappings of axes merge key by key, values replace.

Every numeric value is a constant (``15``), a uniform range (``[-15, 15]``), or a
mapping with ``dist:`` one of

    constant    value
    uniform     low, high
    normal      mean, std, optional low / high (truncated: resampled, not clipped)
    loguniform  low, high (both > 0)
    choice      values, optional weights

Every problem raises :class:`ConfigError` (a ``ValueError``) naming the file, the YAML
line where known, the key path, what was expected and what was received.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .matrix import STEPS

__all__ = ["AffineConfig", "ConfigError", "Dist", "load_config", "save_config"]

TOP_KEYS = ("rotate", "scale", "shear", "translate", "flip", "p", "order", "center", "seed", "extends")
DIST_KEYS = {
    "constant": (("value",), ()),
    "uniform": (("low", "high"), ()),
    "normal": (("mean", "std"), ("low", "high")),
    "loguniform": (("low", "high"), ()),
    "choice": (("values",), ("weights",)),
}


class ConfigError(ValueError):
    """Any problem with an affine config: syntax, unknown keys, bad values, bad files."""


@dataclass(frozen=True)
class Dist:
    """One scalar distribution. ``kind`` is constant, uniform, normal, loguniform or choice."""

    kind: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] | None = None

    @staticmethod
    def constant(value: float) -> "Dist":
        return Dist("constant", value=float(value))

    def support(self) -> tuple[float, float]:
        """Smallest closed interval holding every value the distribution can take."""
        if self.kind == "constant":
            return self.value, self.value
        if self.kind == "choice":
            return min(self.values), max(self.values)
        if self.kind == "normal":
            lo = -math.inf if self.low is None else self.low
            hi = math.inf if self.high is None else self.high
            return lo, hi
        return self.low, self.high

    def to_yaml_value(self):
        """Plain data that :func:`load_config` reads back to an equal ``Dist``."""
        if self.kind == "constant":
            return self.value
        if self.kind == "uniform":
            return [self.low, self.high]
        out: dict[str, Any] = {"dist": self.kind}
        if self.kind == "normal":
            out.update(mean=self.mean, std=self.std)
            if self.low is not None:
                out["low"] = self.low
            if self.high is not None:
                out["high"] = self.high
        elif self.kind == "loguniform":
            out.update(low=self.low, high=self.high)
        else:
            out["values"] = list(self.values)
            if self.weights is not None:
                out["weights"] = list(self.weights)
        return out


ZERO, ONE, HALF = Dist.constant(0.0), Dist.constant(1.0), Dist.constant(0.5)


@dataclass(frozen=True)
class AffineConfig:
    """A validated, immutable affine distribution. Build it with :func:`load_config`.

    ``scale_y`` is None for isotropic scaling (one draw used for both axes).
    ``center_x`` / ``center_y`` are relative: pixel centre = value * (W - 1) / (H - 1).
    """

    rotate: Dist = ZERO
    scale_x: Dist = ONE
    scale_y: Dist | None = None
    shear_x: Dist = ZERO
    shear_y: Dist = ZERO
    translate_x: Dist = ZERO
    translate_y: Dist = ZERO
    translate_unit: str = "fraction"
    flip_horizontal: float = 0.0
    flip_vertical: float = 0.0
    p: float = 1.0
    order: tuple[str, ...] = STEPS
    center_x: Dist = HALF
    center_y: Dist = HALF
    seed: int | None = None
    source: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (``extends`` resolved) that loads back to an equal config."""
        scale = self.scale_x.to_yaml_value()
        if self.scale_y is not None:
            scale = {"x": scale, "y": self.scale_y.to_yaml_value()}
        out = {
            "rotate": self.rotate.to_yaml_value(),
            "scale": scale,
            "shear": {"x": self.shear_x.to_yaml_value(), "y": self.shear_y.to_yaml_value()},
            "translate": {
                "x": self.translate_x.to_yaml_value(),
                "y": self.translate_y.to_yaml_value(),
                "unit": self.translate_unit,
            },
            "flip": {"horizontal": self.flip_horizontal, "vertical": self.flip_vertical},
            "p": self.p,
            "order": list(self.order),
            "center": {"x": self.center_x.to_yaml_value(), "y": self.center_y.to_yaml_value()},
        }
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """Safe loader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _parse_yaml(text: str, where: str) -> tuple[Any, dict[tuple, str]]:
    """Safe-load YAML text; also return ``{key path: "file:line"}`` for every key."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, str] = {}
        if node is not None:
            _walk(node, (), lines, where)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = e.problem or str(e)
        if isinstance(e, yaml.constructor.ConstructorError):
            problem = f"{problem} (only plain YAML is accepted: the loader is safe and rejects tags)"
        raise ConfigError(f"{where}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return data, lines


def _walk(node, path: tuple, lines: dict, where: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            loc = f"{where}:{key_node.start_mark.line + 1}"
            if key in seen:
                raise ConfigError(f"{loc}: {_dotted(path + (key,))}: duplicate key")
            seen.add(key)
            lines[path + (key,)] = loc
            _walk(value_node, path + (key,), lines, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = f"{where}:{item.start_mark.line + 1}"
            _walk(item, path + (i,), lines, where)


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


# ----------------------------------------------------------------------------- loading


def load_config(source, overrides: Sequence[str] | Mapping[str, Any] | None = None) -> AffineConfig:
    """Load and validate a config.

    Args:
        source: a path to a YAML file, a mapping, or an :class:`AffineConfig`
            (returned unchanged when there are no overrides).
        overrides: ``["rotate=[-30, 30]", "translate.unit=px"]`` or a mapping
            ``{"rotate": [-30, 30]}``; dotted key paths, values parsed as YAML. Applied
            after ``extends`` is resolved.

    Raises:
        ConfigError: with the file, YAML line, key path, expected and received values.
    """
    if isinstance(source, AffineConfig):
        if not overrides:
            return source
        source = source.to_dict()
    if isinstance(source, Mapping):
        where = "<mapping>"
        data, lines = _resolve(dict(source), {}, Path.cwd(), where, ())
    elif isinstance(source, (str, os.PathLike)):
        where = str(source)
        data, lines = _load_file(Path(source), ())
    else:
        raise ConfigError(f"config must be a file path, a mapping or an AffineConfig, got {type(source).__name__}")
    if overrides:
        data, lines = _apply_overrides(data, lines, overrides)
    return _build(data, _Ctx(where, lines))


def save_config(config: AffineConfig, path) -> None:
    """Write ``config`` as YAML (atomically: a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(config.to_yaml())
    os.replace(tmp, path)


def _load_file(path: Path, stack: tuple) -> tuple[dict, dict]:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in stack + (resolved,))
        raise ConfigError(f"{path}: extends cycle: {chain}")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file: {e}") from None
    data, lines = _parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(data).__name__}")
    return _resolve(data, lines, path.parent, str(path), stack + (resolved,))


def _resolve(data: dict, lines: dict, base_dir: Path, where: str, stack: tuple) -> tuple[dict, dict]:
    """Merge ``data`` over the config its ``extends`` key names (if any)."""
    if "extends" not in data:
        return data, lines
    ext = data.pop("extends")
    loc = lines.get(("extends",), where)
    if not isinstance(ext, (str, os.PathLike)):
        raise ConfigError(f"{loc}: extends: expected a file path, got {ext!r}")
    base_path = Path(ext) if Path(ext).is_absolute() else base_dir / ext
    if not base_path.exists():
        raise ConfigError(f"{loc}: extends: base config {str(base_path)!r} not found")
    base, base_lines = _load_file(base_path, stack)
    return _merge(base, base_lines, data, lines, ())


def _is_axes(v) -> bool:
    return isinstance(v, dict) and "dist" not in v


def _merge(base: dict, base_lines: dict, over: dict, over_lines: dict, path: tuple) -> tuple[dict, dict]:
    out, lines = dict(base), dict(base_lines)
    for key, value in over.items():
        p = path + (key,)
        if _is_axes(value) and _is_axes(out.get(key)):
            out[key], lines = _merge(out[key], lines, value, over_lines, p)
            if p in over_lines:
                lines[p] = over_lines[p]
            continue
        lines = {k: v for k, v in lines.items() if k[: len(p)] != p}
        lines.update({k: v for k, v in over_lines.items() if k[: len(p)] == p})
        out[key] = value
    return out, lines


def _apply_overrides(data: dict, lines: dict, overrides) -> tuple[dict, dict]:
    items = []
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        for text in overrides:
            if not isinstance(text, str) or "=" not in text:
                raise ConfigError(f"override {text!r}: expected key.path=value")
            key, raw = text.split("=", 1)
            value, _ = _parse_yaml(raw, f"override {text!r}")
            items.append((key.strip(), value))
    data = _deep_copy(data)
    for key, value in items:
        parts = tuple(key.split("."))
        if not all(parts):
            raise ConfigError(f"override {key!r}: empty key in path")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {key!r}: {_dotted(parts[: i + 1])} is {child!r}, not a mapping; "
                    f"set {_dotted(parts[: i + 1])} as a whole"
                )
            node = child
        node[parts[-1]] = value
        lines = {k: v for k, v in lines.items() if k[: len(parts)] != parts}
        lines.update({parts[:i]: f"override {key!r}" for i in range(1, len(parts) + 1)})
    return data, lines


def _deep_copy(v):
    if isinstance(v, dict):
        return {k: _deep_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_deep_copy(x) for x in v]
    return v


# ----------------------------------------------------------------------------- validation


@dataclass
class _Ctx:
    where: str
    lines: dict

    def error(self, path: tuple, message: str) -> ConfigError:
        loc = None
        for n in range(len(path), 0, -1):
            loc = self.lines.get(path[:n])
            if loc is not None:
                break
        return ConfigError(f"{loc or self.where}: {_dotted(path)}: {message}")


def _suggest(key, allowed) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (expected one of: {', '.join(allowed)})"


def _check_keys(ctx: _Ctx, path: tuple, mapping: dict, allowed) -> None:
    for key in mapping:
        if key not in allowed:
            raise ctx.error(path + (key,), f"unknown key {key!r}{_suggest(key, allowed)}")


def _describe(v) -> str:
    if isinstance(v, dict):
        return f"a mapping {v!r}"
    if isinstance(v, list):
        return f"a list {v!r}"
    return f"{type(v).__name__} {v!r}"


def _number(ctx: _Ctx, path: tuple, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ctx.error(path, f"expected a number, got {_describe(v)}")
    if not math.isfinite(v):
        raise ctx.error(path, f"expected a finite number, got {v!r}")
    return float(v)


def _dist(ctx: _Ctx, path: tuple, v) -> Dist:
    """A constant, a [low, high] range or a ``dist:`` mapping → :class:`Dist`."""
    if isinstance(v, list):
        if len(v) != 2:
            raise ctx.error(path, f"expected a range [low, high], got a list of {len(v)} items")
        low, high = _number(ctx, path + (0,), v[0]), _number(ctx, path + (1,), v[1])
        if low > high:
            raise ctx.error(path, f"low > high in range [{low}, {high}]")
        return Dist("uniform", low=low, high=high)
    if not isinstance(v, dict):
        return Dist.constant(_number(ctx, path, v))
    if "dist" not in v:
        raise ctx.error(path, f"expected a number, a range [low, high] or a mapping with 'dist', got {_describe(v)}")
    kind = v["dist"]
    if kind not in DIST_KEYS:
        raise ctx.error(path + ("dist",), f"unknown distribution {kind!r}{_suggest(kind, DIST_KEYS)}")
    required, optional = DIST_KEYS[kind]
    _check_keys(ctx, path, v, ("dist",) + required + optional)
    for key in required:
        if key not in v:
            raise ctx.error(path, f"distribution {kind!r} needs {key!r} (it takes {', '.join(required + optional)})")
    if kind == "constant":
        return Dist.constant(_number(ctx, path + ("value",), v["value"]))
    if kind == "choice":
        return _choice(ctx, path, v)
    num = {k: _number(ctx, path + (k,), v[k]) for k in required + optional if v.get(k) is not None}
    if "low" in num and "high" in num and num["low"] > num["high"]:
        raise ctx.error(path, f"low > high ({num['low']} > {num['high']})")
    if kind == "uniform":
        return Dist("uniform", low=num["low"], high=num["high"])
    if kind == "loguniform":
        if num["low"] <= 0:
            raise ctx.error(path + ("low",), f"loguniform needs low > 0, got {num['low']}")
        return Dist("loguniform", low=num["low"], high=num["high"])
    if num["std"] <= 0:
        raise ctx.error(path + ("std",), f"std must be > 0, got {num['std']}")
    d = Dist("normal", mean=num["mean"], std=num["std"], low=num.get("low"), high=num.get("high"))
    from .sampling import normal_mass  # local import: sampling imports this module

    if normal_mass(d) < 1e-9:
        raise ctx.error(path, f"truncation [{d.low}, {d.high}] leaves almost no probability mass around mean {d.mean} (std {d.std})")
    return d


def _choice(ctx: _Ctx, path: tuple, v: dict) -> Dist:
    values = v["values"]
    if not isinstance(values, list) or not values:
        raise ctx.error(path + ("values",), f"expected a non-empty list of numbers, got {_describe(values)}")
    vals = tuple(_number(ctx, path + ("values", i), x) for i, x in enumerate(values))
    weights = v.get("weights")
    if weights is None:
        return Dist("choice", values=vals)
    if not isinstance(weights, list) or len(weights) != len(vals):
        raise ctx.error(path + ("weights",), f"expected a list of {len(vals)} weights (one per value), got {_describe(weights)}")
    w = tuple(_number(ctx, path + ("weights", i), x) for i, x in enumerate(weights))
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ctx.error(path + ("weights",), f"weights must be >= 0 with a positive sum, got {list(w)}")
    return Dist("choice", values=vals, weights=w)


def _bounded(ctx: _Ctx, path: tuple, d: Dist, lo: float, hi: float, what: str) -> Dist:
    """Require the support of ``d`` to lie strictly inside (lo, hi)."""
    s_lo, s_hi = d.support()
    if not (s_lo > lo and s_hi < hi):
        if d.kind == "normal" and (math.isinf(s_lo) or math.isinf(s_hi)):
            raise ctx.error(path, f"{what}; a normal distribution here needs low/high truncation inside that interval")
        shown = s_lo if s_lo == s_hi else [s_lo, s_hi]
        raise ctx.error(path, f"{what}, got {shown}")
    return d


def _axes(ctx: _Ctx, path: tuple, v, default_y: Dist | None, extra=()) -> tuple[Dist, Dist | None, dict]:
    """Split a value into (x, y) distributions: ``{x:, y:}`` per axis, anything else is x."""
    if _is_axes(v):
        _check_keys(ctx, path, v, ("x", "y") + tuple(extra))
        x = _dist(ctx, path + ("x",), v["x"]) if "x" in v else None
        y = _dist(ctx, path + ("y",), v["y"]) if "y" in v else None
        return x, y, v
    return _dist(ctx, path, v), default_y, {}


def _probability(ctx: _Ctx, path: tuple, v) -> float:
    x = _number(ctx, path, v)
    if not 0.0 <= x <= 1.0:
        raise ctx.error(path, f"expected a probability in [0, 1], got {x}")
    return x


def _build(data: dict, ctx: _Ctx) -> AffineConfig:
    _check_keys(ctx, (), data, TOP_KEYS)
    kw: dict[str, Any] = {"source": None if ctx.where == "<mapping>" else ctx.where}
    if "rotate" in data:
        kw["rotate"] = _dist(ctx, ("rotate",), data["rotate"])
    if "scale" in data:
        x, y, axes = _axes(ctx, ("scale",), data["scale"], None)
        if axes:
            x, y = x or ONE, y or ONE
        kw["scale_x"] = _bounded(ctx, ("scale", "x") if axes else ("scale",), x, 0.0, math.inf, "scale must be > 0")
        if y is not None:
            kw["scale_y"] = _bounded(ctx, ("scale", "y"), y, 0.0, math.inf, "scale must be > 0")
    if "shear" in data:
        x, y, axes = _axes(ctx, ("shear",), data["shear"], ZERO)
        for name, d in (("x", x or ZERO), ("y", y or ZERO)):
            p = ("shear", name) if axes else ("shear",)
            kw[f"shear_{name}"] = _bounded(ctx, p, d, -90.0, 90.0, "shear must lie strictly inside (-90, 90) degrees")
    if "translate" in data:
        v = data["translate"]
        x, y, axes = _axes(ctx, ("translate",), v, None, extra=("unit",))
        if axes:
            unit = v.get("unit", "fraction")
            if unit not in ("fraction", "px"):
                raise ctx.error(("translate", "unit"), f"unknown unit {unit!r}{_suggest(unit, ('fraction', 'px'))}")
            kw["translate_unit"] = unit
        kw["translate_x"] = x or ZERO
        kw["translate_y"] = (y or ZERO) if axes else x
    if "flip" in data:
        v = data["flip"]
        if not isinstance(v, dict):
            raise ctx.error(("flip",), f"expected a mapping {{horizontal: prob, vertical: prob}}, got {_describe(v)}")
        _check_keys(ctx, ("flip",), v, ("horizontal", "vertical"))
        kw["flip_horizontal"] = _probability(ctx, ("flip", "horizontal"), v.get("horizontal", 0.0))
        kw["flip_vertical"] = _probability(ctx, ("flip", "vertical"), v.get("vertical", 0.0))
    if "p" in data:
        kw["p"] = _probability(ctx, ("p",), data["p"])
    if "order" in data:
        kw["order"] = _order(ctx, data["order"])
    if "center" in data:
        v = data["center"]
        if not _is_axes(v):
            raise ctx.error(("center",), f"expected a mapping {{x: ..., y: ...}} of relative positions, got {_describe(v)}")
        x, y, _ = _axes(ctx, ("center",), v, None)
        kw["center_x"], kw["center_y"] = x or HALF, y or HALF
    if data.get("seed") is not None:
        s = data["seed"]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**64:
            raise ctx.error(("seed",), f"expected an integer in [0, 2**64), got {_describe(s)}")
        kw["seed"] = s
    return AffineConfig(**kw)


def _order(ctx: _Ctx, v) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ctx.error(("order",), f"expected a list of steps {list(STEPS)}, got {_describe(v)}")
    for i, step in enumerate(v):
        if step not in STEPS:
            raise ctx.error(("order", i), f"unknown step {step!r}{_suggest(step, STEPS)}")
    if sorted(v) != sorted(STEPS):
        missing = [s for s in STEPS if s not in v]
        dup = sorted({s for s in v if v.count(s) > 1})
        detail = f"missing {missing}" if missing else f"repeated {dup}"
        raise ctx.error(("order",), f"must list each of {list(STEPS)} exactly once: {detail}")
    return tuple(v)


# ----------------------------------------------------------------------------- presets


def preset_dir() -> Path:
    """The folder of the named presets (``configs/``; inside the package when installed)."""
    here = Path(__file__).resolve().parent
    for d in (here / "configs", here.parent / "configs"):
        if d.is_dir():
            return d
    return here / "configs"


def resolve_preset(name) -> Path:
    """A config path, or the path of a preset given by name (``"gtsrb"`` or ``"gtsrb.yaml"``)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.parent == Path("."):
        preset = preset_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
        if preset.is_file():
            return preset
    names = ", ".join(sorted(p.stem for p in preset_dir().glob("*.yaml")))
    raise ConfigError(f"{name}: config file not found (a path, or a preset: {names})")
