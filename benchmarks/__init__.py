"""airspeed velocity (asv) suites for fastnn; see ``asv.conf.json`` at the root.

One module per area, one class per benchmarked operation (STYLE #10):

``bench_kernels``   dense_forward / dense_backward per activation, dtype and shape,
                    on both sides of the BLAS switch (``LOOP_MAX_ROWS``).
``bench_model``     ``MLP.train_step``, the raw step kernel and a compiled ``fit``
                    epoch on the cases of ``fastnn.bench.CASES``; ``predict``
                    throughput on a large batch and latency on one sample.
``bench_startup``   ``timeraw_``: ``import fastnn`` + build + first step, with a warm
                    and with a cold Numba cache.
``bench_accuracy``  ``track_``: the error against ``tests/reference.py``, so a
                    numerical regression shows up in the same history as the times.
``bench_vmath``     one activation epilogue (``bias_activation_row``) per activation,
                    dtype and row length: ``kernels.vmath``'s vectorized exp,
                    sigmoid and tanh against the identity floor.

Threads are pinned to one here, before NumPy is imported by any suite: asv imports this
package first. The environment variables reach every pool that starts later (and the
``timeraw_`` subprocesses, which inherit them); threadpoolctl limits the pools already
loaded. Set the variables yourself to benchmark with more threads, e.g.
``OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 asv run``.
"""

import os

THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
for _name in THREAD_VARIABLES:
    os.environ.setdefault(_name, "1")
THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])

# Load both BLAS libraries (NumPy's, and SciPy's, which Numba's np.dot calls) so that
# threadpoolctl sees and limits them, whatever was imported before this package.
import numpy  # noqa: E402, F401
import scipy.linalg.cython_blas  # noqa: E402, F401
from threadpoolctl import threadpool_limits  # noqa: E402

#: The limits in force; ``THREAD_LIMITS.restore_original_limits()`` undoes them.
THREAD_LIMITS = threadpool_limits(THREADS)
