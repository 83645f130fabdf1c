"""Old spellings of renamed names, kept for one release: reading one warns with a
DeprecationWarning that names the new spelling, then gives the object itself. The package's
own modules may still read an old spelling while they move (silently: a user running
``python -m affine_aug.cli`` must not see warnings about code that is not theirs)."""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["renamed"]


def renamed(module: str, names: dict[str, str]):
    """A module-level ``__getattr__`` for ``module`` serving each old name of ``names``
    (``old -> "package.module.new"``); any other name is an AttributeError as usual.

    Examples:
        >>> getattr_ = renamed("affine_aug.example", {"OLD": "affine_aug.conventions.COPY_BITS"})
        >>> getattr_("OLD")  # read from outside the package, this also warns
        20
    """

    def __getattr__(name: str):
        new = names.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not _inside_package(sys._getframe(1).f_globals):
            warnings.warn(
                f"{module}.{name} is deprecated and will be removed in the next minor release; use {new}",
                DeprecationWarning,
                stacklevel=2,
            )
        where, _, attr = new.rpartition(".")
        return getattr(importlib.import_module(where), attr)

    return __getattr__


def _inside_package(caller: dict) -> bool:
    spec = caller.get("__spec__")
    name = spec.name if spec is not None else caller.get("__name__", "")
    return name.startswith("affine_aug.")
