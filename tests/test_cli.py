"""The command line: every area's commands are registered; user errors are one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

from workbench.cli import build_parser, main


def _commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_every_documented_command_is_registered():
    expected = {"data", "eval", "baseline", "lut", "search", "retrain", "predict", "bench",
                "export", "vos", "notebook", "batch", "report", "runs", "demo", "ablations", "pretrain", "scale"}
    assert expected <= _commands()


def test_user_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(["data", "check", "cityscapes", "--root", str(missing)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and str(missing) in err[0]


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "search" in out.stdout
