"""WORKBENCH_ALLOCATOR: detection of the loaded allocator, the re-exec environment, its errors, and
a real command that runs under tcmalloc and says so in its device fingerprint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_seg_helpers import tiny_lut_values, write_genotype

from workbench import steps
from workbench.allocator import ENV, find_tcmalloc, loaded_allocator, preload_environment
from workbench.device import device_fingerprint, fingerprint_key
from workbench.errors import ConfigError

MAPS_LINE = "7f1c2a000000-7f1c2a020000 r-xp 00000000 08:01 1234 {}\n"


def _maps(tmp_path: Path, *libs: str) -> str:
    path = tmp_path / f"maps{len(list(tmp_path.glob('maps*')))}"
    path.write_text("".join(MAPS_LINE.format(lib) for lib in ("/usr/lib/x86_64-linux-gnu/libc.so.6", *libs)))
    return str(path)


def test_loaded_allocator_reads_the_mapped_libraries(tmp_path):
    assert loaded_allocator(_maps(tmp_path)) == "system"
    assert loaded_allocator(_maps(tmp_path, "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10")) == "tcmalloc"
    assert loaded_allocator(_maps(tmp_path, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")) == "jemalloc"
    assert loaded_allocator(str(tmp_path / "missing")) == "system"


def test_find_tcmalloc_takes_the_first_folder_that_has_one(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert find_tcmalloc([first, second]) is None
    (second / "libtcmalloc.so.4").write_bytes(b"")
    (second / "libtcmalloc_minimal.so.4").write_bytes(b"")
    assert find_tcmalloc([first, second]) == second / "libtcmalloc_minimal.so.4"


def test_preload_environment(tmp_path):
    maps, lib_dir = _maps(tmp_path), tmp_path / "lib"
    lib_dir.mkdir()
    assert preload_environment({}, maps, [lib_dir]) is None
    assert preload_environment({ENV: "system"}, maps, [lib_dir]) is None
    with pytest.raises(ConfigError, match=r"^WORKBENCH_ALLOCATOR: unknown allocator 'jemalloc'"):
        preload_environment({ENV: "jemalloc"}, maps, [lib_dir])
    with pytest.raises(ConfigError, match=r"^WORKBENCH_ALLOCATOR: tcmalloc: no libtcmalloc found"):
        preload_environment({ENV: "tcmalloc"}, maps, [lib_dir])
    (lib_dir / "libtcmalloc_minimal.so.4").write_bytes(b"")
    env = preload_environment({ENV: "tcmalloc", "LD_PRELOAD": "/opt/other.so", "HOME": "/root"}, maps, [lib_dir])
    assert env["LD_PRELOAD"] == f"{lib_dir / 'libtcmalloc_minimal.so.4'} /opt/other.so"
    assert env["HOME"] == "/root" and env["WORKBENCH_ALLOCATOR_REEXEC"] == "1"
    # already running under it: nothing to do; re-executed and still without it: an error, not a loop
    assert preload_environment({ENV: "tcmalloc"}, _maps(tmp_path, "/x/libtcmalloc_minimal.so.4"), [lib_dir]) is None
    with pytest.raises(ConfigError, match="not loaded"):
        preload_environment({**env}, maps, [lib_dir])


def test_system_allocator_keeps_existing_fingerprint_keys():
    fp = device_fingerprint("cpu", threads=2)
    assert "allocator" not in fp
    assert fingerprint_key({**fp, "allocator": "tcmalloc"}) == fingerprint_key(fp) + "|tcmalloc"


def _workbench(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=300)


def test_cli_refuses_an_unknown_allocator(tmp_path):
    done = _workbench(["data", "--help"], {ENV: "hoard"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: WORKBENCH_ALLOCATOR: unknown allocator 'hoard'; choose one of system, tcmalloc"]


@pytest.mark.skipif(find_tcmalloc() is None, reason="tcmalloc not installed (apt-get install libtcmalloc-minimal4)")
def test_cli_runs_under_tcmalloc_and_fingerprints_it(tmp_path):
    args = ["bench", "--baseline", "fpn_mobilenetv3_small_050", "--size", "64x128", "--device", "cpu", "--threads", "1",
            "--repeats", "2", "--warmup", "1", "--rounds", "1", "--no-memory"]
    fingerprints = {}
    for choice in ("tcmalloc", "system"):
        out = tmp_path / f"{choice}.json"
        done = _workbench([*args, "--json", str(out)], {ENV: choice}, tmp_path)
        assert done.returncode == 0, done.stderr
        fingerprints[choice] = json.loads(out.read_text())["device"]  # the device fingerprint
    assert fingerprints["tcmalloc"]["allocator"] == "tcmalloc"
    assert "allocator" not in fingerprints["system"]


def test_bench_does_not_price_with_a_table_timed_under_another_allocator(tmp_path):
    g = write_genotype(tmp_path / "g" / "genotype.json")
    table = steps.build_lut(tiny_lut_values(tmp_path / "cache"), tmp_path / "lut.json", genotype=g)
    bench = {"genotype": str(g), "size": [32, 64], "device": "cpu", "threads": 1, "warmup": 1, "repeats": 2,
             "rounds": 1, "memory": False}
    (g.parent / "latency_lut.json").write_text(json.dumps(table))
    assert steps.benchmark(bench)["lut"]["predicted_ms"] > 0
    (g.parent / "latency_lut.json").write_text(json.dumps({**table, "fingerprint": {**table["fingerprint"],
                                                                                     "allocator": "tcmalloc"}}))
    note = steps.benchmark(bench)["lut"]
    assert note["predicted_ms"] is None and "allocator tcmalloc" in note["note"]
