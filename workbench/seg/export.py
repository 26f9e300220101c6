"""Export a retrained run's network: TorchScript (always) and ONNX (when `onnx` is installed).

The exported file is reloaded and its output compared with the PyTorch model's on a random input
of the export size (TorchScript: torch.jit.load; ONNX: onnx.checker, then onnxruntime when it is
installed). A mismatch beyond `atol` is an error, not a warning.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from workbench.config import field, from_dict
from workbench.errors import ConfigError, WorkbenchError
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.seg.evaluate import load_run_model
from workbench.seg.model import check_size

log = logging.getLogger(__name__)


class ExportError(WorkbenchError):
    """The exported model does not reproduce the PyTorch model's output."""


@dataclass
class ExportConfig:
    run: str = field(help="retrain run directory")
    format: Literal["torchscript", "onnx"] = field("torchscript", help="torchscript or onnx")
    out: str = field("model.pt", help="output file")
    size: tuple[int, int] | None = field(None, help="export input HxW (default: the run's crop)")
    checkpoint: str | None = field(None, help="checkpoint file (default: RUN/checkpoints/last.pt)")
    opset: int = field(17, min=7, help="ONNX opset")
    atol: float = field(1e-4, min=0.0, help="max abs difference allowed in the reload check")


def run_export(config: ExportConfig | dict) -> dict:
    """Export and verify; returns {'out', 'format', 'size', 'max_abs_diff', 'checked_with'}."""
    cfg = from_dict(ExportConfig, config, source="export")
    check_output(cfg.out, inputs=[cfg.checkpoint, *RunDir(cfg.run).input_files()])
    model, spec, train_cfg = load_run_model(cfg.run, torch.device("cpu"), cfg.checkpoint)
    size = tuple(cfg.size or train_cfg.get("crop_size") or train_cfg.get("crop") or (512, 1024))  # "crop": 0.1 runs
    check_size(size, model.size_divisor)
    torch.manual_seed(0)
    x = torch.randn(1, 3, *size)
    with torch.inference_mode():
        reference = model(x).numpy()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if cfg.format == "torchscript":
        diff, checked = _torchscript(model, x, out, reference)
    else:
        diff, checked = _onnx(model, x, out, reference, cfg.opset)
    if diff is not None and diff > cfg.atol:
        raise ExportError(f"{out}: exported model differs from the PyTorch model by {diff:.2e} "
                          f"(> atol {cfg.atol})")
    log.info("exported %s to %s (%s, %dx%d), max |diff| %s via %s", spec.name, out, cfg.format, *size,
             diff, checked)
    return {"out": str(out), "format": cfg.format, "size": list(size), "max_abs_diff": diff,
            "checked_with": checked, "architecture": spec.fingerprint}


def _torchscript(model, x, out: Path, reference: np.ndarray) -> tuple[float, str]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream, still supported
        traced = torch.jit.trace(model, x, check_trace=False)
    traced.save(str(out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(out), map_location="cpu")
    with torch.no_grad():
        got = loaded(x).numpy()
    return float(np.abs(got - reference).max()), "torch.jit.load"


def _onnx(model, x, out: Path, reference: np.ndarray, opset: int) -> tuple[float | None, str]:
    try:
        import onnx
    except ImportError:
        raise ConfigError("format: onnx needs the onnx package (pip install 'workbench[onnx]')") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: fast and needs no extra packages; dynamo as a fallback.
        try:
            torch.onnx.export(model, (x,), str(out), dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["logits"])
        except Exception as exc:  # an op the legacy exporter lacks
            log.info("legacy ONNX export failed (%s); trying the dynamo exporter", exc.__class__.__name__)
            torch.onnx.export(model, (x,), str(out), dynamo=True, input_names=["image"],
                              output_names=["logits"], external_data=False)
    onnx.checker.check_model(onnx.load(str(out)))
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime not installed: %s checked with onnx.checker only", out)
        return None, "onnx.checker"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(got - reference).max()), "onnx.checker+onnxruntime"
