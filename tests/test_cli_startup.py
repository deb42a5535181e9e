"""`fakd --version` / `fakd --help` answer at once: they import no sub-command module (torch, pandas)."""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakd.cli import COMMANDS, build_parser

FAKD = Path(sys.executable).with_name("fakd")

_IMPORTS_AFTER = """
import sys
from fakd.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(name for name in ("torch", "pandas", "numpy", "fakd.commands.train") if name in sys.modules)
print("HEAVY", ",".join(heavy))
"""


def _heavy_modules_after(argv: list[str]) -> str:
    done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER.format(argv=argv)], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_top_level_imports_no_heavy_module(argv):
    assert _heavy_modules_after(argv) == "HEAVY"


def test_a_sub_command_imports_only_its_own_module():
    assert _heavy_modules_after(["study", "--help"]) == "HEAVY"  # study's module is light; train's not loaded


@pytest.mark.skipif(not FAKD.is_file(), reason="the fakd console script is not installed beside this python")
@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_console_script_answers_within_half_a_second(argv):
    best = float("inf")
    for _ in range(3):  # the best of three: a loaded machine may stall one start
        started = time.perf_counter()
        done = subprocess.run([str(FAKD), *argv], capture_output=True, text=True)
        best = min(best, time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    assert best <= 0.5, f"fakd {' '.join(argv)} took {best:.2f} s"
    if argv == ["--help"]:
        assert all(name in done.stdout for name in COMMANDS)


def _registered_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_listed_help_equals_each_modules_own():
    assert _registered_help(build_parser()) == COMMANDS  # every module registered, in the listed order
    assert _registered_help(build_parser([])) == COMMANDS


def test_the_requested_sub_command_gets_its_full_parser(capsys):
    from fakd.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_an_unknown_sub_command_is_one_line_and_exit_2(capsys):
    from fakd.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bogus", "--help"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
