"""fastnn: fast multilayer perceptrons on the CPU, compiled with Numba."""

from . import kernels

__version__ = "0.1.0"

__all__ = ["kernels", "__version__"]
