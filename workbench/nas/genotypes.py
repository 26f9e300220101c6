"""Genotype: the derived discrete architecture, stored as a versioned JSON file.

A genotype alone rebuilds the network (`network.build_network`). File format (schema
"workbench.genotype", version 2):

    {"schema": "workbench.genotype", "version": 2, "space": "cells", "space_version": 1,
     "preset": "lgcnet", "num_classes": 19, "input_size": [H, W],
     "stem": {"channels": 16}, "head": {"channels": 32},
     "body": {...the space's own format...},
     "expected_latency_ms": 12.3 or null}

The network is stem (1/4) -> body -> head; the space named by "space" reads and builds the body
(`workbench.nas.space`; the cell chain of GAS/LGCNet and AutoRTNet is in `chain.py`). Version-1
files (fixed "cells"/"fusion"/"hyper"/"aggregation" slots at the top level) are translated on read
and build the same network. Any malformed file raises GenotypeError naming the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import GenotypeError

GENOTYPE_SCHEMA = "workbench.genotype"
GENOTYPE_VERSION = 2
_V1_KEYS = {"schema", "version", "preset", "num_classes", "input_size", "stem_channels", "head_channels",
            "ops", "cells", "fusion", "hyper", "aggregation", "expected_latency_ms"}
_KEYS = {"schema", "version", "space", "space_version", "preset", "num_classes", "input_size", "stem", "head",
         "body", "expected_latency_ms"}


@dataclass
class Genotype:
    space: str
    body: Any                       # the space's parsed body (to_dict, output_stride, lines)
    stem_channels: int
    head_channels: int
    num_classes: int
    input_size: tuple[int, int]
    preset: str = "custom"
    space_version: int = 1
    expected_latency_ms: float | None = None
    extra: dict = field(default_factory=dict)  # unknown top-level keys, kept on round trip

    @property
    def output_stride(self) -> int:
        return self.body.output_stride

    def to_dict(self) -> dict:
        return {"schema": GENOTYPE_SCHEMA, "version": GENOTYPE_VERSION, "space": self.space,
                "space_version": self.space_version, "preset": self.preset, "num_classes": self.num_classes,
                "input_size": list(self.input_size), "stem": {"channels": self.stem_channels},
                "head": {"channels": self.head_channels}, "body": self.body.to_dict(),
                "expected_latency_ms": self.expected_latency_ms, **self.extra}

    def __str__(self) -> str:
        head = (f"Genotype({self.preset}, space {self.space}, output stride {self.output_stride}, "
                f"expected {self.expected_latency_ms if self.expected_latency_ms is not None else '?'} ms)")
        return "\n".join([head] + [f"  {line}" for line in self.body.lines()])


def _need(d: dict, key: str, types: type | tuple, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise GenotypeError(f"{where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise GenotypeError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def upgrade_v1(d: dict) -> dict:
    """A version-1 genotype dict as version 2: the AutoRTNet trellis path means space 'hyper',
    anything else the GAS/LGCNet chain 'cells'; the same network either way."""
    hyper = d.get("hyper")
    space = "hyper" if hyper else "cells"
    body = {"ops": d.get("ops"), "cells": d.get("cells")}
    if space == "hyper":
        body["aggregation"] = d.get("aggregation")
        body["trellis"] = hyper
    else:
        body["fusion"] = d.get("fusion")
        body["aggregation"] = d.get("aggregation")
    return {"schema": GENOTYPE_SCHEMA, "version": GENOTYPE_VERSION, "space": space, "space_version": 1,
            "preset": d.get("preset"), "num_classes": d.get("num_classes"), "input_size": d.get("input_size"),
            "stem": {"channels": d.get("stem_channels")}, "head": {"channels": d.get("head_channels")},
            "body": body, "expected_latency_ms": d.get("expected_latency_ms"),
            **{k: v for k, v in d.items() if k not in _V1_KEYS}}


def genotype_from_dict(d: dict, source: str = "genotype") -> Genotype:
    """Validate a parsed genotype.json (either version); every problem is a one-line GenotypeError."""
    from workbench.nas.space import space_for_genotype

    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: expected a JSON object")
    if d.get("schema") != GENOTYPE_SCHEMA:
        raise GenotypeError(f"{source}: not a genotype file (schema {d.get('schema')!r}, "
                            f"expected {GENOTYPE_SCHEMA!r})")
    if d.get("version") == 1:
        d = upgrade_v1(d)
    if d.get("version") != GENOTYPE_VERSION:
        raise GenotypeError(f"{source}: unknown genotype version {d.get('version')!r} "
                            f"(this workbench reads versions 1 and {GENOTYPE_VERSION})")
    space = space_for_genotype(_need(d, "space", str, source), source)
    space_version = _need(d, "space_version", int, source)
    if space_version > space.version:
        raise GenotypeError(f"{source}: space {space.name} version {space_version} is newer than this "
                            f"workbench reads ({space.version})")
    size = _need(d, "input_size", list, source)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise GenotypeError(f"{source}: input_size must be [H, W], got {size}")
    num_classes = _need(d, "num_classes", int, source)
    if num_classes < 1:
        raise GenotypeError(f"{source}: num_classes must be positive")
    stem = _need(_need(d, "stem", dict, source), "channels", int, f"{source}: stem")
    head = _need(_need(d, "head", dict, source), "channels", int, f"{source}: head")
    if stem < 1 or head < 1:
        raise GenotypeError(f"{source}: stem and head channels must be positive")
    latency = d.get("expected_latency_ms")
    if latency is not None and (not isinstance(latency, (int, float)) or isinstance(latency, bool)):
        raise GenotypeError(f"{source}: expected_latency_ms must be a number or null")
    body = space.parse_body(_need(d, "body", dict, source), f"{source}: body")
    return Genotype(space=space.name, body=body, stem_channels=stem, head_channels=head,
                    num_classes=num_classes, input_size=(size[0], size[1]),
                    preset=str(d.get("preset") or "custom"), space_version=space_version,
                    expected_latency_ms=None if latency is None else float(latency),
                    extra={k: v for k, v in d.items() if k not in _KEYS})


def load_genotype(source: str | Path | dict | Genotype) -> Genotype:
    """Read and validate a genotype from a path, a parsed dict or a Genotype (returned as is)."""
    if isinstance(source, Genotype):
        return source
    if isinstance(source, dict):
        return genotype_from_dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GenotypeError(f"{path}: cannot read genotype file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return genotype_from_dict(data, str(path))


def _divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of `divisor`, never more than 10 % below it (timm's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scale_width(source: str | Path | dict | Genotype, factor: float, divisor: int = 8) -> Genotype:
    """The same architecture with every width (each `*channels` value of the stem, head and body)
    multiplied by `factor` and rounded to a multiple of `divisor` -- the width multiplier of
    MobileNet/EfficientNet, applied after the search. On a CPU a searched network's latency is
    dominated by per-op overhead at small spatial sizes, so widening it often costs little latency
    (benchmarks/results/equal_latency.md). The LUT estimate no longer applies: cleared."""
    import math

    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise GenotypeError(f"width: must be a positive finite number, got {factor!r}")
    genotype = load_genotype(source)

    def scale(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (_divisible(v * factor, divisor) if k.endswith("channels") and isinstance(v, int)
                        and not isinstance(v, bool) else scale(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [scale(v) for v in node]
        return node

    d = genotype.to_dict()
    d.update(stem=scale(d["stem"]), head=scale(d["head"]), body=scale(d["body"]), expected_latency_ms=None)
    d["width_multiplier"] = round(float(factor) * float(d.get("width_multiplier") or 1.0), 6)
    return genotype_from_dict(d, f"{genotype.preset} x{factor:g}")


def scale_depth(source: str | Path | dict | Genotype, repeats: int) -> Genotype:
    """The same architecture with every layer repeated `repeats` times (the space's `deepen`): the
    deeper evaluation network of DARTS, whose retrain stacks more cells than the search had. The
    LUT estimate no longer applies: cleared."""
    from workbench.nas.space import space_for_genotype

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise GenotypeError(f"depth: must be a whole number of repeats >= 1, got {repeats!r}")
    genotype = load_genotype(source)
    d = genotype.to_dict()
    d.update(body=space_for_genotype(genotype.space, "depth").deepen(d["body"], repeats, f"{genotype.preset} genotype"),
             expected_latency_ms=None)
    d["depth_multiplier"] = repeats * int(d.get("depth_multiplier") or 1)
    return genotype_from_dict(d, f"{genotype.preset} depth x{repeats}")


def save_genotype(genotype: Genotype, path: str | Path) -> Path:
    from workbench.jsonio import atomic_write_json

    atomic_write_json(path, genotype.to_dict())
    return Path(path)
