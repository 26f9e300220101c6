"""Selection by training (`strategy: sample`): held-out split, halving rule, the run end to end,
resume, and its refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from workbench import runs
from workbench.allocator import loaded_allocator
from workbench.data.segmentation import build_seg_dataset, holdout_split
from workbench.errors import CheckpointError, ConfigError
from workbench.nas import one_shot
from workbench.nas.genotypes import load_genotype
from workbench.nas.rederive import rederive
from workbench.nas.search import run_search
from workbench.nas.selection import survivors
from workbench.study.bench import finished_retrains


@pytest.fixture(autouse=True)
def keep_threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def config(root, lut_cache, **kw):
    return {"preset": "autortnet", "dataset": "camvid", "data_root": str(root), "input_size": [64, 128],
            "crop_size": [64, 128], "channels": 8, "stem_channels": 8, "head_channels": 8, "nodes": 2,
            "lut_warmup": 0, "lut_repeats": 1, "lut_calibrate": 0, "threads": 1, "device": "cpu",
            "lut_cache_dir": str(lut_cache), "target_latency_ms": 6.0, "strategy": "sample",
            "sample_candidates": 4, "sample_rungs": [1, 2], "sample_band": 0.6, "sample_holdout": 0.25,
            "sample_batch_size": 2, "sample_retrain": {"memory_format": "contiguous", "precision": "fp32"}, **kw}


def test_holdout_split_is_fixed_disjoint_and_unaugmented(tiny_camvid):
    train = build_seg_dataset("camvid", tiny_camvid, "train", train=True, crop_size=(32, 64))
    scored = build_seg_dataset("camvid", tiny_camvid, "train", train=False)
    a_train, a_scored = holdout_split(train, scored, 0.25)
    b_train, b_scored = holdout_split(train, scored, 0.25)
    assert len(a_scored) == 2 and len(a_train) == 6
    assert not set(a_train.indices) & set(a_scored.indices)
    assert sorted(a_train.indices + a_scored.indices) == list(range(8))
    assert a_scored.indices == b_scored.indices  # every candidate and seed is scored on the same images
    assert a_scored[0][0].shape[-2:] == (64, 128)  # full images, not training crops
    assert a_scored.num_classes == 11 and a_train.ignore_index == train.ignore_index
    with pytest.raises(ConfigError, match="holdout"):
        holdout_split(torch.utils.data.TensorDataset(torch.zeros(1)), scored, 0.5)


def test_survivors_keep_the_best_fraction_ties_to_the_earlier_draw():
    scores = {0: 0.2, 1: 0.5, 2: 0.5, 3: 0.1, 4: 0.3}
    assert survivors(scores, 0.5) == [1, 2, 4]  # ceil(2.5) = 3
    assert survivors(scores, 0.0) == [1]  # at least one goes on
    assert survivors(scores, 1.0) == [1, 2, 4, 0, 3]


def test_sample_run_keeps_the_best_held_out_candidate_and_resumes(tmp_path, tiny_camvid):
    cfg = config(tiny_camvid, tmp_path / "lut")
    rec = run_search(cfg, tmp_path / "run")
    assert rec["status"] == "finished" and rec["kind"] == "search"
    assert rec["latency_weight"] is None and rec["allocator"] == loaded_allocator()  # selection never reads a λ
    table = json.loads((tmp_path / "run" / "candidates.json").read_text())
    assert len(table["candidates"]) == 4
    for entry in table["candidates"]:  # priced by the run's own table within the band
        assert abs(entry["price_ms"] / 6.0 - 1) <= 0.6
    # the winner, recomputed from the candidates' own run records: best of the last rung
    last = {int(p.name.split("-c")[1]): runs.RunDir(p).record()["metrics"]["miou"]
            for p in (tmp_path / "run" / "candidates").glob("r1-c*")}
    assert len(last) == 2  # half of the four went on
    first = {int(p.name.split("-c")[1]): runs.RunDir(p).record()["metrics"]["miou"]
             for p in (tmp_path / "run" / "candidates").glob("r0-c*")}
    assert set(last) == set(sorted(first, key=lambda i: (-first[i], i))[:2])
    winner = max(last, key=lambda i: (last[i], -i))
    assert rec["selection"]["winner"] == winner
    genotype = load_genotype(tmp_path / "run" / "genotype.json")
    assert genotype.to_dict() == load_genotype(tmp_path / "run" / "candidates" / f"c{winner:02d}.json").to_dict()
    assert rec["metrics"]["expected_latency_ms"] == table["candidates"][winner]["price_ms"]
    # candidates trained on the held-out split's complement, and are no retrains a study benchmarks
    child = runs.RunDir(tmp_path / "run" / "candidates" / "r0-c00")
    assert child.record()["kind"] == "candidate" and child.read_config()["holdout"] == 0.25
    assert finished_retrains(tmp_path) == []
    with pytest.raises(ConfigError, match="nothing to re-derive"):
        rederive(tmp_path / "run")
    _check_views(tmp_path / "run", table, winner)

    # killed during the last rung: its runs and the result are gone; a resume finishes the same way
    shutil.copytree(tmp_path / "run", tmp_path / "killed")
    for p in (tmp_path / "killed" / "candidates").glob("r1-c*"):
        shutil.rmtree(p)
    (tmp_path / "killed" / "genotype.json").unlink()
    lut_before = (tmp_path / "killed" / "latency_lut.json").read_bytes()
    resumed = run_search({**cfg, "resume": True}, tmp_path / "killed")
    assert resumed["selection"] == rec["selection"]
    assert (tmp_path / "killed" / "latency_lut.json").read_bytes() == lut_before  # not re-timed
    assert json.loads((tmp_path / "killed" / "candidates.json").read_text()) == table


def _check_views(run_dir, table, winner):
    """The panel and the offline report draw the candidates (price x held-out score per rung)."""
    from widgets.panels import show_run
    from widgets.report import build_report
    from widgets.selection import candidate_rows, winner_of

    assert winner_of(table) == winner
    rows = candidate_rows(table)
    assert [r["rung1_2ep_miou_pct"] is not None for r in rows].count(True) == 2
    assert rows[winner]["rung1_2ep_miou_pct"] == round(100 * table["candidates"][winner]["scores"]["1"], 2)
    panel = show_run(run_dir, live=False)
    fig = panel.parts["curves"].figure
    assert [t.name for t in fig.data] == ["rung 0 (1 epochs)", "rung 1 (2 epochs)", f"kept: c{winner:02d}"]
    assert len(fig.data[0].x) == 4 and len(fig.data[1].x) == 2
    html = build_report(run_dir, run_dir / "report.html").read_text()
    assert ">Selection</h2>" in html and "Search curves" not in html and "rung1_2ep_miou_pct" in html


@pytest.mark.parametrize("change, message", [
    ({"target_latency_ms": None}, "strategy: 'sample' draws architectures priced near a target"),
    ({"dataset": "random"}, "strategy: 'sample' trains its candidates on a dataset"),
    ({"sample_rungs": []}, "sample_rungs"),
    ({"target_latency_ms": 0.01}, "sample_band: only 0 of 16"),
    ({"sample_retrain": {"epochs": 3}}, "sample_retrain: 'epochs' is set by the selection itself"),
    ({"sample_retrain": {"lrr": 0.1}}, "sample_retrain: unknown retrain field 'lrr'"),
    ({"sample_retrain": {"crop": [32, 64]}}, "sample_retrain: 'crop' is set by the selection itself"),
    ({"sample_measure": True}, "sample_measure: needs a baseline-relative target"),
])
def test_sample_refusals(tmp_path, tiny_camvid, change, message):
    cfg = config(tiny_camvid, tmp_path / "lut", sample_max_draws=16, **change)
    with pytest.raises(ConfigError, match=message):
        run_search(cfg, tmp_path / "run")
    if "sample_band" not in message:  # a bad setting is refused before the run directory is written
        assert not (tmp_path / "run").exists()


def test_sample_measure_keeps_only_candidates_measured_in_band_and_never_times_twice(tmp_path, tiny_camvid):
    """The measured gate: a candidate the table prices in the band but the timer measures outside
    sample_measure_band is dropped and the next priced draw taken; the timings are kept, so a resumed
    selection draws the same candidates without timing again; too many misses are refused."""
    import dataclasses
    import itertools

    from workbench.nas.search import build_supernet, lut_for, resolve_config
    from workbench.nas.selection import MEASUREMENTS, Measured, draw_candidates, priced_draws

    cfg = resolve_config({**config(tiny_camvid, tmp_path / "lut", target_latency_ms=None, sample_measure=True,
                                   target_baseline="fpn_mobilenetv3_small_050", target_fraction=0.5,
                                   sample_measure_band=0.1), "sample_band": 0.9})
    supernet, lut = build_supernet(cfg, 11), lut_for(cfg, 11)
    priced = [d for d, _ in itertools.islice(priced_draws(cfg, supernet, 11, lut, 6.0), 7)]  # the table alone
    target = {"ms": 6.0, "baseline": cfg.target_baseline, "fraction": 0.5}
    run = runs.RunDir(tmp_path / "run")
    run.path.mkdir()
    timed = []

    def timer(genotype):  # every other timed candidate measures 30 % above the target
        timed.append(genotype.to_dict())
        return 0.5 * (1.3 if len(timed) % 2 == 0 else 1.02), {"quiet": True}

    kept = draw_candidates(cfg, supernet, 11, lut, 6.0, Measured(cfg, run, target, 11, timer))
    assert len(kept) == 4 and len(timed) == 7  # 4 in band, 3 dropped between them
    assert [d for d, _ in kept] == priced[0::2]
    store = json.loads((run.path / MEASUREMENTS).read_text())
    assert len(store) == 7 and sorted(v["miss_pct"] for v in store.values())[-1] == 30.0

    def fail(genotype):
        raise AssertionError("timed again on resume")
    again = draw_candidates(cfg, supernet, 11, lut, 6.0, Measured(cfg, run, target, 11, fail))
    assert [d for d, _ in again] == [d for d, _ in kept]

    capped = dataclasses.replace(cfg, sample_measure_max=2)
    other = runs.RunDir(tmp_path / "other")
    other.path.mkdir()
    with pytest.raises(ConfigError, match=r"sample_measure: 2 timings spent .*\+30.0 %"):
        draw_candidates(capped, supernet, 11, lut, 6.0,
                        Measured(capped, other, target, 11, lambda g: (0.65, {"quiet": True})))


def test_prefilter_trains_the_draws_a_trained_supernet_scores_best(tmp_path, tiny_camvid, monkeypatch):
    """sample_prefilter: the priced draws are scored one-shot on another run's single-path supernet
    and only the best sample_candidates go to the training rungs, best score first; a resume reads
    them back (prefilter.json) unless the supernet changed since."""
    source = tmp_path / "supernet"
    run_search(config(tiny_camvid, tmp_path / "lut", strategy="gradient", weight_paths="sampled", epochs=1,
                      batch_size=2, max_val_images=0), source)
    cfg = config(tiny_camvid, tmp_path / "lut", one_shot_supernet=str(source), sample_prefilter=5,
                 sample_candidates=2, sample_rungs=[1], one_shot_calib=2, batch_size=2)
    rec = run_search(cfg, tmp_path / "run")
    assert rec["status"] == "finished"
    table = json.loads((tmp_path / "run" / "candidates.json").read_text())
    screened = table["prefilter"]
    assert screened["drawn"] == 5 and len(screened["scores"]) == 5 and screened["supernet"]["seed"] == 0
    best_two = sorted(screened["scores"], key=lambda d: -screened["scores"][d])[:2]
    assert sorted(screened["kept"]) == sorted(int(d) for d in best_two)
    assert [c["draw"] for c in table["candidates"]] == screened["kept"]  # best score first
    assert all(c["one_shot_miou"] == screened["scores"][str(c["draw"])] for c in table["candidates"])
    assert rec["selection"]["prefilter"]["drawn"] == 5
    assert len(list((tmp_path / "run" / "candidates").glob("r0-c*"))) == 2  # only the kept two trained
    stored = json.loads((tmp_path / "run" / "prefilter.json").read_text())
    assert [k["draw"] for k in stored["kept"]] == screened["kept"] and stored["record"] == screened

    # killed in its first rung: a resume reads the kept draws back instead of scoring 5 draws again
    shutil.copytree(tmp_path / "run", tmp_path / "killed")
    for p in [*(tmp_path / "killed" / "candidates").glob("r0-c*"), tmp_path / "killed" / "genotype.json"]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    monkeypatch.setattr(one_shot, "score_candidates", lambda *a, **k: pytest.fail("scored again on resume"))
    resumed = run_search({**cfg, "resume": True}, tmp_path / "killed")
    assert resumed["selection"] == rec["selection"]
    assert json.loads((tmp_path / "killed" / "candidates.json").read_text()) == table
    # ... but not when the record is unreadable, or the supernet changed since (two supernets mixed)
    shutil.copytree(tmp_path / "killed", tmp_path / "garbled")
    (tmp_path / "garbled" / "prefilter.json").write_text('{"record": {}}')
    with pytest.raises(CheckpointError, match="prefilter.json: unreadable prefilter record"):
        run_search({**cfg, "resume": True}, tmp_path / "garbled")
    checkpoint = source / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    next(v for v in state["model"].values() if v.is_floating_point()).add_(1.0)
    torch.save(state, checkpoint)
    with pytest.raises(ConfigError, match="its checkpoint changed since this selection scored its draws"):
        run_search({**cfg, "resume": True}, tmp_path / "killed")
    for change, message in [({"one_shot_supernet": ""}, "sample_prefilter: needs strategy 'sample' and one_shot"),
                            ({"sample_prefilter": 1}, "sample_prefilter: 1 draws cannot yield sample_candidates 2"),
                            ({"sample_prefilter": 0}, "one_shot_supernet: only strategy 'one_shot', or 'sample' with")]:
        with pytest.raises(ConfigError, match=message):
            run_search({**cfg, **change}, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("strategy, expected", [("sample", None), ("one_shot", None), ("gradient", 0.3)])
def test_retrain_takes_the_search_lambda_only_from_a_gradient_search(tmp_path, strategy, expected):
    from workbench.seg.retrain import _search_fields

    (tmp_path / "run_record.json").write_text(json.dumps({"preset": "autortnet", "latency_weight": None}))
    (tmp_path / "config.json").write_text(json.dumps({"preset": "autortnet", "strategy": strategy,
                                                      "latency_weight": 0.3}))
    fields = _search_fields(str(tmp_path / "genotype.json"), {"preset": "autortnet"})
    assert fields == {"preset": "autortnet", "latency_weight": expected}
