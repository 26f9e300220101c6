"""workbench.seg.kernel_check: a memory format / precision that computes a convolution wrongly is caught
and never trained with."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.errors import ConfigError
from workbench.seg import kernel_check, throughput


class _WrongInChannelsLast(torch.nn.Conv2d):
    """A convolution whose kernel is broken in channels_last (as channels_last + bf16 dilated depthwise
    convolutions are on the AMX Xeon): its weight gradient comes out scaled, or NaN."""

    nan = False

    def forward(self, x):
        out = super().forward(x)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            scale = float("nan") if self.nan else 3.0
            out = out + (scale - 1) * (out - out.detach())  # same value, wrong gradients
        return out


def _net(nan: bool = False):
    torch.manual_seed(0)
    wrong = _WrongInChannelsLast(8, 8, 3, padding=2, dilation=2, groups=8)
    wrong.nan = nan
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), wrong,
                               torch.nn.Conv2d(8, 4, 1))


@pytest.mark.parametrize("nan", [False, True])
def test_a_wrong_convolution_is_named_and_healthy_pairs_pass(nan):
    model, images = _net(nan), torch.randn(2, 3, 16, 16)
    stats = model[1].running_mean.clone()
    wrong = kernel_check.wrong_convolutions(model, images, ("channels_last", "fp32"))
    assert list(wrong) == ["2"] and wrong["2"] > kernel_check.TOLERANCE
    assert wrong["2"] == float("inf") if nan else wrong["2"] == pytest.approx(2.0, rel=0.01)  # grads 3x: error 2
    # bf16 rounding of real kernels stays inside the tolerance (the contiguous pair is not broken here)
    assert kernel_check.wrong_convolutions(model, images, ("contiguous", "bf16")) == {}
    assert kernel_check.wrong_convolutions(model, images, kernel_check.REFERENCE) == {}
    assert torch.equal(model[1].running_mean, stats)  # the shape pass ran on a copy


def test_conv_shapes_are_the_shapes_met_in_training():
    shapes = kernel_check.conv_shapes(_net(), torch.randn(2, 3, 16, 12))
    assert {n: s for n, (_, s) in shapes.items()} == {"0": (2, 3, 16, 12), "2": (2, 8, 16, 12), "3": (2, 8, 16, 12)}


def test_choose_drops_a_pair_with_a_wrong_convolution_and_refuses_it_alone():
    model = _net()
    images, labels = torch.randn(2, 3, 16, 16), torch.randint(0, 4, (2, 16, 16))

    def make_step(twin, fmt, prec):
        opt = torch.optim.SGD(twin.parameters(), lr=0.1)

        def step():
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                out = twin(throughput.to_format(images, fmt))
            F.cross_entropy(out.float(), labels).backward()
            opt.step()
        return step

    pairs = [(f, p) for f in ("contiguous", "channels_last") for p in ("fp32", "bf16")]
    cpu = torch.device("cpu")
    choice = throughput.choose(model, make_step, pairs, cpu, images, rounds=1, steps=1)
    assert choice["wrong_convolutions"] == {"channels_last+fp32": ["2"], "channels_last+bf16": ["2"]}
    assert set(choice["step_ms"]) == {"contiguous+fp32", "contiguous+bf16"}  # never run, so never timed
    assert choice["memory_format"] == "contiguous"
    with pytest.raises(ConfigError, match=r"memory_format/precision: channels_last\+bf16 computes 1 convolution"):
        throughput.choose(model, make_step, [("channels_last", "bf16")], cpu, images)
    assert throughput.choose(model, make_step, [("contiguous", "bf16")], cpu, images)["measured"] is False


def test_choose_drops_a_pair_whose_probe_steps_go_non_finite():
    """A candidate whose probe step diverges at lr 1e-6 (as the wrong kernel's NaN did in `make demo`, before
    the convolution check) is dropped with the reason recorded, not the run; all diverging is the run's error."""
    from workbench.errors import DivergedError

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 1))
    images = torch.randn(2, 3, 8, 8)
    calls = {}

    def make_step(twin, fmt, prec, bad=(("channels_last", "fp32"),)):
        def step():
            calls[(fmt, prec)] = calls.get((fmt, prec), 0) + 1
            if (fmt, prec) in bad and calls[(fmt, prec)] >= 3:  # the third call, inside the timed rounds
                raise DivergedError("throughput probe is nan: training diverged")
            twin(images).sum().backward()
        return step

    pairs = [("contiguous", "fp32"), ("channels_last", "fp32")]
    choice = throughput.choose(model, make_step, pairs, torch.device("cpu"), images, rounds=2, steps=1)
    assert choice["diverged"] == ["channels_last+fp32"] and set(choice["step_ms"]) == {"contiguous+fp32"}
    assert (choice["memory_format"], choice["precision"]) == ("contiguous", "fp32")
    with pytest.raises(DivergedError):
        throughput.choose(model, lambda t, f, p: make_step(t, f, p, bad=pairs), pairs, torch.device("cpu"), images,
                          rounds=2, steps=1)
