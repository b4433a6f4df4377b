"""The command line as a new user meets it: ``python -m fastnn ...``."""

import os
import subprocess
import sys

import pytest

import fastnn.bench
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


def test_demo_help_is_plain_text_and_explains_every_option():
    status, out, _ = run_cli("demo", "--help")
    assert status == 0
    assert "``" not in out and ":func:" not in out
    assert "XOR" in out
    lines = out.splitlines()
    for option in ("--epochs", "--seed", "--plot"):
        line = next(i for i, ln in enumerate(lines) if ln.strip().startswith(option))
        # argparse puts the help on the option's line, or on the next when long
        helptext = (lines[line].split(maxsplit=2)[2:] or [lines[line + 1]])[0]
        assert helptext.strip(), f"{option} has no help text"
    assert "default: 3000" in out


def test_bench_reports_numbers_not_targets(monkeypatch, capsys):
    """The bench prints times and ratios; it judges nothing against goals."""
    us = {"fastnn": 6.4, "kernel": 3.1, "numpy": 29.9, "floor": 5.5, "fit": 2.0}
    status = {peer: "ok" for peer in fastnn.bench.PEERS}
    status.update(torch="missing", jax="missing")
    report = {
        "meta": {"cpu": "test CPU", "logical_cpus": 2, "threads": 1,
                 "versions": {"fastnn": fastnn.__version__}},
        "rounds": 3,
        "results": [{"case": "xor", "dtype": dt, "us_per_step": us, "status": status,
                     "first_loss": {"fastnn": 0.25, "numpy": 0.25}}
                    for dt in ("float32", "float64")],
    }  # fmt: skip
    monkeypatch.setattr(fastnn.bench, "run", lambda args: report)
    assert fastnn.bench.main(["--cases", "xor"]) == 0
    out = capsys.readouterr().out
    assert "xor" in out and "4.7×" in out  # numpy / fastnn = 29.9 / 6.4
    assert "MISSED" not in out and "target" not in out.lower()
