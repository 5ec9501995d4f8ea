"""A shape-only model of a ggml compute graph: just enough to replay llama.cpp's allocator.

llama.cpp sizes its compute buffer by building the worst-case graph and running ggml's graph
allocator over it (``ggml_gallocr_reserve``). This module mirrors the parts of ggml that decide
that size: tensor shapes, strides and types, views (which own no memory), the ops that may
work in place, and the depth-first order in which ``ggml_build_forward_expand`` lists nodes and
leafs. No data is ever held; :mod:`quantdesk.engine.estimate._ggml_alloc` replays the allocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quantdesk.engine.gguf.types import GGML_TYPES

F32, F16, I32, I64 = 0, 1, 26, 27

INPUT = 1
OUTPUT = 2

# ggml_op_can_inplace() in ggml-alloc.c
INPLACE_OPS = frozenset(
    {
        "FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB",
        "MUL", "DIV", "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK",
        "RMS_NORM", "RMS_NORM_BACK", "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK",
    }
)  # fmt: skip


def row_size(type_id: int, n: int) -> int:
    """Bytes of ``n`` consecutive elements of a ggml type (ggml_row_size)."""
    t = GGML_TYPES[type_id]
    return n // t.block_size * t.bytes_per_block


def _contiguous_nb(type_id: int, ne: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    t = GGML_TYPES[type_id]
    nb0 = t.bytes_per_block
    nb1 = nb0 * (ne[0] // t.block_size)
    return (nb0, nb1, nb1 * ne[1], nb1 * ne[1] * ne[2])


@dataclass(eq=False)
class Tensor:
    """A ggml tensor without data; ``external`` tensors (weights, KV cache) live elsewhere."""

    name: str
    op: str
    type: int
    ne: tuple[int, int, int, int]
    nb: tuple[int, int, int, int]
    src: tuple[Tensor | None, ...] = ()
    view_src: Tensor | None = None
    view_offs: int = 0
    flags: int = 0
    external: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """ggml_nbytes()."""
        if any(n <= 0 for n in self.ne):
            return 0
        t = GGML_TYPES[self.type]
        if t.block_size == 1:
            size = t.bytes_per_block
            for n, b in zip(self.ne, self.nb, strict=True):
                size += (n - 1) * b
            return size
        size = self.ne[0] * self.nb[0] // t.block_size
        for n, b in zip(self.ne[1:], self.nb[1:], strict=True):
            size += (n - 1) * b
        return size

    @property
    def nelements(self) -> int:
        """Number of elements."""
        return self.ne[0] * self.ne[1] * self.ne[2] * self.ne[3]

    def is_contiguous(self) -> bool:
        """True when the strides are those of a packed tensor."""
        return self.nb == _contiguous_nb(self.type, self.ne)


def _ne4(ne: tuple[int, ...]) -> tuple[int, int, int, int]:
    return tuple(ne) + (1,) * (4 - len(ne))  # type: ignore[return-value]


def new_tensor(
    name: str,
    type_id: int,
    ne: tuple[int, ...],
    *,
    op: str = "NONE",
    src: tuple[Tensor | None, ...] = (),
    flags: int = 0,
    external: bool = False,
) -> Tensor:
    """A fresh contiguous tensor (ggml_new_tensor)."""
    ne4 = _ne4(ne)
    return Tensor(
        name, op, type_id, ne4, _contiguous_nb(type_id, ne4), src, flags=flags, external=external
    )


def input_tensor(name: str, type_id: int, ne: tuple[int, ...]) -> Tensor:
    """A graph input (ggml_set_input): allocated by the graph allocator, filled by llama.cpp."""
    return new_tensor(name, type_id, ne, flags=INPUT)


def weight(name: str, type_id: int, ne: tuple[int, ...]) -> Tensor:
    """A tensor that already has memory (model weights, KV cache)."""
    return new_tensor(name, type_id, ne, external=True)


def _view(a: Tensor, op: str, ne: tuple[int, ...], nb: tuple[int, ...], offs: int = 0) -> Tensor:
    root, offs_total = a, offs
    if a.view_src is not None:
        root, offs_total = a.view_src, a.view_offs + offs
    return Tensor(
        f"{a.name} ({op.lower()})",
        op,
        a.type,
        _ne4(ne),
        _ne4_nb(nb),
        (a,),
        view_src=root,
        view_offs=offs_total,
    )


def _ne4_nb(nb: tuple[int, ...]) -> tuple[int, int, int, int]:
    nb = tuple(nb)
    while len(nb) < 4:
        nb = nb + (nb[-1],)
    return nb  # type: ignore[return-value]


def reshape(a: Tensor, *ne: int) -> Tensor:
    """ggml_reshape_Nd: a contiguous view with another shape."""
    ne4 = _ne4(ne)
    return _view(a, "RESHAPE", ne4, _contiguous_nb(a.type, ne4))


def view(a: Tensor, ne: tuple[int, ...], nb: tuple[int, ...], offs: int = 0) -> Tensor:
    """ggml_view_Nd: ``nb`` lists nb[1..] as ggml does; nb[0] is the element size."""
    ne4 = _ne4(ne)
    nb0 = GGML_TYPES[a.type].bytes_per_block
    full = (nb0, *nb)
    while len(full) < 4:
        full = full + (full[-1] * ne4[len(full) - 1],)
    return _view(a, "VIEW", ne4, full, offs)


def permute(a: Tensor, axes: tuple[int, int, int, int]) -> Tensor:
    """ggml_permute: dimension i of ``a`` moves to position axes[i]."""
    ne = [0, 0, 0, 0]
    nb = [0, 0, 0, 0]
    for i, ax in enumerate(axes):
        ne[ax] = a.ne[i]
        nb[ax] = a.nb[i]
    return _view(a, "PERMUTE", tuple(ne), tuple(nb))


def transpose(a: Tensor) -> Tensor:
    """ggml_transpose."""
    return permute(a, (1, 0, 2, 3))


def _same_as(
    a: Tensor, name: str, op: str, src: tuple[Tensor | None, ...], type_id: int | None = None
) -> Tensor:
    return new_tensor(name, a.type if type_id is None else type_id, a.ne, op=op, src=src)


def get_rows(a: Tensor, rows: Tensor, name: str = "get_rows") -> Tensor:
    """ggml_get_rows."""
    type_id = I32 if a.type == I32 else F32
    return new_tensor(
        name, type_id, (a.ne[0], rows.ne[0], rows.ne[1], rows.ne[2]), op="GET_ROWS", src=(a, rows)
    )


def mul_mat(a: Tensor, b: Tensor, name: str = "mul_mat") -> Tensor:
    """ggml_mul_mat: [K, M] x [K, N] -> [M, N] in F32."""
    return new_tensor(name, F32, (a.ne[1], b.ne[1], b.ne[2], b.ne[3]), op="MUL_MAT", src=(a, b))


def unary(op: str, a: Tensor, name: str, *srcs: Tensor | None) -> Tensor:
    """Element-wise ops whose result has the shape of ``a`` (norm, mul, add, scale, rope...)."""
    return _same_as(a, name, op, (a, *srcs))


def cont(a: Tensor, *ne: int, name: str = "cont") -> Tensor:
    """ggml_cont / ggml_cont_Nd: a packed copy."""
    return new_tensor(name, a.type, ne or a.ne, op="CONT", src=(a,))


def soft_max_ext(a: Tensor, mask: Tensor | None, name: str = "kq_soft_max") -> Tensor:
    """ggml_soft_max_ext."""
    return _same_as(a, name, "SOFT_MAX", (a, mask))


def set_rows(dst: Tensor, b: Tensor, idxs: Tensor) -> Tensor:
    """ggml_set_rows: the result is a view of ``dst`` (sources ordered b, idxs, dst)."""
    res = _view(dst, "VIEW", dst.ne, dst.nb)
    res.op = "SET_ROWS"
    res.src = (b, idxs, dst)
    return res


def glu(a: Tensor, b: Tensor, name: str) -> Tensor:
    """ggml_swiglu_split / ggml_geglu_split."""
    return _same_as(a, name, "GLU", (a, b))


def flash_attn_ext(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """ggml_flash_attn_ext: result [head_dim_v, n_head, n_tokens, n_stream] in F32."""
    return new_tensor(
        "fattn", F32, (v.ne[0], q.ne[2], q.ne[1], q.ne[3]), op="FLASH_ATTN_EXT", src=(q, k, v, mask)
    )


class Graph:
    """Nodes and leafs in the order ggml_build_forward_expand would list them."""

    def __init__(self) -> None:
        self.nodes: list[Tensor] = []
        self.leafs: list[Tensor] = []
        self._seen: set[int] = set()

    def expand(self, tensor: Tensor) -> None:
        """Add ``tensor`` and everything it depends on (ggml_visit_parents, iteratively)."""
        if id(tensor) in self._seen:
            return
        self._seen.add(id(tensor))
        stack: list[tuple[Tensor, int]] = [(tensor, 0)]
        while stack:
            node, i = stack.pop()
            srcs = node.src
            while i < len(srcs) and (srcs[i] is None or id(srcs[i]) in self._seen):
                i += 1
            if i < len(srcs):
                child = srcs[i]
                assert child is not None
                self._seen.add(id(child))
                stack.append((node, i + 1))
                stack.append((child, 0))
                continue
            if node.op == "NONE":
                self.leafs.append(node)
            else:
                self.nodes.append(node)
