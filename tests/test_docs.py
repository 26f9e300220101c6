"""Documentation: the MkDocs site builds with --strict (a broken link, a missing anchor or a page
left out of the nav fails), the API pages come from the docstrings, and the README's own links
(the README is not part of the site) point at files that exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                  reason="mkdocs is not installed (the docs extra)")


def mkdocs_build(config: Path, site: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=cwd, capture_output=True, text=True, timeout=600)


@needs_mkdocs
def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = mkdocs_build(ROOT / "mkdocs.yml", site, ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (site / "index.html").is_file()
    # API pages are rendered from the docstrings, not copied
    steps = (site / "api" / "steps" / "index.html").read_text(encoding="utf-8")
    assert "segment_video" in steps and "The steps of the workbench" in steps  # the module docstring
    genotypes = (site / "api" / "genotypes" / "index.html").read_text(encoding="utf-8")
    assert "load_genotype" in genotypes and "upgrade_v1" in genotypes
    # the result pages (docs/results links benchmarks/results) are part of the site, links checked
    assert (site / "results" / "demo" / "index.html").is_file()


def test_results_pages_are_inside_the_site():
    link = ROOT / "docs" / "results"
    assert link.is_symlink() and link.resolve() == (ROOT / "benchmarks" / "results").resolve()


@needs_mkdocs
def test_a_broken_link_fails_the_build(tmp_path):
    """The repository's validation settings turn a link to a missing page into a failed build."""
    settings = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(yaml.safe_dump({"site_name": "planted", "strict": settings.get("strict", False),
                                      "validation": settings["validation"], "theme": settings["theme"]}))
    proc = mkdocs_build(config, tmp_path / "site", tmp_path)
    assert proc.returncode != 0
    assert "missing.md" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["README.md", "CHANGELOG.md"])
def test_top_level_links_resolve(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # no links in code blocks
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (ROOT / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{name} links to missing files: {broken}"
