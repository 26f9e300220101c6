"""Retrain recipes: named, versioned presets shared by searched networks and baselines.

A recipe is data: every value of it is also a `RetrainConfig` field that defaults to None
("take the recipe's"), so `--set lr=0.02` still overrides one value of a recipe. A published
recipe never changes its values; a change is a new name (`fast-v2`, `fast-v3`). The resolved
recipe (name, version, every value, and which values the config overrode) goes into the run record and
config.json, so two runs are comparable exactly when their resolved recipes are equal.

`plain-v1` is the behaviour retrain always had (SGD, poly, random scale 0.5-2, cross entropy,
fp32, contiguous tensors). The other recipes' values were chosen by the measurements in
`benchmarks/results/retrain_recipes.md` (the evidence for each ingredient is there).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """One preset. Fields after `summary` are the values a RetrainConfig field of the same name
    takes when left unset."""

    name: str
    version: int
    summary: str
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9  # SGD momentum (AdamW: beta1)
    weight_decay: float = 5e-4
    schedule: str = "poly"  # poly | cosine | exp (per iteration, after the warm-up)
    poly_power: float = 0.9
    exp_final: float = 0.01  # exp: lr decays geometrically to exp_final x the peak at the last step
    warmup: float = 0.0  # linear warm-up to lr over this fraction of the optimizer steps
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    loss: str = "ce"  # ce | ohem
    ohem_thresh: float = 0.7  # OHEM: a pixel is hard when p(true class) < ohem_thresh ...
    ohem_min_kept: float = 1 / 16  # ... and at least this fraction of the valid pixels is kept
    teacher: str | None = None  # distillation teacher: a baseline name (trained once, cached)
    teacher_epochs: int | None = None  # teacher's epochs (None: the student's)
    teacher_seed: int = 0  # one teacher serves the students of every seed
    distill_weight: float = 0.0  # loss = task + distill_weight * KL(teacher_T || student_T) * T^2
    distill_temperature: float = 1.0
    aux_weight: float = 0.0  # weight of each auxiliary head's task loss (0: no heads; PSPNet uses 0.4)
    aux_strides: tuple[int, ...] = (16,)  # strides of the body stages the heads read (training only)
    ema_decay: float = 0.0  # average of the weights (0: off); the averaged network is the run's
    memory_format: str = "contiguous"  # contiguous | channels_last | auto (timed at run start)
    precision: str = "fp32"  # fp32 | bf16 (autocast forward, fp32 loss) | auto (timed at run start)
    preload: bool = False  # decode every training image once into memory
    batch_size: int = 8  # global batch (split over torchrun processes); the peak lr is set for it


# Values of a recipe that a RetrainConfig field of the same name overrides.
RECIPE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Recipe)[3:])

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("sgd", "adamw"), "schedule": ("poly", "cosine", "exp"), "loss": ("ce", "ohem"),
    "memory_format": ("contiguous", "channels_last", "auto"), "precision": ("fp32", "bf16", "auto"),
}

_FAST_V1 = Recipe(
    "fast-v1", 1, "small networks from scratch on a short CPU budget: AdamW 4e-3 (weight decay 1e-2) with a "
                  "cosine schedule per step, random scale 0.75-1.5 / crop / flip, cross entropy; memory "
                  "format and precision timed at run start; images decoded once",
    optimizer="adamw", lr=4e-3, momentum=0.9, weight_decay=1e-2, schedule="cosine", warmup=0.0,
    scale_range=(0.75, 1.5), memory_format="auto", precision="auto", preload=True)

_FAST_V2 = dataclasses.replace(
    _FAST_V1, name="fast-v2", version=2, aux_weight=0.4, aux_strides=(16,),
    summary="fast-v1 plus one training-only auxiliary head on the 1/16 body stage, its loss weighted 0.4 "
            "as in PSPNet (+0.013 mIoU over 5 seeds a side at 40 epochs: benchmarks/results/weight_ema.md)")

_FAST_V3 = dataclasses.replace(
    _FAST_V2, name="fast-v3", version=3, lr=8e-3,
    summary="fast-v2 with peak lr 8e-3: +0.019 mIoU for FPN-MobileNetV3-large-0.75 at 40 epochs, no difference "
            "shown for the searched long-x4 (benchmarks/results/fast_v2_lr.md)")

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("plain-v1", 1, "retrain as it always was: SGD 0.01 momentum 0.9, poly 0.9 per step, "
                          "random scale 0.5-2 / crop / flip, cross entropy, fp32, contiguous"),
    _FAST_V1,
    _FAST_V2,
    _FAST_V3,
    dataclasses.replace(_FAST_V3, name="fast-v4", version=4, batch_size=16, lr=1.6e-2, warmup=0.05,
                        summary="fast-v3 at batch 16 with twice its peak lr (1.6e-2) after a linear warm-up over "
                                "5 % of the steps (the linear scaling rule): 1.17x fast-v3's images/s on a "
                                "2-core Intel Xeon, no loss shown at 40 epochs (benchmarks/results/retrain_recipes.md)"),
    # FasterSeg's retrain, from its open code (VITA-Group/FasterSeg train/config_train.py and
    # train/train.py at 478b026): the GAS, LGCNet and AutoRTNet retrain sections could not be read,
    # and FasterSeg is the closest open method. Its paper-scale budget (crop 512x1024, batch 12,
    # 600 epochs x 1,000 iterations) is its paper preset's (paper_presets.py); the recipe keeps the
    # batch of 8 it was published with.
    Recipe("fasterseg-v1", 1, "FasterSeg's retrain: SGD 0.01 momentum 0.9 weight decay 5e-4, lr decayed "
                              "x0.992 per epoch over 600 epochs (0.992^600 = 0.008 of the peak at the end; "
                              "here per step), random scale 0.75-1.25 / crop / flip, OHEM (p < 0.7, at "
                              "least 1/16 of the pixels); add teacher=<baseline> distill_weight=1 for its "
                              "KL distillation (T 1). Not here: its 1/16 and 1/32 auxiliary heads (0.2)",
           optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="exp", exp_final=0.992 ** 600,
           scale_range=(0.75, 1.25), loss="ohem", ohem_thresh=0.7, ohem_min_kept=1 / 16,
           distill_temperature=1.0),
)}

DEFAULT_RECIPE = "plain-v1"


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[name]


def check_values(values: dict[str, Any]) -> None:
    """One-line ConfigError naming the field for a value outside its choices or range."""
    for key, options in CHOICES.items():
        if values.get(key) is not None and values[key] not in options:
            raise ConfigError(f"{key}: must be one of {', '.join(options)}, got {values[key]!r}")
    lo, hi = values.get("scale_range") or (1.0, 1.0)
    if not 0 < lo <= hi:
        raise ConfigError(f"scale_range: expected 0 < min <= max, got {lo}, {hi}")
    if values.get("warmup") is not None and not 0 <= values["warmup"] < 1:
        raise ConfigError(f"warmup: expected a fraction of the steps in [0, 1), got {values['warmup']}")
    if values.get("ohem_thresh") is not None and not 0 < values["ohem_thresh"] <= 1:
        raise ConfigError(f"ohem_thresh: expected a probability in (0, 1], got {values['ohem_thresh']}")
    if values.get("ohem_min_kept") is not None and not 0 <= values["ohem_min_kept"] <= 1:
        raise ConfigError(f"ohem_min_kept: expected a fraction in [0, 1], got {values['ohem_min_kept']}")
    if values.get("distill_temperature") is not None and values["distill_temperature"] <= 0:
        raise ConfigError(f"distill_temperature: must be > 0, got {values['distill_temperature']}")
    strides = values.get("aux_strides")
    if strides is not None and (not strides or any(int(v) < 1 or int(v) & (int(v) - 1) for v in strides)):
        raise ConfigError(f"aux_strides: expected powers of two such as 16 32, got {list(strides)}")
    if values.get("aux_weight") is not None and not 0 <= values["aux_weight"] < math.inf:
        raise ConfigError(f"aux_weight: must be a finite number >= 0, got {values['aux_weight']}")
    if values.get("ema_decay") is not None and not 0 <= values["ema_decay"] < 1:
        raise ConfigError(f"ema_decay: expected a decay in [0, 1) (0: no weight average), got {values['ema_decay']}")
    if (values.get("distill_weight") or 0) > 0 and not values.get("teacher"):
        raise ConfigError("teacher: distill_weight > 0 needs a teacher baseline name")


def resolve(config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, record) of a RetrainConfig: each recipe value, the config's where it set one.

    `record` is what the run record stores: {"name", "version", "values", "overridden"}.
    """
    recipe = get_recipe(config.recipe)
    values, overridden = {}, []
    for key in RECIPE_FIELDS:
        given = getattr(config, key)
        default = getattr(recipe, key)
        values[key] = default if given is None else given
        if given is not None and _plain(given) != _plain(default):
            overridden.append(key)
    values["scale_range"] = tuple(values["scale_range"])
    values["aux_strides"] = tuple(int(v) for v in values["aux_strides"])
    check_values(values)
    record = {"name": recipe.name, "version": recipe.version, "values": _plain(values),
              "overridden": overridden}
    return values, record


def learning_rate(values: dict[str, Any], step: int, max_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) of `max_steps`: linear warm-up, then
    poly `(1 - t)^power`, half-cosine or exponential `exp_final^t` over the remaining steps (t from
    0 to 1)."""
    base = float(values["lr"])
    warm = min(max_steps, math.ceil(float(values["warmup"]) * max_steps))
    if step < warm:
        return base * (step + 1) / warm
    span = max(1, max_steps - warm)
    t = min(step - warm, span) / span
    if values["schedule"] == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t))
    if values["schedule"] == "exp":
        return base * float(values["exp_final"]) ** t
    return base * (1 - t) ** float(values["poly_power"])


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
