"""Generated parts of the Config reference and the Command line page, read from the code
so that they cannot drift: the keys (from ``config.TOP_KEYS`` and the module docstring),
their bounds (``config.BOUNDS``), their defaults (``AffineConfig()``), the distributions
(``dist.KINDS``), the error messages (raised here, for real) and ``--help`` of every command."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import yaml

import affine_aug as aa
from affine_aug import cli, dist
from affine_aug import config as config_module

from .common import write_text

PROBABILITY = "[0, 1]"


def _key_descriptions() -> dict[str, str]:
    """``key -> description`` from the key list in ``affine_aug.config``'s docstring."""
    doc = config_module.__doc__
    block = doc.split("Its keys (all optional):", 1)[1].split("Every numeric value", 1)[0]
    out: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if not line.strip():
            continue
        head = line.strip().split(None, 1)
        if line.startswith("    ") and not line.startswith("     ") and head[0] in config_module.TOP_KEYS:
            key = head[0]
            out[key] = head[1] if len(head) > 1 else ""
        elif key is not None:
            out[key] += " " + line.strip()
    missing = [k for k in config_module.TOP_KEYS if k not in out]
    if missing:
        raise SystemExit(f"affine_aug/config.py's docstring does not describe the keys {missing}")
    return out


def _bound(key: str) -> str:
    b = config_module.BOUNDS

    def fmt(lo, hi, unit):
        return f"[{lo:g}, {hi:g}]" + (f" {unit}" if unit else "")

    if key == "translate":
        return f"fraction: {fmt(*b['translate.fraction'])}; px: {fmt(*b['translate.px'])}"
    if key == "shear":
        return f"{fmt(*b['shear'])} per axis; together 1 - tan(x) tan(y) >= {config_module.SHEAR_MIN_DET:g}"
    if key == "scale":
        return f"{fmt(*b['scale'])} per axis"
    if key in b:
        return fmt(*b[key])
    return {
        "p": PROBABILITY,
        "flip": f"{PROBABILITY} per axis",
        "seed": "integer in [0, 2**64)",
        "order": "each step once",
        "extends": "a file path; not with --set",
    }[key]


def _flow(value) -> str:
    """A value as one line of flow YAML (``{x: 0.0, y: 0.0}``, ``1.0``)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    return text.removesuffix("...").strip()


def _code_spans(text: str) -> str:
    """YAML snippets inside prose (``{x: ..., y: ...}``, ``[a, b]``) as code, and no bare ``|``."""
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", lambda m: f"`{m.group(0)}`", text)
    return text.replace("|", "/")


def keys_table() -> str:
    defaults = aa.AffineConfig().to_dict()
    defaults.setdefault("seed", None)
    descriptions = _key_descriptions()
    rows = ["| key | meaning | bounds | default |", "|---|---|---|---|"]
    for key in config_module.TOP_KEYS:
        if key == "seed":
            default = "none (sampling uses 0)"
        elif key == "extends":
            default = "none"
        else:
            default = f"`{_flow(defaults[key])}`"
        rows.append(f"| `{key}` | {_code_spans(descriptions[key])} | {_bound(key)} | {default} |")
    return "\n".join(rows)


def dist_table() -> str:
    rows = ["| `dist:` | required keys | optional keys |", "|---|---|---|"]
    for kind, (required, optional) in dist.KINDS.items():
        rows.append(
            f"| `{kind}` | {', '.join(f'`{k}`' for k in required)} | {', '.join(f'`{k}`' for k in optional) or '–'} |"
        )
    return "\n".join(rows)


def limits_text() -> str:
    c = config_module
    return (
        f"Files are read only if they are regular files of at most {c.MAX_FILE_BYTES:,} bytes, with at most "
        f"{c.MAX_NODES:,} YAML values (aliases counted each time they are used) and {c.MAX_DEPTH} levels of "
        f"nesting. An untruncated normal reaches mean ± {dist.NORMAL_REACH} std, and that whole reach must lie "
        "within the key's bounds."
    )


# Each case: (what is wrong, file name, YAML text, overrides). The message is what load_config raises.
ERROR_CASES = [
    ("a misspelt key", "x.yaml", "rotate: [-10, 10]\nsclae: 1.2\n", None),
    ("a range the wrong way round", "x.yaml", "rotate: 5\nscale:\n  x: [0.9, 1.1]\n  y: [1.2, 0.8]\n", None),
    ("a value out of bounds", "x.yaml", "rotate: [-10, 10]\nshear: 85\n", None),
    ("an untruncated normal that reaches too far", "x.yaml", "scale: {dist: normal, mean: 1, std: 0.2}\n", None),
    ("an unknown distribution", "x.yaml", "rotate: {dist: gaussian, mean: 0, std: 5}\n", None),
    ("a distribution missing a parameter", "x.yaml", "rotate: {dist: normal, mean: 0}\n", None),
    ("a probability above 1", "x.yaml", "flip: {horizontal: 1.5}\n", None),
    ("shears that together near a singular matrix", "x.yaml", "shear: {x: [-70, 70], y: [-70, 70]}\n", None),
    ("an order missing a step", "x.yaml", "order: [scale, rotate, translate]\n", None),
    ("a unit that does not exist", "x.yaml", "translate: {x: 4, y: 4, unit: pixels}\n", None),
    ("YAML that is not plain data", "x.yaml", "rotate: !!python/object/apply:os.system [ls]\n", None),
    ("a missing base", "child.yaml", "extends: base.yaml\nrotate: 5\n", None),
    ("an override of a missing mapping", "x.yaml", "rotate: 5\n", ["rotate.x=3"]),
    ("an override of extends", "x.yaml", "rotate: 5\n", ["extends=other.yaml"]),
]


@contextlib.contextmanager
def _in_temp_dir():
    old = Path.cwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


def errors_page() -> str:
    parts = []
    with _in_temp_dir() as d:
        for what, name, text, overrides in ERROR_CASES:
            (d / name).write_text(text, encoding="utf-8")
            try:
                aa.load_config(name, overrides=overrides)
            except aa.ConfigError as e:
                message = str(e)
            else:
                raise SystemExit(f"the error case {what!r} loaded without an error")
            call = f"load_config({name!r}" + (f", overrides={overrides!r})" if overrides else ")")
            parts.append(
                f"**{what}**: `{call}` on\n\n```yaml\n# {name}\n{text.rstrip()}\n```\n\n"
                f"```text\nConfigError: {message}\n```\n"
            )
    return "\n".join(parts)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Exit code and what ``affine-aug ARGV`` prints (stdout and stderr), in this process."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return int(code or 0), buf.getvalue().rstrip()


def extends_page() -> str:
    base = "rotate: [-10, 10]\nscale: [0.9, 1.1]\ntranslate: {x: [-0.1, 0.1], y: [-0.1, 0.1]}\n"
    child = (
        "extends: base.yaml\n"
        "rotate: [-30, 30]       # replaces the base's value\n"
        "translate: {x: 0}       # merges: y stays\n"
    )
    with _in_temp_dir() as d:
        (d / "base.yaml").write_text(base)
        (d / "child.yaml").write_text(child)
        merged = aa.load_config("child.yaml")
        overridden = aa.load_config(
            "child.yaml", overrides=["scale=[0.5, 2]", "translate.unit=px", "translate.y=[-4, 4]"]
        )
        code, shown = run_cli(["validate", "child.yaml", "--set", "flip.horizontal=0.5", "--size", "64", "64"])

    def pick(c):
        return {k: c.to_dict()[k] for k in ("rotate", "scale", "translate")}

    def dump(v):
        return yaml.safe_dump(v, sort_keys=False, default_flow_style=None).rstrip()

    return (
        f"```yaml\n# base.yaml\n{base.rstrip()}\n```\n\n```yaml\n# child.yaml\n{child.rstrip()}\n```\n\n"
        f'`load_config("child.yaml")` gives (the keys that changed):\n\n```yaml\n{dump(pick(merged))}\n```\n\n'
        '`load_config("child.yaml", overrides=["scale=[0.5, 2]", "translate.unit=px", "translate.y=[-4, 4]"])`, '
        "the same as `--set` on the command line:\n\n"
        f"```yaml\n{dump(pick(overridden))}\n```\n\n"
        f"`affine-aug validate child.yaml --set flip.horizontal=0.5 --size 64 64` (exit {code}):\n\n"
        f"```text\n{shown}\n```\n"
    )


def cli_page() -> str:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    parts = [f"```text\n$ affine-aug --help\n{parser.format_help().rstrip()}\n```\n"]
    for name, p in sub.choices.items():
        parts.append(f"### `affine-aug {name}`\n\n```text\n{p.format_help().rstrip()}\n```\n")
    with _in_temp_dir() as d:
        (d / "x.yaml").write_text("rotate: [-10, 10]\nsclae: 1.2\n")
        code, shown = run_cli(["validate", "x.yaml"])
    parts.append(
        "### A bad config on the command line\n\n"
        f"```text\n$ affine-aug validate x.yaml\n{shown}\n$ echo $?\n{code}\n```\n"
    )
    return "\n".join(parts)


def render_all() -> None:
    os.environ.setdefault("COLUMNS", "100")  # argparse wraps help text to this width
    write_text("config_keys.md", keys_table())
    write_text("config_dists.md", dist_table())
    write_text("config_limits.md", limits_text())
    write_text("config_errors.md", errors_page())
    write_text("config_extends.md", extends_page())
    write_text("cli_help.md", cli_page())
    write_text("api_core.md", api_core_page())


# API reference of the top-level package, from its ``__all__`` and the modules its names
# come from (read from affine_aug/__init__.py without importing anything), grouped by module.
API_SECTIONS = {
    "config": "Configs",
    "dist": "Configs",
    "errors": "Errors",
    "sampling": "Sampling",
    "matrix": "Matrices, points and boxes",
    "warp": "Warping",
    "kernel": "Threads",
    "outputs": "Output memory",
}


def api_core_page() -> str:
    import ast

    init = Path(config_module.__file__).with_name("__init__.py")
    tree = ast.parse(init.read_text(encoding="utf-8"))
    origin: dict[str, str] = {}
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            origin.update({a.asname or a.name: node.module for a in node.names})
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exported = [ast.literal_eval(e) for e in node.value.elts]
    sections: dict[str, list[str]] = {}
    for name in exported:
        if name.startswith("__"):
            continue
        module = origin.get(name, "")
        sections.setdefault(API_SECTIONS.get(module, f"From `affine_aug.{module}`"), []).append(name)
    order = list(dict.fromkeys(API_SECTIONS.values()))
    parts = []
    for title in sorted(sections, key=lambda t: order.index(t) if t in order else len(order)):
        parts.append(f"## {title}\n")
        parts.extend(f"::: affine_aug.{name}\n" for name in sections[title])
    return "\n".join(parts)
