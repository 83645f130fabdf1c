"""The public surface: each module's ``__all__`` holds what the docs describe, helpers shared
between modules have underscore names (or live in the private ``_checks``), and every name
renamed keeps its old spelling for one release, with a DeprecationWarning naming the new one."""

import ast
import importlib
import warnings
from pathlib import Path

import numpy as np
import pytest

import affine_aug

PACKAGE = Path(affine_aug.__file__).parent


def _renames(module, to_checks=(), to_private=(), moved=None):
    """``old -> new`` of ``module``: names moved into ``affine_aug._checks``, names given an
    underscore in place, and names moved elsewhere (``moved``: ``old -> new``)."""
    out = {old: f"affine_aug._checks.{old}" for old in to_checks}
    out.update({old: f"{module}._{old}" for old in to_private})
    return {**out, **(moved or {})}


CHECKS = "BACKENDS BORDERS DTYPES INTERPOLATIONS check_choice check_dtype check_fill check_images check_matrices"
RENAMED = {
    "affine_aug.warp": _renames(
        "affine_aug.warp",
        to_checks=CHECKS.split() + ["check_size"],
        to_private=["bound_sigmas", "resolve_backend", "warp_dst_to_src"],
        moved={"CUBIC_A": "affine_aug.reference.CUBIC_A"},
    ),
    "affine_aug.matrix": _renames(
        "affine_aug.matrix",
        to_checks=["MAX_SIDE", "check_size"],
        to_private=["MAX_CONDITION", "STEPS", "compose_steps"],
    ),
    "affine_aug.sampling": _renames("affine_aug.sampling", to_private=["PARAMS", "splitmix64"]),
    "affine_aug.pipeline": _renames(
        "affine_aug.pipeline", to_private=["IMAGE_EXTENSIONS", "augment_images", "read_image"]
    ),
    "affine_aug.kernel": _renames("affine_aug.kernel", to_private=["MISSING"]),
}

# What the docs describe of each module (docs/api, docs/kernel.md, docs/concepts.md,
# docs/triton.md, docs/guides/generate.md).
KERNEL = "available get_num_threads set_num_threads warp_into prefilter warp_ragged_into prefilter_ragged"
DOCUMENTED = {
    "affine_aug.warp": {"cubic_weights", "prefilter", "prefilter_sigma", "warp_affine"},
    "affine_aug.sampling": {"STREAMS", "AffineBatch", "sample", "uniform_keyed"},
    "affine_aug.kernel": set(KERNEL.split()),
}


def _get(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old, new", [(f"{m}.{o}", n) for m, names in RENAMED.items() for o, n in names.items()])
def test_an_old_name_warns_and_gives_the_new_object(old, new):
    module, _, name = old.rpartition(".")
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"^{old} is deprecated .* next minor release; use {new}$"):
        value = getattr(mod, name)
    assert value is _get(new)
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        exec(f"from {module} import {name}", {})


def test_unknown_names_are_still_attribute_errors():
    from affine_aug import warp

    with pytest.raises(AttributeError, match=r"module 'affine_aug.warp' has no attribute 'check_everything'"):
        warp.check_everything  # noqa: B018
    assert not hasattr(warp, "check_everything")


def test_the_new_names_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for names in RENAMED.values():
            for new in names.values():
                _get(new)


def test_old_and_new_spellings_behave_alike():
    from affine_aug import _checks

    with pytest.warns(DeprecationWarning):
        from affine_aug.warp import check_fill
    assert check_fill(3, 2, np.dtype(np.uint8)).tolist() == [3, 3]
    with pytest.raises(ValueError, match=r"fill has 3 values but the images have 2 channels"):
        _checks.check_fill([1, 2, 3], 2, np.dtype(np.uint8))


@pytest.mark.parametrize("module", sorted(DOCUMENTED))
def test_all_holds_what_the_docs_describe(module):
    assert set(importlib.import_module(module).__all__) == DOCUMENTED[module]


def _defined_names(path: Path) -> set:
    """Top-level names a module defines itself (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _imported_from(module: str) -> set:
    """Names other modules of the package import from ``module`` (``from .x import a``)."""
    short = module.split(".")[-1]
    used = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and (node.module or "").split(".")[-1] == short:
                used.update(a.name for a in node.names)
    return used


@pytest.mark.parametrize("module", sorted(RENAMED))
def test_helpers_shared_between_modules_are_private_or_public(module):
    mod = importlib.import_module(module)
    own = _defined_names(PACKAGE / (module.split(".")[-1] + ".py"))
    shared = {n for n in _imported_from(module) & own if not n.startswith("_")}
    assert shared <= set(mod.__all__), sorted(shared - set(mod.__all__))


def test_the_checks_live_in_one_private_module():
    from affine_aug import _checks, hf, pipeline, ray

    for module in ("warp", "matrix", "sampling", "pipeline", "kernel"):
        own = _defined_names(PACKAGE / f"{module}.py")
        assert not {n for n in own if n.lstrip("_").startswith(("check_", "as_keys", "as_seed"))}, module
    assert pipeline.check_matrices is _checks.check_matrices and hf.check_choice is _checks.check_choice
    assert ray.check_key_column is _checks.check_key_column


def test_the_package_reads_no_old_spelling():
    old = {(m.split(".")[-1], name) for m, names in RENAMED.items() for name in names}
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                found.update(
                    (path.stem, a.name) for a in node.names if ((node.module or "").split(".")[-1], a.name) in old
                )
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in old:
                    found.add((path.stem, node.attr))
    assert not found, sorted(found)


def test_the_cli_prints_no_deprecation_warning(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.yaml"
    path.write_text("rotate: 5\n")
    r = subprocess.run([sys.executable, "-m", "affine_aug.cli", "validate", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
