"""GAS / LGCNet: a chain of cell-independent DARTS cells, GCN guidance, LGCNet's fusion cell.

Stem to 1/4, then `num_cells` cells; each cell has two inputs (the previous two cells), `nodes`
intermediate nodes and a mixed-op edge from every earlier node; reduction cells sit at the
`reductions` indices. Every cell has its own alpha (GAS), or normal and reduction cells share one
each (`cell_sharing`, DARTS). The GCN-guided module passes each cell's relaxed alphas to the next
(`workbench.nas.gcn`); LGCNet's fusion cell densely fuses every cell's output at one scale
(`fusion.py`). Derivation is the DARTS rule; the body is a `workbench.nas.chain.ChainBody`, which
may also end in an aggregation cell (hand-written genotypes; a search here derives a fusion cell).
"""

from __future__ import annotations

from workbench.nas.chain import ChainBody, ChainNet, chain_probes, chain_summary, parse_chain, repeat_cells
from workbench.nas.space import SearchSpace, register_space
from workbench.nas.spaces.cells.config import CellsConfig
from workbench.nas.spaces.cells.supernet import ChainSupernet, supernet_specs


@register_space
class CellsSpace(SearchSpace):
    name = "cells"
    config = CellsConfig
    arm_keys = ("cell_sharing", "gcn", "gamma", "fusion")

    def build_supernet(self, cfg, num_classes: int) -> ChainSupernet:
        s = cfg.space
        return ChainSupernet(supernet_specs(s, cfg.stem_channels), s.ops, cfg.stem_channels, cfg.head_channels,
                             num_classes, cell_sharing=s.cell_sharing, gcn=s.gcn, gamma=s.gamma,
                             gcn_hidden=s.gcn_hidden, relaxation=cfg.relaxation)

    def arm(self, space_cfg: dict) -> dict:
        arm = super().arm(space_cfg)
        if not arm["gcn"]:
            arm["gamma"] = None  # gamma does nothing without the GCN module
        return arm

    def parse_body(self, body: dict, source: str) -> ChainBody:
        return parse_chain(body, source, multi=("fusion", "aggregation"))

    def deepen(self, body: dict, repeats: int, source: str) -> dict:
        return repeat_cells(body, repeats)[0]

    def build_body(self, genotype) -> ChainNet:
        return ChainNet(genotype.body, genotype.stem_channels)

    def genotype_probes(self, genotype, image: tuple[int, int]) -> list:
        return chain_probes(genotype.body, genotype.stem_channels, genotype.head_channels, genotype.num_classes, image)

    def summary(self, body: ChainBody) -> dict:
        return chain_summary(body)
