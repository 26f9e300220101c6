"""AutoRTNet: hyper-cells search depth and downsampling; an aggregation cell fuses the scales.

The network is `layers` deep and its features live on a trellis of scales 1/4 ... 1/os (os, the
required output stride, 32 by default). At every layer a hyper-cell holds three searched weights:
keep the scale (a normal cell), downsample (a reduction cell into the next scale) or prune
(identity: the layer is skipped and the network is shallower). A discrete choice sequence is a
path through the trellis; it is valid when it ends at 1/os. The relaxed network is a Markov chain
over valid paths (`trellis.py`), differentiable in the hyper weights, the op weights and the
aggregation weights; `decode.py` turns them into a chain of cells (`workbench.nas.chain`) with
the aggregation cell and the decoded path ("trellis" in the body).
"""

from __future__ import annotations

from workbench.errors import GenotypeError
from workbench.nas.chain import ChainBody, ChainNet, chain_probes, parse_chain, repeat_cells
from workbench.nas.space import SearchSpace, register_space
from workbench.nas.spaces.hyper.config import HyperConfig
from workbench.nas.spaces.hyper.supernet import HyperSupernet
from workbench.nas.spaces.hyper.trellis import CHOICES, HyperSpace


@register_space
class HyperCellSpace(SearchSpace):
    name = "hyper"
    config = HyperConfig
    arm_keys = ("cell_sharing", "aggregation")

    def build_supernet(self, cfg, num_classes: int) -> HyperSupernet:
        return HyperSupernet(HyperSpace.of(cfg), num_classes, cfg.space.cell_sharing, cfg.relaxation)

    def parse_body(self, body: dict, source: str) -> ChainBody:
        chain = parse_chain(body, source, multi=("aggregation",))
        trellis = chain.extra.get("trellis")
        if not isinstance(trellis, dict) or not isinstance(trellis.get("path"), list):
            raise GenotypeError(f"{source}: missing field 'trellis' (the decoded path)")
        for j, step in enumerate(trellis["path"]):
            if not isinstance(step, dict) or step.get("choice") not in CHOICES:
                raise GenotypeError(f"{source}: trellis.path[{j}]: unknown choice {step!r}")
        kept = [s for s in trellis["path"] if s["choice"] != "prune"]
        if ([s.get("stride") for s in kept] != [c.stride for c in chain.cells]
                or [s["choice"] == "down" for s in kept] != [c.kind == "reduction" for c in chain.cells]):
            raise GenotypeError(f"{source}: trellis.path does not match 'cells' (one cell per non-pruned layer, "
                                "a reduction cell where the path downsamples)")
        return chain

    def deepen(self, body: dict, repeats: int, source: str) -> dict:
        """Repeat each kept layer of the path: a repeated layer keeps the stride ("keep")."""
        deeper, _ = repeat_cells(body, repeats)
        path = []
        for step in body["trellis"]["path"]:
            copies = 1 if step["choice"] == "prune" else repeats
            path += [{**step, "choice": step["choice"] if r == 0 else "keep"} for r in range(copies)]
        deeper["trellis"] = {**body["trellis"], "path": [{**step, "layer": i} for i, step in enumerate(path)]}
        return deeper

    def build_body(self, genotype) -> ChainNet:
        return ChainNet(genotype.body, genotype.stem_channels)

    def genotype_probes(self, genotype, image: tuple[int, int]) -> list:
        return chain_probes(genotype.body, genotype.stem_channels, genotype.head_channels, genotype.num_classes, image)

    def summary(self, body: ChainBody) -> dict:
        path = body.extra["trellis"]["path"]
        return {"depth": sum(1 for p in path if p["choice"] != "prune"),
                "downsampling": [int(p["layer"]) for p in path if p["choice"] == "down"]}
