"""Latency-constrained architecture search for real-time segmentation (GAS, LGCNet, AutoRTNet).

One supernet framework; the papers are presets of it (`presets.py`). Reading order:
operations -> cells -> model_search (MixedOp, SearchCell, Supernet) -> gcn, fusion -> latency ->
architect -> search -> derive -> genotypes -> network.
"""
