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

Encoder parts no decoder reads are dropped once built (so the rest draws the same initial
weights): timm's MobileNetV3 feature extractor runs every block even when the PSP decoder reads
only the 1/16 features (the 1/32 blocks were 12-13 % of PSPNet-LCNet-0.35's CPU latency at
128x256, benchmarks/results/unread.md), and smp's EfficientNet-Lite0 keeps a conv head it never runs.
Checkpoints written before load unchanged (those tensors are dropped).
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

# How baselines are built, in the keys their cached timings are kept under: "b2" drops the encoder
# parts no decoder reads (2026-12-05); timings of the earlier build are not reused.
BASELINE_BUILD = "b2"

# The hand-designed Pareto front of the proxy benchmark (benchmarks/results/equal_latency.md: none
# is both slower and less accurate than another; 9-27 ms at 256x512 on 2 CPU cores): the networks
# a searched one must beat at equal latency. `make demo` and benchmarks/frontier.py retrain these.
FRONTIER: tuple[str, ...] = ("pspnet_lcnet_035", "fpn_mobilenetv3_small_050", "fpn_mobilenetv3_small",
                             "fpn_mobilenetv3_large_075")


def build_baseline(name: str, num_classes: int, drop_unread: bool = True) -> nn.Module:
    """A randomly initialised smp model with an `output_stride` attribute (and `unread`: the
    state-dict prefixes of the encoder parts dropped because no decoder reads them;
    `drop_unread=False` keeps them, as baselines were built before 2026-12-05)."""
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
    model.unread = drop_unread_encoder_parts(model) if drop_unread else []
    return model


def drop_unread_encoder_parts(model: nn.Module) -> list[str]:
    """Remove encoder modules whose output no decoder reads; returns their state-dict prefixes, and
    registers a load hook that drops those keys from older checkpoints."""
    encoder, dropped = model.encoder, []
    features = getattr(getattr(encoder, "model", None), "feature_info", None)
    blocks = getattr(getattr(encoder, "model", None), "blocks", None)
    if features is not None and isinstance(blocks, nn.Sequential):
        # timm's MobileNetV3/EfficientNet feature extractors run all blocks; the last read is the
        # deepest one feature_info names
        last = max(int(n.split(".")[1]) for n in features.module_name() if n.startswith("blocks."))
        dropped += [f"encoder.model.blocks.{i}." for i in range(last + 1, len(blocks))]
        encoder.model.blocks = blocks[:last + 1]
    for head in ("conv_head", "bn2"):  # smp's EfficientNet encoders keep timm's head and never run it
        if type(encoder).__name__.startswith("EfficientNet") and isinstance(getattr(encoder, head, None), nn.Module):
            delattr(encoder, head)
            dropped.append(f"encoder.{head}.")
    if dropped:
        model.register_load_state_dict_pre_hook(_drop_keys)
    return dropped


def _drop_keys(model: nn.Module, state_dict: dict, prefix: str, *_args) -> None:
    unread = tuple(prefix + p for p in model.unread)
    for key in [k for k in state_dict if k.startswith(unread)]:
        del state_dict[key]
