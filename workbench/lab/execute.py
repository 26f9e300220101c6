"""Executing one parameterized notebook through papermill into its run directory.

Parameters are validated first (`params.validate_parameters`), a run directory that holds an
earlier run is refused before papermill replaces its executed notebook, widget state is not
stored, and a failing cell becomes one NotebookError naming the cell and its error.

A kernel that dies before it answers its first message is started again (up to
`KERNEL_START_TRIES` times, after a short random wait): jupyter_client picks free ports, frees
them and lets the kernel bind them, so two kernels started at once (a local pool's jobs) can race
for one port (jupyter/jupyter_client#154, nteract/papermill#511). No cell has run then, so a new
start changes nothing; a kernel that dies later is the run's own failure and is not retried.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from workbench.lab.params import NotebookError, parse_parameters, resolve_notebook, validate_parameters
from workbench.runs import RunDir

log = logging.getLogger(__name__)

KERNEL_START_TRIES = 3
KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")


def _execute(path: Path, out: Path, params: dict, kernel_name: str, log_output: bool, timeout: int | None) -> None:
    """papermill's execute_notebook, started again when the kernel dies before its first reply."""
    import papermill as pm

    for attempt in range(1, KERNEL_START_TRIES + 1):
        try:
            pm.execute_notebook(str(path), str(out), parameters=params, kernel_name=kernel_name,
                                progress_bar=False, log_output=log_output, store_widget_state=False,
                                execution_timeout=timeout)
            return
        except RuntimeError as exc:
            if not str(exc).startswith(KERNEL_START_FAILURES):
                raise
            if attempt == KERNEL_START_TRIES:
                raise NotebookError(f"{path.name}: the kernel {kernel_name!r} died before it started, "
                                    f"{KERNEL_START_TRIES} times ({exc}); no cell ran") from None
            log.warning("%s: kernel start %d of %d failed (%s); starting it again", path.name, attempt,
                        KERNEL_START_TRIES, exc)
            time.sleep(random.Random().uniform(0.5, 2.0))  # apart, so two racing launches do not meet again


def run_notebook(notebook: str | Path, parameters: dict[str, Any] | None, output_dir: str | Path, *,
                 output_notebook: str | Path | None = None, kernel_name: str = "python3",
                 log_output: bool = False, timeout: int | None = None) -> Path:
    """Validate, then execute through papermill (widget state not stored) into output_dir.

    Returns the executed notebook. A failing cell raises NotebookError naming the cell and the
    error; the partial notebook is kept.
    """
    import papermill as pm

    path = resolve_notebook(notebook)
    params = validate_parameters(path, dict(parameters or {}))
    output_dir = Path(output_dir).resolve()
    declared = parse_parameters(path)
    if "output_dir" in declared:
        params["output_dir"] = str(output_dir)
    if {"resume", "overwrite"} <= set(declared) and not (params.get("resume") or params.get("overwrite")):
        RunDir(output_dir).require_empty()  # before papermill replaces the executed notebook
    output_dir.mkdir(parents=True, exist_ok=True)
    out = Path(output_notebook) if output_notebook else output_dir / path.name
    log.info("running %s -> %s", path.name, out)
    saved_tqdm = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress-bar widgets in batch outputs
    try:
        _execute(path, out, params, kernel_name, log_output, timeout)
    except pm.PapermillExecutionError as exc:
        evalue = str(exc.evalue).strip().splitlines()[-1] if str(exc.evalue).strip() else ""
        try:  # the failing cell's first line, from the partial notebook papermill kept
            import nbformat

            failed = next(c for c in nbformat.read(out, as_version=4).cells
                          if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
            first = failed.source.strip().splitlines()[0]
        except Exception:
            first = ""
        snippet = f" `{first[:60]}`" if first else ""
        raise NotebookError(f"{path.name}: cell {exc.cell_index}{snippet} (execution count {exc.exec_count}) "
                            f"failed: {exc.ename}: {evalue}; partial notebook kept at {out}") from None
    finally:
        if saved_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved_tqdm
    return out


def notebook_status(output_dir: str | Path) -> str:
    """'finished' when the run record says so and no executed notebook in the folder failed."""
    import nbformat

    run = RunDir(output_dir)
    status = run.record().get("status", "missing")
    for nb_path in Path(output_dir).glob("*.ipynb"):
        try:
            meta = nbformat.read(nb_path, as_version=4).metadata.get("papermill", {})
        except Exception:
            return "failed"
        if meta.get("exception"):
            return "failed"
    return status
