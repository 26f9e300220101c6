"""Peak memory of `vos segment` on long videos: one-pass streams its frames, so memory is flat.

Generates mp4 videos of N frames (a coloured square moving over a textured background; nothing
downloaded) and a first-frame mask, then runs `workbench vos segment --method onepass` (and `copy`)
on each in a fresh process and reads its peak RSS (`resource.getrusage(RUSAGE_CHILDREN)`). The
model is an untrained OVS-Net checkpoint: memory does not depend on the weights. With every frame
decoded into memory, N frames at HxW would take N*H*W*3 bytes; the table says how far below that
the streamed run stays. fps here includes decoding and writing the PNGs (`fps_end_to_end`).

    python benchmarks/vos_stream.py --frames 500 5000 --size 240x432 --json benchmarks/results/vos_stream.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, frames: int, h: int, w: int) -> np.ndarray:
    """Write the mp4; return the first frame's mask (object 1 = the square)."""
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    background = (rng.random((h, w, 3)) * 80 + 60).astype(np.uint8)
    side = h // 5
    with imageio.get_writer(str(path), fps=25, codec="libx264", macro_block_size=1, ffmpeg_log_level="error") as wr:
        for t in range(frames):
            img = background.copy()
            x = int((w - side) * (0.5 + 0.45 * np.sin(t / 40)))
            y = int((h - side) * (0.5 + 0.4 * np.cos(t / 55)))
            img[y:y + side, x:x + side] = (230, 40, 40)
            wr.append_data(img)
    mask = np.zeros((h, w), np.uint8)
    x, y = int((w - side) * 0.5), int((h - side) * 0.9)
    mask[y:y + side, x:x + side] = 1
    return mask


def untrained_model(root: Path) -> Path:
    import torch

    from workbench.runs import RunDir
    from workbench.vos.model import ModelSpec, OVSNet

    torch.manual_seed(0)
    spec = ModelSpec()
    run = RunDir(root)
    run.save_checkpoint({"model": OVSNet(spec).state_dict(), "epoch": 0, "spec": dataclasses.asdict(spec)})
    return root


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a command run in a fresh process (Linux: ru_maxrss in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TQDM_DISABLE": "1"})
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:  # a smaller child than an earlier one: ru_maxrss keeps the maximum
        peak = float("nan")
    return peak / 1024, time.time() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[500, 5000])
    p.add_argument("--size", default="240x432")
    p.add_argument("--methods", nargs="+", default=["onepass"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/vos_stream.json")
    args = p.parse_args(argv)
    from workbench.device import cpu_model

    h, w = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = untrained_model(tmp / "model")
        # ascending lengths, each in its own process: RUSAGE_CHILDREN's maximum then belongs to the longest so far
        for n in sorted(args.frames):
            video = tmp / f"v{n}.mp4"
            mask = make_video(video, n, h, w)
            from PIL import Image

            Image.fromarray(mask, mode="L").save(tmp / "first.png")
            for method in args.methods:
                out = tmp / f"out-{n}-{method}"
                cmd = [sys.executable, "-m", "workbench", "vos", "segment", "--run-dir", str(model), "--video",
                       str(video), "--first-mask", str(tmp / "first.png"), "--out", str(out), "--method", method,
                       "--device", "cpu", "--threads", str(args.threads)]
                rss, secs = peak_rss_mb(cmd)
                rec = json.loads((out / "run_record.json").read_text())
                res = rec["methods_results"][method]
                pngs = len(list((out / method / f"v{n}").glob("*.png")))
                rows.append({"frames": n, "method": method, "peak_rss_mb": round(rss, 1),
                             "all_frames_in_memory_mb": round(n * h * w * 3 / 2**20, 1), "pngs": pngs,
                             "fps": res.get("fps"), "fps_end_to_end": res.get("fps_end_to_end"),
                             "wall_s": round(secs, 1)})
                print(rows[-1], flush=True)
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu": cpu_model(), "threads": args.threads,
              "size": [h, w], "command": " ".join(["python", "benchmarks/vos_stream.py", *(argv or sys.argv[1:])]),
              "rows": rows}
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
