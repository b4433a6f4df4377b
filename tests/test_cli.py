"""The command line as a new user meets it: ``python -m fastnn ...``."""

import os
import subprocess
import sys

import pytest

from fastnn.__main__ import main


def run_cli(*args):
    """``python -m fastnn *args`` in a fresh process: (exit status, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "fastnn", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_unknown_command_is_named():
    status, out, err = run_cli("foo")
    assert status == 2
    assert "unknown command 'foo'" in err
    assert "usage: python -m fastnn {demo,bench}" in err
    assert out == ""


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"]])
def test_no_command_or_help_prints_the_usage(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "demo" in text and "bench" in text
    assert "unknown command" not in text
    assert status == (2 if not argv else 0)
