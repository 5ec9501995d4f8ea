"""ggml's ``struct ggml_tensor`` in ctypes, checked against the loaded ggml before any use.

llama.cpp's ``cb_eval`` callback hands out raw ``ggml_tensor`` pointers; reading them needs
the struct layout of the exact ggml build. :func:`ggml_base` loads libggml-base beside
llama-cpp-python's libllama, builds a few tensors with ggml itself and reads them back field
by field: a layout that does not match fails with a clear error instead of reading garbage.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.errors import ImatrixError

# -- ggml's struct ggml_tensor (ggml/include/ggml.h), checked against ggml at run time --------


class GgmlTensor(ctypes.Structure):
    """``struct ggml_tensor`` (GGML_MAX_DIMS 4, GGML_MAX_OP_PARAMS 64, GGML_MAX_SRC 10)."""


GgmlTensor._fields_ = [
    ("type", ctypes.c_int),
    ("buffer", ctypes.c_void_p),
    ("ne", ctypes.c_int64 * 4),
    ("nb", ctypes.c_size_t * 4),
    ("op", ctypes.c_int),
    ("op_params", ctypes.c_int32 * 16),
    ("flags", ctypes.c_int32),
    ("src", ctypes.c_void_p * 10),
    ("view_src", ctypes.c_void_p),
    ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p),
    ("name", ctypes.c_char * 64),
    ("extra", ctypes.c_void_p),
    ("padding", ctypes.c_char * 8),
]

_GGML_OBJECT_SIZE = 3 * ctypes.sizeof(ctypes.c_size_t) + 8  # struct ggml_object (ggml.c)
F32, _F16, _I32 = 0, 1, 26  # enum ggml_type
_OP_MUL_MAT, _OP_MUL_MAT_ID = 29, 30  # enum ggml_op


class _InitParams(ctypes.Structure):
    _fields_ = [
        ("mem_size", ctypes.c_size_t),
        ("mem_buffer", ctypes.c_void_p),
        ("no_alloc", ctypes.c_bool),
    ]


@dataclass(frozen=True)
class GgmlLib:
    lib: ctypes.CDLL
    mul_mat: int  # enum ggml_op values, read from nodes ggml itself built
    mul_mat_id: int


_ggml: GgmlLib | None = None


def ggml_base() -> GgmlLib:
    """libggml-base next to llama_cpp's libllama, with the layout of GgmlTensor verified."""
    global _ggml
    if _ggml is not None:
        return _ggml
    import llama_cpp

    folder = Path(llama_cpp.__file__).resolve().parent / "lib"
    names = {"win32": ["ggml-base.dll", "libggml-base.dll"], "darwin": ["libggml-base.dylib"]}
    for name in names.get(sys.platform, ["libggml-base.so"]):
        if (folder / name).is_file():
            lib = ctypes.CDLL(str(folder / name))
            break
    else:
        raise ImatrixError(f"llama.cpp's ggml-base library was not found in '{folder}'.")
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    for fn, res, args in [
        ("ggml_init", vp, [_InitParams]),
        ("ggml_free", None, [vp]),
        ("ggml_tensor_overhead", sz, []),
        ("ggml_new_tensor_2d", vp, [vp, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]),
        ("ggml_new_tensor_3d", vp, [vp, ctypes.c_int] + [ctypes.c_int64] * 3),
        ("ggml_mul_mat", vp, [vp, vp, vp]),
        ("ggml_mul_mat_id", vp, [vp, vp, vp, vp]),
        ("ggml_view_2d", vp, [vp, vp, ctypes.c_int64, ctypes.c_int64, sz, sz]),
        ("ggml_set_name", vp, [vp, ctypes.c_char_p]),
        ("ggml_get_name", vp, [vp]),
        ("ggml_get_data", vp, [vp]),
        ("ggml_set_input", None, [vp]),
        ("ggml_nbytes", sz, [vp]),
        ("ggml_op_name", ctypes.c_char_p, [ctypes.c_int]),
        ("ggml_backend_buffer_is_host", ctypes.c_bool, [vp]),
        ("ggml_backend_tensor_get", None, [vp, vp, sz, sz]),
    ]:
        getattr(lib, fn).restype = res
        getattr(lib, fn).argtypes = args
    _ggml = _check_layout(lib)
    return _ggml


def _check_layout(lib: ctypes.CDLL) -> GgmlLib:
    """Build a few tensors with ggml and read them back through GgmlTensor: a mismatch raises."""
    overhead = lib.ggml_tensor_overhead()
    ctx = lib.ggml_init(_InitParams(64 * overhead + 65536, None, False))
    try:
        w = lib.ggml_new_tensor_2d(ctx, _F16, 32, 8)
        x = lib.ggml_new_tensor_2d(ctx, F32, 32, 5)
        lib.ggml_set_name(w, b"blk.0.probe.weight")
        lib.ggml_set_input(x)
        mm = lib.ggml_mul_mat(ctx, w, x)
        view = lib.ggml_view_2d(ctx, x, 32, 2, 128, 256)
        experts = lib.ggml_new_tensor_3d(ctx, F32, 32, 8, 4)
        xs = lib.ggml_new_tensor_3d(ctx, F32, 32, 2, 5)
        ids = lib.ggml_new_tensor_2d(ctx, _I32, 2, 5)
        mm_id = lib.ggml_mul_mat_id(ctx, experts, xs, ids)
        tw, tx, tm, tv = (GgmlTensor.from_address(p) for p in (w, x, mm, view))
        tid = GgmlTensor.from_address(mm_id)
        try:  # a wrong layout may also raise while reading (None + int, ...)
            checks = [
                ctypes.sizeof(GgmlTensor) == overhead - _GGML_OBJECT_SIZE,
                (tw.type, tx.type, list(tw.ne)) == (_F16, F32, [32, 8, 1, 1]),
                list(tw.nb) == [2, 64, 512, 512],
                tw.name == b"blk.0.probe.weight",
                lib.ggml_get_name(w) == w + GgmlTensor.name.offset,
                tw.data == lib.ggml_get_data(w) and tw.data is not None and tw.buffer is None,
                tx.flags & 1 == 1 and tw.flags == 0,  # GGML_TENSOR_FLAG_INPUT
                (tm.src[0], tm.src[1], tm.src[2], list(tm.ne)) == (w, x, None, [8, 5, 1, 1]),
                # the enum by value first: ggml_op_name would index its table with garbage
                tm.op == _OP_MUL_MAT and lib.ggml_op_name(_OP_MUL_MAT) == b"MUL_MAT",
                tid.op == _OP_MUL_MAT_ID and lib.ggml_op_name(_OP_MUL_MAT_ID) == b"MUL_MAT_ID",
                (tid.src[0], tid.src[1], tid.src[2]) == (experts, xs, ids),
                (tv.view_src, tv.view_offs, tv.op_params[0]) == (x, 256, 256),
                tv.data == tx.data + 256,
            ]
        except (TypeError, ValueError, OverflowError) as exc:
            checks = [f"{type(exc).__name__}: {exc}"]
        if not all(c is True for c in checks):
            raise ImatrixError(
                "This llama.cpp build lays out its tensors differently from what QuantDesk "
                "expects, so it cannot compute an importance matrix. Update QuantDesk.",
                details=f"layout checks: {checks}",
            )
        return GgmlLib(lib, _OP_MUL_MAT, _OP_MUL_MAT_ID)
    finally:
        lib.ggml_free(ctx)
