"""Ablation studies of the seed papers' claims: collect run directories, aggregate seeds, judge claims.

Modules: `collect` (runs -> rows -> arms), `stats` (seeds -> mean and spread, comparisons against
the noise), `claims` (one function per claim, and `summarize`). Running a study (its sweeps) is
`workbench.lab.study`; its tables and figures are `widgets.ablations`.

The study is a set of `workbench batch` sweeps (benchmarks/ablations.yaml) that write ordinary run
directories; everything here only reads them (`summarize`), so the same code judges the full study,
the smoke version and any hand-made set of runs. An *arm* is one setting of the swept switches
(space, cell_sharing, gcn, gamma, fusion, latency_weight, ...; or a baseline name; or the VOS
attention switch); its runs differ only in the seed. Per arm and metric we report the mean, the
sample standard deviation and min/max over seeds. A comparison of two arms is decided against the
noise: a difference counts when it exceeds `k` standard errors of the difference
(se = sqrt(s_a^2/n_a + s_b^2/n_b)), otherwise it is "within noise". With fewer than 2 seeds on a
side there is no spread, and no verdict beyond "inconclusive".

Verdicts: "held", "did not hold", "mixed" (held in one context, not in another), "inconclusive"
(within noise, too few seeds, or arms trained with different budgets), "not measured".
"""

