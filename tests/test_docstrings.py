"""The examples in the docstrings run (as ``python -m pytest --doctest-modules affine_aug`` runs
them), the core API has one, and the numpy modules' examples never import torch."""

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import affine_aug

ROOT = Path(affine_aug.__file__).parent
MODULES = sorted(
    ".".join(("affine_aug",) + p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in ROOT.rglob("*.py")
)
TORCH_MODULES = [m for m in MODULES if m.startswith("affine_aug.torch")]
NUMPY_MODULES = [m for m in MODULES if m not in TORCH_MODULES]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

CORE = [
    "load_config",
    "sample",
    "affine_matrix",
    "compose",
    "invert",
    "transform_points",
    "transform_boxes",
    "to_theta",
    "from_theta",
    "warp_affine",
    "Augment",
]
SHELLS = [
    ("affine_aug.torch", "RandomAffine"),
    ("affine_aug.torch", "AugmentedDataset"),
    ("affine_aug.hf", "MapAugment"),
    ("affine_aug.hf", "OnTheFly"),
    ("affine_aug.ray", "AffineAugment"),
]


def test_numpy_modules_examples_run_without_torch():
    code = (
        "import doctest, importlib, sys\n"
        "failed = sum(doctest.testmod(importlib.import_module(m), "
        f"optionflags={FLAGS}).failed for m in {NUMPY_MODULES!r})\n"
        "assert 'torch' not in sys.modules, 'an example of a numpy module imported torch'\n"
        "sys.exit(1 if failed else 0)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", TORCH_MODULES)
def test_torch_modules_examples_run(name):
    pytest.importorskip("torchvision")
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0


@pytest.mark.parametrize("module, name", [("affine_aug", n) for n in CORE] + SHELLS)
def test_public_api_has_a_runnable_example(module, name):
    if module == "affine_aug.torch":
        pytest.importorskip("torchvision")
    obj = getattr(importlib.import_module(module), name)
    assert ">>> " in (obj.__doc__ or ""), f"{module}.{name} has no example in its docstring"


SURFACE = [
    "affine_aug.config",
    "affine_aug.conventions",
    "affine_aug.errors",
    "affine_aug._checks",
    "affine_aug._epoch",
    "affine_aug.hf",
    "affine_aug.ray",
    "affine_aug.torch.transforms",
    "affine_aug.torch.kernels",
    "affine_aug.torch.dataset",
]


@pytest.mark.parametrize("name", SURFACE)
def test_all_holds_the_public_names(name):
    if name.startswith("affine_aug.torch"):
        pytest.importorskip("torchvision")
    module = importlib.import_module(name)
    defined = {
        k
        for k, v in vars(module).items()
        if not k.startswith("_") and getattr(v, "__module__", None) == name and callable(v)
    }
    assert defined <= set(module.__all__), sorted(defined - set(module.__all__))
    assert all(hasattr(module, k) for k in module.__all__)
