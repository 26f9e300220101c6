"""`workbench` command line: one package, the top layer.

Each area registers its own subcommands (`register(subparsers)` in the modules below). A command
parses its flags into a config dict (`args.explicit`) and calls `workbench.steps` (the core's
only entry point; an import-linter contract checks it), or the lab for notebooks, sweeps and
studies, or `widgets.report` for reports. User errors
(`WorkbenchError`) and file-system errors (`OSError`: a read-only folder, a path through a file)
print one line `error: <file or parameter>: <problem>` and exit with status 2; `-v` or
`WORKBENCH_DEBUG=1` also prints the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from workbench.allocator import preload_environment
from workbench.cli import data, lab, metrics, nas, seg, vos
from workbench.errors import WorkbenchError

AREAS = (data, metrics, nas, seg, vos, lab)  # data synth/check; eval, baseline; lut, search, derive;
# retrain, evaluate, predict, bench, export; vos train/segment; notebook, batch, report, runs, ablations, demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Latency-constrained NAS for real-time segmentation and one-pass VOS.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks with errors (also WORKBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a real command line (not a call from Python): start under the allocator asked for
        try:
            environ = preload_environment()
        except WorkbenchError as exc:
            print(f"error: {error_line(exc)}", file=sys.stderr)
            return 2
        if environ is not None:
            os.execve(sys.executable, [sys.executable, "-m", "workbench", *sys.argv[1:]], environ)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    debug = args.verbose or os.environ.get("WORKBENCH_DEBUG", "") not in ("", "0")
    try:
        result = func(args)
    except (WorkbenchError, OSError) as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: resume with --resume", file=sys.stderr)
        return 130
    return int(result or 0)


def error_line(exc: BaseException) -> str:
    """'<file or parameter>: <problem>' of a WorkbenchError or an OSError."""
    if isinstance(exc, OSError) and not isinstance(exc, WorkbenchError):
        where = exc.filename if exc.filename is not None else "output"
        return f"{where}: {exc.strerror or exc.__class__.__name__}"
    return str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
