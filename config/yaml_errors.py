"""One line for a YAML file that does not parse: file, line, column and what the parser met.

PyYAML (the settings loader) and ruamel.yaml (schema.yaml) raise errors of the same shape,
a ``problem`` and a ``problem_mark`` with 0-based line and column, so one function serves both;
their own text runs to several lines and names ``<unicode string>`` instead of the file.
"""

from __future__ import annotations

from pathlib import Path


def yaml_error_line(path: str | Path, exc: Exception) -> str:
    """``path:line:column: not valid YAML: problem`` (line and column from 1)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    what = " ".join(str(problem or exc).split())
    if mark is None:
        return f"{path}: not valid YAML: {what}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {what}"
