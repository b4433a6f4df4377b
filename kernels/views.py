"""Views into the kernels' flat buffers that cost no reference counting.

A training step works on views: each layer's weights and gradients in the parameter
buffers, its slab of the workspace, fit's batch. Numba makes a view by slicing and
``reshape`` (which calls a C helper) and gives it a reference to the buffer's memory:
an atomic increment when it is made and an atomic decrement when it dies, several of
each per view once it is passed down the call tree. On a network as small as XOR,
those counts are a large part of the compiled step (see the performance notes).

The views made here are built in place, a few instructions each, and hold **no
reference** (their ``meminfo`` is null), so Numba's reference counting skips them.
That is safe for views that live inside one kernel call, whose arguments keep the
buffers alive until it returns: the kernels' scratch views. A view that may outlive
the call, i.e. one a public kernel returns to Python or to a user's ``@njit`` code,
must be given a reference first with :func:`_owned`.

Under ``NUMBA_DISABLE_JIT=1`` plain NumPy views (which hold references) stand in.
"""

import numpy as np
from numba.core import config as numba_config


def _view_py(buffer, start, shape):
    """Entries ``start:start + prod(shape)`` of the C-contiguous ``buffer``, in
    memory order, as a C-contiguous view of ``shape``."""
    if not buffer.flags.c_contiguous:  # reshape would copy: writes would be lost
        raise ValueError("the kernels take C-contiguous arrays")
    size = int(np.prod(shape))
    return buffer.reshape(buffer.size)[start : start + size].reshape(shape)


def _owned_py(view, base):
    """``view`` itself: NumPy views always hold a reference."""
    return view


if numba_config.DISABLE_JIT:
    _view, _owned = _view_py, _owned_py
else:  # pragma: no cover - compiled code only; the Python versions stand in above
    from numba.core import cgutils, types
    from numba.core.imputils import impl_ret_borrowed
    from numba.extending import intrinsic
    from numba.np.arrayobj import populate_array

    def _no_reference(context):
        return context.get_constant_null(types.MemInfoPointer(types.voidptr))

    def _build(context, builder, arrty, src, data, shape, strides, meminfo):
        out = context.make_array(arrty)(context, builder)
        populate_array(
            out,
            data=data,
            shape=cgutils.pack_array(builder, shape),
            strides=cgutils.pack_array(builder, strides),
            itemsize=src.itemsize,
            meminfo=meminfo,
            parent=src.parent,
        )
        return out._getvalue()

    @intrinsic
    def _view(typingctx, buffer, start, shape):
        """Entries ``start:start + prod(shape)`` of the C-contiguous ``buffer`` (of
        any number of dimensions, counted in memory order) as a C-contiguous view
        of ``shape`` (a tuple of one or two integers), holding no reference.
        Nothing is checked: the caller keeps the view inside ``buffer``."""
        if not (isinstance(buffer, types.Array) and buffer.layout == "C"
                and isinstance(start, types.Integer)
                and isinstance(shape, types.BaseTuple) and 1 <= len(shape) <= 2
                and all(isinstance(n, types.Integer) for n in shape)):  # fmt: skip
            return None
        view = buffer.copy(ndim=len(shape), layout="C")

        def codegen(context, builder, sig, args):
            buffer_ty, start_ty, shape_ty = sig.args
            src = context.make_array(buffer_ty)(context, builder, value=args[0])
            start = context.cast(builder, args[1], start_ty, types.intp)
            extents = [
                context.cast(builder, value, ty, types.intp)
                for value, ty in zip(
                    cgutils.unpack_tuple(builder, args[2]), shape_ty, strict=True
                )
            ]
            strides = [src.itemsize]
            if len(extents) == 2:
                strides.insert(0, builder.mul(extents[1], src.itemsize))
            data = builder.gep(src.data, [start])
            return _build(context, builder, sig.return_type, src, data, extents,
                          strides, _no_reference(context))  # fmt: skip

        return view(buffer, start, shape), codegen

    @intrinsic
    def _owned(typingctx, view, base):
        """``view``, now holding a reference to the memory of ``base`` (the buffer
        it is a view of), as a slice of ``base`` would: for views that leave the
        kernel call."""
        if not (isinstance(view, types.Array) and isinstance(base, types.Array)):
            return None

        def codegen(context, builder, sig, args):
            view_ty, base_ty = sig.args
            src = context.make_array(view_ty)(context, builder, value=args[0])
            owner = context.make_array(base_ty)(context, builder, value=args[1])
            out = _build(context, builder, sig.return_type, src, src.data,
                         cgutils.unpack_tuple(builder, src.shape),
                         cgutils.unpack_tuple(builder, src.strides),
                         owner.meminfo)  # fmt: skip
            return impl_ret_borrowed(context, builder, sig.return_type, out)

        return view(view, base), codegen
