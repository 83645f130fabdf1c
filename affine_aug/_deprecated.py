"""Old spellings of renamed names, kept for one release: reading one warns with a
DeprecationWarning that names the new spelling, then gives the object itself. The package's
own modules read only the new spellings (tests/test_public_names.py)."""

from __future__ import annotations

import importlib
import warnings

__all__ = ["renamed"]


def renamed(module: str, names: dict[str, str]):
    """A module-level ``__getattr__`` for ``module`` serving each old name of ``names``
    (``old -> "package.module.new"``); any other name is an AttributeError as usual.

    Examples:
        >>> getattr_ = renamed("affine_aug.example", {"OLD": "affine_aug.conventions.COPY_BITS"})
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     value = getattr_("OLD")
        >>> value, caught[0].category.__name__, str(caught[0].message).endswith("use affine_aug.conventions.COPY_BITS")
        (20, 'DeprecationWarning', True)
    """

    def __getattr__(name: str):
        new = names.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in the next minor release; use {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        where, _, attr = new.rpartition(".")
        return getattr(importlib.import_module(where), attr)

    return __getattr__
