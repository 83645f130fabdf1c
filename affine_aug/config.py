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
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .files import write_atomic
from .dist import KINDS, Dist, check
from .matrix import _STEPS
from .errors import AffineAugError

__all__ = ["AffineConfig", "ConfigError", "Dist", "load_config", "preset_dir", "resolve_preset", "save_config"]

TOP_KEYS = ("rotate", "scale", "shear", "translate", "flip", "p", "order", "center", "seed", "extends")

# Every value a key can take must lie within these closed intervals, so that every config
# that loads samples finite, well-conditioned matrices for any key and image size
# (condition number of the linear part below about 1e7).
BOUNDS = {
    "rotate": (-3600.0, 3600.0, "degrees"),
    "scale": (1e-3, 1e3, ""),
    "shear": (-80.0, 80.0, "degrees"),
    "translate.fraction": (-10.0, 10.0, "image sizes"),
    "translate.px": (-1e5, 1e5, "pixels"),
    "center": (-10.0, 10.0, "relative to (W-1, H-1)"),
}
# x- and y-shear together: det = 1 - tan(shear_x) * tan(shear_y) must stay >= this.
SHEAR_MIN_DET = 0.1
# Limits on what is read: file size, YAML nodes (aliases count each time they are used)
# and nesting depth.
MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64


class ConfigError(AffineAugError, ValueError):
    """Any problem with an affine config: syntax, unknown keys, bad values, bad files."""


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
    order: tuple[str, ...] = _STEPS
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
    """Safe-load YAML text; also return ``{key path: "file:line"}`` for every key.

    Bounded: at most MAX_NODES nodes counting every use of an alias (a "billion laughs"
    document fails fast), at most MAX_DEPTH levels of nesting, plain scalar keys only.
    """
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        lines: dict[tuple, str] = {}
        if node is not None:
            _walk(node, (), lines, where, [0])
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = e.problem or str(e)
        if isinstance(e, yaml.constructor.ConstructorError):
            problem = f"{problem} (only plain YAML is accepted: the loader is safe and rejects tags)"
        raise ConfigError(f"{where}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid YAML: nested deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _walk(node, path: tuple, lines: dict, where: str, count: list) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise ConfigError(f"{where}: invalid YAML: more than {MAX_NODES} values once aliases are expanded")
    if len(path) > MAX_DEPTH:
        raise ConfigError(f"{where}:{node.start_mark.line + 1}: invalid YAML: nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            loc = f"{where}:{key_node.start_mark.line + 1}"
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{loc}: {_dotted(path) if path else '<top level>'}: keys must be plain names, got a {key_node.id}"
                )
            key = key_node.value
            if key in seen:
                raise ConfigError(f"{loc}: {_dotted(path + (key,))}: duplicate key")
            seen.add(key)
            lines[path + (key,)] = loc
            _walk(value_node, path + (key,), lines, where, count)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = f"{where}:{item.start_mark.line + 1}"
            _walk(item, path + (i,), lines, where, count)


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


# ----------------------------------------------------------------------------- loading


def load_config(source, overrides: Sequence[str] | Mapping[str, Any] | None = None) -> AffineConfig:
    """Load and validate a config.

    Args:
        source: a path to a YAML file, the name of a preset (``"gtsrb"``, see
            :func:`preset_dir`), a mapping (an OmegaConf ``DictConfig`` too: its
            interpolations are resolved first), or an :class:`AffineConfig`
            (returned unchanged when there are no overrides).
        overrides: ``["rotate=[-30, 30]", "translate.unit=px"]`` or a mapping
            ``{"rotate": [-30, 30]}``; dotted key paths, values parsed as YAML. Applied
            after ``extends`` is resolved.

    Raises:
        ConfigError: with the file, YAML line, key path, expected and received values.

    Examples:
        >>> cfg = load_config({"rotate": [-10, 10], "scale": 1.1})
        >>> cfg.rotate.kind, cfg.rotate.low, cfg.rotate.high
        ('uniform', -10.0, 10.0)
        >>> load_config({"rotat": 5})
        Traceback (most recent call last):
            ...
        affine_aug.config.ConfigError: <mapping>: rotat: unknown key 'rotat' (did you mean 'rotate'?)
    """
    source, overrides = _from_omegaconf(source), _from_omegaconf(overrides)
    if isinstance(source, AffineConfig):
        if not overrides:
            return source
        source = source.to_dict()
    if isinstance(source, Mapping):
        where = "<mapping>"
        data, lines = _resolve(dict(source), {}, Path.cwd(), where, ())
    elif isinstance(source, (str, os.PathLike)):
        where = str(source)
        if "\0" in where:
            raise ConfigError(f"{where!r}: a file name cannot contain a NUL character")
        path = resolve_preset(source)
        where = str(path)
        data, lines = _load_file(path, ())
    else:
        raise ConfigError(f"config must be a file path, a mapping or an AffineConfig, got {type(source).__name__}")
    if overrides:
        data, lines = _apply_overrides(data, lines, overrides)
    return _build(data, _Ctx(where, lines))


def _from_omegaconf(value):
    """An OmegaConf ``DictConfig`` / ``ListConfig`` as plain dicts and lists, its ``${...}``
    interpolations resolved; any other value unchanged. Recognised by its type's module, so
    omegaconf is imported only when one is given. A failed interpolation names its key."""
    if not type(value).__module__.startswith("omegaconf."):
        return value
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "<top level>"
        message = (getattr(e, "msg", None) or str(e)).splitlines()[0]  # omegaconf appends key and type lines
        raise ConfigError(f"<mapping>: {key}: cannot resolve the value: {message}") from None


def save_config(config: AffineConfig, path) -> None:
    """Write ``config`` as YAML (atomically: a temporary file renamed into place)."""
    write_atomic(path, config.to_yaml())


def _read_text(path: Path, where: str) -> str:
    """A config file's text: a regular file of at most MAX_FILE_BYTES (never a device or FIFO)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: cannot read config file: {e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: config file is {st.st_size} bytes, more than the {MAX_FILE_BYTES} allowed")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        return raw.decode("utf-8-sig")
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{where}: cannot read config file: {e}") from None


def _load_file(path: Path, stack: tuple) -> tuple[dict, dict]:
    text = _read_text(path, str(path))
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in stack + (resolved,))
        raise ConfigError(f"{path}: extends cycle: {chain}")
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
    if not isinstance(ext, str) or not ext or "\0" in ext:
        raise ConfigError(f"{loc}: extends: expected a file path, got {ext!r}")
    base_path = Path(ext) if Path(ext).is_absolute() else base_dir / ext
    try:
        exists = base_path.exists()
    except (OSError, ValueError) as e:
        raise ConfigError(f"{loc}: extends: cannot use {ext!r}: {e}") from None
    if not exists:
        raise ConfigError(f"{loc}: extends: base config {str(base_path)!r} not found")
    try:
        base, base_lines = _load_file(base_path, stack)
    except ConfigError as e:
        raise ConfigError(f"{loc}: extends: {e}") from None
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
        for key, _ in items:
            if not isinstance(key, str):
                raise ConfigError(
                    f"override {key!r}: keys must be dotted key paths (strings), got {type(key).__name__}"
                )
    elif isinstance(overrides, (str, bytes)):
        raise ConfigError(f"overrides must be a list of 'key.path=value' strings or a mapping, got {overrides!r}")
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
        if parts[0] == "extends":
            raise ConfigError(
                f"override {key!r}: extends cannot be overridden (it is resolved before overrides); "
                "write a config file that extends the other one instead"
            )
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
        if key not in allowed or not isinstance(key, str):
            name = str(key)  # YAML reads `1:` as an integer key; the key path and line use its text
            raise ctx.error(path + (name,), f"unknown key {name!r}{_suggest(name, allowed)}")


def _describe(v) -> str:
    if isinstance(v, dict):
        return f"a mapping {v!r}"
    if isinstance(v, list):
        return f"a list {v!r}"
    return f"{type(v).__name__} {v!r}"


def _number(ctx: _Ctx, path: tuple, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ctx.error(path, f"expected a number, got {_describe(v)}")
    if isinstance(v, int) and abs(v) > 2**1000:
        raise ctx.error(path, f"expected a finite number, got an integer of {len(str(abs(v)))} digits")
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
    if not isinstance(kind, str) or kind not in KINDS:
        raise ctx.error(path + ("dist",), f"unknown distribution {kind!r}{_suggest(kind, KINDS)}")
    required, optional = KINDS[kind]
    _check_keys(ctx, path, v, ("dist",) + required + optional)
    for key in required:
        if key not in v:
            raise ctx.error(path, f"distribution {kind!r} needs {key!r} (it takes {', '.join(required + optional)})")
    params = {}
    for key in required + optional:
        if v.get(key) is None:
            continue
        if key in ("values", "weights"):
            items = v[key]
            if not isinstance(items, list) or not items:
                raise ctx.error(path + (key,), f"expected a non-empty list of numbers, got {_describe(items)}")
            params[key] = tuple(_number(ctx, path + (key, i), x) for i, x in enumerate(items))
        else:
            params[key] = _number(ctx, path + (key,), v[key])
    if "weights" in params and len(params["weights"]) != len(params["values"]):
        raise ctx.error(
            path + ("weights",),
            f"expected a list of {len(params['values'])} weights (one per value), got {_describe(v['weights'])}",
        )
    d = Dist(kind, **params)
    problem = check(d)
    if problem is not None:
        key, message = problem
        raise ctx.error(path + ((key,) if key else ()), message)
    return d


def _bounded(ctx: _Ctx, path: tuple, d: Dist, bound: str) -> Dist:
    """Require every value ``d`` can take to lie within ``BOUNDS[bound]``."""
    lo, hi, unit = BOUNDS[bound]
    s_lo, s_hi = d.support()
    if not (lo <= s_lo and s_hi <= hi):
        shown = s_lo if s_lo == s_hi else [s_lo, s_hi]
        how = " (a normal reaches mean +- 8.3 std unless low/high truncate it)" if d.kind == "normal" else ""
        unit = f" {unit}" if unit else ""
        raise ctx.error(path, f"{bound.split('.')[0]} must lie within [{lo:g}, {hi:g}]{unit}, got {shown}{how}")
    return d


def _axes(ctx: _Ctx, path: tuple, v, extra=()) -> tuple[Dist | None, Dist | None, bool]:
    """Split a value into (x, y, per_axis): ``{x:, y:}`` per axis (either may be missing),
    anything else one distribution for x."""
    if _is_axes(v):
        if not v:
            raise ctx.error(path, "expected x and/or y, got an empty mapping")
        _check_keys(ctx, path, v, ("x", "y") + tuple(extra))
        x = _dist(ctx, path + ("x",), v["x"]) if "x" in v else None
        y = _dist(ctx, path + ("y",), v["y"]) if "y" in v else None
        return x, y, True
    return _dist(ctx, path, v), None, False


def _probability(ctx: _Ctx, path: tuple, v) -> float:
    x = _number(ctx, path, v)
    if not 0.0 <= x <= 1.0:
        raise ctx.error(path, f"expected a probability in [0, 1], got {x}")
    return x


def _build(data: dict, ctx: _Ctx) -> AffineConfig:
    _check_keys(ctx, (), data, TOP_KEYS)
    kw: dict[str, Any] = {"source": None if ctx.where == "<mapping>" else ctx.where}
    if "rotate" in data:
        kw["rotate"] = _bounded(ctx, ("rotate",), _dist(ctx, ("rotate",), data["rotate"]), "rotate")
    if "scale" in data:
        x, y, axes = _axes(ctx, ("scale",), data["scale"])
        if axes:
            x, y = x or ONE, y or ONE
        kw["scale_x"] = _bounded(ctx, ("scale", "x") if axes else ("scale",), x, "scale")
        if y is not None:
            kw["scale_y"] = _bounded(ctx, ("scale", "y"), y, "scale")
    if "shear" in data:
        x, y, axes = _axes(ctx, ("shear",), data["shear"])
        for name, d in (("x", x or ZERO), ("y", y or ZERO)):
            kw[f"shear_{name}"] = _bounded(ctx, ("shear", name) if axes else ("shear",), d, "shear")
        _shear_pair(ctx, kw["shear_x"], kw["shear_y"])
    if "translate" in data:
        v = data["translate"]
        x, y, axes = _axes(ctx, ("translate",), v, extra=("unit",))
        unit = "fraction"
        if axes:
            unit = v.get("unit", "fraction")
            if not isinstance(unit, str) or unit not in ("fraction", "px"):
                raise ctx.error(("translate", "unit"), f"unknown unit {unit!r}{_suggest(unit, ('fraction', 'px'))}")
            kw["translate_unit"] = unit
            x, y = x or ZERO, y or ZERO
        else:
            y = x  # one value: both axes, drawn independently
        kw["translate_x"] = _bounded(ctx, ("translate", "x") if axes else ("translate",), x, f"translate.{unit}")
        kw["translate_y"] = _bounded(ctx, ("translate", "y") if axes else ("translate",), y, f"translate.{unit}")
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
            raise ctx.error(
                ("center",), f"expected a mapping {{x: ..., y: ...}} of relative positions, got {_describe(v)}"
            )
        x, y, _ = _axes(ctx, ("center",), v)
        kw["center_x"] = _bounded(ctx, ("center", "x"), x or HALF, "center")
        kw["center_y"] = _bounded(ctx, ("center", "y"), y or HALF, "center")
    if data.get("seed") is not None:
        s = data["seed"]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**64:
            raise ctx.error(("seed",), f"expected an integer in [0, 2**64), got {_describe(s)}")
        kw["seed"] = s
    return AffineConfig(**kw)


def _shear_pair(ctx: _Ctx, x: Dist, y: Dist) -> None:
    """x- and y-shear together keep det = 1 - tan(x) tan(y) >= SHEAR_MIN_DET everywhere."""
    tx = [math.tan(math.radians(v)) for v in x.support()]
    ty = [math.tan(math.radians(v)) for v in y.support()]
    worst = max(a * b for a in tx for b in ty)  # a bilinear form peaks at a corner
    if 1.0 - worst < SHEAR_MIN_DET:
        raise ctx.error(
            ("shear",),
            f"x and y shear together come too close to a singular matrix: det = 1 - tan(x) tan(y) "
            f"reaches {1.0 - worst:.3g} (needs >= {SHEAR_MIN_DET}); narrow one of the shear ranges",
        )


def _order(ctx: _Ctx, v) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ctx.error(("order",), f"expected a list of steps {list(_STEPS)}, got {_describe(v)}")
    for i, step in enumerate(v):
        if step not in _STEPS:
            raise ctx.error(("order", i), f"unknown step {step!r}{_suggest(step, _STEPS)}")
    if sorted(v) != sorted(_STEPS):
        missing = [s for s in _STEPS if s not in v]
        dup = sorted({s for s in v if v.count(s) > 1})
        detail = f"missing {missing}" if missing else f"repeated {dup}"
        raise ctx.error(("order",), f"must list each of {list(_STEPS)} exactly once: {detail}")
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
    """A config path, or the path of a preset given by name (``"gtsrb"`` or ``"gtsrb.yaml"``).

    A path that does not exist and is not a preset name is returned as it is, for the
    loader to report.

    Examples:
        >>> resolve_preset("gtsrb").name
        'gtsrb.yaml'
    """
    path = Path(name)
    try:
        if path.exists() or path.parent != Path("."):
            return path
    except (OSError, ValueError):
        return path
    preset = preset_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if preset.is_file():
        return preset
    if path.suffix in (".yaml", ".yml"):
        return path
    names = ", ".join(sorted(p.stem for p in preset_dir().glob("*.yaml")))
    raise ConfigError(f"{name}: config file not found (a path, or a preset: {names})")
