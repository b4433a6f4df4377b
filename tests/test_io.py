"""fastnn.io: bit-exact round trips, resumable training, atomic saves, bad files."""

import json
import os
import pickle
import re

import numpy as np
import pytest

import fastnn
import fastnn._format
import fastnn.io
from fastnn.io import FORMAT_VERSION, load, save

ARCHITECTURES = {
    "softmax": dict(sizes=[3, 5, 2], hidden="relu", loss="cross_entropy"),
    "mse": dict(sizes=[3, 4, 4, 1], hidden=["tanh", "sigmoid"], loss="mse"),
    "bce": dict(sizes=[3, 5, 2], hidden="leaky_relu", loss="bce"),
}
OPTIMIZERS = {
    "sgd": lambda: fastnn.SGD(lr=0.1),
    "momentum": lambda: fastnn.SGD(lr=0.05, momentum=0.9),
    "nesterov": lambda: fastnn.SGD(lr=0.05, momentum=0.5, nesterov=True),
    "adam": lambda: fastnn.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7),
}


def make_model(arch="softmax", optimizer="adam", dtype=np.float32, seed=0):
    spec = dict(ARCHITECTURES[arch])
    return fastnn.MLP(
        spec.pop("sizes"), optimizer=OPTIMIZERS[optimizer](), dtype=dtype, seed=seed,
        **spec,
    )  # fmt: skip


def batches(model, n_batches, n_samples=4, seed=1):
    """Deterministic training batches that fit the model's loss."""
    rng = np.random.default_rng(seed)
    n_in, n_out = model.sizes[0], model.sizes[-1]
    out = []
    for _ in range(n_batches):
        X = rng.normal(size=(n_samples, n_in))
        if model.loss_name == "cross_entropy":
            Y = rng.integers(0, n_out, n_samples)
        elif model.loss_name == "bce":
            Y = rng.integers(0, 2, (n_samples, n_out)).astype(float)
        else:
            Y = rng.normal(size=(n_samples, n_out))
        out.append((X, Y))
    return out


def trained(arch="softmax", optimizer="adam", dtype=np.float32, steps=3):
    model = make_model(arch, optimizer, dtype)
    for X, Y in batches(model, steps, seed=7):
        model.train_step(X, Y)
    return model


def assert_same_model(loaded, model):
    assert loaded.sizes == model.sizes
    assert loaded.hidden == model.hidden
    assert loaded.output == model.output
    assert loaded.loss_name == model.loss_name
    assert loaded.dtype == model.dtype
    assert loaded.seed == model.seed
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.params.dtype == model.params.dtype
    np.testing.assert_array_equal(loaded.params, model.params, strict=True)
    np.testing.assert_array_equal(
        loaded.optimizer.state, model.optimizer.state, strict=True
    )
    np.testing.assert_array_equal(
        loaded.optimizer.step, model.optimizer.step, strict=True
    )
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state
    for W, W_saved in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(W, W_saved, strict=True)
        assert np.shares_memory(W, loaded.params)  # still views, not rebound
    for b in loaded.biases:
        assert np.shares_memory(b, loaded.params)


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_round_trip_is_exact_and_training_resumes_identically(
    tmp_path, dtype, arch, optimizer
):
    model = trained(arch, optimizer, dtype)
    path = tmp_path / "model.npz"
    save(model, path)
    loaded = load(path)

    assert_same_model(loaded, model)
    X = np.random.default_rng(3).normal(size=(6, model.sizes[0]))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X), strict=True)
    assert loaded.loss(*batches(model, 1)[0]) == model.loss(*batches(model, 1)[0])

    for X, Y in batches(model, 4, seed=11):
        assert loaded.train_step(X, Y) == model.train_step(X, Y)
    np.testing.assert_array_equal(loaded.params, model.params, strict=True)
    np.testing.assert_array_equal(
        loaded.optimizer.state, model.optimizer.state, strict=True
    )
    assert loaded.optimizer.step[0] == model.optimizer.step[0] == 7


def test_round_trip_of_untrained_model(tmp_path):
    model = make_model(seed=None)
    save(model, tmp_path / "m.npz")
    assert_same_model(load(tmp_path / "m.npz"), model)


def test_model_save_method_and_exact_file_name(tmp_path):
    model = trained()
    path = tmp_path / "weights.bin"  # np.savez would have written weights.bin.npz
    model.save(str(path))
    assert os.listdir(tmp_path) == ["weights.bin"]
    assert_same_model(load(str(path)), model)
    assert_same_model(fastnn.io.load(path), model)


def test_save_leaves_the_model_unchanged(tmp_path):
    model = trained()
    before = (
        model.params.copy(),
        model.optimizer.state.copy(),
        model.optimizer.step.copy(),
        model.rng.bit_generator.state,
    )
    save(model, tmp_path / "m.npz")
    np.testing.assert_array_equal(model.params, before[0])
    np.testing.assert_array_equal(model.optimizer.state, before[1])
    np.testing.assert_array_equal(model.optimizer.step, before[2])
    assert model.rng.bit_generator.state == before[3]


def test_saving_twice_overwrites(tmp_path):
    model = trained()
    path = tmp_path / "m.npz"
    save(make_model(arch="mse"), path)
    save(model, path)
    assert_same_model(load(path), model)
    assert os.listdir(tmp_path) == ["m.npz"]


def test_rng_state_and_shuffling_resume(tmp_path):
    model = trained()
    model.rng.random(5)  # move the generator along
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.rng.permutation(50), model.rng.permutation(50))


@pytest.mark.parametrize("bit_generator", ["MT19937", "Philox", "SFC64", "PCG64DXSM"])
def test_other_bit_generators(tmp_path, bit_generator):
    # default_rng(generator) returns the generator itself, so a model may use any.
    seed = np.random.Generator(getattr(np.random, bit_generator)(5))
    model = fastnn.MLP([3, 5, 2], seed=seed)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert type(loaded.rng.bit_generator).__name__ == bit_generator
    assert loaded.seed is None  # a Generator cannot be stored; its state is
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.rng.random(8), model.rng.random(8))


@pytest.mark.parametrize("seed", [np.int64(3), [1, 2, 3]])
def test_seed_is_stored(tmp_path, seed):
    model = fastnn.MLP([3, 5, 2], seed=seed)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.seed == seed
    np.testing.assert_array_equal(loaded.params, model.params)


def test_fit_resumes_identically(tmp_path, dtype):
    pytest.importorskip("fastnn.training")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    Y = rng.integers(0, 2, 10)
    model = make_model(optimizer="momentum", dtype=dtype)
    model.fit(X, Y, epochs=2, batch_size=2, shuffle=True)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert_same_model(loaded, model)

    h_model = model.fit(X, Y, epochs=2, batch_size=2, shuffle=True)
    h_loaded = loaded.fit(X, Y, epochs=2, batch_size=2, shuffle=True)
    np.testing.assert_array_equal(loaded.params, model.params, strict=True)
    np.testing.assert_array_equal(
        loaded.optimizer.state, model.optimizer.state, strict=True
    )
    assert loaded.optimizer.step[0] == model.optimizer.step[0] == 20
    assert h_loaded.loss == h_model.loss


def test_file_layout(tmp_path):
    model = trained(optimizer="momentum", dtype=np.float64)
    path = tmp_path / "m.npz"
    save(model, path)
    with np.load(path, allow_pickle=False) as npz:  # nothing in it is pickled
        assert sorted(npz.files) == sorted(fastnn.io.ARRAY_KEYS)
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    assert header["format"] == "fastnn"
    assert header["version"] == FORMAT_VERSION == 1
    assert header["sizes"] == [3, 5, 2]
    assert header["hidden"] == ["relu"]
    assert header["output"] == "softmax"
    assert header["loss"] == "cross_entropy"
    assert header["dtype"] == "float64"
    assert header["seed"] == 0
    assert header["optimizer"] == {
        "name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": False,
        "weight_decay": 0.0, "decay_bias": True,
    }  # fmt: skip
    assert header["rng_state"] == model.rng.bit_generator.state
    assert arrays["params"].dtype == np.float64
    assert arrays["optimizer_state"].shape == (2, model.n_params)
    assert arrays["optimizer_step"].dtype == np.int64
    assert arrays["optimizer_step"].tolist() == [3]


# -- atomic writes -------------------------------------------------------------------


def _failing_savez(file, **arrays):
    """Write part of an archive, then fail as a full disk would."""
    file.write(b"PK\x03\x04 half an archive")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failure", ["savez", "fsync", "replace", "interrupt"])
def test_failed_save_keeps_old_file_and_leaves_no_temp_file(
    tmp_path, monkeypatch, failure
):
    path = tmp_path / "m.npz"
    old = trained()
    save(old, path)
    old_bytes = path.read_bytes()
    new = trained(arch="mse")  # before patching: compiling may use os.replace

    error = OSError
    if failure == "savez":
        monkeypatch.setattr(np, "savez", _failing_savez)
    elif failure == "fsync":
        monkeypatch.setattr(os, "fsync", _raise(OSError(5, "I/O error")))
    elif failure == "replace":
        monkeypatch.setattr(os, "replace", _raise(OSError(13, "Permission denied")))
    else:
        monkeypatch.setattr(np, "savez", _raise(KeyboardInterrupt()))
        error = KeyboardInterrupt
    with pytest.raises(error):
        save(new, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["m.npz"]
    assert path.read_bytes() == old_bytes
    assert_same_model(load(path), old)


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def test_failed_save_to_new_path_creates_nothing(tmp_path, monkeypatch):
    model = trained()
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(OSError, match="No space"):
        save(model, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        save(trained(), tmp_path / "nowhere" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_saved_file_has_default_permissions(tmp_path):
    path = tmp_path / "m.npz"
    save(trained(), path)
    umask = os.umask(0)
    os.umask(umask)
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_refuses_what_load_could_not_rebuild(tmp_path):
    class MyAdam(fastnn.Adam):
        pass

    model = fastnn.MLP([3, 5, 2], optimizer=MyAdam())
    with pytest.raises(ValueError, match="MyAdam"):
        save(model, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="MLP"):
        save("not a model", tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- bad files -----------------------------------------------------------------------


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


BAD_FILES = {
    "empty": (lambda p: p.write_bytes(b""), "damaged or truncated"),
    "first half": (_real_file_prefix(0.5), "damaged or truncated"),
    "all but last byte": (_real_file_prefix(0.999), "damaged or truncated"),
    "first 10 bytes": (_real_file_prefix(0.005), "damaged or truncated"),
    "random bytes": (
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)),
        "",
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
    "npy": (_npy, "single .npy array"),
    "npz without params": (_tampered(_set(drop="params")), "no 'params'"),
    "unrelated npz": (lambda p: np.savez(p, x=np.zeros(3)), "no 'header'"),
    "future version": (_tampered(_set("version", 999)), "newer fastnn"),
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
}


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES)
def test_bad_file_raises_value_error_naming_file(tmp_path, make):
    build, problem = make
    path = tmp_path / "bad file.npz"
    build(path)
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))) as info:
        load(path)
    assert problem in str(info.value)
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


def test_pickle_round_trip_for_transport():
    """Models pickle (for Dask and joblib); views and training survive the trip."""
    import pickle

    model = trained(optimizer="adam", dtype=np.float32)
    clone = pickle.loads(pickle.dumps(model))
    assert np.shares_memory(clone.weights[0], clone.params)
    assert np.shares_memory(clone.biases[-1], clone.params)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 3))
    y = rng.integers(0, 2, 4)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    assert clone.train_step(X, y) == model.train_step(X, y)
    np.testing.assert_array_equal(clone.params, model.params)
    np.testing.assert_array_equal(clone.optimizer.state, model.optimizer.state)
    with pytest.raises(ValueError, match="another model"):
        fastnn.MLP([3, 2], optimizer=clone.optimizer)
