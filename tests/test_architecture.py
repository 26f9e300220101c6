"""One-way layers, checked by import-linter (the contracts are in pyproject.toml).

The core (data, metrics, nas, seg, vos, runs, config, steps, ...) never imports the views, the lab,
the CLI or Jupyter; the CLI reaches the core only through `workbench.steps`; the CLI sits over the
lab, the lab over the widgets, the widgets over the steps. Imports inside functions count. The
second test plants a lazy violation in a copy of the packages and checks that the same contracts
catch it, so the first test is known to be able to fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    proc = lint(ROOT, ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.count("KEPT") == 3


def test_a_planted_lazy_violation_is_caught(tmp_path):
    for package in ("workbench", "widgets"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "workbench" / "seg" / "model.py"
    target.write_text(target.read_text() + "\n\ndef _planted():\n    from widgets import cell_graph  # noqa\n")
    proc = lint(tmp_path, tmp_path)
    assert proc.returncode != 0
    assert "The core never imports the views" in proc.stdout and "BROKEN" in proc.stdout
    assert "workbench.seg.model -> widgets.cell_graph" in proc.stdout
