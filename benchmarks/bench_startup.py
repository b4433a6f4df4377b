"""Time to first step: ``import fastnn``, build a model, run one ``train_step``.

Each sample runs in a fresh interpreter (asv's ``timeraw_``). NumPy and the data are
set up before the clock starts; the timed code imports fastnn (and with it Numba),
builds the MNIST-shaped model of ``fastnn.bench.CASES["mnist64"]`` and trains one
step, which is where the kernels are compiled or loaded from Numba's cache:

``warm``  the default cache, filled by ``setup`` running the same code once;
``cold``  ``NUMBA_CACHE_DIR`` set, before the import, to a fresh empty directory, so
          every kernel is compiled from scratch (about 9 s on the team VM before
          a step compiled only the dense path it runs, which took about a fifth off on
          the slower VM; asv takes at most two such samples).
"""

import shutil
import subprocess
import sys
import tempfile

DATA = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 784)).astype(np.float32)
Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
"""

FIRST_STEP = """
import fastnn
model = fastnn.MLP([784, 128, 10], hidden="relu", output="softmax",
                   loss="cross_entropy", optimizer=fastnn.Adam(1e-3),
                   dtype="float32", seed=0)
model.train_step(X, Y)
"""


class Startup:
    """``import fastnn`` + build + first ``train_step`` in a fresh interpreter."""

    params = [["warm", "cold"]]
    param_names = ["numba_cache"]
    number = 1  # one fresh interpreter per sample
    repeat = (1, 5, 60.0)  # (min, max samples, seconds)
    warmup_time = 0
    timeout = 600

    def setup(self, numba_cache):
        self.root = tempfile.mkdtemp(prefix="fastnn-asv-startup-")
        if numba_cache == "warm":
            subprocess.run(
                [sys.executable, "-c", DATA + FIRST_STEP], check=True, timeout=600
            )

    def teardown(self, numba_cache):
        shutil.rmtree(self.root, ignore_errors=True)

    def timeraw_first_step(self, numba_cache):
        setup = DATA
        if numba_cache == "cold":
            setup = (
                "import os, tempfile\n"
                f"os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(dir={self.root!r})\n"
            ) + DATA
        return FIRST_STEP, setup
