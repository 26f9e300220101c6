"""Retrain, evaluate, predict, benchmark and export segmentation networks.

A network comes either from a searched `genotype.json` (`workbench.nas.network.build_network`) or
from a hand-designed baseline (`workbench.seg.baselines`); every step below treats both the same
way (`workbench.seg.model`).
"""
