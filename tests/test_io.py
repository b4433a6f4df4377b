"""fastnn.io: bit-exact round trips, resumable training, atomic saves.

Damaged and hostile files are in ``test_io_damaged.py``.
"""

import json
import os
import pickle

import numpy as np
import pytest

import fastnn
import fastnn.io
from fastnn.io import FORMAT_VERSION, load, save

from _helpers import (
    ARCHITECTURES,
    OPTIMIZERS,
    assert_same_model,
    assert_same_state,
    batches,
    build,
    make_model,
    trained,
)

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


def test_failed_save_changes_nothing(tmp_path):
    model, twin = build(), build()
    with pytest.raises(TypeError, match="not float"):
        save(model, 3.5)
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)
    assert_same_state(model, twin)
    assert os.listdir(tmp_path) == []


def test_pickle_round_trip_for_transport():
    """Models pickle (for Dask and joblib); views and training survive the trip."""

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
