"""Run directories: atomic records survive a killed writer; JSON-lines tolerate torn lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from workbench import jsonio, runs
from workbench.errors import CheckpointError


def test_record_lifecycle(tmp_path):
    run = runs.RunDir(tmp_path / "r")
    run.write_config({"lr": 0.1, "size": (2, 3)})
    run.start("search", preset="gas")
    run.update(metrics={"miou": 0.5}, artifacts={"genotype": "genotype.json"})
    rec = run.finish()
    assert rec["status"] == "finished" and rec["metrics"]["miou"] == 0.5
    assert rec["preset"] == "gas" and rec["duration_s"] >= 0
    assert run.read_config() == {"lr": 0.1, "size": [2, 3]}
    assert "_t0" not in jsonio.read_json(run.record_path)
    assert [r.path for r in runs.iter_runs(tmp_path)] == [run.path]


def test_jsonl_skips_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    jsonio.append_jsonl(path, {"epoch": 0})
    jsonio.append_jsonl(path, {"epoch": 1})
    with open(path, "a") as fh:
        fh.write('{"epoch": 2, "lo')  # a writer killed mid-line
    assert [r["epoch"] for r in jsonio.read_jsonl(path)] == [0, 1]
    jsonio.truncate_jsonl(path, lambda r: r["epoch"] < 1)
    assert jsonio.read_jsonl(path) == [{"epoch": 0}]


def test_numpy_and_nan_are_serialised(tmp_path):
    import numpy as np

    jsonio.atomic_write_json(tmp_path / "x.json", {"a": np.float32(0.5), "b": float("nan"),
                                                "c": np.arange(3)})
    assert jsonio.read_json(tmp_path / "x.json") == {"a": 0.5, "b": None, "c": [0, 1, 2]}


def test_killed_writer_leaves_previous_record_intact(tmp_path):
    """SIGKILL a process in the middle of writing a large record: the old one must survive."""
    target = tmp_path / "run_record.json"
    jsonio.atomic_write_json(target, {"status": "running", "epoch": 1})
    script = textwrap.dedent(f"""
        import os, sys
        from workbench import jsonio, runs
        real_write = os.fdopen
        def slow_fdopen(fd, mode):
            fh = real_write(fd, mode)
            class Slow:
                def write(self, data):
                    fh.write(data[:10]); fh.flush()
                    sys.stdout.write("writing\\n"); sys.stdout.flush()
                    import time; time.sleep(30)
                def __getattr__(self, name): return getattr(fh, name)
                def __enter__(self): return self
                def __exit__(self, *a): fh.close()
            return Slow()
        jsonio.os.fdopen = slow_fdopen
        jsonio.atomic_write_json({str(target)!r}, {{"status": "finished", "blob": "x" * 100000}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert json.loads(target.read_text()) == {"status": "running", "epoch": 1}
    leftovers = [p for p in tmp_path.iterdir() if p.name != "run_record.json"]
    assert all(p.name.endswith(".tmp") for p in leftovers)  # a stray temp file at most


def test_checkpoint_roundtrip_and_corrupt_file(tmp_path):
    run = runs.RunDir(tmp_path)
    assert run.load_checkpoint() is None
    run.save_checkpoint({"w": torch.arange(4.0), "epoch": 3, "rng": torch.get_rng_state()})
    state = run.load_checkpoint()
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.arange(4.0))
    (run.checkpoint_dir / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt"):
        run.load_checkpoint()


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    """weights_only=True: a pickled custom object is refused, not executed."""
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError):
        runs.RunDir(tmp_path).load_checkpoint()
    time.sleep(0)
