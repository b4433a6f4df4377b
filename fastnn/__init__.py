"""fastnn: fast multilayer perceptrons on the CPU, compiled with Numba."""

from . import explain, kernels
from ._threads import get_num_threads, set_num_threads, threads
from .errors import DivergenceError
from .io import load
from .model import MLP
from .optimizers import SGD, Adam, AdamW, Optimizer
from .plotting import plot_history

__version__ = "0.1.0"

__all__ = [
    "load",
    "MLP",
    "SGD",
    "Adam",
    "AdamW",
    "DivergenceError",
    "Optimizer",
    "explain",
    "kernels",
    "plot_history",
    "get_num_threads",
    "set_num_threads",
    "threads",
    "__version__",
]
