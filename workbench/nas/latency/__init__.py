"""Latency: what a network costs on the target device, timed piece by piece and predicted.

`probes` (the pieces to time, keyed by self-describing signatures such as
"op/sep_conv_3x3/c32/s1/16x32"), `timing` (round-robin timing and the per-device cache), `table`
(the latency table, its calibration, and the latency a table predicts for a genotype) and
`expected` (the differentiable expected latency of a cell supernet, and the latency loss). A
search space lists its probes and its expected-latency model (`workbench.nas.space`).
"""
