"""Runtimes a network is timed in: eager PyTorch, torch.compile, ONNX Runtime (CPU), CUDA graphs.

A latency holds only for the runtime that produced it: ONNX Runtime fuses a small network's
convolutions, `torch.compile` fuses element-wise tails, and CUDA graphs remove the per-kernel
launch cost that dominates batch-1 inference on a GPU. So the runtime is part of the device
fingerprint (`workbench.device.device_fingerprint`): the cache keeps each runtime's table apart, and
a table timed in one runtime is refused where another is asked for. `bind` turns a module and
its inputs into a call that runs it in the runtime, ready for `timing.time_call`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import torch
from torch import nn

from workbench.device import dtype_name
from workbench.errors import ConfigError

RUNTIMES = ("eager", "compile", "onnxruntime", "cudagraphs")


def check_runtime(runtime: str, device: torch.device | str, dtype: str = "float32") -> None:
    """ConfigError naming `runtime` when it is unknown or cannot run on this device, dtype or install."""
    dev = torch.device(device)
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    if runtime == "onnxruntime" and dtype != "float32":
        # the exported graph would carry half-precision ops its CPU provider mostly lacks
        raise ConfigError(f"runtime: onnxruntime is timed in float32 here, not {dtype}")
    if runtime == "cudagraphs" and dev.type != "cuda":
        raise ConfigError(f"runtime: cudagraphs needs a CUDA device, got {dev.type}")
    if runtime == "onnxruntime":
        if dev.type != "cpu":
            raise ConfigError(f"runtime: onnxruntime is timed on the CPU here (its CPU provider), got {dev.type}")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("runtime: onnxruntime needs the onnxruntime package (pip install "
                              "'workbench[onnx]')") from None


class _Bound(nn.Module):
    """A module with its trailing non-tensor arguments fixed, so it exports and compiles alone."""

    def __init__(self, module: nn.Module, extra: tuple):
        super().__init__()
        self.module, self.extra = module, extra

    def forward(self, *xs: torch.Tensor):
        return self.module(*xs, *self.extra)


def bind(module: nn.Module, inputs: list[torch.Tensor], runtime: str = "eager", threads: int | None = None,
         extra: tuple = ()) -> Callable[[], object]:
    """A no-argument call running `module(*inputs, *extra)` in `runtime` (eval mode, no grad)."""
    check_runtime(runtime, inputs[0].device if inputs else "cpu", dtype_name(inputs[0].dtype) if inputs else "float32")
    module = _Bound(module.eval(), extra) if extra else module.eval()
    if runtime == "eager":
        return lambda: _inference(module, inputs)
    if runtime == "compile":
        torch.compiler.reset()  # each probe is compiled fresh: no recompilation limit across probes
        compiled = torch.compile(module, dynamic=False)
        return lambda: _inference(compiled, inputs)
    if runtime == "onnxruntime":
        return _onnxruntime(module, inputs, threads)
    return _GraphReplay(module, inputs)


@torch.inference_mode()
def _inference(module: Callable, inputs: list[torch.Tensor]) -> object:
    return module(*inputs)


def _onnxruntime(module: nn.Module, inputs: list[torch.Tensor], threads: int | None) -> Callable[[], object]:
    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs), buffer, dynamo=False, opset_version=17,
                          input_names=[f"x{k}" for k in range(len(inputs))])
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    arrays = {f"x{k}": x.detach().cpu().numpy() for k, x in enumerate(inputs)}
    feeds = {i.name: arrays[i.name] for i in session.get_inputs()}  # unused inputs are dropped by the exporter
    return lambda: session.run(None, feeds)


class _GraphReplay:
    """One forward captured in a CUDA graph; a call replays it on the captured input buffers. It holds
    the module, inputs and output the graph reads and writes, so their memory lives as long as the
    graph. Warm-up and capture share one side stream, as PyTorch's CUDA-graph notes require (the
    libraries' per-stream workspaces are then set up before the capture)."""

    def __init__(self, module: nn.Module, inputs: list[torch.Tensor]):
        self.module, self.inputs = module, inputs
        self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream), torch.inference_mode():
            for _ in range(3):
                module(*inputs)
        torch.cuda.current_stream().wait_stream(self.stream)
        self.graph = torch.cuda.CUDAGraph()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.cuda.graph(self.graph, stream=self.stream), torch.inference_mode():
                self.output = module(*inputs)
        # a piece that launches no kernel (an identity op) captures an empty graph: nothing to replay
        self.empty = any("graph is empty" in str(w.message).lower() for w in caught)

    def __call__(self) -> object:
        if self.empty:
            return _inference(self.module, self.inputs)
        self.graph.replay()
        return self.output
