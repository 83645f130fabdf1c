"""A griffe extension for the API reference: a docstring section titled ``Example:`` is read
as ``Examples:`` (Google style), so its ``>>>`` lines render as code, not as prose."""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
