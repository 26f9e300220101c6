"""Video viewer: frames with predicted and ground-truth masks, per-object J and F over time.

J is the region similarity (IoU) and F the boundary F-measure of the DAVIS benchmark (boundary
tolerance 0.008 of the image diagonal), computed per frame and object for display; the official
sequence-level numbers come from `workbench.metrics.davis`.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.data.io import read_indexed_png, read_rgb
from workbench.data.labels import davis_palette
from workbench.errors import DataError
from workbench.metrics.davis import frame_scores, seg2bmap
from workbench.runs import RunDir

ROOT_KEYS = ("data_root", "root", "davis_root", "dataset_root")


@dataclass
class Video:
    name: str
    frame_names: list[str]
    frames: np.ndarray          # [T, H, W, 3] uint8
    pred: list[np.ndarray | None]
    gt: list[np.ndarray | None]


def methods(run_dir: str | Path) -> list[str]:
    """Prediction sets of a run: artifacts 'predictions' or 'predictions_<method>' (onepass, copy, ...)."""
    artifacts = RunDir(run_dir).record().get("artifacts") or {}
    found = [k.removeprefix("predictions_") for k in artifacts if k.startswith("predictions_")]
    return (["predictions"] if "predictions" in artifacts else []) + found


def sequences(run_dir: str | Path, method: str | None = None) -> list[str]:
    pred_dir = _pred_dir(RunDir(run_dir), method)
    return sorted(p.name for p in pred_dir.iterdir() if p.is_dir()) if pred_dir.is_dir() else []


def _pred_dir(run: RunDir, method: str | None = None) -> Path:
    artifacts = run.record().get("artifacts") or {}
    method = method or (methods(run.path) or ["predictions"])[0]
    rel = artifacts.get("predictions" if method == "predictions" else f"predictions_{method}", method)
    return run.path / rel


def load_video(run_dir: str | Path, sequence: str | None = None, max_frames: int | None = None,
               method: str | None = None) -> Video:
    """Frames (from the dataset in the run's config), predicted and ground-truth masks of one sequence."""
    run = RunDir(run_dir)
    config = run.read_config()
    root = next((config[k] for k in ROOT_KEYS if config.get(k)), None)
    if root is None:
        raise DataError(run.config_path, "no dataset root (data_root) recorded; cannot show frames")
    resolution = config.get("resolution", "480p")
    names = sequences(run_dir, method)
    if not names:
        raise DataError(_pred_dir(run, method), "no predicted sequences in this run")
    sequence = sequence or names[0]
    image_dir = Path(root) / "JPEGImages" / resolution / sequence
    frame_paths = sorted(image_dir.glob("*.jpg"))[:max_frames]
    if not frame_paths:
        raise DataError(image_dir, "no frames found")
    pred_dir, gt_dir = _pred_dir(run, method) / sequence, Path(root) / "Annotations" / resolution / sequence

    def read(path: Path) -> np.ndarray | None:
        return read_indexed_png(path) if path.is_file() else None

    stems = [p.stem for p in frame_paths]
    return Video(name=sequence, frame_names=stems, frames=np.stack([read_rgb(p) for p in frame_paths]),
                 pred=[read(pred_dir / f"{s}.png") for s in stems], gt=[read(gt_dir / f"{s}.png") for s in stems])


def per_frame_scores(video: Video) -> dict[int, dict[str, list[float | None]]]:
    """{object id: {'J': [...], 'F': [...]}} with None where a frame has no ground truth; the
    evaluator's own per-frame function, so the viewer and `workbench eval vos` never disagree."""
    objects = sorted({int(o) for g in video.gt if g is not None for o in np.unique(g) if o not in (0, 255)})
    out = {o: {"J": [], "F": []} for o in objects}
    k = max(objects, default=0)
    for pred, gt in zip(video.pred, video.gt):
        if gt is None or pred is None:
            j = f = [None] * k
        else:
            j, f = frame_scores(np.where(pred > k, 0, pred), gt, k)
        for o in objects:
            out[o]["J"].append(None if j[o - 1] is None else float(j[o - 1]))
            out[o]["F"].append(None if f[o - 1] is None else float(f[o - 1]))
    return out


def overlay(frame: np.ndarray, mask: np.ndarray | None, alpha: float = 0.55, outline: bool = True) -> np.ndarray:
    """The frame with each object's mask blended in its DAVIS palette colour, outlined in white."""
    if mask is None:
        return frame
    palette = np.array(davis_palette()[: 256 * 3], dtype=float).reshape(-1, 3)
    out = frame.astype(float)
    fg = (mask > 0) & (mask != 255)
    out[fg] = (1 - alpha) * out[fg] + alpha * palette[mask[fg]]
    if outline:
        for obj in np.unique(mask[fg]):
            out[seg2bmap(mask == obj) & (mask == obj)] = 255.0  # white contour inside each object
    return out.clip(0, 255).astype(np.uint8)


def object_color(obj: int) -> str:
    """The colour object `obj` has in the mask overlays (the DAVIS palette), for the J/F lines."""
    r, g, b = davis_palette()[3 * obj: 3 * obj + 3]
    return f"rgb({r},{g},{b})"


def image_uri(image: np.ndarray, max_height: int | None = None) -> str:
    """A PNG data URI (far smaller in a figure or report than a nested list of pixels)."""
    from PIL import Image

    img = Image.fromarray(image)
    if max_height and img.height > max_height:
        img = img.resize((round(img.width * max_height / img.height), max_height))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _images(video: Video, t: int, max_height: int | None) -> list[go.Image]:
    return [go.Image(source=image_uri(overlay(video.frames[t], video.pred[t]), max_height), name="prediction"),
            go.Image(source=image_uri(overlay(video.frames[t], video.gt[t]), max_height), name="ground truth")]


def frame_figure(video: Video, t: int, max_height: int | None = 360) -> go.Figure:
    """Frame t with the predicted masks (left) and the ground truth (right)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("prediction", "ground truth"), horizontal_spacing=0.02)
    pred, gt = _images(video, t, max_height)
    fig.add_trace(pred, row=1, col=1)
    fig.add_trace(gt, row=1, col=2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=f"{video.name} frame {video.frame_names[t]} ({t + 1}/{len(video.frame_names)})",
                      height=320, margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig


def jf_figure(video: Video, t: int | None = None, scores: dict | None = None) -> go.Figure:
    """Per-object J and F over time; a vertical line marks frame t."""
    scores = scores if scores is not None else per_frame_scores(video)
    xs = list(range(len(video.frame_names)))
    fig = go.Figure()
    for o, s in scores.items():
        color = object_color(o)
        fig.add_trace(go.Scatter(x=xs, y=s["J"], mode="lines+markers", name=f"object {o} J", legendgroup=str(o),
                                 line={"color": color}, marker={"color": color},
                                 hovertemplate=f"object {o}<br>frame %{{x}}<br>J %{{y:.3f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=xs, y=s["F"], mode="lines", line={"dash": "dot", "color": color},
                                 name=f"object {o} F", legendgroup=str(o),
                                 hovertemplate=f"object {o}<br>frame %{{x}}<br>F %{{y:.3f}}<extra></extra>"))
    if t is not None:
        fig.add_vline(x=t, line={"color": "#d62728", "width": 2})
    fig.update_layout(title=f"{video.name}: per-object J (solid) and F (dotted), in the mask colours",
                      xaxis_title="frame", yaxis_range=[0, 1.05],
                      height=300, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def video_animation_figure(video: Video, max_frames: int = 24, max_height: int | None = 240) -> go.Figure:
    """Prediction and ground truth side by side with a plotly frame slider (for static reports)."""
    stride = max(1, math.ceil(len(video.frame_names) / max_frames))
    ts = list(range(0, len(video.frame_names), stride))
    fig = frame_figure(video, ts[0], max_height)
    fig.frames = [go.Frame(name=video.frame_names[t], data=_images(video, t, max_height), traces=[0, 1])
                  for t in ts]
    fig.update_layout(title=f"{video.name}: prediction | ground truth", height=380,
                      margin={"l": 10, "r": 10, "t": 60, "b": 60},
                      sliders=[{"currentvalue": {"prefix": "frame "}, "pad": {"t": 10}, "steps": [
                          {"label": video.frame_names[t], "method": "animate",
                           "args": [[video.frame_names[t]], {"mode": "immediate", "frame": {"duration": 0,
                                                             "redraw": True}, "transition": {"duration": 0}}]}
                          for t in ts]}])
    return fig
