"""The benchmarks run: every asv benchmark once, without asv, and the comparison.

A benchmark that raises, or a ``track_`` that returns no number, fails here instead
of showing up as a gap in the asv history. Times are not checked (DESIGN.md: measure
in benchmarks, never in timed tests).
"""

import importlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import fastnn.bench

from conftest import tolerance

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
PREFIXES = ("time_", "track_", "timeraw_", "mem_", "peakmem_")
TIMERAW_TIMEOUT = 300  # s


def load_suites():
    """Import ``benchmarks`` (by path, as asv does) and its ``bench_*`` modules."""
    before = set(os.environ)
    spec = importlib.util.spec_from_file_location(
        "benchmarks",
        BENCH_DIR / "__init__.py",
        submodule_search_locations=[str(BENCH_DIR)],
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks"] = package
    spec.loader.exec_module(package)
    # The package pins threads for asv; keep this test process as it was.
    package.THREAD_LIMITS.restore_original_limits()
    for name in set(package.THREAD_VARIABLES) - before:
        del os.environ[name]
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    return [importlib.import_module(f"benchmarks.{name}") for name in names]


def collect():
    """``(class, method name)`` of every benchmark in the suites, as asv finds them."""
    found = []
    for module in load_suites():
        for cls_name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for name in dir(cls):
                if name.startswith(PREFIXES):
                    found.append(pytest.param(cls, name, id=f"{cls_name}.{name}"))
    return found


BENCHMARKS = collect()


def param_combinations(cls):
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], list | tuple):
        params = [params]  # one parameter, given as a flat list
    return list(itertools.product(*params))


def run_timeraw(code):
    """Run a ``timeraw_`` benchmark's code the way asv does: a fresh interpreter."""
    stmt, setup = code if isinstance(code, tuple) else (code, "")
    program = (
        "from timeit import timeit\n"
        f"print(timeit(stmt={stmt!r}, setup={setup!r}, number=1))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=TIMERAW_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


def test_benchmarks_were_found():
    classes = {p.values[0].__name__ for p in BENCHMARKS}
    assert {"DenseForward", "DenseBackward", "TrainStep", "FitEpoch", "Predict"} <= (
        classes
    )
    assert {"Startup", "Parity"} <= classes


@pytest.mark.parametrize(("cls", "name"), BENCHMARKS)
def test_benchmark_runs(cls, name):
    """Every parameter combination: setup, the benchmark once, teardown."""
    env = {}
    if name.startswith("timeraw_"):
        # Its subprocesses run the code as plain Python: what is checked is that the
        # code runs, and a cold cache would compile every kernel (~30 s here).
        env = {"NUMBA_DISABLE_JIT": "1"}
    for combo in param_combinations(cls):
        with mock.patch.dict(os.environ, env):
            run_once(cls(), name, combo)


def run_once(bench, name, combo):
    try:
        if hasattr(bench, "setup"):
            bench.setup(*combo)
    except NotImplementedError as skip:  # asv's way for setup to skip
        pytest.skip(str(skip))
    try:
        result = getattr(bench, name)(*combo)
        if name.startswith("timeraw_"):
            result = run_timeraw(result)
        if name.startswith(("track_", "timeraw_")):
            assert isinstance(result, float | int), (combo, result)
            assert math.isfinite(result) and result >= 0, (combo, result)
        if name.endswith("_error"):  # parity with tests/reference.py
            dtype = "float32" if "float32" in combo else "float64"
            assert result < tolerance(dtype, "bench_error")["atol"], (combo, result)
    finally:
        if hasattr(bench, "teardown"):
            bench.teardown(*combo)


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    with mock.patch.dict(os.environ):  # bench may set XLA_FLAGS
        status = fastnn.bench.main(["--quick", "--cases", "xor", "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    assert set(report) == {"meta", "rounds", "results"}
    assert {"cpu", "threads", "versions", "thread_pools"} <= set(report["meta"])
    assert [(r["case"], r["dtype"]) for r in report["results"]] == [
        ("xor", "float32"),
        ("xor", "float64"),
    ]
    for r in report["results"]:
        assert set(r) == {"case", "dtype", "us_per_step", "status", "first_loss"}
        assert set(r["status"]) == set(fastnn.bench.PEERS)
        # a peer is timed, or reported missing; a broken one fails this test
        for peer, status in r["status"].items():
            assert status in ("ok", "missing"), (peer, status)
            assert (peer in r["us_per_step"]) == (status == "ok")
        assert {"fastnn", "kernel", "numpy", "floor", "fit"} <= set(r["us_per_step"])
        assert all(t > 0 for t in r["us_per_step"].values())
    text = capsys.readouterr().out
    assert "MISSED" not in text and "target" not in text.lower()
    assert "float32, 1 thread(s)" in text and "float64, 1 thread(s)" in text


@pytest.mark.parametrize("installed", [True, False], ids=["onnxruntime", "missing"])
def test_bench_predict_against_onnxruntime(tmp_path, capsys, monkeypatch, installed):
    from fastnn import _bench_predict as bp

    if installed:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    else:  # as if onnxruntime were not installed
        available = bp._available
        monkeypatch.setattr(
            bp, "_available", lambda mods: "onnxruntime" not in mods and available(mods)
        )
    tiny = bp.PredictCase((5, 4, 3), "relu", "softmax", "float32")
    monkeypatch.setattr(bp, "PREDICT_CASES", (tiny,))
    monkeypatch.setattr(bp, "BATCHES", (1, 3))
    out = tmp_path / "p.json"
    status = fastnn.bench.main(["--predict-only", "--quick", "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    assert report["results"] == []
    if installed:
        assert report["meta"]["versions"]["onnxruntime"]
    assert [(r["network"], r["batch"]) for r in report["predict"]] == [
        ("5-4-3 relu/softmax float32", 1),
        ("5-4-3 relu/softmax float32", 3),
    ]
    for r in report["predict"]:
        want = "ok" if installed else "missing"
        assert r["status"] == {"fastnn": "ok", "onnxruntime": want}
        assert set(r["us_per_call"]) == ({"fastnn", "onnxruntime"} if installed
                                         else {"fastnn"})  # fmt: skip
        assert all(t > 0 for t in r["us_per_call"].values())
        if installed:
            assert r["max_rel_diff"]["onnxruntime"] < 1e-5
    text = capsys.readouterr().out
    assert "predict, 1 thread(s)" in text
    assert ("missing" in text) != installed
