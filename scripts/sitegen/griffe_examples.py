"""A griffe extension for the API reference, so that docstrings written for plain ``help()``
read well on the site:

* a section titled ``Example:`` is read as ``Examples:`` (Google style), so its ``>>>``
  lines render as code, not as prose;
* Sphinx roles (``:func:`load_config```, ``:class:`...```) become code spans.
"""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|exc|obj):`~?([^`]+)`")


class ExampleSections(griffe.Extension):
    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            text = _TITLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(r"`\1`", text)
