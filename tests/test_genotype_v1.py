"""Version-1 genotype files (workbench 0.1) load, translate to version 2 and rebuild the same network.

The reference numbers were computed with workbench 0.1 (commit 559e23a, before search spaces became
plugins) from the genotypes committed in benchmarks/results/gpu/: the parameter count, and the
output on a fixed input of the network built right after `torch.manual_seed(0)`. Equal numbers mean
the same modules, created in the same order, computing the same function. Workbench 0.1 kept every
part a genotype names; the network today drops the parts no output reads after creating them, so
it has fewer parameters (`UNREAD_PARAMS`) and the same output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_chain_unread import every_part

from workbench.nas.genotypes import GENOTYPE_VERSION, load_genotype, save_genotype
from workbench.nas.network import build_network

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
V1_REFERENCE = {  # file: (space, parameters, output sum, output |sum|) at 1x3x64x128, seeds 0 (weights) and 1 (input)
    "gpu/gpu_search_genotype.json": ("cells", 190139, -302.3175953114405, 11928.017110980116),
    "gpu/gpu_autortnet_genotype.json": ("hyper", 59419, -4287.518704232061, 12066.661432203138),
}

# parameters of the parts no output reads: gpu_search_genotype's fusion cell (32 channels) keeps no
# edge from its inputs 3 and 4 (cells 3 and 4, 32 and 64 channels): their 1x1 convs and BNs
UNREAD_PARAMS = {"gpu/gpu_search_genotype.json": (32 + 64) * 32 + 2 * (2 * 32), "gpu/gpu_autortnet_genotype.json": 0}


def _build(source):
    torch.manual_seed(0)
    net = build_network(source).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        return net, net(torch.randn(1, 3, 64, 128)).double()


@pytest.mark.parametrize("name", sorted(V1_REFERENCE))
def test_version_1_genotypes_rebuild_the_same_network(name, tmp_path, monkeypatch):
    space, params, out_sum, out_abs = V1_REFERENCE[name]
    raw = json.loads((RESULTS / name).read_text())
    assert raw["version"] == 1
    g = load_genotype(RESULTS / name)
    assert g.space == space
    v2 = save_genotype(g, tmp_path / "genotype.json")
    assert json.loads(v2.read_text())["version"] == GENOTYPE_VERSION == 2
    net, y = _build(RESULTS / name)
    assert sum(p.numel() for p in net.parameters()) == params - UNREAD_PARAMS[name]
    assert float(y.sum()) == pytest.approx(out_sum, rel=1e-6)
    assert float(y.abs().sum()) == pytest.approx(out_abs, rel=1e-6)
    # written again it is a version-2 file that builds the same network
    net2, y2 = _build(v2)
    assert torch.equal(y, y2)
    # a 0.1 checkpoint (modules named cells.*, fusion.* / aggregation.* on the network, every part
    # built) loads, its unread parts' tensors dropped, and computes the same
    with monkeypatch.context() as m:
        every_part(m)
        old, y_old = _build(RESULTS / name)
    assert sum(p.numel() for p in old.parameters()) == params and torch.equal(y_old, y)
    old_names = {k.replace("body.cells.", "cells.").replace("body.multi.", "fusion." if space == "cells" else
                                                                            "aggregation."): v
                 for k, v in old.state_dict().items()}
    net2.load_state_dict(old_names)
    with torch.no_grad():
        torch.manual_seed(1)
        assert torch.equal(net2(torch.randn(1, 3, 64, 128)).double(), y)
