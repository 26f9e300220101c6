"""Wall-clock of one study on each engine: serial, `local --jobs 2`, Ray with 2 workers.

The study (default `benchmarks/ablations_smoke.yaml`) runs three times, one engine after another,
each into its own output folder (the data is generated once, before the first). Each run is the
CLI a user types, `workbench ablations run STUDY --engine E --jobs N`, timed from start to exit
(Ray's start-up included). Run on a quiet machine: the point is what 2 cores allow.

    python benchmarks/engines.py --json benchmarks/results/engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from workbench import steps
from workbench.device import cpu_model

ENGINES = [("serial", 1), ("local", 2), ("ray", 2)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default="benchmarks/ablations_smoke.yaml")
    p.add_argument("--out-root", default="runs/engines")
    p.add_argument("--json", default="benchmarks/results/engines.json")
    args = p.parse_args()
    study = yaml.safe_load(Path(args.study).read_text())
    for data in study.get("data") or []:
        spec = dict(data)
        kind, out = spec.pop("kind"), spec.pop("out")
        if not Path(out, "synth.json").exists():
            steps.synth_data(kind, out, **{k: tuple(v) if k == "size" else v for k, v in spec.items()})
    rows = []
    for engine, jobs in ENGINES:
        root = Path(args.out_root) / f"{engine}-{jobs}"
        if root.exists():
            raise SystemExit(f"error: {root}: exists; give a fresh --out-root")
        root.mkdir(parents=True)
        path = root / "study.yaml"
        path.write_text(yaml.safe_dump({**study, "output_root": str(root / "runs")}, sort_keys=False))
        cmd = [sys.executable, "-m", "workbench", "ablations", "run", str(path), "--engine", engine, "--jobs", str(jobs)]
        load = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TQDM_DISABLE": "1"})
        wall = time.perf_counter() - t0
        (root / "log.txt").write_text(proc.stdout)
        runs = sum(1 for _ in (root / "runs").rglob("run_record.json"))
        rows.append({"engine": engine, "jobs": jobs, "wall_s": round(wall, 1), "exit": proc.returncode,
                     "run_records": runs, "loadavg_before": load})
        print(f"{engine} x{jobs}: {wall:.0f} s, exit {proc.returncode}, {runs} run records", flush=True)
    serial = rows[0]["wall_s"]
    for r in rows:
        r["speedup_vs_serial"] = round(serial / r["wall_s"], 2)
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "study": args.study,
           "command": f"python benchmarks/engines.py --study {args.study} --out-root {args.out_root}", "runs": rows}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print("| engine | wall clock (s) | speed-up | exit |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} (jobs {r['jobs']}) | {r['wall_s']} | {r['speedup_vs_serial']}x | {r['exit']} |")


if __name__ == "__main__":
    main()
