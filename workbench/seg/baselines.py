"""Hand-designed real-time baselines from segmentation-models-pytorch, for the frontier.

Built with `encoder_weights=None`: nothing is downloaded and they train from scratch with the
same budget as a searched network. Each exposes `output_stride` like the NAS networks.
"""

from __future__ import annotations

from torch import nn

from workbench.errors import ConfigError

# name -> (smp architecture class name, encoder name, extra kwargs)
BASELINES: dict[str, tuple[str, str, dict]] = {
    "fpn_mobilenet_v2": ("FPN", "mobilenet_v2", {}),
    "deeplabv3plus_mobilenet_v2": ("DeepLabV3Plus", "mobilenet_v2", {}),
    "linknet_resnet18": ("Linknet", "resnet18", {}),
    "unet_mobilenet_v2": ("Unet", "mobilenet_v2", {"decoder_channels": (128, 64, 32, 16, 8)}),
}


def build_baseline(name: str, num_classes: int) -> nn.Module:
    """A randomly initialised smp model with an `output_stride` attribute."""
    if name not in BASELINES:
        raise ConfigError(f"baseline: unknown baseline {name!r} (known: {', '.join(sorted(BASELINES))})")
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise ConfigError("baseline: segmentation-models-pytorch is not installed "
                          "(pip install 'workbench[baselines]')") from None
    arch, encoder, extra = BASELINES[name]
    model = getattr(smp, arch)(encoder_name=encoder, encoder_weights=None, classes=num_classes, **extra)
    # smp checks divisibility by the encoder's output stride (2**depth, or the dilated stride).
    model.output_stride = int(getattr(model.encoder, "output_stride", 32))
    model.baseline_name = name
    return model
