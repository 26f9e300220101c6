"""Notebook parameters: read with papermill's own `inspect_notebook`, checked before a kernel starts.

A notebook declares its parameters in one cell tagged `parameters`, one annotated assignment a
line with a help comment (`epochs: int = 2  # search epochs [1, 1000]`). papermill reads names,
types, defaults and help text; this module adds what papermill leaves out: a trailing `[lo, hi]`
in the help is an inclusive range (either side may be empty), a trailing `{a, b, c}` the allowed
values, and values are coerced to the annotated type (papermill only warns on unknown names and
passes tuples, paths and numpy values through as whatever its translator makes of them).
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import RENAMED, coerce
from workbench.errors import ConfigError, WorkbenchError

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = ("search", "retrain", "video_segmentation", "frontier", "ablations")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict, "None": None, "Any": Any}


class NotebookError(WorkbenchError):
    """A notebook is missing, malformed, or one of its cells failed."""


@dataclass
class Parameter:
    name: str
    annotation: str
    default: Any
    help: str
    choices: list[str] | None = None
    low: float | None = None
    high: float | None = None

    @property
    def type(self) -> Any:
        try:
            return eval(self.annotation, {"__builtins__": {}}, dict(_TYPES))  # noqa: S307 (names only)
        except Exception:
            raise NotebookError(f"parameter {self.name}: unsupported annotation {self.annotation!r}") from None


def resolve_notebook(name: str | Path) -> Path:
    """'search' -> notebooks/search.ipynb; a path to an .ipynb is taken as is."""
    path = Path(name)
    if path.suffix != ".ipynb":
        path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook (built-in: {', '.join(NOTEBOOKS)})")
    return path


def _parse_help(comment: str) -> tuple[str, list[str] | None, float | None, float | None]:
    text, choices, low, high = comment.strip(), None, None, None
    m = re.search(r"\{\s*([\w.\-]+(?:\s*,\s*[\w.\-]+)*)\s*\}\s*$", text)
    if m:
        choices = [c.strip() for c in m.group(1).split(",") if c.strip()]
    m = re.search(r"\[\s*([-+0-9.eE]*)\s*,\s*([-+0-9.eE]*)\s*\]\s*$", text)
    if m:
        low = float(m.group(1)) if m.group(1) else None
        high = float(m.group(2)) if m.group(2) else None
    return text, choices, low, high


def parse_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """The parameters of a notebook's `parameters` cell, with defaults, help and bounds."""
    import nbformat
    import papermill as pm

    path = resolve_notebook(notebook)
    try:
        cells = [c for c in nbformat.read(path, as_version=4).cells
                 if "parameters" in c.get("metadata", {}).get("tags", [])]
    except Exception as exc:  # nbformat raises JSON, validation and encoding errors alike
        raise NotebookError(f"{path}: not a readable notebook ({exc.__class__.__name__})") from None
    if len(cells) != 1:
        raise NotebookError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    try:
        ast.parse(cells[0].source)
    except SyntaxError as exc:
        raise NotebookError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from None
    params = {}
    for name, p in pm.inspect_notebook(str(path)).items():
        try:
            default = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            raise NotebookError(f"{path}: parameter {name}: default must be a literal") from None
        text, choices, low, high = _parse_help(p.get("help") or "")
        params[name] = Parameter(name, p["inferred_type_name"], default, text, choices, low, high)
    return params


def _plain(value: Any) -> Any:
    """Tuples -> lists, paths -> str, numpy scalars -> python: what papermill can inject faithfully."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def declared_name(params: dict[str, Parameter], key: str) -> str | None:
    """The parameter a value called `key` goes to: itself, or its new name (`RENAMED`); None if neither."""
    if key in params:
        return key
    new = RENAMED.get(key)
    return new if new in params else None


def renamed_values(params: dict[str, Parameter], values: dict[str, Any], source: str) -> dict[str, Any]:
    """Values under the notebook's names: 0.1 names translated with a FutureWarning, both refused."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        new = declared_name(params, key) or key
        if new != key:
            warnings.warn(f"{source}: parameter {key!r} is now called {new!r} (the old name is accepted "
                          f"until workbench 0.3)", FutureWarning, stacklevel=3)
            if new in values:
                raise ConfigError(f"{source}: {key} and {new} are the same parameter; give only {new}")
        out[new] = value
    return out


def validate_parameters(notebook: str | Path, values: dict[str, Any]) -> dict[str, Any]:
    """Check values against the notebook's parameters cell; return them normalized for papermill."""
    params = parse_parameters(notebook)
    name = resolve_notebook(notebook).name
    values = renamed_values(params, values, name)
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise ConfigError(f"{name}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(params)})")
    out = {}
    for key, value in values.items():
        p = params[key]
        kind = p.type
        if value is None and p.default is None:  # `x: float = None`: None means "the step's default"
            out[key] = None
            continue
        try:
            coerced = coerce(key, value, kind)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if kind in (list, dict) and not isinstance(coerced, (list, tuple) if kind is list else dict):
            raise ConfigError(f"{name}: {key} expected a {kind.__name__}, got {value!r}")
        if p.choices and coerced is not None and str(coerced) not in p.choices:
            raise ConfigError(f"{name}: {key} must be one of {', '.join(p.choices)}, got {coerced!r}")
        if isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
            if p.low is not None and coerced < p.low:
                raise ConfigError(f"{name}: {key} must be >= {p.low:g}, got {coerced}")
            if p.high is not None and coerced > p.high:
                raise ConfigError(f"{name}: {key} must be <= {p.high:g}, got {coerced}")
        out[key] = _plain(coerced)
    return out
