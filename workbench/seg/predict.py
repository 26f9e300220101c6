"""Write a retrained run's predictions in the format the evaluators read.

Cityscapes: labelId PNGs (train ids mapped back through the official label table) named after the
input image, `{city}_{seq}_{frame}_leftImg8bit.png`, which the official evaluator (and
`workbench eval seg`) matches by its `{city}_{seq}_{frame}*.png` pattern. CamVid: class-index PNGs
`{stem}.png` (0..10). Any model's predictions are thus scored by the same evaluator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from workbench.config import field, from_dict
from workbench.data.io import write_label_png
from workbench.data.labels import cityscapes_train_id_to_id
from workbench.outputs import check_output
from workbench.seg.evaluate import EvaluateConfig, infer, load_run_for_split, run_inputs

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PredictConfig(EvaluateConfig):
    """What evaluate takes, plus where the prediction PNGs go."""

    out: str = field(help="folder for the prediction PNGs")


def prediction_name(image_path: str | Path) -> str:
    """The input image's file name as a PNG (matches both datasets' evaluator patterns)."""
    return f"{Path(image_path).stem}.png"


def to_label_ids(dataset_name: str, train_ids: np.ndarray) -> np.ndarray:
    """Train ids -> the ids stored in the dataset's label files."""
    if dataset_name == "cityscapes":
        return cityscapes_train_id_to_id()[train_ids]
    return train_ids.astype(np.uint8)  # CamVid: class index == train id (void never predicted)


def run_predict(config: PredictConfig | dict) -> dict:
    """Predict every image of a split; returns {'out', 'count', 'dataset', 'split'}."""

    cfg = from_dict(PredictConfig, config, source="predict")
    check_output(cfg.out, kind="dir", inputs=run_inputs(cfg))
    model, spec, train_cfg, dataset, device = load_run_for_split(cfg)
    name = cfg.dataset or train_cfg.get("dataset", "cityscapes")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(dataset)), desc=f"predict {cfg.split}", leave=False):
        image, _ = dataset[i]
        logits = infer(model, image[None].to(device), model.size_divisor, cfg.eval_size)
        train_ids = logits.argmax(1)[0].cpu().numpy().astype(np.uint8)
        write_label_png(out / prediction_name(dataset.pairs[i][0]), to_label_ids(name, train_ids))
    log.info("wrote %d %s predictions to %s", len(dataset), name, out)
    return {"out": str(out), "count": len(dataset), "dataset": name, "split": cfg.split}
