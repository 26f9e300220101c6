"""Robustness: every bad input is one `error:` line with exit 2 that changes nothing outside the
output; run directories are locked and never silently reused; a resume never mixes settings; a
diverging run fails and keeps its last good checkpoint; one damaged record leaves the index working.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_seg_helpers import retrain_config, write_genotype

from workbench.cli import main
from workbench.data.io import write_indexed_png
from workbench.errors import ConfigError, DivergedError
from workbench.jsonio import append_jsonl, atomic_write_json
from workbench.lab.sweep import plan_sweep
from workbench.runs import RunDir, RunDirError, format_table, list_runs
from workbench.seg.retrain import run_retrain
from workbench.vos.train import run_train

SEARCH = dict(preset="gas", dataset="random", input_size=[32, 64], crop_size=[32, 64], channels=8,
              stem_channels=8, head_channels=8, nodes=2, num_cells=3, reductions=[0, 2], batch_size=2,
              max_val_images=2, warmup_epochs=0, lut_warmup=0, lut_repeats=1, lut_rounds=1, lut_calibrate=0,
              threads=1, device="cpu", epochs=1)
VOS = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "crop_size": [64, 112], "threads": 1, "device": "cpu"}


def search_args(run_dir: Path, *extra: str) -> list[str]:
    sets = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in SEARCH.items()
            if k not in ("preset", "dataset", "device", "threads", "epochs")]
    return ["search", "--preset", "gas", "--dataset", "random", "--device", "cpu", "--threads", "1",
            "--epochs", "1", "--run-dir", str(run_dir), *extra, "--set", *sets]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_cityscapes, tiny_davis):
    """One finished run of each step, a private copy of each dataset, and a dataset to damage."""
    from workbench.nas.search import run_search

    root = tmp_path_factory.mktemp("robust")
    torch.set_num_threads(1)
    w = {"root": root, "city": root / "city", "davis": root / "davis"}
    shutil.copytree(tiny_cityscapes, w["city"])
    shutil.copytree(tiny_davis, w["davis"])
    w["lut"] = str(root / "lutcache")
    run_search({**SEARCH, "lut_cache_dir": w["lut"]}, root / "search")
    w["genotype"] = write_genotype(root / "g.json")
    run_retrain(retrain_config(w["genotype"], w["city"], epochs=1), root / "retrain")
    run_train({**VOS, "data_root": str(w["davis"])}, root / "vos")
    return w


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _changed(before: dict, after: dict, output: Path | None) -> list[str]:
    def outside(p: str) -> bool:
        return not (output and (p == str(output) or p.startswith(str(output) + os.sep)))

    diff = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    return sorted(p for p in diff if outside(p))


def _davis_with_first_mask(world, name: str, mask_fn) -> Path:
    root = world["root"] / name
    if not root.exists():
        shutil.copytree(world["davis"], root)
        seq = (root / "ImageSets" / "2017" / "val.txt").read_text().split()[0]
        first = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))[0]
        write_indexed_png(first, mask_fn(np.asarray(Image.open(first))))
    return root


def _jpeg_label(world) -> Path:
    root = world["root"] / "city-jpeg"
    if not root.exists():
        shutil.copytree(world["city"], root)
        label = sorted((root / "gtFine" / "val").rglob("*_labelIds.png"))[0]
        Image.open(label).convert("L").save(label, format="JPEG")
    return root


def _pickled_checkpoint(world) -> Path:
    run = world["root"] / "retrain-pickled"
    if not run.exists():
        shutil.copytree(world["root"] / "retrain", run)
        (run / ".lock").unlink(missing_ok=True)
        torch.save({"model": {}, "payload": Path("/")}, run / "checkpoints" / "last.pt")  # a pickled object
    return run


def _sweep(world, tmp: Path, **changes) -> Path:
    sweep = {"output_root": str(tmp / "sweep"), "name": "lw{latency_weight}", "grid": {"latency_weight": [0, 1]},
             "stages": [{"name": "search", "notebook": "search", "parameters": {"dataset": "random"}}]}
    sweep.update(changes)
    path = tmp / "sweep.yaml"
    path.write_text(json.dumps(sweep))
    return path


def cases(w, tmp: Path):
    """(argv, the output it names, a needle of the error line). Built lazily: some damage a copy."""
    r, city, davis = w["root"], w["city"], w["davis"]
    city_name = sorted((city / "leftImg8bit" / "val").iterdir())[0]
    a_file = r / "g.json"
    yield search_args(a_file / "x"), a_file / "x", "is a file"                                 # 1 output
    yield (["predict", "--run-dir", str(r / "retrain"), "--out", str(city_name), "--device", "cpu"],
           city_name, "lies inside the input folder")                                          # 2 out->in
    yield (["export", "--run-dir", str(r / "retrain"), "--format", "torchscript",
            "--out", str(r / "retrain" / "checkpoints" / "last.pt")], None, "lies inside the input folder")
    yield (["eval", "seg", "--dataset", "cityscapes", "--root", str(city), "--pred", str(city / "gtFine"),
            "--json", str(tmp)], tmp, "is a folder; expected a file path")
    yield (["bench", "--genotype", str(w["genotype"]), "--size", "64x128", "--device", "cpu", "--no-memory",
            "--repeats", "1", "--warmup", "0", "--json", str(a_file / "b.json")], a_file / "b.json", "is a file")
    yield (["report", str(r / "retrain"), "-o", str(r / "retrain" / "run_record.json")], None, ".html file")
    yield (["report", str(r / "retrain"), "-o", str(a_file / "r.html")], None, "is a file")
    yield (["lut", "build", "--size", "32x64", "--out", str(tmp)], tmp, "is a folder")
    if not os.access("/proc/sys", os.W_OK):                                                   # read-only fs
        yield (["lut", "build", "--size", "32x64", "--out", "/proc/sys/lut.json"], None, "not writable")
    yield (["retrain", "--genotype", str(w["genotype"]), "--data-root", str(city), "--run-dir", str(r / "retrain"),
            "--epochs", "1", "--device", "cpu"], r / "retrain", "holds an earlier run")          # 4 no lock/reuse
    yield (["retrain", "--genotype", str(r / "search" / "genotype.json"), "--data-root", str(city), "--run-dir",
            str(r / "search"), "--device", "cpu", "--overwrite"], None, "must not contain its inputs")
    yield (["retrain", "--genotype", str(w["genotype"]), "--data-root", str(city), "--run-dir", str(r / "retrain"),
            "--resume", "--lr", "0.5", "--batch-size", "4", "--device", "cpu"], r / "retrain",
           "differs in batch_size (stored 2, given 4), lr (stored 0.05, given 0.5)")           # 3 resume
    yield search_args(r / "search", "--resume", "--latency-weight", "0.7"), r / "search", \
        "differs in latency_weight (stored 0.1, given 0.7)"
    yield (["vos", "train", "--data-root", str(davis), "--run-dir", str(r / "vos"), "--resume", "--batch-size", "3"],
           r / "vos", "differs in batch_size")
    yield (["retrain", "--genotype", str(w["genotype"]), "--data-root", str(city), "--run-dir", str(tmp / "n"),
            "--lr", "nan"], tmp / "n", "lr: must be a finite number")                           # 5 non-finite
    yield search_args(tmp / "s") + ["latency_weight=inf"], tmp / "s", "latency_weight: must be a finite"
    yield search_args(tmp / "s") + ["crop_size=0x0"], tmp / "s", "sizes must be positive, got 0x0"  # 8 gaps
    yield search_args(tmp / "s") + ["input_size=7x13"], tmp / "s", "input_size: 7x13 is not divisible by 16"
    yield search_args(tmp / "s") + ["num_cells=100000"], tmp / "s", "num_cells: must be <= 64"
    yield (["data", "synth", "davis", "--out", str(tmp / "d"), "--frames", "0", "--count", "1"], tmp / "d",
           "at least 2 frames")
    empty = _davis_with_first_mask(w, "davis-empty", lambda m: np.zeros_like(m))
    yield ["data", "check", "davis", "--root", str(empty)], None, "first-frame annotation has no objects"
    yield (["vos", "segment", "--run-dir", str(r / "vos"), "--data-root", str(empty), "--out", str(tmp / "v"),
            "--device", "cpu"], tmp / "v", "first-frame annotation has no objects")
    gaps = _davis_with_first_mask(w, "davis-ids", lambda m: np.where(m == 1, 200, m).astype(np.uint8))
    yield ["data", "check", "davis", "--root", str(gaps)], None, "are not 1..K"
    yield (["export", "--run-dir", str(r / "search"), "--format", "torchscript", "--out", str(tmp / "m.pt")],
           tmp / "m.pt", "is a search run, not a retrain run; retrain its genotype first")
    yield ["derive", "--run-dir", str(r / "retrain")], None, "not a search run directory (a retrain run)"
    yield ["data", "check", "cityscapes", "--root", str(_jpeg_label(w))], None, "stored as JPEG"
    yield (["export", "--run-dir", str(_pickled_checkpoint(w)), "--format", "torchscript", "--out",
            str(tmp / "p.pt")], tmp / "p.pt", "refused: the file holds pickled Python objects")
    yield (["vos", "segment", "--run-dir", str(r / "vos"), "--data-root", str(davis), "--out", str(r / "vos"),
            "--device", "cpu"], None, "is an input of this command")
    yield (["batch", str(_sweep(w, tmp, grid={"latency_wieght": [0, 1]}, name="lw{latency_wieght}x"))], None,
           "grid key latency_wieght is neither a parameter")                                   # 7 sweeps
    yield ["batch", str(_sweep(w, tmp, name="fixed"))], None, "the same run directory 'fixed'"
    yield ["batch", str(_sweep(w, tmp, name="../{latency_weight}"))], None, "leaves output_root"


def test_bad_inputs_give_one_error_line_exit_2_and_change_nothing(world, tmp_path, capsys, one_thread):
    failures = []
    watched = (world["root"], tmp_path)
    for argv, output, needle in cases(world, tmp_path):
        before = snapshot(*watched)
        code = main([str(a) for a in argv])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        changed = _changed(before, snapshot(*watched), output)
        ok = code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0] and not changed
        if not ok:
            failures.append(f"{' '.join(map(str, argv))[:160]}\n    exit {code}, stderr {err[-3:]}, changed {changed[:3]}")
    assert not failures, "\n".join(failures)


def test_os_errors_while_writing_are_one_line_too(monkeypatch, capsys, tmp_path):
    import widgets.report

    def read_only(*_args, **_kwargs):
        raise OSError(30, "Read-only file system", str(tmp_path / "report.html"))

    monkeypatch.setattr(widgets.report, "build_report", read_only)
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'report.html'}: Read-only file system"


# -- run-directory lock ------------------------------------------------------------------------------
def test_second_process_is_refused_and_a_killed_holder_is_taken_over(world, tmp_path):
    from workbench.nas.search import run_search

    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "workbench", *search_args(run_dir)]
    cmd[cmd.index("--epochs") + 1] = "200"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    ckpt = run_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    try:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        with pytest.raises(RunDirError, match=rf"in use by pid {proc.pid} on "):
            run_search({**SEARCH, "epochs": 200, "resume": True}, run_dir)
        with pytest.raises(RunDirError, match="in use by"):
            run_search({**SEARCH, "epochs": 200, "overwrite": True}, run_dir)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    metrics = RunDir(run_dir).metrics()  # the refused calls wrote nothing: one writer, epochs in order
    assert metrics and [m["epoch"] for m in metrics] == list(range(len(metrics)))
    # the killed holder's lock is stale: the next claim takes it over and the run record says whose it was
    with RunDir(run_dir).claim(resume=True) as run:
        assert run.taken_over and run.taken_over["pid"] == proc.pid
        assert run.start("search")["lock_taken_over"]["pid"] == proc.pid
    with RunDir(run_dir).claim(resume=True) as run:  # released cleanly: nothing to take over now
        assert run.taken_over is None


def test_non_resume_run_into_an_earlier_run_is_refused_or_overwritten(world, tmp_path, one_thread):
    from workbench.nas.search import run_search

    run_dir = tmp_path / "s"
    run_search({**SEARCH, "lut_cache_dir": world["lut"]}, run_dir)
    stale = run_dir / "genotype.json"
    with pytest.raises(RunDirError, match="holds an earlier run"):
        run_search({**SEARCH, "lut_cache_dir": world["lut"]}, run_dir)
    atomic_write_json(run_dir / "leftover.json", {})
    rec = run_search({**SEARCH, "lut_cache_dir": world["lut"], "seed": 1, "overwrite": True}, run_dir)
    assert rec["status"] == "finished" and rec["seed"] == 1 and stale.exists()
    assert not (run_dir / "leftover.json").exists()  # nothing of the earlier run is left behind


def test_lock_cleans_orphaned_temp_files_and_files_are_group_readable(tmp_path):
    run = RunDir(tmp_path / "r")
    atomic_write_json(run.record_path, {"status": "finished"})
    orphan = run.path / ".run_record.json.abc123.tmp"
    orphan.write_text("{torn")
    append_jsonl(run.metrics_path, {"epoch": 0})
    with run.lock():
        pass
    assert not orphan.exists()
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    assert run.record_path.stat().st_mode & 0o777 == expected == run.metrics_path.stat().st_mode & 0o777


# -- resume never mixes settings ---------------------------------------------------------------------
def test_resume_with_a_changed_config_is_refused_naming_the_fields(world, tmp_path, one_thread):
    run_dir = world["root"] / "retrain"
    before = snapshot(run_dir)
    cfg = retrain_config(world["genotype"], world["city"], epochs=1, resume=True)
    with pytest.raises(ConfigError) as exc:
        run_retrain({**cfg, "lr": 0.02, "epochs": 5}, run_dir)
    assert "epochs (stored 1, given 5)" in str(exc.value) and "lr (stored 0.05, given 0.02)" in str(exc.value)
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.05
    with pytest.raises(ConfigError, match=r"differs in steps_per_epoch \(stored 1, given 4\)"):
        run_train({**VOS, "data_root": str(world["davis"]), "steps_per_epoch": 4, "resume": True},
                  world["root"] / "vos")
    assert _changed(before, snapshot(run_dir), None) == [] or all(p.endswith(".lock") for p in
                                                                  _changed(before, snapshot(run_dir), None))
    # runtime fields may change: they do not alter what is computed
    rec = run_retrain({**cfg, "threads": 2, "workers": 0}, run_dir)
    assert rec["status"] == "finished" and json.loads((run_dir / "config.json").read_text())["threads"] == 2


# -- divergence --------------------------------------------------------------------------------------
def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(world, tmp_path, monkeypatch, one_thread):
    from workbench.seg import retrain as retrain_module

    run_dir = tmp_path / "nan"
    real_loader = retrain_module._loader

    def corrupt_second_epoch(dataset, cfg, info, epoch, per_process, device):
        for images, labels in real_loader(dataset, cfg, info, epoch, per_process, device):
            if epoch == 1:
                images = images.clone()
                images[0, 0, 0, 0] = float("nan")  # a corrupt input image
            yield images, labels

    monkeypatch.setattr(retrain_module, "_loader", corrupt_second_epoch)
    with pytest.raises(DivergedError, match=r"train loss at epoch 2, step 5 is nan"):
        run_retrain(retrain_config(world["genotype"], world["city"], epochs=3), run_dir)
    run = RunDir(run_dir)
    rec = run.record()
    assert rec["status"] == "failed" and "epoch 2, step 5" in rec["error"]
    state = run.load_checkpoint()
    assert state["epoch"] == 0 and all(torch.isfinite(t).all() for t in state["model"].values()
                                       if t.is_floating_point())
    assert [m["epoch"] for m in run.metrics()] == [0]


def test_diverging_search_fails_without_a_genotype(world, tmp_path, one_thread):
    from workbench.nas.search import run_search

    with pytest.raises(DivergedError, match="loss at epoch 0, step"):
        run_search({**SEARCH, "lut_cache_dir": world["lut"], "lr": 1e30, "epochs": 2, "batch_size": 4}, tmp_path / "s")
    rec = RunDir(tmp_path / "s").record()
    assert rec["status"] == "failed" and "diverged" in rec["error"]
    assert not (tmp_path / "s" / "genotype.json").exists()


# -- a damaged record leaves the index working --------------------------------------------------------
def test_corrupt_records_leave_the_index_and_report_working(world, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(world["root"] / "retrain", root / "good")
    (root / "torn").mkdir()
    (root / "torn" / "run_record.json").write_text('{"status": "fini')
    (root / "listed").mkdir()
    (root / "listed" / "run_record.json").write_text("[1, 2]")
    shutil.copytree(world["root"] / "search", root / "badalphas")
    with open(root / "badalphas" / "alphas.jsonl", "a") as fh:
        fh.write('[1, 2]\n{"epoch": 7}\n{"epoch": 8, "cells": "no"}\n')
    (root / "nb.ipynb").write_text("not a notebook")
    rows = {r["run"]: r for r in list_runs(root)}
    assert rows["torn"]["status"] == rows["listed"]["status"] == "unreadable"
    assert "expected a JSON object, got list" in rows["listed"]["problem"]
    assert rows["good"]["status"] == rows["badalphas"]["status"] == "finished"
    assert "unreadable" in format_table(list(rows.values()))
    assert main(["runs", str(root)]) == 0 and "torn" in capsys.readouterr().out
    assert main(["report", str(root), "-o", str(tmp_path / "all.html")]) == 0
    assert main(["report", str(root / "badalphas"), "-o", str(tmp_path / "one.html")]) == 0
    assert main(["report", str(root / "nb.ipynb")]) == 2
    assert "not a readable notebook" in capsys.readouterr().err
    from workbench.frontier import run_frontier

    assert run_frontier({"roots": [str(root)]}, tmp_path / "frontier")["status"] == "finished"


def test_sweep_validation(tmp_path):
    base = {"output_root": str(tmp_path / "out"), "stages": [{"name": "search", "notebook": "search"}]}
    with pytest.raises(ConfigError, match="grid key latency_wieght is neither"):
        plan_sweep({**base, "grid": {"latency_wieght": [0, 1]}}, tmp_path)
    with pytest.raises(ConfigError, match="same run directory"):
        plan_sweep({**base, "grid": {"seed": [0, 1]}, "name": "run"}, tmp_path)
    with pytest.raises(ConfigError, match="leaves output_root"):
        plan_sweep({**base, "grid": {"seed": [0, 1]}, "name": "../x{seed}"}, tmp_path)
    # a grid key used only as a placeholder is fine
    plan = plan_sweep({**base, "grid": {"t": [1, 2]}, "name": "t{t}",
                       "stages": [{"name": "search", "notebook": "search",
                                   "parameters": {"overrides": {"target_latency_ms": "{t}"}}}]}, tmp_path)
    assert [p["parameters"]["overrides"]["target_latency_ms"] for p in plan] == [1, 2]
