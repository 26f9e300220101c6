"""One-shot selection on another run's trained supernet (`one_shot_supernet`) and its measured
gate (`sample_measure`: timed after scoring, best score first)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import recomputed_one_shot_score
from test_autortnet import autortnet, genotype_of, write_toy_lut

from workbench import runs
from workbench.errors import ConfigError
from workbench.nas import search
from workbench.nas.genotypes import load_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.one_shot import select_one_shot
from workbench.nas.search_data import build_datasets, split_halves
from workbench.nas.selection import Measured

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny single-path search (seed 5) and the target its draws are priced around."""
    root = tmp_path_factory.mktemp("one_shot")
    lut_path = write_toy_lut(autortnet(), root / "lut.json")
    lut = json.loads((root / "lut.json").read_text())
    model = search.build_supernet(search.resolve_config(autortnet()), 19)
    prices = sorted(predict_genotype_latency(genotype_of(model, (32, 64), b), lut) for b in model.random_bodies(16, 9))
    cfg = autortnet(epochs=2, seed=5, max_val_images=0, lut_path=lut_path, weight_paths="sampled",
                    strategy="one_shot", target_latency_ms=prices[8], sample_band=0.5, sample_candidates=3,
                    one_shot_calib=4)
    assert search.run_search(cfg, root / "supernet")["status"] == "finished"
    return SimpleNamespace(root=root, cfg=cfg, lut=lut, target_ms=prices[8])


def test_one_shot_strategy_keeps_the_priced_draw_its_trained_supernet_scores_best(trained, tmp_path):
    """strategy: one_shot trains single paths without architecture steps, scores the priced draws on
    the trained supernet (each run alone, batch norm re-estimated, mIoU on the architecture half) and
    keeps the best; a recomputed score matches the recorded one; bad settings are one-line errors."""
    from workbench.nas.rederive import rederive

    run_dir, cfg = trained.root / "supernet", trained.cfg
    rec = runs.RunDir(run_dir).record()
    assert rec["status"] == "finished" and rec["one_shot"]["candidates"] == 3
    table = json.loads((run_dir / "candidates.json").read_text())
    scores = [c["one_shot_miou"] for c in table["candidates"]]
    assert table["winner"] == scores.index(max(scores)) == rec["one_shot"]["winner"]
    assert all(abs(c["price_ms"] / trained.target_ms - 1) <= 0.5 for c in table["candidates"])
    winner = table["candidates"][table["winner"]]
    assert load_genotype(run_dir / "genotype.json").to_dict() == winner["genotype"]
    alphas = runs.RunDir(run_dir).alphas()
    assert alphas[0]["cells"] == alphas[-1]["cells"]  # no architecture step was taken
    # the recorded score, recomputed from the checkpoint on the architecture half
    assert recomputed_one_shot_score(cfg, run_dir, winner["genotype"], 5) == pytest.approx(winner["one_shot_miou"],
                                                                                           abs=1e-6)
    with pytest.raises(ConfigError, match="strategy: 'one_shot' scores single networks"):
        search.resolve_config({**cfg, "weight_paths": "relaxed"})
    with pytest.raises(ConfigError, match="strategy: 'one_shot' scores architectures priced near a target"):
        search.resolve_config({**cfg, "target_latency_ms": None})
    with pytest.raises(ConfigError, match="nothing to re-derive"):
        rederive(run_dir)
    # the views read it as a search (its training curves), not as a selection with rungs
    from widgets.report import build_report
    from widgets.selection import load_candidates

    assert load_candidates(run_dir) is None
    assert "Search curves" in build_report(run_dir, tmp_path / "report.html").read_text()


def test_a_second_selection_scores_the_trained_supernet_without_training(trained, tmp_path):
    supernet_dir = trained.root / "supernet"
    before = (supernet_dir / "checkpoints" / "last.pt").read_bytes()
    cfg = {**trained.cfg, "seed": 6, "sample_candidates": 4, "one_shot_supernet": str(supernet_dir)}
    rec = search.run_search(cfg, tmp_path / "again")
    assert rec["status"] == "finished" and rec["one_shot"]["candidates"] == 4
    assert rec["one_shot_supernet"]["seed"] == 5 and rec["one_shot_supernet"]["epochs"] == 2
    assert len(rec["one_shot_supernet"]["checkpoint_sha256"]) == 64
    assert not (tmp_path / "again" / "checkpoints").exists()  # nothing trained, nothing saved
    assert (supernet_dir / "checkpoints" / "last.pt").read_bytes() == before  # the source is untouched
    # the winner's score recomputed: the supernet's weights, its seed's halves, this run's calibration draw
    table = json.loads((tmp_path / "again" / "candidates.json").read_text())
    scores = [c["one_shot_miou"] for c in table["candidates"]]
    assert table["winner"] == scores.index(max(scores))
    winner = table["candidates"][table["winner"]]
    assert recomputed_one_shot_score(cfg, supernet_dir, winner["genotype"], 5) == pytest.approx(winner["one_shot_miou"],
                                                                                                abs=1e-6)
    assert load_genotype(tmp_path / "again" / "genotype.json").to_dict() == winner["genotype"]


def _edited_copy(src, dst, config=None, record=None):
    shutil.copytree(src, dst)
    for name, changes in (("config.json", config), ("run_record.json", record)):
        if changes:
            data = json.loads((dst / name).read_text())
            data.update(changes)
            (dst / name).write_text(json.dumps(data))
    return dst


def test_a_supernet_of_another_kind_is_refused_in_one_line(trained, tmp_path):
    src = trained.root / "supernet"
    cases = [
        (tmp_path / "missing", "not a search run directory"),
        (_edited_copy(src, tmp_path / "relaxed", config={"weight_paths": "relaxed", "strategy": "gradient"}),
         "trained with weight_paths 'relaxed'"),
        (_edited_copy(src, tmp_path / "failed", record={"status": "failed"}), "the run is 'failed', not finished"),
    ]
    for path, message in cases:
        with pytest.raises(ConfigError, match=f"one_shot_supernet: {path}: {message}"):
            search.run_search({**trained.cfg, "one_shot_supernet": str(path)}, tmp_path / f"out-{path.name}")
        assert not (tmp_path / f"out-{path.name}").exists()  # refused before anything is written
    wider = {**trained.cfg, "nodes": 2, "one_shot_supernet": str(src)}
    with pytest.raises(ConfigError, match="its space is .*; score on a supernet of the same space and data"):
        search.run_search(wider, tmp_path / "out-wider")
    with pytest.raises(ConfigError, match="one_shot_supernet: only strategy 'one_shot'"):
        search.resolve_config({**trained.cfg, "strategy": "gradient", "one_shot_supernet": str(src)})


def test_the_measured_gate_times_the_best_scores_first_and_keeps_the_first_in_band(trained, tmp_path):
    """Timings follow the one-shot ranking: the best-scored candidate measured out of the band is
    passed over for the next; only the candidates up to the kept one are timed."""
    cfg = search.resolve_config({**trained.cfg, "sample_candidates": 4, "sample_measure": True,
                                 "target_latency_ms": None, "target_baseline": "fpn_mobilenetv3_small_050",
                                 "target_fraction": 0.9, "sample_measure_band": 0.1})
    train, _, num_classes = build_datasets(cfg)
    model = search.build_supernet(cfg, num_classes)
    model.load_state_dict(runs.RunDir(trained.root / "supernet").load_checkpoint()["model"])
    (tmp_path / "run").mkdir()
    target = {"ms": trained.target_ms, "fraction": 0.9, "baseline": "fpn_mobilenetv3_small_050"}
    timed = []

    def fake_timer(genotype):  # the first timing lands 50 % over the target, every later one on it
        timed.append(genotype.to_dict())
        return (0.9 * (1.5 if len(timed) == 1 else 1.0)), {"load": 0.0}

    measured = Measured(cfg, runs.RunDir(tmp_path / "run"), target, num_classes, time_ratio=fake_timer)
    holder = SimpleNamespace(cfg=cfg, run=runs.RunDir(tmp_path / "run"), device=torch.device("cpu"), model=model,
                             num_classes=num_classes, lut=trained.lut, target=target)
    genotype, summary = select_one_shot(holder, *split_halves(train, 5), measured)
    table = json.loads((tmp_path / "run" / "candidates.json").read_text())
    order = sorted(range(4), key=lambda i: (-table["candidates"][i]["one_shot_miou"], i))
    assert timed == [table["candidates"][order[0]]["genotype"], table["candidates"][order[1]]["genotype"]]
    assert table["winner"] == order[1] == summary["winner"] and summary["score_rank"] == 2
    assert summary["timings"] == 2 and summary["measured_miss_pct"] == pytest.approx(0.0)
    assert table["candidates"][order[0]]["measured_vs_target_pct"] == pytest.approx(50.0)
    assert all("measured_vs_target_pct" not in table["candidates"][i] for i in order[2:])
    assert genotype.to_dict() == table["candidates"][order[1]]["genotype"]
    # none within the band: one line naming what was measured
    far = Measured(cfg, runs.RunDir(tmp_path / "run"), target, num_classes, time_ratio=lambda g: (1.8, {}))
    far.store.clear()
    with pytest.raises(ConfigError, match=r"sample_measure: no candidate measured within ±10 % .*\+100.0 %"):
        select_one_shot(holder, *split_halves(train, 5), far)


def test_under_torchrun_only_rank_0_scores_the_candidates(trained, tmp_path):
    """Two processes on the trained supernet: each candidate is scored once (rank 0), and the
    result is the one a single process gets."""
    single = search.run_search({**trained.cfg, "one_shot_supernet": str(trained.root / "supernet")}, tmp_path / "one")
    settings = {k: v for k, v in trained.cfg.items() if k not in ("preset", "seed")}
    settings["one_shot_supernet"] = str(trained.root / "supernet")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "workbench",
           "search", "--preset", "autortnet", "--run-dir", str(tmp_path / "two"), "--seed", str(trained.cfg["seed"]),
           "--set", *(f"{k}={json.dumps(v)}" for k, v in settings.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("one-shot mIoU") == trained.cfg["sample_candidates"]  # was once per process
    rec = runs.RunDir(tmp_path / "two").record()
    assert rec["status"] == "finished" and rec["one_shot"]["winner"] == single["one_shot"]["winner"]
    assert load_genotype(tmp_path / "two" / "genotype.json").to_dict() == \
        load_genotype(tmp_path / "one" / "genotype.json").to_dict()
