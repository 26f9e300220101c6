"""Segmenting videos with a trained OVS-Net (and the baselines), timing and scoring them.

Two sources: a DAVIS-format split (`data_root` + `split`), scored with J&F when annotations
beyond the first frame exist; or a user's video file / frame folder plus a first-frame mask.
Methods: `onepass` (OVS-Net, online), `offline` (back-and-forth baseline), `premvos` (the
PReMVOS-style proposals + bi-directional propagation + re-ID merge baseline, `premvos.py`), `copy`
(first-frame mask copied to every frame). Results: `<run_dir>/<method>/<sequence>/<frame>.png`, DAVIS-format
indexed PNGs that `workbench eval vos` scores. fps counts segmentation only (frames already in
memory; no disk I/O), per sequence.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from workbench.config import field, from_dict, to_dict
from workbench.data.io import write_indexed_png
from workbench.device import device_fingerprint, resolve_device, set_threads, synchronize
from workbench.errors import ConfigError, DataError
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.vos.offline import segment_offline
from workbench.vos.online import OnlineSegmenter, mask_targets, overlay_new
from workbench.vos.premvos import segment_premvos
from workbench.vos.tracker import TrackerConfig
from workbench.vos.train import load_model
from workbench.vos.video_io import FrameStream, OverlayWriter, read_first_mask

log = logging.getLogger("workbench.vos.segment")
METHODS = ("onepass", "offline", "copy")


@dataclasses.dataclass
class SegmentConfig:
    model: str | None = field(None, help="run directory of `vos train` (not needed for copy)")
    data_root: str | None = field(None, help="DAVIS-format dataset root")
    split: str = field("val", help="ImageSets/2017/<split>.txt")
    resolution: str = field("480p", help="JPEGImages/<resolution>")
    sequences: list[str] | None = field(None, help="only these sequences of the split")
    video: str | None = field(None, help="a video file (mp4/avi) or a folder of frames")
    first_mask: str | None = field(None, help="first-frame mask of `video` (indexed, grayscale or RGB PNG)")
    masks: str | None = field(None, help="folder of later masks of `video`, named by frame (00012.png): "
                                         "objects entering at that frame (YouTube-VOS semantics)")
    method: Literal["onepass", "offline", "premvos", "copy", "all"] = field(
        "onepass", help="what to run (all: onepass, offline and copy; premvos, the PReMVOS-style baseline, on its own)")
    device: str = field("auto", help="cpu, cuda or auto")
    threads: int = field(0, help="torch CPU threads (0: leave as is)", min=0)
    max_frames: int = field(0, help="read at most this many frames of `video` (0: all)", min=0)
    start: int = field(0, help="first frame of `video` to segment (first_mask is this frame's mask)", min=0)
    tracker: dict = field(default_factory=dict, help="TrackerConfig overrides")
    overlay: bool = field(False, help="also write <method>/<video>.mp4: the frames with the masks blended in")
    overwrite: bool = field(False, help="replace an earlier segmentation in the run directory")

    def validate(self) -> None:
        if (self.video is None) == (self.data_root is None):
            raise ConfigError("segment: give either data_root (a DAVIS split) or video + first_mask")
        if self.video is not None and self.first_mask is None:
            raise ConfigError("first_mask: a video needs the mask of its first frame")
        if self.masks is not None and self.video is None:
            raise ConfigError("masks: later masks go with a video (a DAVIS split brings its own annotations)")
        if self.method != "copy" and self.model is None:
            raise ConfigError("model: methods onepass/offline need a trained run directory")
        if self.data_root is not None and not Path(self.data_root).exists():
            raise ConfigError(f"data_root: {self.data_root} does not exist")


@dataclasses.dataclass
class Video:
    name: str
    frames: np.ndarray | FrameStream  # uint8 [T, H, W, 3] in memory, or decoded one at a time
    frame_names: list[str] | None     # None for a stream (it names its frames)
    first: np.ndarray            # uint8 [H, W] first-frame mask
    scored: bool                 # annotations beyond the first frame exist
    later: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # frame -> entering objects


def load_videos(cfg: SegmentConfig) -> list[Video]:
    if cfg.video is not None:
        stream = FrameStream(cfg.video, cfg.max_frames or None, cfg.start)
        first = read_first_mask(cfg.first_mask, stream.size)
        return [Video(Path(cfg.video).stem, stream, None, first, False,
                      _later_masks(cfg.masks, stream.first_name, stream.size))]
    from workbench.data.davis import list_sequences, load_sequence

    names = cfg.sequences or list_sequences(cfg.data_root, cfg.split)
    videos = []
    for name in names:
        s = load_sequence(cfg.data_root, name, cfg.resolution)
        videos.append(Video(name, s.frames, list(s.frame_names), s.masks[min(s.masks)],
                            len(s.masks) > 2))
    return videos


OFFLINE_LATER = ("method: the offline baselines take first-frame objects only; objects entering later "
                 "(masks) need onepass or copy")


def _later_masks(folder: str | None, first_name: str, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """{frame name: mask} of a folder of masks named by frame (read before the stream starts: they
    are few). Masks of frames up to the first are skipped; a name that cannot be a frame of this
    video (frames are numbered, e.g. 00012) is an error."""
    if folder is None:
        return {}
    root = Path(folder)
    if not root.is_dir():
        raise DataError(root, "masks folder not found")
    out = {}
    for path in sorted(root.glob("*.png")):
        if first_name.isdigit() and not path.stem.isdigit():
            raise DataError(path, f"no frame named {path.stem!r} in the video (its frames are numbered "
                                  f"from {first_name})")
        after = int(path.stem) > int(first_name) if first_name.isdigit() else path.stem > first_name
        if after:  # the first frame's mask is --first-mask
            out[path.stem] = read_first_mask(path, size, what=f"mask of frame {path.stem}")
    return out


def _frames(video: Video):
    """(name, frame) pairs of a video, in memory or streamed."""
    return zip(video.frame_names, video.frames) if video.frame_names is not None else iter(video.frames)


def label_stream(method: str, model, video: Video, tracker_cfg: TrackerConfig, device: torch.device):
    """Yields (name, frame, label map, seconds spent segmenting it) frame by frame. One-pass and
    copy hold one frame at a time (a FrameStream is decoded as it goes); the offline baseline
    needs the whole video in memory, as such pipelines do."""
    later = video.later
    if method in ("offline", "premvos"):
        if later:
            raise ConfigError(OFFLINE_LATER)
        names, frames = zip(*_frames(video))
        synchronize(device)
        t0 = time.perf_counter()
        whole_video = segment_offline if method == "offline" else segment_premvos
        labels = whole_video(model, np.stack(frames), video.first, tracker_cfg, device)
        synchronize(device)
        per_frame = (time.perf_counter() - t0) / len(labels)
        for name, frame, lab in zip(names, frames, labels):
            yield name, frame, lab, per_frame
        return
    current = np.where(video.first == 255, 0, video.first).astype(np.uint8)
    seg = OnlineSegmenter(model, tracker_cfg, device) if method == "onepass" else None
    for t, (name, frame) in enumerate(_frames(video)):
        synchronize(device)
        t0 = time.perf_counter()
        given = later.get(name)
        if seg is None:  # copy: each object's given mask repeated from the frame it is given
            if given is not None:
                current = overlay_new(current, given, set(mask_targets(current)))
            lab = current
        elif t == 0:
            seg.start(frame, video.first)
            lab = current
        else:
            lab = seg.labels(frame, given)
        synchronize(device)
        yield name, frame, lab, time.perf_counter() - t0  # frame 0's start() counts, as it always did


def run_segment(config: SegmentConfig | dict, run_dir: str | Path) -> dict:
    """Segment, write PNGs, time and (where annotated) score every method; returns the record."""
    cfg = from_dict(SegmentConfig, config)
    tracker_cfg = from_dict(TrackerConfig, cfg.tracker, source="tracker")
    methods = list(METHODS) if cfg.method == "all" else [cfg.method]
    rd = RunDir(run_dir)
    check_output(rd.path, kind="run", inputs=[cfg.data_root, cfg.video, cfg.first_mask, cfg.masks, cfg.model])
    device = resolve_device(cfg.device)
    threads = set_threads(cfg.threads or None)
    model = load_model(cfg.model, device) if set(methods) - {"copy"} else None
    videos = load_videos(cfg)
    if cfg.method in ("offline", "premvos") and any(v.later for v in videos):
        raise ConfigError(OFFLINE_LATER)
    if cfg.method == "all" and any(v.later for v in videos):
        methods = [m for m in methods if m != "offline"]  # said in the log and the record
        log.warning("objects enter later: the offline baseline (first-frame objects only) is skipped")
    with rd.claim(overwrite=cfg.overwrite):
        return _segment(cfg, rd, methods, model, videos, device, threads, tracker_cfg)


def _segment(cfg: SegmentConfig, rd: RunDir, methods: list[str], model, videos: list[Video],
             device: torch.device, threads: int, tracker_cfg: TrackerConfig) -> dict:
    rd.write_config(to_dict(cfg))
    rd.start("vos_segment", dataset=cfg.data_root or cfg.video, split=cfg.split,
             model=cfg.model, methods=methods, device=device_fingerprint(device, threads))
    summary: dict[str, dict] = {}
    try:
        for method in methods:
            out_dir = rd.path / method
            per_seq, frames_total, secs_total = {}, 0, 0.0
            wall_total = 0.0
            for v in tqdm(videos, desc=f"vos {method}", leave=False, disable=None):
                count, secs, t0 = 0, 0.0, time.perf_counter()
                with OverlayWriter(out_dir / f"{v.name}.mp4") if cfg.overlay else nullcontext() as overlay:
                    for name, frame, lab, spent in label_stream(method, model, v, tracker_cfg, device):
                        write_indexed_png(out_dir / v.name / f"{name}.png", lab)
                        if overlay is not None:
                            overlay.add(frame, lab)
                        count, secs = count + 1, secs + spent
                wall = time.perf_counter() - t0
                n = count - 1  # frame 0 is given
                per_seq[v.name] = {"frames": count, "fps": n / secs if secs > 0 else None,
                                   "fps_end_to_end": n / wall if wall > 0 else None}
                frames_total += n
                secs_total += secs
                wall_total += wall
            # fps: segmentation only (frames decoded, outputs not written); fps_end_to_end: decoding,
            # segmenting and writing the PNGs (and the overlay), what a user waits for
            res = {"fps": frames_total / secs_total if secs_total > 0 else None,
                   "fps_end_to_end": frames_total / wall_total if wall_total > 0 else None,
                   "sequences": per_seq, "predictions": method}
            if cfg.data_root is not None and all(v.scored for v in videos):
                from workbench.metrics.davis import evaluate_vos

                ev = evaluate_vos(cfg.data_root, cfg.split, out_dir,
                                  sequences=[v.name for v in videos], resolution=cfg.resolution)
                g = ev["global"]
                res.update(jf=g["J&F"], j_mean=g["J_mean"], f_mean=g["F_mean"])
                for name, s in ev.get("sequences", {}).items():
                    per_seq.setdefault(name, {}).update(jf=s.get("J&F"))
            summary[method] = res
            log.info("%s: %s fps%s", method, f"{res['fps']:.2f}" if res["fps"] else "-",
                     f", J&F {res['jf']:.3f}" if "jf" in res else "")
            rd.update(artifacts={f"predictions_{method}": method}, methods_results=summary)
    except BaseException as exc:
        rd.finish("failed", error=str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        raise
    main = summary[methods[0]]
    keys = ("jf", "j_mean", "f_mean", "fps", "fps_end_to_end")
    metrics = {k: main[k] for k in keys if k in main}
    for m, res in summary.items():
        metrics.update({f"{m}_{k}": res[k] for k in keys if k in res})
    rd.update(metrics=metrics)
    return rd.finish()
