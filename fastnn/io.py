"""Saving and loading models: one ``.npz`` file per model.

The format is described in :mod:`fastnn._format`: an ordinary, uncompressed NumPy
``.npz`` archive with a JSON header, the parameters, the optimizer's state and step
count and, with batch normalization, the running statistics. It never holds pickled
objects and :func:`load` never unpickles anything. Everything :func:`load` needs to
continue training bit for bit is in the file.
"""

import os

import numpy as np

from . import _format
from ._format import ARRAY_KEYS, FORMAT_VERSION, OPTIONAL_HEADER_KEYS, FormatError
from .model import MLP
from .optimizers import get_optimizer

__all__ = ["ARRAY_KEYS", "FORMAT_VERSION", "load", "save"]

BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def save(model: MLP, path: str | os.PathLike) -> None:
    """Write ``model`` and its training state to one ``.npz`` file at ``path``.

    The file is written to a temporary file in the same folder, flushed to disk and
    then renamed over ``path``, so ``path`` holds either the old file or the complete
    new one, never a partial write, even if this fails or is interrupted.

    Parameters
    ----------
    model : MLP
        The model; its parameters, optimizer (configuration, state and step count)
        and shuffling RNG state are saved. The model is not changed.
    path : str or os.PathLike
        Where to write. The name is used exactly as given: unlike ``np.savez``,
        no ``.npz`` suffix is added.

    Raises
    ------
    ValueError
        If the model's optimizer is not one :func:`load` can rebuild.
    OSError
        If the file cannot be written; ``path`` is then unchanged.

    See Also
    --------
    load : Read the file back.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"save expects a fastnn.MLP, got {type(model).__name__}")
    _format.save(model, path)


def load(path: str | os.PathLike) -> MLP:
    """Read a model written by :func:`save` (or :meth:`MLP.save`).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    MLP
        A new model with the saved architecture, dtype, parameters, optimizer
        (configuration, state and step count) and shuffling RNG state: its
        predictions equal the saved model's, and training it continues exactly as
        training the saved model would have.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path`` (other errors opening it pass through too).
    ValueError
        If the file is not a complete, valid fastnn model file: empty, truncated,
        corrupt, not an ``.npz``, missing an entry, holding an array of the wrong
        shape or dtype, holding pickled objects (which are never loaded), or written
        by a newer version of fastnn. The message names the file and the problem.
    """
    header, arrays = _format.read(path)
    try:
        return _build(header, arrays)
    except FormatError as err:
        raise ValueError(f"cannot load {str(path)!r}: {err}") from err


def _build(header, arrays):
    config = header["optimizer"]
    if not isinstance(config, dict):
        raise FormatError(f"its optimizer entry is not a JSON object: {config!r}")
    try:
        model = MLP(
            header["sizes"],
            hidden=header["hidden"],
            output=header["output"],
            loss=header["loss"],
            optimizer=get_optimizer(config),
            dtype=header["dtype"],
            seed=header["seed"],
            **{k: header[k] for k in OPTIONAL_HEADER_KEYS if k in header},
        )
    except (ValueError, TypeError) as err:
        raise FormatError(f"its header describes no valid model: {err}") from err
    model.params[...] = arrays["params"]  # in place: weights and biases are views
    model.optimizer.state[...] = arrays["optimizer_state"]
    model.optimizer.step[...] = arrays["optimizer_step"]
    model.rng = _restore_rng(model.rng, header["rng_state"])
    if "running_stats" in arrays and model.running_stats.size:
        model.running_stats[...] = arrays["running_stats"]
    seed = header.get("dropout_seed", model.dropout_seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FormatError(f"its header has invalid dropout_seed {seed!r}")
    model.dropout_seed = seed
    training = header.get("training", True)
    if not isinstance(training, bool):
        raise FormatError(f"its header has invalid training {training!r}")
    model.training = training
    return model


def _restore_rng(rng, state):
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise FormatError(f"its header has an invalid rng_state {state!r}")
    if type(rng.bit_generator).__name__ != name:
        rng = np.random.Generator(getattr(np.random, name)())
    try:
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise FormatError(f"its rng_state cannot be restored: {err}") from err
    return rng
