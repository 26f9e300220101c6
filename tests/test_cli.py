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


def test_set_takes_several_pairs_after_one_flag_in_every_training_command():
    """`--set a=1 b=2` and `--set a=1 --set b=2` give the same config (the docs use both)."""
    from workbench.cli.args import set_items

    parser = build_parser()
    for command in (["retrain", "--baseline", "fpn_mobilenet_v2", "--run-dir", "r"],
                    ["pretrain", "--genotype", "g.json", "--data-root", "d", "--run-dir", "r"], ["vos", "train", "--data-root", "d", "--run-dir", "r"],
                    ["search", "--run-dir", "r"]):
        one = parser.parse_args([*command, "--set", "aux_weight=0.4", "aux_strides=[16,32]"])
        two = parser.parse_args([*command, "--set", "aux_weight=0.4", "--set", "aux_strides=[16,32]"])
        assert set_items(one) == set_items(two) == ["aux_weight=0.4", "aux_strides=[16,32]"], command
