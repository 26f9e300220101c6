"""The GAS / LGCNet supernet: a chain of DARTS search cells, an optional fusion cell, GCN guidance."""

from __future__ import annotations

from workbench.errors import GenotypeError
from workbench.nas.cells import CellSpec, chain_specs
from workbench.nas.chain import ChainBody
from workbench.nas.darts import CellSupernet, derive_cell, encode_cell
from workbench.nas.latency.expected import LatencyModel
from workbench.nas.latency.probes import Probe, cell_fixed_probes, head_probe, op_probe, stem_probe
from workbench.nas.operations import NONE
from workbench.nas.spaces.cells.config import CellsConfig
from workbench.nas.spaces.cells.fusion import fusion_spec


def supernet_specs(space: CellsConfig, stem_channels: int) -> list[CellSpec]:
    """The chain's cell specs, then the fusion cell's when LGCNet's fusion is on."""
    specs = chain_specs(space.layout(), stem_channels)
    if space.fusion:
        specs.append(fusion_spec(specs, stem_channels, space.fusion_inputs, space.fusion_stride,
                                 space.fusion_channels, space.fusion_nodes))
    return specs


def supernet_probes(specs: list[CellSpec], ops: list[str], stem_channels: int, head_channels: int,
                    num_classes: int, image: tuple[int, int]) -> list[Probe]:
    """Everything the expected latency and any derived genotype of this supernet need."""
    probes = [stem_probe(stem_channels, image),
              head_probe(specs[-1].channels, head_channels, num_classes, specs[-1].stride, image)]
    for spec in specs:
        probes += cell_fixed_probes(spec, image, 1, spec.nodes)
        probes += [op_probe(spec, src, op, image) for src, _ in spec.edges() for op in ops if op != NONE]
    return probes


class ChainSupernet(CellSupernet):
    """Stem -> searched cells (+ fusion cell) -> head."""

    def lut_probes(self, image: tuple[int, int]) -> list[Probe]:
        return supernet_probes(self.specs, self.ops, self.stem_channels, self.head_channels, self.num_classes, image)

    def latency_model(self, lut: dict) -> LatencyModel:
        return LatencyModel(lut, self.specs, self.ops, self.stem_channels, self.head_channels, self.num_classes)

    def derive(self) -> ChainBody:
        """The DARTS rule on the noise-free relaxed weights, cell by cell."""
        cells = [derive_cell(s, w, self.ops) for s, w in zip(self.specs, self.arch_weights(sample=False))]
        chain = [c for c in cells if c.kind in ("normal", "reduction")]
        fusion = next((c for c in cells if c.kind == "fusion"), None)
        return ChainBody(list(self.ops), chain, fusion=fusion)

    def exact_weights(self, body: ChainBody) -> list[list[list[float]]]:
        """`derive`'s inverse as plain floats: each cell's one-hot weights, so every SearchCell runs
        only its selected edges (GCN guidance does not apply to given weights)."""
        chain = [k for k, s in enumerate(self.specs) if s.kind in ("normal", "reduction")]
        fusion = [k for k, s in enumerate(self.specs) if s.kind == "fusion"]
        if len(body.cells) != len(chain) or (body.fusion is None) != (not fusion):
            raise GenotypeError(f"cells: {len(body.cells)} cells{' and a fusion cell' if body.fusion else ''} "
                                f"for a supernet of {len(chain)}{' and a fusion cell' if fusion else ''}")
        picked = dict(zip(chain, body.cells)) | ({fusion[0]: body.fusion} if fusion else {})
        return [encode_cell(spec, picked[k], self.ops, f"cell {k}").tolist() for k, spec in enumerate(self.specs)]

    def space_state(self) -> dict | None:
        return {"gamma": self.gamma} if self.gcn is not None else None
