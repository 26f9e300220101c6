"""benchmarks/train_profile.py: a training step's self time split by phase and operator kind."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from conftest import load_benchmark


def test_op_kind_reads_a_convolutions_shape_from_its_weight():
    mod = load_benchmark("train_profile")
    x, dw, pw, dense = [8, 32, 16, 16], [32, 1, 3, 3], [64, 32, 1, 1], [32, 16, 3, 3]
    assert mod.op_kind("aten::mkldnn_convolution", [x, dw, [32], [], [], [], []]) == "conv depthwise forward"
    assert mod.op_kind("aten::mkldnn_convolution", [x, pw, [], [], [], [], []]) == "conv 1x1 forward"
    assert mod.op_kind("aten::convolution_backward", [x, x, dense, [], [], []]) == "conv dense kxk backward"
    assert mod.op_kind("aten::native_batch_norm_backward", [x]) == "normalization"
    assert mod.op_kind("aten::native_group_norm", [x]) == "normalization"
    assert mod.op_kind("aten::_to_copy", [x]) == "casts and copies"
    assert mod.op_kind("aten::relu_", [x]) == "other"


@pytest.mark.parametrize("fmt,prec", [("contiguous", "fp32"), ("channels_last", "bf16")])
def test_a_tiny_networks_step_splits_into_its_kinds_and_phases(fmt, prec):
    mod = load_benchmark("train_profile")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.Conv2d(16, 5, 1))
    images, labels = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    out = mod.profile_step(net, fmt, prec, images, labels, steps=2)
    kinds = out["by_kind_ms"]
    for kind in ("conv dense kxk forward", "conv depthwise forward", "conv 1x1 forward",
                 "conv dense kxk backward", "conv depthwise backward", "conv 1x1 backward", "normalization", "optimizer"):
        assert kinds.get(kind, 0) > 0, kind
    assert set(out["by_phase_ms"]) <= {"forward", "loss", "backward", "optimizer", "outside"}
    assert all(out["by_phase_ms"][p] > 0 for p in ("forward", "loss", "backward", "optimizer"))
    # both splits share every op's self time: they sum to the same total, at most the profiled step
    assert sum(kinds.values()) == pytest.approx(sum(out["by_phase_ms"].values()), abs=0.05)
    assert sum(kinds.values()) == pytest.approx(out["self_ms"], abs=0.05)
    assert out["self_ms"] <= out["profiled_step_ms"] * 1.05
    if prec == "bf16":
        assert kinds.get("casts and copies", 0) > 0  # autocast's casts are where bf16 pays its toll


def test_depthwise_in_fp32_keeps_only_the_depthwise_convolutions_out_of_bf16():
    """train_throughput's `--depthwise-fp32` variant: the same parameters, depthwise in fp32, the rest bf16."""
    mod = load_benchmark("train_throughput")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2,
                                                                                   groups=8),
                              torch.nn.Conv2d(8, 4, 1))
    keys = list(net.state_dict())
    outs = {}
    for i, layer in enumerate(net):
        layer.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.dtype))
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = net(x)
    assert [outs[i] for i in range(3)] == [torch.bfloat16] * 3
    assert mod.depthwise_in_fp32(net) == 1 and list(net.state_dict()) == keys
    with torch.autocast("cpu", dtype=torch.bfloat16):
        after = net(x)
    assert [outs[i] for i in range(3)] == [torch.bfloat16, torch.float32, torch.bfloat16]
    assert torch.allclose(before.float(), after.float(), atol=0.05)  # the same network, finer arithmetic
    plain = copy.deepcopy(net)
    plain[1].__class__ = torch.nn.Conv2d
    assert torch.equal(net(x), plain(x))  # outside autocast: exactly the plain convolution


def test_step_builder_gives_the_run_start_check_each_benchmark_variant():
    """train_throughput's variants go through `throughput.differing_tensors` as retrain's candidates do:
    `bf16-dwfp32` swaps only the twin's depthwise class (the source model keeps its own), and a
    step that draws random numbers is caught as differing run to run."""
    mod = load_benchmark("train_throughput")
    from workbench.seg import throughput

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                              torch.nn.Conv2d(8, 4, 1))
    images, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    cpu = torch.device("cpu")
    build = mod.step_builder(images, labels)
    assert throughput.differing_tensors(net, build, ("channels_last", "bf16-dwfp32"), cpu) == []
    assert type(net[1]) is torch.nn.Conv2d  # only the twins were swapped
    twin = throughput.prepare(copy.deepcopy(net), "contiguous")
    build(twin, "contiguous", "bf16-dwfp32")
    assert type(twin[1]) is mod._FP32Depthwise and type(twin[0]) is torch.nn.Conv2d

    calls = itertools.count()

    def noisy(twin, fmt, prec):  # a step whose update differs call to call, as a nondeterministic kernel's does
        step = build(twin, fmt, prec)

        def run():
            step()
            with torch.no_grad():
                twin[2].bias.add_(next(calls))
        return run
    assert "2.bias" in throughput.differing_tensors(net, noisy, ("contiguous", "fp32"), cpu)
    best = throughput.time_round_robin({"a": build(copy.deepcopy(net), "contiguous", "fp32")}, 2, 3, cpu)
    assert set(best) == {"a"} and 0 < best["a"] < float("inf")
