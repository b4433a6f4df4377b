"""kernels.vmath: accuracy in ulp over the whole range, special values, and proof that
loops over it vectorize (no libm calls)."""

import re

import numpy as np
import pytest
from numba import njit
from numba.core import config as numba_config

from fastnn.kernels import activations, config, vmath

JIT_DISABLED = numba_config.DISABLE_JIT
needs_jit = pytest.mark.skipif(JIT_DISABLED, reason="inspects compiled code")

#: Largest error allowed, in units in the last place of the correctly rounded result.
#: Measured on the team VM (AMD EPYC, AVX2): exp 1.30 / 1.30, sigmoid 2.35 / 2.41,
#: tanh 2.47 / 2.54 (float32 / float64).
MAX_ULP = 4.0

FUNCTIONS = ["exp", "sigmoid", "tanh"]


def _apply(x, out, which):
    for i in range(x.shape[0]):
        if which == 0:
            out[i] = vmath._exp(x[i])
        elif which == 1:
            out[i] = vmath._sigmoid(x[i])
        else:
            out[i] = vmath._tanh(x[i])
    return out


apply = config.jit(_apply)  # the kernels' flags, fast-math included


def reference(name, x):
    """The exact function of ``x`` in a wider type: float64 for float32 input,
    long double (where it is wider than float64) for float64 input."""
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    xw = x.astype(wide)
    with np.errstate(over="ignore"):
        if name == "exp":
            return np.exp(xw)
        if name == "sigmoid":
            return 1 / (1 + np.exp(-xw))
        return np.tanh(xw)


def ulp_error(got, ref, dtype):
    """``|got - ref|`` in units of the spacing of ``ref`` rounded to ``dtype``
    (at least the smallest subnormal); 0 where both are the same inf or NaN."""
    finfo = np.finfo(dtype)
    with np.errstate(over="ignore"):
        rounded = ref.astype(dtype)
    spacing = np.maximum(np.spacing(np.abs(rounded)), finfo.smallest_subnormal)
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(ref.dtype) - ref) / spacing.astype(ref.dtype)
    same = (got == rounded) | (np.isnan(got) & np.isnan(ref))
    return np.where(same, 0.0, err)


def sweep(dtype):
    """Points over the whole range: a dense grid past the overflow and underflow
    limits (exp's results run from inf through subnormals to 0), random points
    near 0, and magnitudes from tiny to 1."""
    n = 2_000 if JIT_DISABLED else 400_000  # plain Python is slow
    rng = np.random.default_rng(0)
    limit = 110.0 if dtype == np.float32 else 750.0
    tiny = np.geomspace(np.finfo(dtype).tiny, 1.0, n // 4)
    x = np.concatenate(
        [
            np.linspace(-limit, limit, n),
            rng.uniform(-2.0, 2.0, n // 2),
            tiny,
            -tiny,
            [-1000.0, 1000.0, 0.0, 0.4, -0.4, 0.5, 1.0, 20.0, -20.0],
        ]
    )
    return x.astype(dtype)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_accuracy_in_ulp(name, dtype):
    x = sweep(dtype)
    got = apply(x, np.empty_like(x), FUNCTIONS.index(name))
    err = ulp_error(got, reference(name, x), dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= MAX_ULP, f"{name}({x[worst]!r}) off by {err[worst]:.2f} ulp"


@pytest.mark.parametrize("act", [activations.SIGMOID, activations.TANH])
def test_epilogue_accuracy_in_ulp(act, dtype):
    # the vectorized loop of the real epilogue (vector body and remainder), not a
    # scalar call
    x = sweep(dtype)
    row = x.copy()
    activations.bias_activation_row(row, np.zeros_like(x), act)
    name = "sigmoid" if act == activations.SIGMOID else "tanh"
    err = ulp_error(row, reference(name, x), dtype)
    assert err.max() <= MAX_ULP


def test_softmax_of_extreme_logits(dtype):
    logits = np.array([0.0, -1000.0, -50.0, 3.0, 3.5])  # exact differences
    row = logits.astype(dtype)
    activations.bias_activation_row(row, np.zeros_like(row), activations.SOFTMAX)
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(
        row, expected / expected.sum(), rtol=4 * np.finfo(dtype).eps
    )
    assert row.dtype == dtype


SPECIALS = {
    # x: (exp, sigmoid, tanh)
    np.nan: (np.nan, np.nan, np.nan),
    np.inf: (np.inf, 1.0, 1.0),
    -np.inf: (0.0, 0.0, -1.0),
    1000.0: (np.inf, 1.0, 1.0),
    -1000.0: (0.0, 0.0, -1.0),
    0.0: (1.0, 0.5, 0.0),
}


@pytest.mark.parametrize("x", list(SPECIALS))
@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values(name, x, dtype):
    want = SPECIALS[x][FUNCTIONS.index(name)]
    got = getattr(vmath, name)(dtype(x))  # the public twin
    assert type(got) in (dtype, float)  # Numba returns float64 as a Python float
    np.testing.assert_equal(np.asarray(got, dtype), np.asarray(want, dtype))


def test_tiny_and_subnormal(dtype):
    finfo = np.finfo(dtype)
    tiny = dtype(finfo.smallest_normal)
    assert vmath.tanh(tiny) == tiny  # tanh(x) = x near 0, no cancellation
    assert vmath.tanh(-tiny) == -tiny
    assert vmath.exp(tiny) == 1
    # results below the smallest normal number are subnormal, not 0
    low = dtype(-100.0) if dtype == np.float32 else dtype(-740.0)
    for got in (vmath.exp(low), vmath.sigmoid(low)):
        assert 0 < got < finfo.smallest_normal
        assert got == pytest.approx(np.exp(np.longdouble(low)), rel=1e-2)
    # the largest finite results stay finite
    high = dtype(88.7) if dtype == np.float32 else dtype(709.7)
    assert np.isfinite(vmath.exp(high))


def test_python_versions_of_the_exact_steps():
    # what stands in for the intrinsics under NUMBA_DISABLE_JIT
    assert vmath._round_py(np.float32(2.5)) == 2.0
    assert vmath._round_py(-1.5) == -2.0
    assert vmath._mul_sub_py(1.0, 2.0, 0.25) == 0.5
    assert vmath._ldexp_py(np.float64(1.0), np.float64(-1074)) == 5e-324
    assert vmath._ldexp_py(np.float32(1.0), np.float32(3)) == 8.0
    assert np.isnan(vmath._ldexp_py(np.float64(np.nan), np.float64(np.nan)))
    assert vmath._expm1_scale_py(0.25, -1.0) == 0.5 * 0.25 - 0.5
    assert np.isnan(vmath._expm1_scale_py(np.nan, np.nan))
    assert vmath._inline_py() is None


def test_internal_functions_refuse_python_calls():
    if JIT_DISABLED:
        pytest.skip("plain functions under NUMBA_DISABLE_JIT")
    with pytest.raises(TypeError, match="exp"):
        vmath._exp(1.0)


# -- vectorization ----------------------------------------------------------------

#: A packed floating-point operation on a vector register: SSE (``mulpd %xmm``),
#: AVX/AVX2 (``vfmadd231ps %ymm``) or AVX-512 (``%zmm``).
PACKED = re.compile(
    r"^\s*v?(?:add|sub|mul|div|max|min|fn?madd\d*|fn?msub\d*)p[sd]\s[^\n]*%[xyz]mm",
    re.MULTILINE,
)
PACKED_DIV = re.compile(r"^\s*v?divp[sd]\s[^\n]*%[xyz]mm", re.MULTILINE)
#: A call to, or the address of, a libm exponential or hyperbolic function.
LIBM = re.compile(
    r"\b_*(?:exp|expf|exp2|expm1|tanh|tanhf|npy_\w+|numba_\w*(?:exp|tanh))\b"
)


def compiled_asm(func, *args):
    """Assembly of ``func`` compiled afresh (not from Numba's cache, whose entries
    cannot be inspected) with the kernels' flags, for the types of ``args``."""
    fresh = njit(**{**config.JIT, "cache": False})(func)
    fresh(*args)
    return fresh.inspect_asm(fresh.signatures[0])


def _loop_of(func):
    """A loop applying ``func`` to each element of ``x`` in place, to compile."""

    def loop(x):
        for i in range(x.shape[0]):
            x[i] = func(x[i])

    return loop


_exp_loop = _loop_of(vmath._exp)
_sigmoid_loop = _loop_of(vmath._sigmoid)
_tanh_loop = _loop_of(vmath._tanh)
_np_tanh_loop = _loop_of(np.tanh)


@needs_jit
def test_the_libm_detector_sees_libm():
    # the check below would pass vacuously if it could not see a libm call
    asm = compiled_asm(_np_tanh_loop, np.zeros(8))
    assert LIBM.search(asm)


@needs_jit
@pytest.mark.parametrize("loop", [_exp_loop, _sigmoid_loop, _tanh_loop])
def test_loops_vectorize(loop, dtype):
    asm = compiled_asm(loop, np.zeros(64, dtype))
    assert not LIBM.search(asm), LIBM.search(asm)
    assert PACKED.search(asm)
    if loop is not _exp_loop:
        assert PACKED_DIV.search(asm)  # the division is in the loop: it is packed


@needs_jit
def test_epilogue_vectorizes(dtype):
    row = np.zeros(64, dtype)
    asm = compiled_asm(activations._bias_activation_row.py_func, row, row, 1)
    assert not LIBM.search(asm), LIBM.search(asm)
    # only the sigmoid and tanh loops divide
    assert PACKED_DIV.search(asm)
