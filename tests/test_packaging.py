"""Packaging: environment.yml covers pyproject's requirements; the layout is what the spec says."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]

# conda-forge names that differ from PyPI names
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_every_requirement():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip_names = {_name(p) for p in pip_block if not p.startswith("-e")}
    editable = [p for p in pip_block if p.startswith("-e")]
    assert "conda-forge" in env["channels"]
    missing = [r for r in project["dependencies"]
               if CONDA_NAMES.get(_name(r), _name(r)) not in conda | pip_names]
    assert not missing, f"environment.yml lacks {missing}"
    # the project itself is installed with every extra pyproject defines
    extras = set(project["optional-dependencies"])
    assert editable, "environment.yml must pip-install the project"
    listed = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
    assert extras <= listed, f"extras missing from environment.yml: {extras - listed}"


def test_top_level_layout():
    for name in ["notebooks", "workbench", "widgets", "datasets", "tests", "benchmarks",
                 "environment.yml", "pyproject.toml", "Makefile", "README.md", ".ci/run"]:
        assert (ROOT / name).exists(), name
    readme = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(readme[:8])
    assert "make demo" in head and "make test" in head
