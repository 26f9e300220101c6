"""Notebooks: parameters cells, validation before any kernel starts, papermill runs, batch sweeps, runs index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from fixtures_runs import make_search_run, make_sweep
from nbformat.v4 import new_code_cell, new_notebook

from workbench import cli, runs
from workbench.errors import ConfigError
from workbench.lab import execute
from workbench.lab import params as nb_params
from workbench.lab import sweep as lab_sweep
from workbench.runs import RunDir
from workbench.seg import recipes

NOTEBOOK_NAMES = ["search", "retrain", "video_segmentation", "frontier"]


def _fake_notebook(path: Path) -> Path:
    """A tiny notebook (no plotly, fast kernel) that writes a retrain record or fails on request."""
    params = ('output_dir: str = "out"  # run directory\n'
              'miou: float = 0.5  # mIoU to record [0, 1]\n'
              'latency_ms: float = 10.0  # latency to record [0, ]\n'
              'fail: bool = False  # raise in the step cell\n')
    body = ("from workbench.runs import RunDir\n"
            "run = RunDir(output_dir)\n"
            "run.start('retrain', preset='fake', latency_weight=latency_ms / 100)\n"
            "if fail:\n"
            "    raise RuntimeError('step exploded on purpose')\n"
            "run.update(metrics={'miou': miou, 'latency_ms': latency_ms}, artifacts={})\n"
            "run.finish()\n")
    nb = new_notebook(cells=[new_code_cell(params, metadata={"tags": ["parameters"]}), new_code_cell(body)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_notebooks_have_no_outputs_and_a_documented_parameters_cell(name):
    path = nb_params.resolve_notebook(name)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"
    params = nb_params.parse_parameters(name)
    assert "output_dir" in params
    for p in params.values():
        assert p.help, f"{path.name}: {p.name} has no help comment"
        p.type  # every annotation evaluates  # noqa: B018
    # papermill's own inference (what --help-notebook prints) sees every parameter too
    from papermill.inspection import _infer_parameters

    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    assert [p.name for p in _infer_parameters(nb)] == list(params)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from workbench import steps" in code and "steps." in code and "widgets" in code


def test_parameters_cell_parsing_and_bounds():
    params = nb_params.parse_parameters("search")
    assert params["epochs"].annotation == "int" and params["epochs"].low == 1 and params["epochs"].high == 1000
    assert params["latency_weight"].low == 0 and params["latency_weight"].high is None
    assert params["dataset"].choices == ["cityscapes", "camvid", "random"]
    assert params["overrides"].type is dict and params["overrides"].default == {}
    assert nb_params.parse_parameters("frontier")["roots"].default == ["runs"]


def test_validation_normalizes_values():
    import numpy as np

    out = nb_params.validate_parameters("frontier", {"roots": (Path("/a"), "b"), "output_dir": Path("/x")})
    assert out == {"roots": ["/a", "b"], "output_dir": "/x"}
    out = nb_params.validate_parameters("search", {"epochs": np.int64(3), "latency_weight": np.float32(0.5),
                                                   "synth_data": "false", "overrides": {"gcn": False}})
    assert out == {"epochs": 3, "latency_weight": 0.5, "synth_data": False, "overrides": {"gcn": False}}
    assert type(out["epochs"]) is int
    # a parameter whose default is None takes None ("the recipe's"); one with a real default does not
    assert nb_params.validate_parameters("retrain", {"lr": None, "recipe": "fast-v1"}) == {"lr": None,
                                                                                          "recipe": "fast-v1"}
    with pytest.raises(ConfigError, match="epochs: expected an integer"):
        nb_params.validate_parameters("retrain", {"epochs": None})


@pytest.mark.parametrize("values, message", [
    ({"epochz": 3}, "unknown parameter epochz"),
    ({"epochs": "many"}, "epochs: expected an integer"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"latency_weight": -1.0}, "latency_weight must be >= 0"),
    ({"dataset": "kitti"}, "dataset must be one of cityscapes, camvid, random"),
    ({"overrides": [1, 2]}, "overrides expected a dict"),
])
def test_bad_parameter_refused_before_any_kernel(values, message, monkeypatch, tmp_path, capsys):
    import papermill

    def no_kernel(*args, **kwargs):
        raise AssertionError("papermill must not run for invalid parameters")

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    with pytest.raises(ConfigError, match=message):
        execute.run_notebook("search", values, tmp_path / "run")
    # through the CLI: one line, exit status 2, nothing written
    argv = ["notebook", "run", "search", "--output-dir", str(tmp_path / "cli")]
    for k, v in values.items():
        argv += ["-p", k, json.dumps(v) if not isinstance(v, str) else v]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: search.ipynb:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "cli").exists()


def test_params_file_and_p_override(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(execute, "run_notebook", lambda name, params, out, **kw: seen.update(params) or Path(out))
    (tmp_path / "p.yaml").write_text("epochs: 5\npreset: gas\n")
    assert cli.main(["notebook", "run", "search", "-f", str(tmp_path / "p.yaml"), "-p", "epochs", "7",
                     "--output-dir", str(tmp_path / "o")]) == 0
    assert seen == {"epochs": 7, "preset": "gas"}


def test_failing_cell_reports_cell_and_error_and_keeps_partial_notebook(tmp_path):
    nb = _fake_notebook(tmp_path / "fake.ipynb")
    with pytest.raises(nb_params.NotebookError) as info:
        execute.run_notebook(nb, {"fail": True}, tmp_path / "run")
    msg = str(info.value)
    # cell 2 of the executed notebook: papermill injects its parameters cell after ours
    assert "cell 2 `from workbench.runs import RunDir`" in msg and "RuntimeError: step exploded on purpose" in msg and "\n" not in msg
    partial = nbformat.read(tmp_path / "run" / "fake.ipynb", as_version=4)
    assert partial.metadata.papermill.exception is True
    assert execute.notebook_status(tmp_path / "run") == "failed"


def _kernelspec(root: Path, dies_first: int) -> None:
    """A kernel named `flaky` under root (put on JUPYTER_PATH) whose first `dies_first` starts exit at once,
    as a kernel does that loses the race for its ports; later starts are a real ipykernel."""
    root.mkdir()
    script = root / "flaky_kernel.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"starts = Path({str(root / 'starts')!r})\n"
        "n = int(starts.read_text()) if starts.exists() else 0\n"
        "starts.write_text(str(n + 1))\n"
        f"if n < {dies_first}:\n    sys.exit(1)\n"
        "from ipykernel import kernelapp\nkernelapp.launch_new_instance()\n")
    spec = root / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, str(script), "-f", "{connection_file}"],
                                                  "display_name": "flaky", "language": "python"}))


def test_a_kernel_that_dies_before_it_starts_is_started_again(tmp_path, monkeypatch):
    _kernelspec(tmp_path / "spec", dies_first=2)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "spec"))
    nb = _fake_notebook(tmp_path / "fake.ipynb")
    execute.run_notebook(nb, {"miou": 0.25}, tmp_path / "run", kernel_name="flaky")
    assert (tmp_path / "spec" / "starts").read_text() == "3"  # two deaths, then the run
    assert RunDir(tmp_path / "run").record()["metrics"]["miou"] == 0.25
    assert execute.notebook_status(tmp_path / "run") == "finished"


def test_a_kernel_that_never_starts_is_one_error_after_three_tries(tmp_path, monkeypatch):
    _kernelspec(tmp_path / "spec", dies_first=99)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "spec"))
    nb = _fake_notebook(tmp_path / "fake.ipynb")
    with pytest.raises(nb_params.NotebookError) as info:
        execute.run_notebook(nb, {}, tmp_path / "run", kernel_name="flaky")
    assert str(info.value).startswith("fake.ipynb: the kernel 'flaky' died before it started, 3 times (Kernel died")
    assert "\n" not in str(info.value) and (tmp_path / "spec" / "starts").read_text() == "3"
    assert not RunDir(tmp_path / "run").record_path.exists()
    assert execute.notebook_status(tmp_path / "run") != "finished"  # a batch runs it again ...
    execute.run_notebook(nb, {"miou": 0.5}, tmp_path / "run")  # ... and papermill's leftover notebook is no earlier run
    assert RunDir(tmp_path / "run").record()["metrics"]["miou"] == 0.5
    assert execute.notebook_status(tmp_path / "run") == "finished"


def test_a_kernel_killed_mid_run_fails_that_run_not_the_batch(tmp_path):
    from workbench.lab.engines import run_job

    nb = new_notebook(cells=[new_code_cell('output_dir: str = "out"', metadata={"tags": ["parameters"]}),
                             new_code_cell("import os\nos._exit(9)  # as the kernel the OOM killer ends")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, tmp_path / "dies.ipynb")
    job = {"label": "[1/1] p/s", "notebook": str(tmp_path / "dies.ipynb"), "output_dir": str(tmp_path / "run"),
           "parameters": {}}
    res = run_job(job)
    assert res["status"] == "failed" and res["error"].startswith("dies.ipynb: the kernel died")


def test_batch_grid_skips_finished_continues_past_failure_then_frontier(tmp_path, monkeypatch, capsys):
    nb = _fake_notebook(tmp_path / "fake.ipynb")
    sweep = {"output_root": str(tmp_path / "sweep"), "name": "lat{latency_ms}",
             "grid": {"latency_ms": [5.0, 20.0]},
             "stages": [{"name": "fake", "notebook": str(nb), "parameters": {"miou": 0.5}}],
             "extra": [{"name": "broken", "notebook": str(nb), "parameters": {"fail": True}}]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    monkeypatch.chdir(tmp_path)
    summary = lab_sweep.run_batch(path)
    assert len(summary["finished"]) == 2 and len(summary["failed"]) == 1
    frontier = json.loads(Path(summary["frontier"]).read_text())
    assert sorted(p["name"] for p in frontier["points"]) == ["lat20.0", "lat5.0"]  # named by their sweep point
    assert frontier["pareto"] == ["lat5.0"]  # same mIoU, lower latency
    assert RunDir(tmp_path / "sweep" / "lat20.0" / "fake").record()["latency_weight"] == 0.2
    again = lab_sweep.run_batch(path)
    assert len(again["skipped"]) == 2 and len(again["failed"]) == 1 and not again["finished"]
    assert "already finished, skipped" in capsys.readouterr().out
    # a bad value anywhere in the sweep stops it before any notebook runs
    sweep["stages"][0]["parameters"]["miou"] = 2.0
    path.write_text(yaml.safe_dump(sweep))
    with pytest.raises(ConfigError, match="miou must be <= 1"):
        lab_sweep.run_batch(path)


def test_example_sweep_plans(monkeypatch):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    sweep = yaml.safe_load((root / "notebooks" / "sweep_example.yaml").read_text())
    plan = lab_sweep.plan_sweep(sweep, root)
    searches = [p for p in plan if p["stage"] == "search"]
    assert len(searches) == len(sweep["grid"]["preset"]) * len(sweep["grid"]["latency_weight"]) * len(
        sweep["grid"]["seed"])
    retrain = next(p for p in plan if p["stage"] == "retrain")
    assert retrain["parameters"]["genotype"] == str(plan[0]["output_dir"] / "genotype.json")


def test_runs_table(tmp_path, capsys):
    make_sweep(tmp_path)
    make_search_run(tmp_path / "s", epochs=2)
    rows = {r["run"]: r for r in runs.list_runs(tmp_path)}
    assert rows["b/retrain"]["miou"] == 0.6 and rows["b/retrain"]["latency_ms"] == 20.0
    assert rows["broken"]["status"] == "failed" and rows["base1"]["kind"] == "baseline"
    assert rows["s"]["kind"] == "search" and rows["s"]["expected_ms"] == 19.0
    run = RunDir(tmp_path / "dead")
    run.start("retrain")
    rec = run.record()
    rec["pid"] = 2 ** 22 + 12345  # a process that does not exist
    (run.record_path).write_text(json.dumps(rec))
    assert {r["run"]: r for r in runs.list_runs(tmp_path)}["dead"]["status"] == "stale"
    assert cli.main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["run", "status", "kind", "preset"] and len(out) == 1 + len(rows) + 1


# -- the real notebooks through papermill ---------------------------------------------------------------
# Tiny sizes: the point is the plumbing (parameters -> step -> run directory -> widgets), not accuracy.
TINY_SEARCH = {"channels": 8, "stem_channels": 8, "head_channels": 8, "nodes": 2, "num_cells": 2, "reductions": [0],
               "fusion_channels": 8, "max_val_images": 1, "warmup_epochs": 0, "lut_warmup": 0, "lut_repeats": 1,
               "threads": 1}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The search notebook through PLAIN papermill (its own CLI, its own type handling)."""
    base = tmp_path_factory.mktemp("nb_search")
    out = base / "search"
    cmd = [sys.executable, "-m", "papermill", str(nb_params.resolve_notebook("search")), str(base / "s.ipynb"),
           "-p", "output_dir", str(out), "-p", "dataset", "random", "-p", "epochs", "2", "-p", "input_size",
           "32x64", "-p", "crop_size", "32x64", "-p", "batch_size", "2", "-p", "steps_per_epoch", "1",
           "-p", "device", "cpu", "-y", yaml.safe_dump({"overrides": TINY_SEARCH}), "--no-progress-bar"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_search_notebook_plain_papermill(searched):
    rec = RunDir(searched).record()
    assert rec["status"] == "finished" and rec["kind"] == "search" and rec["preset"] == "lgcnet"
    assert (searched / "genotype.json").is_file() and len(RunDir(searched).alphas()) >= 2
    nb = nbformat.read(searched.parent / "s.ipynb", as_version=4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
def test_retrain_notebook_then_frontier_notebook(searched, tiny_cityscapes, tmp_path):
    out = tmp_path / "real" / "retrain"
    execute.run_notebook("retrain", {
        "genotype": str(searched / "genotype.json"), "data_root": str(tiny_cityscapes), "synth_data": False,
        "epochs": 1, "crop_size": (32, 64), "batch_size": 2, "eval_size": "64x128", "bench_size": "64x128",
        "bench_repeats": 2, "device": "cpu", "recipe": "fast-v1",
        "overrides": {"memory_format": "contiguous", "precision": "fp32"}}, out)
    rec = RunDir(out).record()
    assert rec["status"] == "finished" and rec["kind"] == "retrain" and 0 <= rec["metrics"]["miou"] <= 1
    # the notebook's recipe reaches the step, and lr=None leaves the recipe's learning rate
    assert rec["recipe"]["name"] == "fast-v1"
    assert json.loads((out / "config.json").read_text())["lr"] == recipes.get_recipe("fast-v1").lr
    real = RunDir(out / "benchmark").record()["metrics"]["latency_ms"]
    assert real > 0

    # the frontier notebook through the workbench CLI, over the real run and the fixture sweep
    make_sweep(tmp_path / "sweep")
    front = tmp_path / "frontier"
    assert cli.main(["notebook", "run", "frontier", "-p", "roots", f"[{tmp_path / 'real'}, {tmp_path / 'sweep'}]",
                     "--output-dir", str(front)]) == 0
    frontier = json.loads((front / "frontier.json").read_text())
    p = next(q for q in frontier["points"] if q["run_dir"] == str(out))
    # a run folder named only 'retrain' is named by its settings, as the sweeps name their points
    lw = rec.get("latency_weight")
    assert p["name"] == "lgcnet" + (f"-lw{lw:g}" if lw is not None else "") + "-s0"
    assert p["kind"] == "searched" and p["latency_ms"] == real
    fixture_front = ["base1", "a", "b", "base2"]  # hand-computed (see make_sweep)
    assert [n for n in frontier["pareto"] if n != p["name"]] == fixture_front
    dominated = any(q["latency_ms"] <= p["latency_ms"] and q["miou"] >= p["miou"] and q is not p
                    for q in frontier["points"])
    assert (p["name"] in frontier["pareto"]) == (not dominated)
    nb = nbformat.read(front / "frontier.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["output_dir"] == str(front.resolve())
    assert "widgets" not in nb.metadata  # widget state not stored
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_video_notebook(tiny_davis, tmp_path):
    out = tmp_path / "video"
    execute.run_notebook("video_segmentation", {
        "data_root": str(tiny_davis), "synth_data": False, "epochs": 1, "steps_per_epoch": 1, "batch_size": 1,
        "crop_size": "64x112", "device": "cpu"}, out)
    rec = RunDir(out).record()
    assert rec["status"] == "finished" and rec["kind"] == "vos_segment" and 0 <= rec["metrics"]["jf"] <= 1
    assert RunDir(out / "train").record()["kind"] == "vos_train"
    from widgets.video import load_video, methods

    assert methods(out) == ["onepass"] and load_video(out).frames.shape[0] == 8
