"""Derived chain networks leave out the parts no output reads (a cell the aggregation does not read,
an input no kept edge reads): the same function with fewer parameters, priced without them, and
checkpoints of networks that built every part load unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import workbench.nas.chain as chain
from workbench.nas.genotypes import load_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.network import build_network
from workbench.nas.space import get_space
from workbench.seg.distributed import unused_parameters

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
DEAD_CELL = RESULTS / "proxy_genotypes" / "autortnet-lw0.5-s500-x2.json"


def every_part(monkeypatch) -> None:
    """Build networks as workbench did before it left unread parts out: every cell, input and edge."""
    monkeypatch.setattr(chain, "live_cells", lambda body: list(range(len(body.cells))))
    monkeypatch.setattr(chain, "live_inputs", lambda cell: list(range(cell.n_inputs)))
    monkeypatch.setattr(chain, "live_edges", lambda cell: list(range(len(cell.edges))))


def _with_bn_stats(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics, so an eval-mode output depends on every buffer."""
    gen = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return net.eval()


def _without_cell_2() -> dict:
    """The dead-cell genotype with its cell 2 (the trellis's last layer) pruned away."""
    raw = json.loads(DEAD_CELL.read_text())
    raw["body"]["cells"] = raw["body"]["cells"][:2]
    trellis = raw["body"]["trellis"]
    assert trellis["path"][-1] == {"layer": 5, "choice": "down", "stride": 32}
    trellis["path"][-1] = {"layer": 5, "choice": "prune", "stride": 16}
    trellis.update(depth=2, output_stride=16)
    return raw


def _output(net: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return net(torch.randn(1, 3, 128, 256, generator=torch.Generator().manual_seed(1)))


def test_a_cell_no_output_reads_is_not_built_and_the_network_is_the_genotype_without_it():
    g = load_genotype(DEAD_CELL)
    assert [c.index for c in g.body.cells] == [0, 1, 2] and g.body.aggregation.inputs == [-1, 0, 1]
    net = _with_bn_stats(build_network(DEAD_CELL))
    assert net.body.unread == [2] and list(net.body.cells.keys()) == ["0", "1"]
    assert not any(k.startswith("body.cells.2.") for k in net.state_dict())
    # the reference: the same genotype with cell 2 deleted, built by the ordinary path
    ref = build_network(_without_cell_2()).eval()
    assert set(ref.state_dict()) == set(net.state_dict())
    ref.load_state_dict(net.state_dict())
    assert torch.equal(_output(ref), _output(net))
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ref.parameters())
    # the genotype keeps cell 2 as derived; its description and summary say it is not built
    assert "read by no output: dropped" in g.body.lines()[2] and "dropped" not in g.body.lines()[1]
    assert chain.chain_summary(g.body)["unread_cells"] == [2]
    # no trainable parameter is left without a gradient, so DDP needs no unused-parameter search
    assert unused_parameters(net, net.size_divisor, torch.device("cpu")) == []


def test_a_checkpoint_of_the_network_with_every_part_loads_and_computes_the_same(monkeypatch):
    with monkeypatch.context() as m:
        every_part(m)
        torch.manual_seed(0)
        full = build_network(DEAD_CELL)
    torch.manual_seed(0)
    net = build_network(DEAD_CELL).eval()
    # the kept parts draw the initial weights they drew when every part was kept: a stored genotype
    # retrained from the same seed starts from the same network
    assert all(torch.equal(v, full.state_dict()[k]) for k, v in net.state_dict().items())
    full = _with_bn_stats(full)
    extra = set(full.state_dict()) - set(net.state_dict())
    assert extra and all(k.startswith("body.cells.2.") for k in extra)
    assert set(net.state_dict()) < set(full.state_dict())
    net.load_state_dict(full.state_dict())  # strict: only the unread parts' tensors are dropped
    assert torch.equal(_output(net), _output(full))
    # anything else that does not fit is still refused
    bad = {**full.state_dict(), "body.cells.1.edge_ops.99.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError, match="edge_ops.99"):
        net.load_state_dict(bad)


def _unit_table(genotype, monkeypatch) -> dict:
    """A table where every piece costs 1 ms, over every piece a network of this genotype could build."""
    with monkeypatch.context() as m:
        every_part(m)
        probes = get_space(genotype.space).genotype_probes(genotype, tuple(genotype.input_size))
    return {"input_size": list(genotype.input_size), "entries": {p.key: 1.0 for p in probes}, "calibration": None}


def test_an_input_no_kept_edge_reads_is_neither_built_nor_priced(monkeypatch):
    g = load_genotype(RESULTS / "gpu" / "gpu_search_genotype.json")
    fusion = g.body.fusion
    assert fusion.inputs == [0, 1, 2, 3, 4, 5] and {e.src for e in fusion.edges} == {0, 1, 2, 5}
    net = build_network(g)
    assert list(net.body.multi.preprocess.keys()) == ["0", "1", "2", "5"]
    assert net.body.unbuilt_prefixes() == ["multi.preprocess.3.", "multi.preprocess.4."]
    # counted by hand: stem + head; six chain cells of 2 read inputs, 3 nodes of in-degree 2 (3 adds),
    # 1 concat conv and 6 edges; the fusion: 4 read inputs, 2 nodes of in-degree 2, 1 concat, 4 edges
    assert all(len(c.edges) == 6 and {e.src for e in c.edges} >= {0, 1} for c in g.body.cells)
    expected = 2 + 6 * (2 + 3 + 1 + 6) + (4 + 2 + 1 + 4)
    assert predict_genotype_latency(g, _unit_table(g, monkeypatch)) == pytest.approx(expected)
    with monkeypatch.context() as m:
        every_part(m)
        assert predict_genotype_latency(g, _unit_table(g, monkeypatch)) == pytest.approx(expected + 2)


def test_a_cell_no_output_reads_costs_nothing_in_the_table(monkeypatch):
    g = load_genotype(DEAD_CELL)
    trimmed = load_genotype(_without_cell_2())
    table = _unit_table(g, monkeypatch)
    table["entries"] = {k: float(len(k)) for k in table["entries"]}  # pieces of unequal prices
    price = predict_genotype_latency(g, table)
    assert price == pytest.approx(predict_genotype_latency(trimmed, table))
    with monkeypatch.context() as m:
        every_part(m)
        assert predict_genotype_latency(g, table) > price + 100
