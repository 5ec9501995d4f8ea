"""A line-by-line port of ggml's graph allocator (ggml-alloc.c), for sizing compute buffers.

:func:`measure` walks a :class:`~quantdesk.engine.estimate._ggml_graph.Graph` exactly as
``ggml_gallocr_alloc_graph_impl`` does - leafs first, then each node (reusing a parent's memory
in place when ggml would), freeing a tensor after its last consumer - with ggml's best-fit
dynamic allocator, and returns the high-water mark: the compute buffer size llama.cpp logs.
Fragmentation included, so the result matches llama.cpp to the byte for graphs built alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantdesk.engine.estimate._ggml_graph import INPLACE_OPS, OUTPUT, Graph, Tensor

_LAST_BLOCK_SIZE = (1 << 63) - 1  # the last free block is "everything after the high-water mark"


def _aligned(size: int, alignment: int) -> int:
    return (size + alignment - 1) // alignment * alignment


class _DynAllocator:
    """ggml_dyn_tallocr with one chunk (CPU and CUDA buffers have no practical size limit)."""

    def __init__(self, alignment: int) -> None:
        self.alignment = alignment
        self.blocks: list[list[int]] = [[0, _LAST_BLOCK_SIZE]]  # [offset, size], sorted
        self.max_size = 0

    def alloc(self, size: int) -> int:
        size = _aligned(size, self.alignment)
        best, best_size = -1, None
        for i, (_, bsize) in enumerate(self.blocks[:-1]):
            if bsize >= size and (best_size is None or bsize <= best_size):
                best, best_size = i, bsize
        if best == -1:
            best = len(self.blocks) - 1  # the last block always fits
        block = self.blocks[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, offset + size)
        return offset

    def free(self, offset: int, size: int) -> None:
        size = _aligned(size, self.alignment)
        blocks = self.blocks
        for i, block in enumerate(blocks):
            if block[0] + block[1] == offset:
                block[1] += size
                if i < len(blocks) - 1 and block[0] + block[1] == blocks[i + 1][0]:
                    block[1] += blocks[i + 1][1]
                    del blocks[i + 1]
                return
            if offset + size == block[0]:
                block[0] = offset
                block[1] += size
                if i > 0 and blocks[i - 1][0] + blocks[i - 1][1] == block[0]:
                    blocks[i - 1][1] += block[1]
                    del blocks[i]
                return
        pos = 0
        while pos < len(blocks) and blocks[pos][0] < offset:
            pos += 1
        blocks.insert(pos, [offset, size])


@dataclass
class _Info:
    n_children: int = 0
    n_views: int = 0
    offset: int = 0
    allocated: bool = False


def _same_layout(a: Tensor, b: Tensor) -> bool:
    return a.type == b.type and a.ne == b.ne and a.nb == b.nb


class _GraphAllocator:
    def __init__(self, alignment: int) -> None:
        self.alloc = _DynAllocator(alignment)
        self.info: dict[int, _Info] = {}

    def get(self, t: Tensor) -> _Info:
        info = self.info.get(id(t))
        if info is None:
            info = self.info[id(t)] = _Info()
        return info

    def is_allocated(self, t: Tensor) -> bool:
        return t.external or self.get(t).allocated

    def free_extra(self, node: Tensor, parent: Tensor) -> None:
        a = self.alloc.alignment
        parent_size, node_size = _aligned(parent.nbytes, a), _aligned(node.nbytes, a)
        if parent_size > node_size:
            self.alloc.free(self.get(parent).offset + node_size, parent_size - node_size)

    def allocate_node(self, node: Tensor) -> None:
        hn = self.get(node)
        if self.is_allocated(node) or node.view_src is not None:
            return
        hn.allocated = True
        if node.op in INPLACE_OPS:
            for parent in node.src:
                if parent is None or not self.get(parent).allocated:
                    continue
                if parent.flags & OUTPUT or (
                    parent.view_src is not None and parent.view_src.flags & OUTPUT
                ):
                    continue
                if not _same_layout(node, parent):
                    continue
                p_hn = self.get(parent)
                if p_hn.n_children == 1 and p_hn.n_views == 0:
                    if parent.view_src is not None:
                        vs_hn = self.get(parent.view_src)
                        if vs_hn.n_views == 1 and vs_hn.n_children == 0 and parent.view_offs == 0:
                            hn.offset = p_hn.offset
                            p_hn.allocated = False
                            vs_hn.allocated = False
                            self.free_extra(node, parent.view_src)
                            return
                    else:
                        hn.offset = p_hn.offset
                        p_hn.allocated = False
                        self.free_extra(node, parent)
                        return
        hn.offset = self.alloc.alloc(node.nbytes)

    def free_node(self, node: Tensor) -> None:
        if node.flags & OUTPUT:
            return
        hn = self.get(node)
        self.alloc.free(hn.offset, node.nbytes)
        hn.allocated = False

    def place(self, t: Tensor, buffer: int) -> None:
        """Allocate ``t`` in ``buffer`` (one buffer here; the scheduler's allocator has more)."""
        self.allocate_node(t)

    def leaf_buffer(self, leaf: Tensor) -> int:
        """The buffer a graph input goes to."""
        return 0

    def node_buffer(self, node: Tensor) -> int:
        """The buffer the backend running ``node`` allocates from."""
        return 0

    def run_nodes(self, leafs: list[Tensor], nodes: list[Tensor]) -> None:
        """ggml_gallocr_alloc_graph_impl: place every tensor, free parents after last use."""
        for leaf in leafs:
            self.place(leaf, self.leaf_buffer(leaf))
        for node in nodes:
            if node.view_src is not None and node.op != "NONE":
                self.get(node.view_src).n_views += 1
            for src in node.src:
                if src is not None:
                    self.get(src).n_children += 1
        for node in nodes:
            buffer = self.node_buffer(node)
            for parent in node.src:
                if parent is not None:
                    self.place(parent, buffer)
            self.place(node, buffer)
            for parent in node.src:
                if parent is None:
                    continue
                p_hn = self.get(parent)
                p_hn.n_children -= 1
                if p_hn.n_children == 0 and p_hn.n_views == 0:
                    if parent.view_src is not None:
                        vs = parent.view_src
                        vs_hn = self.get(vs)
                        vs_hn.n_views -= 1
                        if vs_hn.n_views == 0 and vs_hn.n_children == 0 and vs_hn.allocated:
                            self.free_node(vs)
                    elif p_hn.allocated:
                        self.free_node(parent)

    def run(self, graph: Graph) -> int:
        self.run_nodes(list(graph.leafs), list(graph.nodes))
        return self.alloc.max_size


def measure(graph: Graph, alignment: int = 32) -> int:
    """Bytes of compute buffer ggml's allocator reserves for ``graph`` (CPU alignment: 32)."""
    return _GraphAllocator(alignment).run(graph)
