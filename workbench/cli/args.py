"""Flags -> config dicts: the one piece of glue every command shares.

A command hands a step only what the user gave (flags that are not None, then `--set key=value`
overrides), so a step's own defaults and presets stay the single source of every other value,
and a resume compares exactly what the user asked for with what the run stored.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from workbench.config import parse_overrides


def set_items(args: argparse.Namespace, name: str = "set") -> list[str]:
    """`--set a=1 --set b=2` and `--set a=1 b=2` alike (append, optionally with nargs='+')."""
    items = getattr(args, name, None) or []
    return [x for group in items for x in (group if isinstance(group, list) else [group])]


def explicit(args: argparse.Namespace, fields: Mapping[str, str] | Iterable[str], *,
             flags: Iterable[str] = (), overrides: str | None = "set") -> dict[str, Any]:
    """The config dict of what was given: `fields` maps argparse attribute -> config field (or
    lists names that are the same in both); `flags` are store_true switches set only when on.
    `--set` overrides reach any field; a named flag, being more specific, wins over them."""
    names = dict(fields) if isinstance(fields, Mapping) else {f: f for f in fields}
    cfg = parse_overrides(set_items(args, overrides)) if overrides else {}
    cfg.update({field: getattr(args, attr) for attr, field in names.items() if getattr(args, attr, None) is not None})
    cfg.update({flag: True for flag in flags if getattr(args, flag, False)})
    return cfg


def size(text: str) -> tuple[int, int]:
    """argparse type for HxW sizes."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x512, got {text!r}") from None
    return h, w
