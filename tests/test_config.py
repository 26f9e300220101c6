"""Config validation: the single gate for notebook, CLI and batch parameters."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from workbench import config as cfg
from workbench.errors import ConfigError


@dataclasses.dataclass
class Example:
    preset: Literal["gas", "lgcnet"] = "gas"
    epochs: int = cfg.field(2, min=1)
    latency_weight: float = cfg.field(0.0, min=0.0)
    crop: tuple[int, int] = (64, 128)
    data_root: Path = Path("datasets")
    target_ms: float | None = None
    ops: list[str] = dataclasses.field(default_factory=lambda: ["skip_connect"])
    gcn: bool = True


def test_normalises_papermill_style_values():
    c = cfg.from_dict(Example, {"epochs": np.int64(3), "latency_weight": np.float32(0.5),
                                "crop": [32, 64], "data_root": "/tmp/x", "gcn": "false",
                                "ops": "a, b"})
    assert c.epochs == 3 and isinstance(c.epochs, int)
    assert c.crop == (32, 64) and c.data_root == Path("/tmp/x") and c.gcn is False
    assert c.ops == ["a", "b"]
    assert cfg.from_dict(Example, {"crop": "16x32"}).crop == (16, 32)


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0}, "epochs: must be >= 1"),
    ({"epoch": 3}, "unknown parameter epoch"),
    ({"preset": "darts"}, "preset: must be one of"),
    ({"epochs": "two"}, "epochs: expected an integer"),
    ({"latency_weight": True}, "latency_weight: expected a number"),
    ({"crop": [1, 2, 3]}, "crop: expected 2 values"),
    ({"gcn": "maybe"}, "gcn: expected true or false"),
])
def test_refuses_bad_values_with_one_clear_message(values, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_dict(Example, values)


def test_overrides():
    base = cfg.from_dict(Example, {})
    over = cfg.parse_overrides(["epochs=5", "target_ms=12.5", "ops=[a, b]", "gcn=no"])
    new = cfg.apply_overrides(base, over)
    assert (new.epochs, new.target_ms, new.ops, new.gcn) == (5, 12.5, ["a", "b"], False)
    with pytest.raises(ConfigError, match="unknown field nope"):
        cfg.apply_overrides(base, {"nope": 1})
    with pytest.raises(ConfigError, match="expected key=value"):
        cfg.parse_overrides(["epochs"])


@pytest.mark.parametrize("text, size", [("512x1024", (512, 1024)), ("64", (64, 64)),
                                        ([8, 16], (8, 16)), ("8,16", (8, 16))])
def test_parse_size(text, size):
    assert cfg.parse_size(text) == size


def test_parse_size_errors():
    with pytest.raises(ConfigError, match="size"):
        cfg.parse_size("big")
    with pytest.raises(ConfigError, match="positive"):
        cfg.parse_size("0x4")
