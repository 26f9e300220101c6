"""Where a network comes from: a genotype file or a baseline name, and checks shared by all steps.

Every seg step (retrain, evaluate, predict, bench, export) builds its model through
`build_model`, so a searched network and a hand-designed baseline take the same code paths. The
`fingerprint` identifies the architecture; checkpoints carry it so that weights are never loaded
into another architecture.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from workbench.errors import CheckpointError, ConfigError, GenotypeError

# Fields of genotype.json that describe a measurement, not the architecture.
_NON_ARCH_FIELDS = ("expected_latency_ms",)


@dataclass
class ModelSpec:
    kind: str  # 'genotype' | 'baseline'
    name: str  # genotype path or baseline name
    num_classes: int
    fingerprint: str
    genotype: dict | None = None  # the raw genotype.json content (width-scaled when width != 1)
    width: float = 1.0  # width multiplier applied to the genotype file's architecture
    depth: int = 1  # each layer of the genotype file's architecture repeated this many times


def genotype_fingerprint(genotype: dict, num_classes: int) -> str:
    arch = {k: v for k, v in genotype.items() if k not in _NON_ARCH_FIELDS}
    arch["num_classes"] = num_classes
    blob = json.dumps(arch, sort_keys=True, separators=(",", ":")).encode()
    return "genotype:" + hashlib.sha256(blob).hexdigest()[:16]


def read_genotype_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenotypeError(f"{path}: genotype file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenotypeError(f"{path}: not a JSON genotype ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise GenotypeError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def model_spec(*, genotype: str | Path | None, baseline: str | None, num_classes: int | None,
               width: float = 1.0, depth: int = 1) -> ModelSpec:
    """Validate the source (exactly one of genotype/baseline) without building anything. `width`
    widens and `depth` deepens a genotype as `workbench scale` does (DARTS retrains a wider and
    deeper network than it searched)."""
    if (genotype is None) == (baseline is None):
        raise ConfigError("genotype/baseline: give exactly one of a genotype file or a baseline name")
    if width != 1.0 and baseline is not None:
        raise ConfigError(f"width: scales a searched genotype; baseline {baseline!r} has its own widths "
                          f"(see workbench.seg.baselines)")
    if depth != 1 and baseline is not None:
        raise ConfigError(f"depth: deepens a searched genotype, not the baseline {baseline!r}")
    if baseline is not None:
        from workbench.seg.baselines import BASELINES

        if baseline not in BASELINES:
            raise ConfigError(f"baseline: unknown baseline {baseline!r} (known: {', '.join(sorted(BASELINES))})")
        n = int(num_classes or 19)
        return ModelSpec("baseline", baseline, n, f"baseline:{baseline}:{n}")
    data = read_genotype_file(genotype)
    if width != 1.0 or depth != 1:
        from workbench.nas.genotypes import scale_depth, scale_width

        try:
            data = scale_width(data, width).to_dict() if width != 1.0 else data
            data = scale_depth(data, depth).to_dict() if depth != 1 else data
        except GenotypeError as exc:
            raise GenotypeError(str(exc) if str(genotype) in str(exc) else f"{genotype}: {exc}") from None
    n = int(num_classes or data.get("num_classes") or 19)
    return ModelSpec("genotype", str(genotype), n, genotype_fingerprint(data, n), genotype=data, width=width, depth=depth)


def build_from_spec(spec: ModelSpec) -> nn.Module:
    """The network of a spec; a genotype that does not build raises one GenotypeError."""
    if spec.kind == "baseline":
        from workbench.seg.baselines import build_baseline

        model = build_baseline(spec.name, spec.num_classes)
        model.size_divisor = model.output_stride
        return model
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.network import build_network

    # GenotypeError naming the file on a bad schema/version; a widened one was loaded by model_spec
    genotype = load_genotype(spec.name if spec.width == 1.0 else spec.genotype)
    try:
        model = build_network(genotype, num_classes=spec.num_classes)
        _smoke_forward(model, model.size_divisor)
    except GenotypeError as exc:
        raise GenotypeError(str(exc) if spec.name in str(exc) else f"{spec.name}: {exc}") from None
    except Exception as exc:  # a genotype that passes the schema but does not make a working network
        raise GenotypeError(f"{spec.name}: genotype does not build a network "
                            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return model  # a SegNetwork: output_stride, and size_divisor = the deepest stride its body reaches


def smoke_side(stride: int) -> int:
    """The side of the smallest square input worth one trial pass of a network of this stride."""
    return max(32, 2 * stride)


def _smoke_forward(model: nn.Module, stride: int) -> None:
    """One tiny forward: catches genotypes whose modules build but whose shapes do not fit."""
    import torch

    side = smoke_side(stride)
    was_training = model.training
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, side, side))
    model.train(was_training)


def build_model(*, genotype: str | Path | None = None, baseline: str | None = None,
                num_classes: int | None = None) -> tuple[nn.Module, ModelSpec]:
    spec = model_spec(genotype=genotype, baseline=baseline, num_classes=num_classes)
    return build_from_spec(spec), spec


def check_size(size: tuple[int, int], output_stride: int, name: str = "size") -> None:
    """`output_stride` here is the model's `size_divisor` (the deepest stride it reaches)."""
    """Refuse an input size the network cannot take without padding."""
    h, w = size
    if h % output_stride or w % output_stride:
        fit = (-(-h // output_stride) * output_stride, -(-w // output_stride) * output_stride)
        raise ConfigError(f"{name}: {h}x{w} is not divisible by the network's output stride "
                          f"{output_stride} (its deepest feature map is 1/{output_stride} of the input; "
                          f"try {fit[0]}x{fit[1]})")


def check_fingerprint(checkpoint: dict, spec: ModelSpec, path: str | Path) -> None:
    found = checkpoint.get("fingerprint")
    if found != spec.fingerprint:
        raise CheckpointError(f"{path}: checkpoint belongs to another architecture "
                              f"({found or 'no fingerprint'}), not {spec.name} ({spec.fingerprint})")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
