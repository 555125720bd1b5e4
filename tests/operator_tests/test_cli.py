"""The ``rekindle`` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rekindle_operator import __version__, cli


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: rekindle" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rekindle_operator.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "Fault-tolerant Keras training" in result.stdout


@pytest.mark.parametrize("module", ["rekindle_operator", "rekindle_operator.cli"])
def test_subcommands_are_reachable_under_python_dash_m(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "MANIFEST" in result.stdout
