"""Hand-designed real-time baselines from segmentation-models-pytorch, for the frontier.

Built with `encoder_weights=None`: nothing is downloaded and they train from scratch with the
same budget as a searched network. Each exposes `output_stride` like the NAS networks.

Two groups: the classic ones (MobileNetV2 / ResNet-18 with smp's default decoders, 4-12 M
parameters, several times slower than a searched network on a CPU) and a light frontier whose
latencies bracket the searched networks' (LCNet at width 0.35, MobileNetV3-small at width 0.5 /
1.0, MobileNetV3-large at 0.75 and EfficientNet-Lite0 encoders with narrow PSP (on the 1/16
features), FPN, LinkNet and U-Net decoders); their
measured latencies are in benchmarks/results/frontier_latency.md. `tu-` encoders are timm models
built with pretrained=False. MobileOne-S0 was left out: without re-parameterisation (smp does
not fold its branches) it ran at 88 ms, slower than FPN-MobileNetV2.
"""

from __future__ import annotations

from torch import nn

from workbench.errors import ConfigError

# narrow FPN decoders (smp's default is 256 pyramid / 128 segmentation channels; the
# segmentation channels feed a GroupNorm of 32 groups, so 32 is the smallest)
_FPN64 = {"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32}
_FPN32 = {"decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32}

# name -> (smp architecture class name, encoder name, extra kwargs)
BASELINES: dict[str, tuple[str, str, dict]] = {
    "fpn_mobilenet_v2": ("FPN", "mobilenet_v2", {}),
    "deeplabv3plus_mobilenet_v2": ("DeepLabV3Plus", "mobilenet_v2", {}),
    "linknet_resnet18": ("Linknet", "resnet18", {}),
    "unet_mobilenet_v2": ("Unet", "mobilenet_v2", {"decoder_channels": (128, 64, 32, 16, 8)}),
    # the light frontier, fastest first (latency at 256x512, batch 1, 2 threads of the AMD EPYC
    # CPU: benchmarks/results/frontier_latency.json)
    "pspnet_lcnet_035": ("PSPNet", "tu-lcnet_035", {"encoder_depth": 4, "psp_out_channels": 32, "upsampling": 16}),
    "pspnet_mobilenetv3_small_050": ("PSPNet", "tu-mobilenetv3_small_050",
                                     {"encoder_depth": 4, "psp_out_channels": 32, "upsampling": 16}),
    "fpn_mobilenetv3_small_050": ("FPN", "tu-mobilenetv3_small_050", _FPN32),
    "linknet_mobilenetv3_small_050": ("Linknet", "tu-mobilenetv3_small_050", {}),
    "fpn_mobilenetv3_small": ("FPN", "tu-mobilenetv3_small_100", _FPN64),
    "linknet_mobilenetv3_small": ("Linknet", "tu-mobilenetv3_small_100", {}),
    "fpn_mobilenetv3_large_075": ("FPN", "tu-mobilenetv3_large_075", _FPN64),
    "unet_mobilenetv3_small": ("Unet", "tu-mobilenetv3_small_100", {"decoder_channels": (64, 32, 16, 16, 8)}),
    "fpn_efficientnet_lite0": ("FPN", "timm-tf_efficientnet_lite0", _FPN64),
}

# The hand-designed Pareto front of the proxy benchmark (benchmarks/results/equal_latency.md: none
# is both slower and less accurate than another; 9-27 ms at 256x512 on 2 CPU cores): the networks
# a searched one must beat at equal latency. `make demo` and benchmarks/frontier.py retrain these.
FRONTIER: tuple[str, ...] = ("pspnet_lcnet_035", "fpn_mobilenetv3_small_050", "fpn_mobilenetv3_small",
                             "fpn_mobilenetv3_large_075")


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
