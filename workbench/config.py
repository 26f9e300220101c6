"""Configuration: typed dataclasses validated from plain dicts, and `key=value` overrides.

Every step takes a dataclass config. Notebooks, the CLI and batch runs hand in dicts (from
papermill parameters, argparse or YAML); `from_dict` is the single place that checks them, so
an unknown name, a wrong type or an out-of-range value is refused with one clear message
before any work starts. Papermill passes tuples as lists, paths as strings and numpy scalars
as numbers: all are normalized here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, TypeVar

import yaml

from workbench.errors import ConfigError

T = TypeVar("T")


def parse_size(value: Any, name: str = "size") -> tuple[int, int]:
    """'512x1024', '512,1024', [512, 1024] or 512 -> (512, 1024) / (512, 512)."""
    if isinstance(value, int) and not isinstance(value, bool):
        h = w = value
    elif isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            h, w = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (int(parts[0]),) * 2
        except ValueError:
            raise ConfigError(f"{name}: expected HxW like 512x1024, got {value!r}") from None
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        try:
            h, w = int(value[0]), int(value[1])
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected two integers, got {value!r}") from None
    else:
        raise ConfigError(f"{name}: expected HxW like 512x1024, got {value!r}")
    if h <= 0 or w <= 0:
        raise ConfigError(f"{name}: sizes must be positive, got {h}x{w}")
    return h, w


class _Loader(yaml.SafeLoader):
    """YAML with decimal integers only: a size such as 0x10 or 0x0 stays text (YAML 1.1 reads
    it as a hexadecimal integer), and 010 is not octal."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"),
                              list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """yaml.safe_load with decimal integers only (see _Loader); used for every YAML we read."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML file holding a mapping (`what` names it in errors: "sweep", "study", "parameters");
    one ConfigError naming the file when it cannot be read or holds something else."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {what}, got {type(data).__name__}")
    return data


def parse_value(text: str) -> Any:
    """Parse the value of a `key=value` override with YAML rules (1e-3, true, [1, 2], null)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """['a=1', 'b.c=x'] -> {'a': 1, 'b.c': 'x'}; refuses items without '='."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def _normalize_scalar(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        try:
            return value.item()  # numpy / torch scalars
        except (TypeError, ValueError):
            return value
    return value


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Coerce value to the annotated type, or raise ConfigError naming the parameter."""
    value = _normalize_scalar(value)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    hook = getattr(annotation, "__coerce__", None)
    if callable(hook):  # a type that knows how to build itself (e.g. a search space's config)
        return hook(name, value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(name, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            if args and all(a is int for a in args if a is not Ellipsis) and len(args) == 2:
                return parse_size(value, name)
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a sequence, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{name}: expected {len(args)} values, got {list(value)!r}")
        return tuple(coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (arg,) = args or (Any,)
        return [coerce(f"{name}[{i}]", v, arg) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        return number
    if annotation is str:
        if isinstance(value, (str, Path)):
            return str(value)
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    if annotation is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{name}: expected a path, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        return from_dict(annotation, value, source=name)
    return value


# Names of 0.1 that are the same setting under one name everywhere now (notebook parameters, stored
# configs read by the study); config classes list theirs in `ALIASES`.
RENAMED = {"crop": "crop_size", "iters_per_epoch": "steps_per_epoch", "workers": "num_workers"}


def renamed(cls: type, values: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Values with the old names a config class lists in its `ALIASES` (old -> new, accepted for
    one version, with a FutureWarning) under today's names; a name given twice is refused."""
    aliases = getattr(cls, "ALIASES", None) or {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        new = aliases.get(key, key)
        if new != key:
            warnings.warn(f"{source}: {key!r} is now called {new!r} (the old name is accepted until workbench 0.3)",
                          FutureWarning, stacklevel=3)
        if new in out:
            raise ConfigError(f"{source}: {new} given twice (also under its old name {key})")
        out[new] = value
    return out


def from_dict(cls: type[T], values: dict[str, Any] | T | None, source: str = "config") -> T:
    """Build dataclass `cls` from a dict, refusing unknown keys and coercing types.

    Fields may declare bounds with metadata: field(default=..., metadata={"min": 0, "max": 1,
    "help": "..."}); a `validate()` method on the class runs last for cross-field checks. Old
    field names the class lists in `ALIASES` are accepted (see `renamed`).
    """
    if isinstance(values, cls):
        values = dataclasses.asdict(values)
    values = renamed(cls, dict(values or {}), source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        coerced = coerce(name, value, hints[name])
        meta = fields[name].metadata
        if coerced is not None and isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
            if "min" in meta and coerced < meta["min"]:
                raise ConfigError(f"{name}: must be >= {meta['min']}, got {coerced}")
            if "max" in meta and coerced > meta["max"]:
                raise ConfigError(f"{name}: must be <= {meta['max']}, got {coerced}")
        kwargs[name] = coerced
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{source}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(config: Any) -> dict[str, Any]:
    """Dataclass -> JSON-ready dict (paths as strings, tuples as lists)."""
    return {k: to_dict_value(v) for k, v in dataclasses.asdict(config).items()}


def apply_overrides(config: T, overrides: dict[str, Any], source: str = "--set") -> T:
    """Return a copy of dataclass `config` with overrides applied and re-validated."""
    merged = to_dict(config)
    unknown = sorted(set(overrides) - set(merged))
    if unknown:
        raise ConfigError(f"{source}: unknown field{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(unknown)} (known: {', '.join(sorted(merged))})")
    merged.update(overrides)
    return from_dict(type(config), merged, source=source)


def field(default: Any = dataclasses.MISSING, *, help: str = "", min: float | None = None,
          max: float | None = None, default_factory: Any = dataclasses.MISSING) -> Any:
    """dataclasses.field with help text and bounds in its metadata."""
    meta: dict[str, Any] = {"help": help}
    if min is not None:
        meta["min"] = min
    if max is not None:
        meta["max"] = max
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# Fields that say how a step runs, not what it computes: they may change on resume.
RUNTIME_FIELDS = frozenset({"device", "threads", "workers", "num_workers", "resume", "overwrite"})


def resume_config(cls: type[T], stored: dict[str, Any], given: dict[str, Any] | T,
                  source: str = "resume", unset_is_stored: tuple[str, ...] = ()) -> tuple[T, dict[str, Any]]:
    """The config a resumed run continues with: the stored one, with only runtime fields
    (RUNTIME_FIELDS) taken from `given`. Returns (config, runtime overrides applied).

    Every schedule here depends on the total epochs, so no other change has a well-defined
    meaning mid-run: a given value that differs from the stored one is refused, naming every
    such field. A dict `given` compares only the keys it holds (what the caller set); a
    dataclass compares all fields. A field of `unset_is_stored` given as None is not compared:
    None there means "the default", which the run resolved and stored (a recipe's learning rate
    left unset is the stored 0.008, not a change to None).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    with warnings.catch_warnings():  # a run stored before a rename is not the caller's doing
        warnings.simplefilter("ignore", FutureWarning)
        stored = renamed(cls, dict(stored), source)
    kept = from_dict(cls, {k: v for k, v in stored.items() if k in names}, source=f"{source} (stored config)")
    if isinstance(given, cls):
        given = to_dict(given)
    given = renamed(cls, dict(given), source)
    hints = typing.get_type_hints(cls)
    changed, runtime = [], {}
    for key, value in dict(given).items():
        if key not in names or (value is None and key in unset_is_stored):
            continue
        old = getattr(kept, key)
        if isinstance(value, dict) and dataclasses.is_dataclass(old):  # nested: only the keys given
            stored_sub = to_dict_value(old)
            new_sub = to_dict_value(coerce(key, {**stored_sub, **value}, hints[key]))
            changed += [f"{key}.{k} (stored {stored_sub.get(k)!r}, given {new_sub.get(k)!r})"
                        for k in value if new_sub.get(k) != stored_sub.get(k)]
            continue
        new = coerce(key, value, hints[key])
        if to_dict_value(new) == to_dict_value(old):
            continue
        if key in RUNTIME_FIELDS:
            runtime[key] = new
        else:
            changed.append(f"{key} (stored {to_dict_value(old)!r}, given {to_dict_value(new)!r})")
    if changed:
        raise ConfigError(f"{source}: the run's stored configuration differs in {', '.join(changed)}; "
                          "resume with the stored values, or start a new run directory (or overwrite)")
    return dataclasses.replace(kept, **runtime), runtime


def to_dict_value(v: Any) -> Any:
    """One value as to_dict writes it (paths as strings, tuples as lists)."""
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [to_dict_value(x) for x in v]
    if isinstance(v, dict):
        return {k: to_dict_value(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_dict(v)
    return v
