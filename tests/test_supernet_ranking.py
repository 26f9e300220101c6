"""benchmarks/supernet_ranking.py: does the supernet rank networks as retraining them does?"""

from __future__ import annotations

import json
import math

import pytest
from conftest import load_benchmark

from workbench.nas.genotypes import Genotype, load_genotype, save_genotype
from workbench.nas.search import build_supernet, resolve_config, run_search


def test_tau_interval_noise_ceiling_and_verdicts_on_known_inputs():
    mod = load_benchmark("supernet_ranking")
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    same = mod.tau_with_interval(x, [v * 2 for v in x])
    assert same["tau"] == pytest.approx(1.0) and same["ci95"] == pytest.approx([1.0, 1.0])
    assert same["spearman"] == pytest.approx(1.0) and same["n"] == 6
    assert mod.tau_with_interval(x, x[::-1])["tau"] == pytest.approx(-1.0)
    # no retrain noise: a perfect ranker agrees perfectly; noise far above the spread: near chance
    assert mod.noise_ceiling(x, 0.0, draws=50) == pytest.approx(1.0)
    assert abs(mod.noise_ceiling(x, 10.0, draws=400)) < 0.1
    assert mod.verdict([0.05, 0.6], 0.8) == "ranks networks as retraining does"
    assert mod.verdict([-0.3, 0.35], 0.8) == "does not rank networks as retraining does"
    assert mod.verdict([-0.3, 0.45], 0.8) == "inconclusive"


def test_scores_retrained_networks_in_a_finished_search_and_refuses_bad_input(tiny_camvid, tmp_path, capsys):
    mod = load_benchmark("supernet_ranking")
    cfg = dict(preset="autortnet", dataset="camvid", data_root=str(tiny_camvid), input_size=[64, 128],
               crop_size=[64, 128], channels=4, stem_channels=4, head_channels=4, nodes=1, layers=4,
               batch_size=2, max_val_images=2, warmup_epochs=0, lut_warmup=0, lut_repeats=1, threads=1,
               device="cpu", epochs=2, lut_cache_dir=str(tmp_path / "lut"))
    run_search(cfg, tmp_path / "search")
    own = load_genotype(tmp_path / "search" / "genotype.json")
    model = build_supernet(resolve_config(cfg), own.num_classes)
    (tmp_path / "g").mkdir()
    save_genotype(own, tmp_path / "g" / "net-s0.json")
    for seed, body in enumerate(model.random_bodies(3, seed=7), start=1):
        save_genotype(Genotype(space="hyper", body=body, stem_channels=4, head_channels=4,
                               num_classes=own.num_classes, input_size=(64, 128), preset="autortnet"),
                      tmp_path / "g" / f"net-s{seed}.json")
    record = {"stats": {"searched": {"runs": [{"run": f"root/net-s{s}/retrain", "miou": 0.3 + 0.01 * s}
                                              for s in range(4)]},
                        "fpn050": {"runs": [{"run": f"root/fpn-s{s}/retrain", "miou": m}
                                            for s, m in enumerate([0.40, 0.41, 0.42])]}}}
    (tmp_path / "compare.json").write_text(json.dumps(record))
    spec = f"{tmp_path / 'compare.json'}:searched:{tmp_path / 'g'}/{{name}}.json"
    out = tmp_path / "out.json"
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "search").rglob("*")}
    assert mod.main([str(tmp_path / "search"), "--compare", spec, "--calib-images", "4", "--batch", "2",
                     "--threads", "1", "--json", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "search").rglob("*")} == before  # read only
    result = json.loads(out.read_text())
    scores = result["supernets"][str(tmp_path / "search")]["scores"]
    assert sorted(scores) == [f"net-s{s}" for s in range(4)]
    assert [scores[f"net-s{s}"]["own_derived"] for s in range(4)] == [True, False, False, False]
    assert all(0.0 <= r["one_shot_miou"] <= 1.0 and r["alpha_logprob"] < 0 for r in scores.values())
    assert 0.0 <= result["supernets"][str(tmp_path / "search")]["relaxed_miou"] <= 1.0
    assert result["baseline_seed_values"] == [0.40, 0.41, 0.42]
    analysis = result["analysis"]
    assert analysis["networks"] == 4 and analysis["retrain_noise_std"] == pytest.approx(0.01)
    assert analysis["one_shot_miou"]["n"] == 4 and -1.0 <= analysis["one_shot_miou"]["tau"] <= 1.0
    per = analysis["per_supernet"][str(tmp_path / "search")]
    assert per["own_derived_rank"].keys() == {"net-s0"} and 1 <= per["own_derived_rank"]["net-s0"] <= 4
    assert not math.isnan(analysis["alpha_logprob"]["tau"])
    capsys.readouterr()
    # bad input: one error line naming it, exit 2
    assert mod.main([str(tmp_path / "search"), "--compare", "no-colons", "--json", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.strip() == "error: --compare: 'no-colons': expected RECORD:ARM:GENOTYPE_PATTERN"
    missing = f"{tmp_path / 'compare.json'}:searched:{tmp_path}/nowhere/{{name}}.json"
    assert mod.main([str(tmp_path / "search"), "--compare", missing, "--json", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: --compare: {tmp_path}/nowhere/net-s0.json: no genotype for net-s0"
    assert mod.main([str(tmp_path), "--compare", spec, "--json", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path}: not a readable search run directory")
    assert not (tmp_path / "b.json").exists()
