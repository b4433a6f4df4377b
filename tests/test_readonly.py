"""A read-only installation: fastnn imports and trains as a user who can write
neither the package folder nor a home directory.

Simulated as the user ``nobody`` (uid 65534) running a copy of the installed package
(``fastnn/`` with ``kernels/`` as ``fastnn/kernels``) that is made read-only, with
``HOME=/nonexistent``. Numba would find no folder to cache the kernels in; fastnn
then compiles them in memory, with one warning, or uses ``NUMBA_CACHE_DIR`` when it
is set. Needs root (to become ``nobody``). If ``nobody`` cannot read the Python
installation (one under ``/root``, say), ``setpriv`` gives it the one capability
``CAP_DAC_READ_SEARCH``: it may then read everything, and still write nothing it
could not write before; without ``setpriv`` the tests are skipped.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import fastnn
from fastnn import kernels

NOBODY = 65534
TIMEOUT = 600  # a cold compile of the training step: tens of seconds on a busy VM

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np

    import fastnn
    from fastnn.kernels import config

    assert fastnn.__file__.startswith(sys.argv[1]), fastnn.__file__
    model = fastnn.MLP([3, 4, 2], loss="cross_entropy", optimizer="sgd",
                       dtype="float64", seed=0)
    before = model.params.copy()
    loss = model.train_step(np.ones((2, 3)), np.array([0, 1]))
    assert np.isfinite(loss) and not np.array_equal(model.params, before)
    print("cache", config.JIT["cache"])
    """
)


def _drop_to_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _runner():
    """How to run a command as ``nobody``: ``(prefix, preexec_fn)``, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    probe = [sys.executable, "-c", "import numba, numpy, scipy"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    ways = [((), _drop_to_nobody)]
    setpriv = shutil.which("setpriv")
    if setpriv:
        ways.append(
            (
                (
                    setpriv,
                    f"--reuid={NOBODY}",
                    f"--regid={NOBODY}",
                    "--clear-groups",
                    "--inh-caps=+dac_read_search",
                    "--ambient-caps=+dac_read_search",
                    "--",
                ),
                None,
            )
        )
    for prefix, preexec in ways:
        try:
            done = subprocess.run(
                [*prefix, *probe],
                preexec_fn=preexec,
                env=env,
                cwd="/",
                capture_output=True,
                timeout=120,
            )
        except OSError:  # nobody may not even execute the interpreter
            continue
        if done.returncode == 0:
            return prefix, preexec
    return None


@pytest.fixture(scope="module")
def runner():
    way = _runner()
    if way is None:
        pytest.skip("needs root, and a user 'nobody' who can read the Python install")
    return way


@pytest.fixture
def site():
    """A read-only copy of the installed package, in a folder nobody can read."""
    root = tempfile.mkdtemp(prefix="fastnn-readonly-")
    os.chmod(root, 0o755)
    target = os.path.join(root, "site", "fastnn")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "kernels")
    shutil.copytree(os.path.dirname(fastnn.__file__), target, ignore=skip)
    shutil.copytree(
        os.path.dirname(kernels.__file__),
        os.path.join(target, "kernels"),
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for folder, _, files in os.walk(os.path.join(root, "site")):
        os.chmod(folder, 0o555)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
    yield root
    for folder, _, _ in os.walk(root):
        os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(root)


def run_as_nobody(runner, root, **env):
    prefix, preexec = runner
    site_dir = os.path.join(root, "site")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "PYTHONPATH": site_dir,
        "OPENBLAS_NUM_THREADS": "1",
        **env,
    }  # no NUMBA_CACHE_DIR, XDG_CACHE_HOME or NUMBA_DISABLE_JIT from outside
    return subprocess.run(
        [*prefix, sys.executable, "-c", SCRIPT, site_dir],
        preexec_fn=preexec,
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def warning_lines(stderr):
    return [line for line in stderr.splitlines() if "Warning" in line]


def test_read_only_install_trains_with_one_warning(runner, site):
    done = run_as_nobody(runner, site)
    assert done.returncode == 0, done.stderr
    assert "cache False" in done.stdout
    warned = warning_lines(done.stderr)
    assert len(warned) == 1, done.stderr
    assert "CacheWarning" in warned[0]
    assert "NUMBA_CACHE_DIR" in warned[0]
    assert "/nonexistent" in warned[0]  # says where it looked
    assert not os.path.exists(os.path.join(site, "site", "fastnn", "__pycache__"))


def test_numba_cache_dir_is_used_without_warning(runner, site):
    cache = os.path.join(site, "cache")
    os.mkdir(cache)
    os.chown(cache, NOBODY, NOBODY)
    done = run_as_nobody(runner, site, NUMBA_CACHE_DIR=cache)
    assert done.returncode == 0, done.stderr
    assert "cache True" in done.stdout
    assert warning_lines(done.stderr) == [], done.stderr
    written = [name for _, _, files in os.walk(cache) for name in files]
    assert any(name.endswith(".nbi") for name in written), written
    assert any(name.endswith(".nbc") for name in written), written


def test_no_cache_location_gives_one_warning_without_root():
    """The same fallback, any user: Numba told to use a locator that finds nothing
    for a plain file (``NUMBA_CACHE_LOCATOR_CLASSES``, Numba 0.61 and later)."""
    import numba

    if not hasattr(numba.config, "CACHE_LOCATOR_CLASSES"):
        pytest.skip("this Numba has no NUMBA_CACHE_LOCATOR_CLASSES")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_LOCATOR_CLASSES"] = "IPythonCacheLocator"
    code = "from fastnn.kernels import config; print('cache', config.JIT['cache'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cache False" in done.stdout
    warned = warning_lines(done.stderr)
    assert len(warned) == 1 and "CacheWarning" in warned[0], done.stderr
    assert "Set NUMBA_CACHE_DIR to a writable folder" in warned[0]
