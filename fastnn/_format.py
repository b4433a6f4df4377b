"""The ``.npz`` file format of fastnn models: writing, reading and checking files.

:mod:`fastnn.io` builds models from what :func:`read` returns; this module knows the
format, not the model class (a model is used through its documented attributes).
The file is an ordinary, uncompressed NumPy ``.npz`` archive (a zip file) with four
arrays; it never holds pickled objects and :func:`load` never unpickles anything.

``header`` : uint8 ndarray of shape (n_bytes,)
    UTF-8 JSON object::

        {"format": "fastnn", "version": 1,
         "sizes": [3, 5, 2], "hidden": ["relu"], "output": "softmax",
         "loss": "cross_entropy", "dtype": "float32", "seed": 0,
         "optimizer": {"name": "adam", "lr": 0.001, "beta1": 0.9, ...},
         "rng_state": {"bit_generator": "PCG64", "state": {...}, ...},
         "dropout": [0.0], "batch_norm": [false], "bn_momentum": 0.1,
         "bn_eps": 1e-05, "dropout_seed": 123, "training": true}

    The last six keys (dropout and batch normalization) may be absent: they then
    take the defaults of :class:`~fastnn.MLP`.

    ``rng_state`` is ``bit_generator.state`` of the generator that shuffles the data
    in :meth:`MLP.fit <fastnn.MLP.fit>` (arrays in it are written as lists), so a
    loaded model shuffles exactly as the saved one would have. ``seed`` is the seed
    the model was built with, or null when that was not an integer (or a list of
    integers).
``params`` : ndarray of shape (n_params,), of the model's dtype
    The flat parameter buffer (see :mod:`fastnn.kernels.network` for its layout).
``optimizer_state`` : ndarray of shape (2, n_params), of the model's dtype
    The optimizer's state buffers (momentum, or Adam's moments).
``optimizer_step`` : int64 ndarray of shape (1,)
    The number of optimizer steps taken.
``running_stats`` : ndarray of shape (n_stats,), of the model's dtype
    Batch normalization's running means and variances; present only when the model
    has batch-normalized layers.

``version`` is :data:`FORMAT_VERSION`; a file from a newer fastnn is refused rather
than misread. Everything :func:`load` needs to continue training bit for bit is in
the file: weights, optimizer state and step count, the shuffling RNG's state and the
dropout seed.
"""

import contextlib
import json
import os
import secrets
import zipfile

import numpy as np

from .kernels import layout as klayout
from .optimizers import OPTIMIZERS

#: Version of the file format that :func:`save` writes and :func:`load` reads.
FORMAT_VERSION = 1
FORMAT_NAME = "fastnn"
HEADER_KEYS = (
    "sizes",
    "hidden",
    "output",
    "loss",
    "dtype",
    "seed",
    "optimizer",
    "rng_state",
)
ARRAY_KEYS = ("header", "params", "optimizer_state", "optimizer_step")
OPTIONAL_ARRAY_KEYS = ("running_stats",)
#: Optional header keys and the MLP argument each one feeds.
OPTIONAL_HEADER_KEYS = ("dropout", "batch_norm", "bn_momentum", "bn_eps")

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only

# What reading a damaged file can raise, from numpy, zipfile, zlib and json.
_PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,  # numpy's format checks, json, UnicodeDecodeError, pickles refused
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    OSError,
    OverflowError,
    RuntimeError,  # zipfile: encrypted members; NotImplementedError: compression
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)
try:  # zlib is optional in CPython builds; it raises zlib.error on bad deflate data
    import zlib

    _PARSE_ERRORS += (zlib.error,)
except ImportError:  # pragma: no cover
    pass


class FormatError(ValueError):
    """Raised inside :func:`load`; reported with the file's name."""


def save(model, path) -> None:
    """Write ``model`` (a :class:`fastnn.MLP`) to ``path`` atomically; see
    :func:`fastnn.io.save`."""
    path = os.fspath(path)
    with model.lock:  # a consistent snapshot if another thread is training
        arrays = {
            "header": encode_header(model),
            "params": model.params.copy(),
            "optimizer_state": model.optimizer.state.copy(),
            "optimizer_step": np.array(model.optimizer.step, np.int64).reshape(1),
        }
        if model.running_stats.size:
            arrays["running_stats"] = model.running_stats.copy()
    _atomic_write(path, arrays)


def read(path):
    """The header (a dict) and the arrays (a dict) of the model file at ``path``,
    checked against each other; see :func:`fastnn.io.load` for the errors."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        try:
            return _read_model(file)
        except FormatError as err:
            raise ValueError(f"cannot load {path!r}: {err}") from err
        except _PARSE_ERRORS as err:
            raise ValueError(
                f"cannot load {path!r}: not a readable fastnn model file "
                f"(damaged or truncated?): {type(err).__name__}: {err}"
            ) from err


# -- writing -------------------------------------------------------------------------


def encode_header(model):
    config = model.optimizer.get_config()
    if OPTIMIZERS.get(config.get("name")) is not type(model.optimizer):
        known = ", ".join(c.__name__ for c in OPTIMIZERS.values())
        raise ValueError(
            f"cannot save a model whose optimizer is {type(model.optimizer).__name__}: "
            f"load can only rebuild {known}"
        )
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sizes": [int(s) for s in model.sizes],
        "hidden": list(model.hidden),
        "output": model.output,
        "loss": model.loss_name,
        "dtype": np.dtype(model.dtype).name,
        "seed": _json_seed(model.seed),
        "optimizer": config,
        "rng_state": model.rng.bit_generator.state,
        "dropout": list(model.dropout),
        "batch_norm": list(model.batch_norm),
        "bn_momentum": model.bn_momentum,
        "bn_eps": model.bn_eps,
        "dropout_seed": model.dropout_seed,
        "training": model.training,
    }
    text = json.dumps(header, default=_json_default, allow_nan=False)
    return np.frombuffer(text.encode("utf-8"), np.uint8)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer | np.bool_ | np.floating):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the header")


def _json_seed(seed):
    if isinstance(seed, bool | np.bool_):
        return None
    if isinstance(seed, int | np.integer):
        return int(seed)
    if isinstance(seed, list | tuple) and all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) for s in seed
    ):
        return [int(s) for s in seed]
    return None  # a SeedSequence or Generator: the RNG state is saved instead


def _atomic_write(path, arrays):
    """Write ``arrays`` as an ``.npz`` to a temporary file, then rename it to ``path``.

    The temporary file is created with ``os.open(..., 0o666)`` so it gets the usual
    permissions (the process umask applies), as a file written in place would.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)  # a file object: no suffix is added
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------------


def _read_model(file):
    try:
        contents = np.load(file, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise FormatError(
                "it is a pickle (or not an .npz file at all); fastnn never loads "
                "pickled data"
            ) from err
        raise
    if not isinstance(contents, np.lib.npyio.NpzFile):
        raise FormatError("it is a single .npy array, not a fastnn .npz file")
    with contents:
        missing = [k for k in ARRAY_KEYS if k not in contents.files]
        if missing:
            raise FormatError(
                f"it has no {', '.join(repr(k) for k in missing)} "
                f"(it holds {contents.files}); is it a fastnn model file?"
            )
        extra = sorted(set(contents.files) - set(ARRAY_KEYS + OPTIONAL_ARRAY_KEYS))
        if extra:
            raise FormatError(f"it holds unexpected entries {extra}")
        keys = ARRAY_KEYS + tuple(k for k in OPTIONAL_ARRAY_KEYS if k in contents.files)
        arrays = {key: _read_array(contents, key) for key in keys}
    header = _decode_header(arrays["header"])
    _check_arrays(header, arrays)
    return header, arrays


def _read_array(contents, key):
    try:
        return contents[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise FormatError(
                f"its array {key!r} holds Python objects, which would have to be "
                "unpickled; fastnn never loads pickled data"
            ) from err
        raise


def _decode_header(raw):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise FormatError(
            f"its header must be a 1-D uint8 array, got dtype {raw.dtype} and "
            f"shape {raw.shape}"
        )
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
        raise FormatError(f"its header is not valid UTF-8 JSON: {err}") from err
    if not isinstance(header, dict):
        raise FormatError("its header is not a JSON object")
    if header.get("format") != FORMAT_NAME:
        raise FormatError(
            f"its header says format {header.get('format')!r}, not {FORMAT_NAME!r}"
        )
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(f"its header has an invalid version {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"it was written by a newer fastnn (format version {version}); this "
            f"fastnn reads format version {FORMAT_VERSION} and older: upgrade fastnn"
        )
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise FormatError(f"its header lacks {', '.join(missing)}")
    return header


def _check_arrays(header, arrays):
    sizes = header["sizes"]
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
        or min(sizes) < 1
    ):
        raise FormatError(f"its header has invalid layer sizes {sizes!r}")
    if header["dtype"] not in ("float32", "float64"):
        raise FormatError(f"its header has invalid dtype {header['dtype']!r}")
    dtype = np.dtype(header["dtype"])
    norm = header.get("batch_norm", [])
    if not isinstance(norm, list):
        raise FormatError(f"its header has invalid batch_norm {norm!r}")
    # a list of the wrong length is refused when the model is built
    norm = ([x is True for x in norm] + [False] * len(sizes))[: len(sizes) - 2]
    norm.append(False)
    layout = klayout.make_layout(sizes, [0] * len(norm), norm)
    n_params, n_stats = klayout.n_params(layout), klayout.n_stats(layout)
    expected = {
        "params": ((n_params,), dtype),
        "optimizer_state": ((2, n_params), dtype),
        "optimizer_step": ((1,), np.dtype(np.int64)),
    }
    if n_stats:
        if "running_stats" not in arrays:
            raise FormatError("it lacks 'running_stats' for its batch normalization")
        expected["running_stats"] = ((n_stats,), dtype)
    for key, (shape, kind) in expected.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != kind:
            raise FormatError(
                f"its {key!r} has shape {array.shape} and dtype {array.dtype}; a "
                f"model of sizes {sizes} in {dtype.name} needs shape {shape} and "
                f"dtype {kind.name}"
            )
    if arrays["optimizer_step"][0] < 0:
        raise FormatError(
            f"its optimizer step count is negative ({arrays['optimizer_step'][0]})"
        )
