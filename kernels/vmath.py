"""Vectorizable ``exp``, ``sigmoid`` and ``tanh`` for float32 and float64 scalars.

Numba compiles ``math.exp``, ``np.exp``, ``math.tanh`` and ``np.tanh`` to calls into
libm, which LLVM cannot vectorize, and the llvmlite wheels on PyPI have no SVML, the
vector math library an SVML-patched LLVM would call instead. These functions are
built from additions, multiplications, one division and integer operations on
exponent bits, which LLVM turns into packed SIMD code (AVX-512, AVX2, SSE) when they
are called in a loop, e.g. the activation epilogues of :mod:`.activations`. Each is
an :func:`~.config.internal` kernel, called from compiled code; ``exp``, ``sigmoid``
and ``tanh`` are the Python-callable twins. One body serves both dtypes: constants
are converted with ``type(x)``, and where the two need different polynomials a
branch on ``type(x) is np.float32`` picks one, which the compiler folds away.

``exp(x)``
    Range reduction ``x = k ln2 + r`` with ``k = round(x / ln2)`` and ``|r| <= ln2/2``
    (Cody and Waite: ``ln2`` split into ``LN2_HI``, 15 significant bits so that
    ``k * LN2_HI`` is exact in both dtypes, and ``LN2_LO``); then
    ``e**r = 1 + r + r**2 P(r)`` with ``P`` of degree 9 in float64 and 4 in float32;
    then a multiplication by ``2**k``, built from the exponent bits in two halves so
    that results from the largest finite number down to the smallest subnormal come
    out rounded once. ``x`` is clamped to [-746, 710] (float32: [-104, 89]) first, so
    nothing overflows on the way: exp(-inf) = 0, exp(inf) = inf, NaN stays NaN.
``sigmoid(z)``
    ``1 / (1 + e)`` for ``z >= 0`` and ``e / (1 + e)`` otherwise, with
    ``e = exp(-|z|)`` in (0, 1]: no overflow, and full relative accuracy far into the
    negative tail (where ``1 - 1 / (1 + e)`` would cancel to zero).
``tanh(x)``
    ``-m / (2 + m)`` with the sign of ``x``, where ``m = e**(-2|x|) - 1`` comes from
    the same reduction and polynomial as ``exp``, as ``2**k q + (2**k - 1)`` with
    ``q = e**r - 1``: no cancellation near 0, where ``(1 - e) / (1 + e)`` would lose
    the relative accuracy (``tanh(x) = x`` for tiny ``x``). tanh(+-inf) = +-1.

Measured against NumPy (``tests/test_vmath.py``, dense sweeps over the whole range,
subnormal results and special values included), the largest errors are within a few
units in the last place; the test holds the bounds.

The coefficients are near-minimax fits of ``(e**r - 1 - r) / r**2`` on
[-ln2/2, ln2/2]: ``mpmath.chebyfit(f, interval, degree + 1)`` at 50 digits, rounded
to float64 (and from there to float32).

Fast-math and exact steps
-------------------------
The kernels' flags (:data:`.config.FASTMATH`) let LLVM reassociate floating-point
arithmetic. That would undo the steps here that depend on the order of rounding:
the round-to-integer ``(y + 1.5 * 2**52) - 1.5 * 2**52`` folds to ``y``, and
``(x - k LN2_HI) - k LN2_LO`` may become ``x - k (LN2_HI + LN2_LO)``, which loses
the low bits of ``ln2``. Those steps, and the scalings by ``2**k``, are therefore
tiny Numba intrinsics (:func:`_round`, :func:`_mul_sub`, :func:`_ldexp`,
:func:`_expm1_scale`) whose instructions carry only the ``nsz`` flag, which
allows neither reassociation nor fusing (Numba adds its fast-math flags only to
instructions that have none). One more, :func:`_inline`, marks each function
``alwaysinline``, so that LLVM inlines it into the caller's loop, which can then
vectorize. Under ``NUMBA_DISABLE_JIT=1`` plain NumPy versions stand in for them.
"""

import numpy as np
from numba.core import config as numba_config

from .config import internal, public

LOG2E = 1.4426950408889634  # 1 / ln 2
LN2_HI = 0.693145751953125  # ln 2 to 15 significant bits: k * LN2_HI is exact
LN2_LO = 1.4286068203094173e-06  # ln 2 - LN2_HI

#: Coefficients of ``P(r) ~ (e**r - 1 - r) / r**2``, lowest degree first.
EXP64 = (0.5000000000000001, 0.16666666666666669, 0.041666666666624164,
         0.008333333333330065, 0.0013888888917196719, 0.00019841269863040545,
         2.4801521322368692e-05, 2.7557268480310024e-06, 2.7620075879983367e-07,
         2.5100375832561234e-08)  # fmt: skip
EXP32 = (0.5, 0.1666657702559799, 0.041666554662050534, 0.008363173074513711,
         0.001392617611993558)  # fmt: skip

# Bits of each float type: (total, mantissa, exponent bias).
_LAYOUT = {32: (32, 23, 127), 64: (64, 52, 1023)}


# -- the exact steps: Python versions, then the intrinsics ---------------------------


def _round_py(y):
    """``y`` rounded to the nearest integer, ties to even, as a float."""
    return np.rint(y)


def _mul_sub_py(x, k, c):
    """``x - k * c``, each operation rounded as written."""
    return x - k * c


def _ldexp_py(p, k):
    """``p * 2**k`` for an integer-valued float ``k`` (NaN ``k`` gives NaN)."""
    if k != k:
        return p + k
    with np.errstate(over="ignore", under="ignore"):  # to inf and 0, as compiled
        return np.ldexp(p, int(k))


def _expm1_scale_py(q, k):
    """``q 2**k + (2**k - 1)`` for an integer-valued float ``k <= 0``."""
    if k != k:
        return q + k
    s = np.ldexp(type(q)(1.0), int(k))
    return s * q + (s - 1)


def _inline_py():
    """Nothing: only compiled code is inlined."""


if numba_config.DISABLE_JIT:
    _round, _mul_sub, _ldexp = _round_py, _mul_sub_py, _ldexp_py
    _expm1_scale, _inline = _expm1_scale_py, _inline_py
else:  # pragma: no cover - compiled code only; the Python versions stand in above
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    #: The one fast-math flag of the intrinsics' instructions. Numba gives its
    #: fast-math flags to every instruction that has none
    #: (``numba/core/fastmathpass.py``); with ``nsz`` alone, LLVM may neither
    #: reassociate nor fuse them.
    _EXACT = ("nsz",)

    def _layout(fty):
        """(total bits, mantissa bits, bias) of the Numba float type ``fty``."""
        return _LAYOUT[fty.bitwidth]

    def _llvm_type(fty):
        return ir.FloatType() if fty.bitwidth == 32 else ir.DoubleType()

    def _magic(fty):
        """``1.5 * 2**mantissa``: adding it rounds any ``|y| < 2**(mantissa - 1)``
        to an integer, which then sits in the low bits of the sum."""
        return ir.Constant(_llvm_type(fty), 1.5 * 2.0 ** _layout(fty)[1])

    def _is_float(*tys):
        return all(ty in (types.float32, types.float64) for ty in tys) and all(
            ty == tys[0] for ty in tys
        )

    @intrinsic
    def _round(typingctx, y):
        """``y`` rounded to the nearest integer (ties to even), for
        ``|y| < 2**51`` (float32: ``2**22``)."""
        if not _is_float(y):
            return None

        def codegen(context, builder, sig, args):
            magic = _magic(sig.return_type)
            return builder.fsub(builder.fadd(args[0], magic, flags=_EXACT), magic,
                                flags=_EXACT)  # fmt: skip

        return y(y), codegen

    @intrinsic
    def _mul_sub(typingctx, x, k, c):
        """``x - k * c``: one multiplication and one subtraction, each rounded,
        neither fused nor reassociated."""
        if not _is_float(x, k, c):
            return None

        def codegen(context, builder, sig, args):
            x, k, c = args
            return builder.fsub(x, builder.fmul(k, c, flags=_EXACT), flags=_EXACT)

        return x(x, k, c), codegen

    def _integer(builder, k, fty):
        """The integer-valued float ``k`` as an integer of its width."""
        bits = _layout(fty)[0]
        ity = ir.IntType(bits)
        magic = _magic(fty)
        magic_bits = int(np.array(magic.constant, dtype=f"f{bits // 8}").view(
            f"i{bits // 8}"))  # fmt: skip
        in_low_bits = builder.bitcast(builder.fadd(k, magic, flags=_EXACT), ity)
        return builder.sub(in_low_bits, ity(magic_bits))

    def _power_of_two(builder, n, fty):
        """``2**n`` for an integer ``n`` in the normal range of ``fty``."""
        bits, mantissa, bias = _layout(fty)
        ity = ir.IntType(bits)
        shifted = builder.shl(builder.add(n, ity(bias)), ity(mantissa))
        return builder.bitcast(shifted, _llvm_type(fty))

    @intrinsic
    def _ldexp(typingctx, p, k):
        """``p * 2**k`` for an integer-valued ``k`` with ``|k| <= 2 * emax``
        (float64: 2046, float32: 254) and ``p`` near 1.

        ``2**k`` is built as two factors ``2**(k // 2)`` and ``2**(k - k // 2)``,
        each a normal number made by shifting ``exponent + bias`` into the exponent
        field; the first product is exact, the second rounds once, so subnormal
        results are correctly rounded and large ones overflow to inf.
        """
        if not _is_float(p, k):
            return None

        def codegen(context, builder, sig, args):
            p, k = args
            fty = sig.return_type
            n = _integer(builder, k, fty)
            half = builder.ashr(n, n.type(1))
            low = _power_of_two(builder, half, fty)
            high = _power_of_two(builder, builder.sub(n, half), fty)
            return builder.fmul(builder.fmul(p, low, flags=_EXACT), high, flags=_EXACT)

        return p(p, k), codegen

    @intrinsic
    def _expm1_scale(typingctx, q, k):
        """``q 2**k + (2**k - 1)`` for an integer-valued ``k`` in [-emin, 0]: with
        ``q = e**r - 1`` that is ``e**(k ln2 + r) - 1``, without the cancellation
        of ``e**x - 1`` near 0 (reassociated, it could become ``2**k (q + 1) - 1``
        and cancel again)."""
        if not _is_float(q, k):
            return None

        def codegen(context, builder, sig, args):
            q, k = args
            fty = sig.return_type
            s = _power_of_two(builder, _integer(builder, k, fty), fty)
            s_minus_1 = builder.fsub(s, ir.Constant(q.type, 1.0), flags=_EXACT)
            sq = builder.fmul(s, q, flags=_EXACT)
            return builder.fadd(sq, s_minus_1, flags=_EXACT)

        return q(q, k), codegen

    @intrinsic
    def _inline(typingctx):
        """Mark the function that calls this ``alwaysinline`` for LLVM.

        LLVM inlines small functions into their callers by itself, but not all of
        these (float64 ``tanh`` was over its threshold); a loop that calls a
        function does not vectorize. Numba's own ``inline="always"`` would copy
        the function's Numba IR into each caller and compile it again there, which
        cost more compile time than these functions do.
        """

        def codegen(context, builder, sig, args):
            builder.function.attributes.add("alwaysinline")
            return context.get_dummy_value()

        return types.none(), codegen


# -- the functions -----------------------------------------------------------------


@internal
def _exp_reduced(x):
    """``(k, q)`` with ``e**x = 2**k (1 + q)``: ``k = round(x / ln2)``,
    ``q = e**r - 1`` for ``r = x - k ln2`` in [-ln2/2, ln2/2], for ``x`` within
    the range of :func:`_exp`."""
    _inline()
    t = type(x)
    k = _round(x * t(LOG2E))
    r = _mul_sub(_mul_sub(x, k, t(LN2_HI)), k, t(LN2_LO))
    p = t(0.0)
    if t is np.float32:  # decided when compiling
        for c in EXP32[::-1]:
            p = p * r + t(c)
    else:
        for c in EXP64[::-1]:
            p = p * r + t(c)
    return k, r + r * r * p


@internal
def _exp(x):
    """``e**x`` for a float32 or float64 ``x``, in the same dtype.

    Within a few ulp of ``np.exp`` over the whole range, subnormal results included;
    exp(-inf) = 0, exp(inf) = inf, exp(NaN) = NaN.
    """
    _inline()
    t = type(x)
    single = t is np.float32
    high = t(89.0) if single else t(710.0)  # e**high overflows
    low = t(-104.0) if single else t(-746.0)  # e**low rounds to 0
    x = high if x > high else x  # NaN stays NaN
    x = low if x < low else x
    k, q = _exp_reduced(x)
    return _ldexp(t(1.0) + q, k)


@internal
def _sigmoid(z):
    """``1 / (1 + e**-z)`` for a float32 or float64 ``z``, in the same dtype.

    Never overflows: ``exp`` is only taken of ``-|z|``. sigmoid(inf) = 1,
    sigmoid(-inf) = 0, sigmoid(NaN) = NaN.
    """
    _inline()
    t = type(z)
    one = t(1.0)
    e = _exp(-abs(z))
    return (one if z >= 0 else e) / (one + e)  # NaN >= 0 is false: e, which is NaN


@internal
def _tanh(x):
    """``tanh(x)`` for a float32 or float64 ``x``, in the same dtype.

    ``-m / (2 + m)`` with ``m = e**(-2|x|) - 1`` in (-1, 0], computed without
    cancellation, and the sign of ``x``: relative accuracy is kept near 0
    (``tanh(x) = x`` for tiny ``x``). tanh(+-inf) = +-1, tanh(NaN) = NaN.
    """
    _inline()
    t = type(x)
    y = t(-2.0) * abs(x)
    y = t(-80.0) if y < t(-80.0) else y  # e**y - 1 rounds to -1; NaN stays NaN
    k, q = _exp_reduced(y)
    m = _expm1_scale(q, k)
    th = abs(m) / (t(2.0) + m)  # abs: +0, not -0, at x = 0
    return -th if x < 0 else th


exp = public(_exp)
sigmoid = public(_sigmoid)
tanh = public(_tanh)
