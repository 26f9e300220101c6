"""Where a sweep's notebook runs execute: one after another, N at once on this machine, or on Ray.

Every engine runs the same job function (`run_job`), so a run's outputs do not depend on the
engine: given the same seeds and thread counts, the same genotypes and metrics come out. A job is
one stage of one grid point; the stages of a point run in order (a stage waits for the previous
one and is not run when it failed), points run independently.

- `serial`: the jobs in plan order, in this process (the default of 0.1).
- `local`: up to `jobs` at once, each in its own process, the machine's cores split between them
  (OMP/MKL thread variables, which a notebook's torch reads when it sets no thread count).
- `ray`: every job is a Ray task declaring its CPUs (and a GPU when its device is cuda), with the
  previous stage of its point as a dependency. Without an address Ray starts embedded on this
  machine; with one it joins that cluster (`ray start --head` and `ray start --address ...`, or Ray
  on SLURM or Kubernetes). A task whose worker dies (node lost, process killed) is retried by Ray
  and resumes from the run's last checkpoint; a run that fails for its own reasons (a bad config, a
  failing cell) is reported once and not retried.

The run record of each run says which engine and which host ran it (`engine`, `host`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench import timelock
from workbench.errors import ConfigError, WorkbenchError

ENGINES = ("serial", "local", "ray")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def job_payload(item: dict, index: int, total: int) -> dict:
    """A plan item as plain data a process or a Ray task can take."""
    return {"label": f"[{index}/{total}] {item['point']}/{item['stage']}", "point": item["point"],
            "stage": item["stage"], "notebook": str(item["notebook"]), "output_dir": str(item["output_dir"]),
            "parameters": item["parameters"]}


def run_job(job: dict, env: dict | None = None, upstream: dict | None = None) -> dict:
    """Run one notebook run: skip it when finished, resume an unfinished one, report a failure.

    Returns {"label", "output_dir", "status": finished|skipped|failed|blocked, "error", "seconds",
    "host"}. A run directory still locked by a holder that is dying (the kernel of a killed worker)
    is waited for, up to a minute.
    """
    from nbclient.exceptions import DeadKernelError

    from workbench.lab.execute import notebook_status, run_notebook
    from workbench.lab.params import parse_parameters
    from workbench.runs import RunDir, RunDirError

    out = {"label": job["label"], "output_dir": job["output_dir"], "error": None, "seconds": 0.0,
           "host": socket.gethostname()}
    if upstream is not None and upstream["status"] in ("failed", "blocked"):
        return {**out, "status": "blocked"}
    os.environ.update(env or {})
    timelock.join()  # in a local pool: stopped while another job times (workbench.timelock)
    status = notebook_status(job["output_dir"])
    if status == "finished":
        return {**out, "status": "skipped"}
    t0 = time.time()
    deadline = t0 + 60
    while True:
        params = dict(job["parameters"])
        if RunDir(job["output_dir"]).own_entries() and "resume" in parse_parameters(job["notebook"]):
            params["resume"] = True
        try:
            run_notebook(job["notebook"], params, job["output_dir"])
        except RunDirError as exc:
            if "in use by" in str(exc) and time.time() < deadline:
                time.sleep(2.0)
                continue
            return {**out, "status": "failed", "error": str(exc), "seconds": round(time.time() - t0, 1)}
        except WorkbenchError as exc:
            return {**out, "status": "failed", "error": str(exc), "seconds": round(time.time() - t0, 1)}
        except DeadKernelError as exc:  # killed mid-run (out of memory): this run failed, not the batch
            return {**out, "status": "failed", "error": f"{Path(job['notebook']).name}: the kernel died: {exc}",
                    "seconds": round(time.time() - t0, 1)}
        return {**out, "status": "finished", "seconds": round(time.time() - t0, 1), "resumed": status != "missing"}


def _thread_env(engine: str, threads: int) -> dict:
    return {"WORKBENCH_ENGINE": engine, **{v: str(threads) for v in THREAD_VARIABLES}}


def _serial(jobs: list[dict], report: Callable[[dict], None], **_: Any) -> list[dict]:
    results, by_label = [], {}
    for job in jobs:
        res = run_job(job, {"WORKBENCH_ENGINE": "serial"}, by_label.get(job.get("after")))
        by_label[job["label"]] = res
        results.append(res)
        report(res)
    return results


def _local(jobs: list[dict], report: Callable[[dict], None], n: int = 2, **_: Any) -> list[dict]:
    """Up to n jobs at once, each in a fresh process; a job waits for its point's previous stage.
    The jobs share one timing lock (`workbench.timelock`): a job that times stops the others."""
    import multiprocessing as mp
    import tempfile
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // n)
    done: dict[str, dict] = {}
    pending = list(jobs)
    running: dict[Any, dict] = {}
    with (tempfile.TemporaryDirectory(prefix="workbench-timelock-") as lock,
          ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool):
        env = {**_thread_env("local", threads), timelock.ENV: lock}
        while pending or running:
            ready = [j for j in pending if not j.get("after") or j["after"] in done]
            for job in ready[: max(0, n - len(running))]:
                pending.remove(job)
                running[pool.submit(run_job, job, env, done.get(job.get("after")))] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                res = fut.result()
                done[running.pop(fut)["label"]] = res
                report(res)
    return [done[j["label"]] for j in jobs]


def _ray(jobs: list[dict], report: Callable[[dict], None], address: str | None = None, **_: Any) -> list[dict]:
    """Every job a Ray task; the previous stage of a point is passed in as a dependency."""
    try:
        import ray
    except ImportError:
        raise ConfigError("engine: ray needs the ray package (pip install 'workbench[cluster]')") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 **({} if address else {"_node_ip_address": "127.0.0.1"}))
    try:
        cpus = max(1, int(ray.available_resources().get("CPU", 1) // max(1, min(len(jobs), 8))))
        task = ray.remote(max_retries=3, retry_exceptions=False)(run_job)
        refs: dict[str, Any] = {}
        for job in jobs:
            gpu = str(job["parameters"].get("device", "")).startswith("cuda")
            options = {"num_cpus": cpus, "num_gpus": 1 if gpu else 0, "name": f"run_job {job['label']}"}
            refs[job["label"]] = task.options(**options).remote(job, _thread_env("ray", cpus),
                                                                refs.get(job.get("after")))
        order = {ref: label for label, ref in refs.items()}
        results: dict[str, dict] = {}
        remaining = list(refs.values())
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=1)
            for ref in ready:
                try:
                    res = ray.get(ref)
                except Exception as exc:  # retries exhausted: the worker kept dying
                    res = {"label": order[ref], "status": "failed", "error": f"{exc.__class__.__name__}: {exc}"}
                results[order[ref]] = res
                report(res)
        return [results[j["label"]] for j in jobs]
    finally:
        if started:
            ray.shutdown()


def run_jobs(jobs: list[dict], engine: str = "serial", n: int = 1, address: str | None = None,
             report: Callable[[dict], None] | None = None) -> list[dict]:
    """Run the jobs on an engine; `report(result)` is called as each one ends."""
    if engine not in ENGINES:
        raise ConfigError(f"engine: unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if n < 1:
        raise ConfigError(f"jobs: at least 1, got {n}")
    if address and engine != "ray":
        raise ConfigError("address: only the ray engine joins a cluster")
    runner = {"serial": _serial, "local": _local, "ray": _ray}[engine if not (engine == "local" and n == 1)
                                                                else "serial"]
    return runner(jobs, report or (lambda res: None), n=n, address=address)


def chain_stages(plan: list[dict]) -> list[dict]:
    """Job payloads of a plan, each stage depending on the previous stage of its point."""
    jobs, last = [], {}
    for i, item in enumerate(plan, 1):
        job = job_payload(item, i, len(plan))
        job["after"] = last.get(item["point"])
        last[item["point"]] = job["label"]
        jobs.append(job)
    return jobs


def output_root(sweep: dict) -> Path:
    return (Path.cwd() / sweep.get("output_root", "runs/sweep")).resolve()
