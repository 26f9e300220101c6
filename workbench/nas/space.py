"""Search spaces as plugins: one package per space under `workbench/nas/spaces/`, one registry.

The timm pattern: a space is a `SearchSpace` subclass decorated with `@register_space`, and
`get_space(name)` finds it. A space owns everything that depends on its shape:

- its config (`config`, a `SpaceConfig` dataclass nested in `SearchConfig.space`);
- its supernet (`build_supernet`), which also lists its latency probes and builds its
  differentiable expected-latency model (`workbench.nas.supernet.Supernet`);
- its genotype body: parsing and validation (`parse_body`), the discrete network body
  (`build_body`), the pieces a latency table must time for it (`genotype_probes`) and the
  study's summary of it (`summary`: depth, downsampling positions).

The search loop, the genotype reader, `bench` and the studies dispatch on the space's name, and
the views find the space's figures under the same name (`widgets.spaces`). Adding a space is one
package plus its import line in `workbench/nas/spaces/__init__.py`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

from torch import nn

from workbench.config import field, from_dict, renamed
from workbench.errors import ConfigError, GenotypeError

if typing.TYPE_CHECKING:
    from workbench.nas.genotypes import Genotype
    from workbench.nas.latency.probes import Probe
    from workbench.nas.presets import SearchConfig
    from workbench.nas.supernet import Supernet

SPACES: dict[str, type[SearchSpace]] = {}


@dataclasses.dataclass
class SpaceConfig:
    """Base of every space's config. `name` selects the space; the subclass adds its fields."""

    name: str = field("cells", help="search space (workbench/nas/spaces/<name>)")

    # Flat SearchConfig names of workbench 0.1 -> this config's fields (accepted for one version).
    ALIASES: ClassVar[dict[str, str]] = {}

    @classmethod
    def __coerce__(cls, name: str, value: Any) -> SpaceConfig:
        """A space config from a name ('hyper'), a dict with a 'name' (default 'cells') or an
        instance: the named space's config class validates the rest."""
        if isinstance(value, SpaceConfig):
            return value
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a space name or a mapping of its settings, got {value!r}")
        values = dict(value)
        space = get_space(values.setdefault("name", "cells"))
        return from_dict(space.config, space.rename(values), source=f"space {space.name}")


class SearchSpace:
    """What a search space provides; subclasses are registered with `@register_space`."""

    name: ClassVar[str]
    version: ClassVar[int] = 1  # of its genotype body (genotype.json "space_version")
    config: ClassVar[type[SpaceConfig]] = SpaceConfig
    arm_keys: ClassVar[tuple[str, ...]] = ()  # config fields that define an ablation arm
    summary_keys: ClassVar[tuple[str, ...]] = ("depth", "downsampling")

    @classmethod
    def rename(cls, values: dict) -> dict:
        """Old flat names (the config's ALIASES) -> this config's field names."""
        return renamed(cls.config, values, f"space {cls.name}")

    @classmethod
    def accepts(cls, key: str) -> bool:
        """Whether a flat SearchConfig key belongs to this space (a field or an old alias)."""
        return key in cls.config.ALIASES or key in {f.name for f in dataclasses.fields(cls.config)}

    # -- search ------------------------------------------------------------------------------------
    def build_supernet(self, cfg: SearchConfig, num_classes: int) -> Supernet:
        raise NotImplementedError

    def arm(self, space_cfg: dict) -> dict:
        """The ablation arm of a stored space config (its `arm_keys`; a space may blank settings that
        do nothing in this arm, such as gamma without the GCN module)."""
        return {k: space_cfg.get(k) for k in self.arm_keys}

    # -- genotype body ---------------------------------------------------------------------------
    def parse_body(self, body: dict, source: str) -> Any:
        """The validated body object (with `to_dict()`, `output_stride`, `lines()`); GenotypeError
        naming `source` and the field otherwise."""
        raise NotImplementedError

    def build_body(self, genotype: Genotype) -> nn.Module:
        """The discrete body: reads the stem's features (1/4) and the input size, returns the
        features the head reads; has `out_channels`, `output_stride` and `size_divisor`."""
        raise NotImplementedError

    def genotype_probes(self, genotype: Genotype, image: tuple[int, int]) -> list[Probe]:
        """Every piece of the derived network, once per occurrence (stem and head included)."""
        raise NotImplementedError

    def summary(self, body: Any) -> dict:
        """{'depth': layers kept, 'downsampling': indices of the downsampling layers} for studies."""
        raise NotImplementedError

    def deepen(self, body: dict, repeats: int, source: str) -> dict:
        """The body dict with every layer repeated `repeats` times (DARTS's deeper evaluation network);
        a space that cannot say what a repeated layer is leaves this unimplemented."""
        raise GenotypeError(f"{source}: the {self.name!r} space has no deeper form (depth applies to cell chains)")


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make a space available under `cls.name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__}: a search space needs a `name`")
    if cls.name in SPACES and SPACES[cls.name] is not cls:
        raise TypeError(f"search space {cls.name!r} is registered twice")
    SPACES[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import workbench.nas.spaces  # noqa: F401 (its import registers the built-in spaces)


def get_space(name: str) -> SearchSpace:
    """The registered space `name`; ConfigError listing the known ones otherwise."""
    _load_builtin()
    if name not in SPACES:
        raise ConfigError(f"space: unknown search space {name!r} (known: {', '.join(sorted(SPACES))})")
    return SPACES[name]()


def space_for_genotype(name: str, source: str) -> SearchSpace:
    """`get_space` for a genotype file: an unknown space is a GenotypeError naming the file."""
    try:
        return get_space(name)
    except ConfigError:
        raise GenotypeError(f"{source}: unknown search space {name!r} (known: {', '.join(sorted(SPACES))})") from None


def space_names() -> list[str]:
    _load_builtin()
    return sorted(SPACES)
