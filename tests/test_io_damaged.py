"""fastnn.io refuses damaged and hostile files: every bad file raises a ``ValueError``
that names the file and the problem, and ``load`` never executes a pickle."""

import json
import pickle
import re

import numpy as np
import pytest

import fastnn
import fastnn._format
import fastnn.io
from fastnn.io import load, save

from _helpers import assert_same_model, build, trained

# -- bad files: (make the file at a path, what the message says) ---------------------


def _arrays(model=None):
    """The arrays and decoded header save() would write, to be tampered with."""
    model = model or trained()
    header = json.loads(fastnn._format.encode_header(model).tobytes())
    arrays = {
        "params": model.params.copy(),
        "optimizer_state": model.optimizer.state.copy(),
        "optimizer_step": model.optimizer.step.copy(),
    }
    return header, arrays


def _write_npz(path, header, arrays, **kwargs):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    arrays = {"header": np.frombuffer(text, np.uint8), **arrays}
    with open(path, "wb") as file:  # exactly this name, whatever its suffix
        np.savez(file, **arrays, **kwargs)


def _tampered(change):
    def make(path):
        header, arrays = _arrays()
        header, arrays = change(header, arrays) or (header, arrays)
        _write_npz(path, header, arrays)

    return make


def _set(header_key=None, value=None, array=None, new=None, drop=None):
    def change(header, arrays):
        if header_key is not None:
            header[header_key] = value
        if array is not None:
            arrays[array] = new
        if drop in header:
            del header[drop]
        if drop in arrays:
            del arrays[drop]

    return change


def _real_file_prefix(fraction):
    def make(path):
        save(trained(), path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return make


def _object_array_as(key):
    def make(path):
        header, arrays = _arrays()
        arrays[key] = np.array([{"a": 1}, None], dtype=object)
        _write_npz(path, header, arrays, allow_pickle=True)

    return make


def _npy(path):
    with open(path, "wb") as file:
        np.save(file, np.arange(5.0))


def _header_bytes(raw):
    def make(path):
        _, arrays = _arrays()
        _write_npz(path, raw, arrays)

    return make


def _saved_with(**changes):
    """A saved model whose JSON header has ``changes`` applied."""

    def make(path):
        save(build(), path)
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(arrays["header"].tobytes())
        header.update(changes)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    return make


def _saved_plus(**extra):
    def make(path):
        save(build(), path)
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        with open(path, "wb") as file:
            np.savez(file, **arrays, **extra, allow_pickle=True)

    return make


def _bytes(data):
    return lambda path: path.write_bytes(data)


def _prefix(n_bytes):
    def make(path):
        save(build(), path)
        path.write_bytes(path.read_bytes()[:n_bytes])

    return make


BAD_FILES = {
    "empty": (lambda p: p.write_bytes(b""), "damaged or truncated"),
    "first half": (_real_file_prefix(0.5), "damaged or truncated"),
    "all but last byte": (_real_file_prefix(0.999), "damaged or truncated"),
    "first 10 bytes": (_real_file_prefix(0.005), "damaged or truncated"),
    "random bytes": (
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)),
        None,  # any message: only the type and the file name are checked
    ),
    "random bytes after zip magic": (
        lambda p: p.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(999)),
        "damaged or truncated",
    ),
    "plain text": (
        lambda p: p.write_text("sizes: [3, 5, 2]\nweights: 0.1 0.2\n"),
        "pickle",
    ),
    "pickle": (lambda p: p.write_bytes(pickle.dumps({"params": [1.0]})), "pickle"),
    "npy": (_npy, r"single \.npy array"),
    "npz without params": (_tampered(_set(drop="params")), "no 'params'"),
    "unrelated npz": (lambda p: np.savez(p, x=np.zeros(3)), "no 'header'"),
    "version 0": (_tampered(_set("version", 0)), "invalid version"),
    "version string": (_tampered(_set("version", "1")), "invalid version"),
    "other format": (_tampered(_set("format", "other")), "format 'other'"),
    "no format": (_tampered(_set(drop="format")), "format None"),
    "header missing sizes": (_tampered(_set(drop="sizes")), "lacks sizes"),
    "header missing rng_state": (_tampered(_set(drop="rng_state")), "lacks rng_state"),
    "header not json": (_header_bytes(b"{not json"), "not valid UTF-8 JSON"),
    "header not utf-8": (_header_bytes(b"\xff\xfe{}"), "not valid UTF-8 JSON"),
    "header a list": (_header_bytes(b"[1, 2]"), "not a JSON object"),
    "header as float array": (
        _tampered(lambda h, a: (h, {**a, "header": np.zeros(3)})),
        "1-D uint8",
    ),
    "params too short": (
        _tampered(lambda h, a: (h, {**a, "params": a["params"][:-1]})),
        "'params' has shape",
    ),
    "params 2-D": (
        _tampered(lambda h, a: (h, {**a, "params": a["params"][None]})),
        "'params' has shape",
    ),
    "params wrong dtype": (
        _tampered(lambda h, a: (h, {**a, "params": a["params"].astype(np.float64)})),
        "dtype float32",
    ),
    "params as text": (
        _tampered(lambda h, a: (h, {**a, "params": a["params"].astype(str)})),
        "'params' has shape",
    ),
    "state wrong shape": (
        _tampered(lambda h, a: (h, {**a, "optimizer_state": a["optimizer_state"][0]})),
        "'optimizer_state' has shape",
    ),
    "step wrong dtype": (
        _tampered(lambda h, a: (h, {**a, "optimizer_step": np.array([3.0])})),
        "'optimizer_step' has shape",
    ),
    "negative step": (
        _tampered(lambda h, a: (h, {**a, "optimizer_step": np.array([-1])})),
        "negative",
    ),
    "huge sizes": (_tampered(_set("sizes", [10**6, 10**6])), "'params' has shape"),
    "sizes not ints": (_tampered(_set("sizes", [3.0, 5, 2])), "invalid layer sizes"),
    "one size": (_tampered(_set("sizes", [3])), "invalid layer sizes"),
    "bad dtype": (_tampered(_set("dtype", "int8")), "invalid dtype"),
    "bad loss": (_tampered(_set("loss", "hinge")), "unknown loss 'hinge'"),
    "bad hidden": (_tampered(_set("hidden", ["relu", "relu"])), "no valid model"),
    "bad output": (_tampered(_set("output", 3)), "output activation"),
    "bad seed": (_tampered(_set("seed", -1)), "no valid model"),
    "unknown optimizer": (
        _tampered(_set("optimizer", {"name": "rmsprop", "lr": 0.1})),
        "unknown optimizer 'rmsprop'",
    ),
    "optimizer bad field": (
        _tampered(_set("optimizer", {"name": "sgd", "decay": 0.1})),
        "decay",
    ),
    "optimizer bad lr": (
        _tampered(_set("optimizer", {"name": "adam", "lr": -1.0})),
        "lr must be",
    ),
    "optimizer not a dict": (_tampered(_set("optimizer", "adam")), "not a JSON object"),
    "rng unknown": (
        _tampered(_set("rng_state", {"bit_generator": "os.system"})),
        "invalid rng_state",
    ),
    "rng bad state": (
        _tampered(_set("rng_state", {"bit_generator": "PCG64", "state": 3})),
        "rng_state cannot be restored",
    ),
    "object array as params": (_object_array_as("params"), "never loads pickled"),
    "object array as header": (_object_array_as("header"), "never loads pickled"),
    "one byte": (_bytes(b"P"), "not an .npz file"),
    "empty zip archive": (_bytes(b"PK\x05\x06" + bytes(18)), "has no 'header'"),
    "first 40 bytes": (_prefix(40), "damaged or truncated"),
    "random 100 kB": (_bytes(np.random.default_rng(1).bytes(100_000)), "cannot load"),
    "pickled model": (lambda p: p.write_bytes(pickle.dumps(build())), "never loads"),
    "extra pickled entry": (
        _saved_plus(model=np.array([{"evil": 1}], dtype=object)),
        r"unexpected entries \['model'\]",
    ),
    "version 2": (_saved_with(version=2), r"newer fastnn \(format version 2\)"),
    "version 1.5": (_saved_with(version=1.5), "invalid version 1.5"),
    "version true": (_saved_with(version=True), "invalid version True"),
    "sizes with zero": (_saved_with(sizes=[4, 0, 3]), r"sizes \[4, 0, 3\]"),
    "sizes negative": (_saved_with(sizes=[4, -5, 3]), r"sizes \[4, -5, 3\]"),
    "training 'false'": (_saved_with(training="false"), "invalid training 'false'"),
    "dropout 1.5": (_saved_with(dropout=[1.5]), r"dropout must be in .*got 1\.5"),
    "batch_norm 'yes'": (_saved_with(batch_norm="yes"), "invalid batch_norm 'yes'"),
    "dropout_seed 1.5": (_saved_with(dropout_seed=1.5), "invalid dropout_seed 1.5"),
    "hidden swish": (_saved_with(hidden=["swish"]), "hidden activation 'swish'"),
}


@pytest.mark.parametrize(("make", "match"), BAD_FILES.values(), ids=BAD_FILES)
def test_bad_file_raises_value_error_naming_file(tmp_path, make, match):
    path = tmp_path / "bad file.npz"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        load(path)
    assert repr(str(path)) in str(info.value)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(str(path))


def test_every_damaged_byte_is_caught_or_harmless(tmp_path):
    model = trained()
    good = tmp_path / "good.npz"
    save(model, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    rng = np.random.default_rng(0)
    positions = rng.choice(len(data), 150, replace=False)
    n_caught = 0
    for i in positions:
        damaged = bytearray(data)
        damaged[i] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(damaged))
        try:
            loaded = load(bad)
        except ValueError as err:
            assert str(bad) in str(err)
            n_caught += 1
        else:  # zip metadata that does not matter (times, versions): same model
            assert_same_model(loaded, model)
    assert n_caught > 100  # the zip's CRCs catch damage to the data


def test_truncated_at_every_length_is_caught(tmp_path):
    save(trained(), tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    for n in range(0, len(data), 7):
        bad.write_bytes(data[:n])
        with pytest.raises(ValueError, match="bad.npz"):
            load(bad)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


def test_folder_is_not_a_value_error(tmp_path):
    with pytest.raises(OSError):  # IsADirectoryError or PermissionError
        load(tmp_path)


# -- pickles are never executed ------------------------------------------------------

EXECUTED = []


def _mark_executed():
    EXECUTED.append(True)
    return 0.0


class _Payload:
    def __reduce__(self):
        return _mark_executed, ()


def test_load_never_executes_pickles(tmp_path, monkeypatch):
    payload = pickle.dumps(_Payload())
    pickle.loads(payload)  # control: unpickling this does run code
    assert EXECUTED == [True]
    EXECUTED.clear()

    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)

    as_pickle = tmp_path / "payload.pkl"
    as_pickle.write_bytes(payload)
    with pytest.raises(ValueError, match="never loads pickled"):
        load(as_pickle)

    header, arrays = _arrays()
    for key in ("params", "header", "optimizer_step"):
        as_npz = tmp_path / f"payload_{key}.npz"
        _write_npz(
            as_npz,
            header,
            {**arrays, key: np.array([_Payload()], dtype=object)},
            allow_pickle=True,
        )
        with pytest.raises(ValueError, match=f"{key!r} holds Python objects"):
            load(as_npz)

    assert EXECUTED == []
    assert calls and all(kw.get("allow_pickle") is False for kw in calls)
