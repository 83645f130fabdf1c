"""Configs as the tuning page edits them: YAML text or a mapping in, a validated
:class:`AffineConfig`, its compact YAML and the key a :class:`ConfigError` names out.

The page never reads a file through a config: ``extends`` is refused here (the server
only reads the images and folders it was started with).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ..config import AffineConfig, ConfigError, _build, _Ctx, _parse_yaml, load_config

__all__ = ["compact", "error_location", "parse_mapping", "parse_text", "to_yaml"]

WHERE = "<page>"
DEFAULT = AffineConfig().to_dict()
# ConfigError messages read "<where>[:line]: <key path>: <message>".
_ERROR = re.compile(
    r"^<page>(?::(?P<line>\d+))?: (?:(?P<key>[A-Za-z_]\w*(?:\.\w+|\[\d+\])*|<top level>): )?(?P<message>.*)$", re.DOTALL
)


def _no_extends(data) -> None:
    if isinstance(data, Mapping) and "extends" in data:
        raise ConfigError(
            f"{WHERE}: extends: not available on this page (it would read another file); "
            "paste the resolved config instead (affine-aug validate CONFIG prints it)"
        )


def parse_text(text: str) -> AffineConfig:
    """Validate YAML text as the page's editor holds it (line numbers in errors)."""
    if not isinstance(text, str):
        raise ConfigError(f"{WHERE}: the YAML text must be a string, got {type(text).__name__}")
    data, lines = _parse_yaml(text, WHERE)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{WHERE}: a config must be a mapping of keys, got {type(data).__name__}")
    _no_extends(data)
    return _build(data, _Ctx(WHERE, lines))


def parse_mapping(data) -> AffineConfig:
    """Validate a mapping sent by the page's controls."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{WHERE}: a config must be a mapping of keys, got {type(data).__name__}")
    _no_extends(data)
    return _build(dict(data), _Ctx(WHERE, {}))


def compact(cfg: AffineConfig) -> dict[str, Any]:
    """``cfg.to_dict()`` without the entries that equal the defaults; loads back to ``cfg``."""
    out = {}
    for key, value in cfg.to_dict().items():
        default = DEFAULT.get(key)
        if isinstance(value, dict) and isinstance(default, dict) and "dist" not in value:
            kept = {k: v for k, v in value.items() if v != default.get(k)}
            if kept:
                out[key] = kept
        elif value != default:
            out[key] = value
    return out


def to_yaml(data) -> str:
    """YAML for the editor: block style at the top, short lists and dists inline."""
    if not data:
        return "{}\n"
    lines = []
    for key, value in data.items():
        if isinstance(value, dict) and "dist" not in value:
            lines.append(f"{key}:")
            lines += [f"  {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
        .strip()
        .removesuffix("...")
        .strip()
    )


def error_location(e: ConfigError) -> dict[str, Any]:
    """``{"message", "key", "line"}`` of a ConfigError (key and line None where it names none)."""
    text = str(e)
    m = _ERROR.match(text)
    if m is None:
        return {"message": text, "key": None, "line": None}
    key = m.group("key")
    return {
        "message": text,
        "key": None if key in (None, "<top level>") else key,
        "line": int(m.group("line")) if m.group("line") else None,
    }


def load_initial(source) -> AffineConfig:
    """The config the page starts from (``--config``): a path or preset, ``extends`` resolved."""
    return load_config(source)
