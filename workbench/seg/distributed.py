"""Multi-process training under `torchrun`: process group, sharding helpers, rank-0-only writing.

`torchrun --nproc_per_node=N -m workbench retrain ...` sets RANK, WORLD_SIZE and LOCAL_RANK; without
them everything here is a no-op and training runs in one process. gloo is used on CPU, nccl on
GPU (each process takes the GPU `cuda:LOCAL_RANK`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun prepared; returns the info and this process's device."""
    if not launched_by_torchrun():
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                    int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a CPU tensor over processes (in place); nccl only reduces GPU tensors, so it travels
    through this process's GPU there."""
    if info.enabled:
        if dist.get_backend() == "nccl":
            moved = tensor.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(moved, op=dist.ReduceOp.SUM)
            tensor.copy_(moved.cpu())
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics). DDP broadcasts them at
    the start of each forward, so after the last training step each rank holds its own; evaluating
    or saving without this would use statistics that differ between processes."""
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def broadcast_object(obj, info: DistInfo):
    """Rank 0's value on every process (e.g. a result computed only on rank 0)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(params, info: DistInfo) -> None:
    """Average the gradients of `params` over processes (what DDP does for one model; used where
    one model takes two kinds of steps, as the search's weight and architecture steps)."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is not None:  # on the model's device: gloo on CPU, nccl on this process's GPU
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(info.world_size)


def _tensors(out) -> list[torch.Tensor]:
    if torch.is_tensor(out):
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [t for item in items for t in _tensors(item)]


def unused_parameters(module: torch.nn.Module, stride: int, device: torch.device) -> list[str]:
    """Names of the trainable parameters no output depends on, from one forward and backward of a
    copy at the smallest input a network of this stride takes (the module's weights, BatchNorm
    statistics and the global RNG stay as they are). Networks drop the parts no output reads when
    built (a cell no later cell reads, an input no kept edge reads, a baseline's unread encoder
    blocks), so this is the safety net for any left: DistributedDataParallel must be told of
    them, or its second step fails waiting for their gradients."""
    probe = copy.deepcopy(module).to(device).train()
    from workbench.seg.model import smoke_side

    side = smoke_side(stride)
    image = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    out = probe(image.to(device))
    sum(t.float().sum() for t in _tensors(out)).backward()
    return [name for name, p in probe.named_parameters() if p.requires_grad and p.grad is None]


class ReadOnlyRun:
    """A run directory as processes other than rank 0 see it: they read (a checkpoint to resume,
    the record) but never write, so one process owns every file."""

    def __init__(self, run):
        self._run = run

    def __getattr__(self, name: str):
        if name in ("write_config", "start", "update", "finish", "log_metrics", "log_alphas", "save_checkpoint"):
            return lambda *args, **kwargs: None
        return getattr(self._run, name)
