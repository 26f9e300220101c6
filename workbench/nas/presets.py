"""Search configuration and the named presets (GAS, LGCNet, ...): data in one place.

A preset is a dict of `SearchConfig` field values; `get_preset(name, **overrides)` returns the
validated config, and `--set key=value` overrides any field. The defaults are demo-sized (a full
`lgcnet` search runs in minutes on a 2-core CPU); paper-scale searches raise cells, channels,
crop and input size, e.g. `--set num_cells=12 reductions=[2,5,8] channels=32 input_size=512x1024`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from workbench.config import field, from_dict
from workbench.errors import ConfigError
from workbench.nas.operations import DEFAULT_OPS, NONE, OPS, canonical_op


@dataclass
class SearchConfig:
    preset: str = field("gas", help="name of the preset these values came from")
    dataset: Literal["cityscapes", "camvid", "random"] = field(
        "cityscapes", help="'random' = random tensors (smoke tests and speed benchmarks only)")
    data_root: str = field("", help="dataset root; empty = datasets/synth-<dataset>")
    train_split: str = field("train", help="split halved into weight and architecture data")
    val_split: str = field("val", help="held-out split for the per-epoch mIoU")
    max_val_images: int = field(8, min=0, help="images of val_split scored per epoch (0 = none)")
    input_size: tuple[int, int] = field((256, 512), help="target input size: latency table and genotype")
    crop_size: tuple[int, int] = field((128, 256), help="training crop size during the search")
    batch_size: int = field(4, min=1)
    epochs: int = field(6, min=1)
    warmup_epochs: int = field(1, min=0, help="first epochs train weights only (the last epoch always searches)")
    steps_per_epoch: int = field(0, min=0, help="cap on weight/arch step pairs per epoch (0 = all)")
    lr: float = field(0.05, min=0.0, help="weight SGD learning rate (cosine to lr_min)")
    lr_min: float = field(0.001, min=0.0)
    momentum: float = field(0.9, min=0.0, max=1.0)
    weight_decay: float = field(3e-4, min=0.0)
    grad_clip: float = field(5.0, min=0.0)
    arch_lr: float = field(3e-3, min=0.0, help="Adam learning rate of alphas and the GCN module")
    arch_weight_decay: float = field(1e-3, min=0.0)
    # search space
    space: str = field("cells", help="supernet builder (workbench.nas.search.SPACES)")
    ops: list[str] = field(default_factory=lambda: list(DEFAULT_OPS), help="candidate op names")
    num_cells: int = field(6, min=1, max=64, help="cells (space=hyper: trellis layers); papers use 8-16")
    reductions: list[int] = field(default_factory=lambda: [0, 2, 4],
                                  help="indices of reduction cells (stride 1/8, 1/16, 1/32)")
    channels: int = field(16, min=1, help="channels of cell 0; doubled at every later reduction cell")
    nodes: int = field(3, min=1, max=16, help="intermediate nodes per cell")
    stem_channels: int = field(16, min=1)
    head_channels: int = field(32, min=1)
    # GAS / LGCNet components
    cell_sharing: bool = field(False, help="tie alphas DARTS-style (one normal, one reduction)")
    gcn: bool = field(True, help="GCN-guided module between consecutive cells' alphas")
    gamma: float = field(0.5, min=0.0, help="alpha'_k = alpha_k + gamma * GCN(alpha'_{k-1})")
    gcn_hidden: int = field(16, min=1)
    relaxation: Literal["softmax", "gumbel"] = field("softmax")
    tau_start: float = field(1.0, min=1e-3, help="Gumbel temperature at the first epoch")
    tau_end: float = field(0.2, min=1e-3, help="Gumbel temperature at the last epoch (exponential)")
    fusion: bool = field(False, help="LGCNet dense-connected fusion cell before the head")
    fusion_inputs: list[int] = field(default_factory=list, help="cells fused (empty = all)")
    fusion_stride: int = field(8, min=4)
    fusion_channels: int = field(32, min=1)
    fusion_nodes: int = field(2, min=1)
    # AutoRTNet (space="hyper", hypercells.py): num_cells = trellis layers; reductions unused
    hyper_output_stride: int = field(32, min=8, help="space=hyper: output stride every searched path reaches")
    hyper_prune_threshold: float = field(0.5, min=0.0, max=1.0,
                                         help="space=hyper: prune a layer that stays when p(prune)/(p(keep)+p(prune)) exceeds this")
    aggregation: bool = field(True, help="space=hyper: searched aggregation cell over the path's multi-scale outputs")
    aggregation_strides: list[int] = field(default_factory=lambda: [8, 16],
                                           help="space=hyper: candidate strides of the aggregation cell")
    aggregation_channels: int = field(32, min=1)
    aggregation_nodes: int = field(2, min=1)
    # latency constraint
    latency_weight: float = field(0.1, min=0.0, help="lambda: loss = task + lambda * latency term")
    target_latency_ms: float | None = field(None, min=0.0, help="optional target T (ms)")
    target_mode: Literal["above", "abs"] = field(
        "above", help="with a target: 'above' = max(0, L/T - 1), 'abs' = |L/T - 1|")
    lut_path: str = field("", help="use this latency_lut.json instead of building one")
    lut_cache_dir: str = field("", help="LUT cache (empty = ~/.cache/workbench/lut)")
    lut_warmup: int = field(2, min=0, help="untimed calls before each timing round of an entry")
    lut_repeats: int = field(3, min=1, help="timed calls per round (an entry's round value is their median)")
    lut_rounds: int = field(3, min=1, help="rounds over all entries; an entry keeps its fastest round (load spikes)")
    lut_calibrate: int = field(2, min=0, help="reference networks timed end to end to calibrate the LUT (0 = off)")
    threads: int = field(0, min=0, help="intra-op threads for the search and LUT timing (0 = torch default)")
    # run
    device: str = field("auto", help="cpu, cuda or auto")
    seed: int = field(0)
    num_workers: int = field(0, min=0)
    resume: bool = field(False, help="continue from the run directory's last checkpoint")
    overwrite: bool = field(False, help="replace an earlier run in the run directory")

    def validate(self) -> None:
        bad = [o for o in self.ops if canonical_op(o) not in OPS]
        if bad:
            raise ConfigError(f"ops: unknown op {bad[0]!r} (known: {', '.join(OPS)})")
        self.ops = [canonical_op(o) for o in self.ops]
        if not [o for o in self.ops if o != NONE] or len(set(self.ops)) != len(self.ops):
            raise ConfigError("ops: need distinct ops and at least one besides 'none'")
        if any(not 0 <= r < self.num_cells for r in self.reductions) or len(set(self.reductions)) != len(self.reductions):
            raise ConfigError(f"reductions: {self.reductions} must be distinct cell indices < num_cells={self.num_cells}")
        if self.fusion_stride & (self.fusion_stride - 1):
            raise ConfigError(f"fusion_stride: must be a power of two, got {self.fusion_stride}")
        if self.space == "hyper":
            from workbench.nas.hypercells import hyper_space

            hyper_space(self)  # raises ConfigError naming the bad field
        divisor = self.size_divisor()
        for name in ("input_size", "crop_size"):
            h, w = getattr(self, name)
            if h % divisor or w % divisor:
                fit = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
                raise ConfigError(f"{name}: {h}x{w} is not divisible by {divisor}, the deepest stride this search "
                                  f"space reaches (the derived network could not take it); try {fit[0]}x{fit[1]}")

    def size_divisor(self) -> int:
        """The deepest stride of the space: every input and crop size must be a multiple of it."""
        if self.space == "hyper":
            return max([self.hyper_output_stride] + list(self.aggregation_strides))
        return max([4 * 2 ** len(self.reductions)] + ([self.fusion_stride] if self.fusion else []))

    def layout(self) -> list[tuple[str, int, int]]:
        """(kind, channels, nodes) per cell: channels double at every reduction cell after cell 0."""
        out, c = [], self.channels
        for k in range(self.num_cells):
            kind = "reduction" if k in self.reductions else "normal"
            if kind == "reduction" and k > 0:
                c *= 2
            out.append((kind, c, self.nodes))
        return out


_GAS = dict(cell_sharing=False, gcn=True, latency_weight=0.1, fusion=False)

PRESETS: dict[str, dict] = {
    # DARTS-style reference: shared cells, no GCN, no latency term (the papers' ablation baseline)
    "darts": dict(cell_sharing=True, gcn=False, latency_weight=0.0, fusion=False),
    # GAS: cell-independent alphas + GCN-guided module + latency-oriented constraint
    "gas": dict(_GAS),
    # LGCNet: GAS + dense-connected fusion cell over all cells' outputs, fused at 1/8
    "lgcnet": dict(_GAS, fusion=True, fusion_stride=8, fusion_nodes=2),
    # AutoRTNet: hyper-cells search depth and downsampling, an aggregation cell fuses the scales
    "autortnet": dict(space="hyper", cell_sharing=False, gcn=False, fusion=False, reductions=[], nodes=2,
                      latency_weight=0.1, aggregation=True),
}


def get_preset(name: str, **overrides) -> SearchConfig:
    """Validated SearchConfig of a preset with field overrides (unknown names -> ConfigError)."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    values = {**PRESETS[name], "preset": name, **overrides}
    return from_dict(SearchConfig, values, source=f"preset {name}")


def preset_help() -> str:
    defaults = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
    return "; ".join(f"{n}: " + ", ".join(f"{k}={v}" for k, v in p.items() if defaults.get(k) != v)
                     for n, p in PRESETS.items())
