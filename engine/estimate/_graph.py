"""The worst-case compute graph llama.cpp reserves, rebuilt op by op to size the compute buffer.

llama.cpp's ``sched_reserve`` builds the graph of one full micro-batch (``n_ubatch`` tokens, all
of them outputs, attending over the whole KV cache) and lets ggml's allocator lay it out; the
high-water mark is the "compute buffer size" it logs. :func:`compute_buffer_bytes` rebuilds the
same graph with :mod:`~quantdesk.engine.estimate._ggml_graph` - same ops, shapes, views and
expansion order as ``llama_model_llama::graph`` / ``llama_model_gemma3::graph`` and
``llm_graph_context`` - and replays the allocator with
:mod:`~quantdesk.engine.estimate._ggml_alloc`. Other dense architectures use the llama graph with
their own sizes and are flagged approximate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quantdesk.engine.estimate import _ggml_graph as g
from quantdesk.engine.estimate._ggml_alloc import _DynAllocator, _GraphAllocator, measure  # noqa: PLC2701 - same allocator
from quantdesk.engine.estimate.hparams import ModelShape
from quantdesk.engine.gguf.types import GGML_TYPES


@dataclass(frozen=True)
class GraphConfig:
    """One graph llama.cpp reserves: a micro-batch against a full KV cache."""

    n_tokens: int
    n_outputs: int
    n_stream: int
    n_kv: int  # cells of the full-attention cache seen by the graph
    n_kv_swa: int  # cells of the sliding-window cache
    flash_attn: bool
    type_k: int
    type_v: int


def _rot_size(head: int, type_id: int, smallest: bool) -> int:
    """Side of the Hadamard rotation llama.cpp applies to a quantized K/V cache (0: none)."""
    if GGML_TYPES[type_id].block_size == 1 or head <= 0 or head % 64:
        return 0
    if smallest:
        return 64
    n = 64
    while head % (n * 2) == 0:
        n *= 2
    return n


class _Builder:
    def __init__(self, shape: ModelShape, cfg: GraphConfig) -> None:
        self.s, self.cfg, self.graph = shape, cfg, g.Graph()
        self.weights = {t.name: g.weight(t.name, t.ggml_type, t.shape) for t in shape.tensors}
        self.iswa = any(layer.is_swa for layer in shape.layers)
        self.inputs: dict[str, g.Tensor] = {}

    def w(self, name: str) -> g.Tensor | None:
        return self.weights.get(name)

    def inp(self, key: str, type_id: int, ne: tuple[int, ...]) -> g.Tensor:
        if key not in self.inputs:
            self.inputs[key] = g.input_tensor(key, type_id, ne)
        return self.inputs[key]

    def norm(self, x: g.Tensor, weight: g.Tensor | None, name: str) -> g.Tensor:
        cur = g.unary("RMS_NORM", x, "norm")
        return g.unary("MUL", cur, name, weight) if weight is not None else cur

    def mm(self, w: g.Tensor | None, x: g.Tensor, name: str, bias: g.Tensor | None = None):
        if w is None:
            raise KeyError(name)
        cur = g.mul_mat(w, x, name)
        return g.unary("ADD", cur, name, bias) if bias is not None else cur

    # -- attention (llm_graph_context::build_attn + build_attn_mha) ----------------------------

    def kv_inputs(self, swa: bool, il: int) -> dict[str, g.Tensor | None]:
        cfg, layer = self.cfg, self.s.layers[il]
        tag = "_swa" if swa else ""
        n_kv = cfg.n_kv_swa if swa else cfg.n_kv
        layers = [ly for ly in self.s.layers if ly.is_swa == swa]
        v_gqa_max = max(ly.head_v * ly.n_head_kv for ly in self.s.layers)
        n_v = cfg.n_tokens * v_gqa_max if not cfg.flash_attn else cfg.n_tokens
        heads_k = {ly.head_k for ly in layers}
        heads_v = {ly.head_v for ly in layers}
        rot_k = _rot_size(layer.head_k, cfg.type_k, False) if len(heads_k) == 1 else 0
        rot_v = _rot_size(layer.head_v, cfg.type_v, True) if len(heads_v) == 1 else 0
        mask_type = g.F16 if cfg.flash_attn else g.F32
        ns = cfg.n_stream
        return {
            "k_idxs": self.inp("k_idxs" + tag, g.I64, (cfg.n_tokens,)),
            "v_idxs": self.inp("v_idxs" + tag, g.I64, (n_v,)),
            "mask": self.inp("mask" + tag, mask_type, (n_kv, cfg.n_tokens // ns, 1, ns)),
            "k_rot": self.inp("k_rot" + tag, g.F32, (rot_k, rot_k)) if rot_k else None,
            "v_rot": self.inp("v_rot" + tag, g.F32, (rot_v, rot_v)) if rot_v else None,
        }

    def hadamard(self, cur: g.Tensor, rot: g.Tensor) -> g.Tensor:
        n = rot.ne[0]
        if cur.is_contiguous():
            res = g.reshape(cur, n, cur.nelements // n)
        else:
            res = g.cont(cur, n, cur.nelements // n)
        res = g.mul_mat(rot, res, "hadamard")
        return g.reshape(res, *cur.ne)

    def attention(self, il: int, q: g.Tensor, k: g.Tensor, v: g.Tensor, order: str) -> g.Tensor:
        cfg, layer = self.cfg, self.s.layers[il]
        swa = layer.is_swa and self.iswa
        kv = self.kv_inputs(swa, il)
        if kv["k_rot"] is not None:
            q, k = self.hadamard(q, kv["k_rot"]), self.hadamard(k, kv["k_rot"])
        if kv["v_rot"] is not None:
            v = self.hadamard(v, kv["v_rot"])
        for name in order:  # expansion order differs between the plain and the iSWA cache
            self.graph.expand({"q": q, "k": k, "v": v}[name])
        n_kv = cfg.n_kv_swa if swa else cfg.n_kv
        ns, v_trans = cfg.n_stream, not cfg.flash_attn
        kv_size = n_kv  # the reserve graph sees the whole cache
        gqa_k, gqa_v = layer.head_k * layer.n_head_kv, layer.head_v * layer.n_head_kv
        k_cache = g.weight(f"cache_k_l{il}", cfg.type_k, (gqa_k, kv_size, ns))
        v_cache = g.weight(f"cache_v_l{il}", cfg.type_v, (gqa_v, kv_size, ns))
        # cpy_k / cpy_v
        k2 = g.view(k, (gqa_k, cfg.n_tokens), (k.nb[2],))
        dst = g.reshape(k_cache, gqa_k, kv_size * ns) if ns > 1 else k_cache
        self.graph.expand(g.set_rows(dst, k2, kv["k_idxs"]))
        if not v_trans:
            v2 = g.view(v, (gqa_v, cfg.n_tokens), (v.nb[2],))
            dst = g.reshape(v_cache, gqa_v, kv_size * ns) if ns > 1 else v_cache
            self.graph.expand(g.set_rows(dst, v2, kv["v_idxs"]))
        else:
            if g.row_size(v.type, gqa_v) == v.nb[2]:
                v2 = g.reshape(v, gqa_v, cfg.n_tokens)
            else:
                v2 = g.cont(v, gqa_v, cfg.n_tokens)
            v_view = g.reshape(v_cache, 1, v_cache.nelements)
            v2 = g.reshape(v2, 1, v2.nelements)
            self.graph.expand(g.set_rows(v_view, v2, kv["v_idxs"]))
        rk = g.row_size(cfg.type_k, gqa_k)
        kk = g.view(
            k_cache,
            (layer.head_k, layer.n_head_kv, n_kv, ns),
            (g.row_size(cfg.type_k, layer.head_k), rk, rk * kv_size),
        )
        rv = g.row_size(cfg.type_v, gqa_v)
        if not v_trans:
            vv = g.view(
                v_cache,
                (layer.head_v, layer.n_head_kv, n_kv, ns),
                (g.row_size(cfg.type_v, layer.head_v), rv, rv * kv_size),
            )
        else:
            vv = g.view(
                v_cache,
                (n_kv, layer.n_head_kv, layer.head_v, ns),
                (
                    g.row_size(cfg.type_v, kv_size * layer.head_v),
                    g.row_size(cfg.type_v, kv_size),
                    rv * kv_size,
                ),
            )
        # build_attn_mha
        qv = g.view(
            q, (q.ne[0], q.ne[1], q.ne[2] // ns, ns), (q.nb[1], q.nb[2], q.nb[2] * (q.ne[2] // ns))
        )
        qp, kp, vp = (g.permute(t, (0, 2, 1, 3)) for t in (qv, kk, vv))
        if cfg.flash_attn:
            cur = g.flash_attn_ext(qp, kp, vp, kv["mask"])
            cur = g.reshape(cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3])
        else:
            kq = g.mul_mat(kp, qp, "kq")
            kq = g.soft_max_ext(kq, kv["mask"])
            kqv = g.mul_mat(vp, kq, "kqv")
            cur = g.permute(kqv, (0, 2, 1, 3))
            cur = g.cont(cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3], name="kqv_out")
        self.graph.expand(cur)
        if kv["v_rot"] is not None:
            cur = self.hadamard(cur, kv["v_rot"])
        return cur

    # -- the whole graph -------------------------------------------------------------------

    def embeddings(self) -> g.Tensor:
        n_tok = self.cfg.n_tokens
        tokens = self.inp("inp_tokens", g.I32, (n_tok,))
        embd_in = self.inp("inp_embd", g.F32, (self.s.n_embd, n_tok))
        tok = self.w("token_embd.weight")
        if tok is None:
            raise KeyError("token_embd.weight")
        cur = g.get_rows(tok, tokens, "embd")
        self.graph.expand(cur)  # ggml_build_forward_select: the token path, then the other
        self.graph.expand(embd_in)
        return cur

    def build(self) -> g.Graph:
        s, cfg, w = self.s, self.cfg, self.w
        gemma = s.graph_family == "gemma3"
        inp = self.embeddings()
        if gemma:
            inp = g.unary("SCALE", inp, "inp_scaled")
        pos = self.inp("inp_pos", g.I32, (cfg.n_tokens,))
        out_ids = self.inp("out_ids", g.I32, (cfg.n_outputs,))
        for il, layer in enumerate(s.layers):
            p = f"blk.{il}."
            cur = self.norm(inp, w(p + "attn_norm.weight"), "attn_norm")
            q = self.mm(w(p + "attn_q.weight"), cur, "Qcur", w(p + "attn_q.bias"))
            k = self.mm(w(p + "attn_k.weight"), cur, "Kcur", w(p + "attn_k.bias"))
            v = self.mm(w(p + "attn_v.weight"), cur, "Vcur", w(p + "attn_v.bias"))
            q = g.reshape(q, layer.head_k, layer.n_head, cfg.n_tokens)
            k = g.reshape(k, layer.head_k, layer.n_head_kv, cfg.n_tokens)
            v = g.reshape(v, layer.head_v, layer.n_head_kv, cfg.n_tokens)
            if w(p + "attn_q_norm.weight") is not None:
                q = self.norm(q, w(p + "attn_q_norm.weight"), "Qcur_normed")
            q = g.unary("ROPE", q, "Qcur", pos, w("rope_freqs.weight"))
            if w(p + "attn_k_norm.weight") is not None:
                k = self.norm(k, w(p + "attn_k_norm.weight"), "Kcur_normed")
            k = g.unary("ROPE", k, "Kcur", pos, w("rope_freqs.weight"))
            if gemma:
                q = g.unary("SCALE", q, "Qscaled")
            cur = self.attention(il, q, k, v, "qkv" if self.iswa else "qvk")
            cur = self.mm(w(p + "attn_output.weight"), cur, "attn_out", w(p + "attn_output.bias"))
            residual = inp
            if il == s.n_layer - 1:
                cur = g.get_rows(cur, out_ids)
                residual = g.get_rows(inp, out_ids)
            if gemma:
                cur = self.norm(cur, w(p + "post_attention_norm.weight"), "attn_post_norm")
            ffn_inp = g.unary("ADD", cur, "ffn_inp", residual)
            cur = self.norm(ffn_inp, w(p + "ffn_norm.weight"), "ffn_norm")
            up = self.mm(w(p + "ffn_up.weight"), cur, "ffn_up")
            gate = self.mm(w(p + "ffn_gate.weight"), cur, "ffn_gate")
            cur = self.mm(w(p + "ffn_down.weight"), g.glu(gate, up, "ffn_glu"), "ffn_out")
            if gemma:
                cur = self.norm(cur, w(p + "post_ffw_norm.weight"), "ffn_post_norm")
            inp = g.unary("ADD", cur, "l_out", ffn_inp)
        cur = self.norm(inp, w("output_norm.weight"), "result_norm")
        cur.flags |= g.OUTPUT
        head = w("output.weight") or w("token_embd.weight")
        assert head is not None
        logits = g.mul_mat(head, cur, "result_output")
        logits.flags |= g.OUTPUT
        self.graph.expand(logits)
        return self.graph


def build_graph(shape: ModelShape, cfg: GraphConfig) -> g.Graph:
    """The graph llama.cpp builds for one micro-batch of ``shape`` (llama or gemma3 layout)."""
    return _Builder(shape, cfg).build()


def graph_bytes(shape: ModelShape, cfg: GraphConfig, alignment: int = 32) -> int:
    """Compute buffer bytes ggml reserves for one graph of ``shape`` (CPU alignment: 32)."""
    return measure(build_graph(shape, cfg), alignment)


# vec_dot_type of ggml-cpu's type_traits_cpu: what src1 is converted to for a matmul
_Q8_0_DOT = {"Q4_0", "Q5_0", "Q8_0", "IQ4_NL", "MXFP4", "Q1_0", "TQ1_0", "TQ2_0"}
_Q8_1_DOT = {"Q4_1", "Q5_1", "Q8_1"}
_SAME_DOT = {"F32": g.F32, "F16": g.F16, "BF16": 30}
_TILED = {
    "Q6_K",
    "Q5_K",
    "Q4_K",
    "Q3_K",
    "Q2_K",
    "IQ4_XS",
    "IQ2_XXS",
    "IQ2_XS",
    "IQ2_S",
    "IQ3_XXS",
    "IQ3_S",
    "IQ1_S",
    "IQ1_M",
}
TILED_SLOT = 512 * 1024
CACHE_LINE = 64


def _vec_dot_type(type_name: str) -> int:
    if type_name in _SAME_DOT:
        return _SAME_DOT[type_name]
    if type_name in _Q8_0_DOT:
        return 8
    if type_name in _Q8_1_DOT:
        return 9
    return 15  # Q8_K for the k-quants and i-quants


def work_buffer_bytes(graph: g.Graph, n_threads: int, repacked: frozenset[str], tiled: bool) -> int:
    """The CPU backend's scratch buffer for ``graph`` (ggml_graph_plan's work_size)."""
    best = 0
    for node in graph.nodes:
        cur = 0
        if node.op == "MUL_MAT":
            w, x = node.src[0], node.src[1]
            assert w is not None and x is not None
            type_name = GGML_TYPES[w.type].name
            dot = _vec_dot_type(type_name)
            if x.type != dot:
                cur = g.row_size(dot, x.nelements)
            cur = (cur + 63) // 64 * 64
            if tiled and type_name in _TILED and w.name not in repacked and x.ne[1] > 1:
                cur += 64 + n_threads * TILED_SLOT
        elif node.op in ("SOFT_MAX", "ROPE"):
            cur = 4 * node.ne[0] * n_threads
        elif node.op == "FLASH_ATTN_EXT":
            q, k, v = node.src[0], node.src[1], node.src[2]
            assert q is not None and k is not None and v is not None
            dk, dv, tq, tkv = k.ne[0], v.ne[0], 64, 64
            prefill = 4 * (tq * dk + 2 * tq * tkv + tq * dv + tkv * dv + tkv * dk) * n_threads
            decode = 4 * (q.ne[2] * n_threads * (2 + dv) + n_threads * (dk + 2 * dv))
            cur = max(prefill, decode)
        best = max(best, cur)
    return best + CACHE_LINE * n_threads if best else 0


# -- CUDA builds: ggml_backend_sched's split of the graph between the GPU and the CPU ---------
# ggml-backend.cpp (ggml_backend_sched_split_graph, passes 1-5, and the graph copy it hands to
# ggml-alloc): a CUDA build offloads every weight op of 32+ rows (GGML_OP_OFFLOAD_MIN_BATCH) to
# the GPU even when its weight stays on the CPU, copying the weight into the GPU's compute buffer
# (one split per such weight, so the copies take turns), and copies across every other backend
# change (the CPU KV cache views, the graph inputs); the CPU side lives in a CUDA_Host buffer.

_GPU, _CPU = 0, 1
_VIEW_OPS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"})
OFFLOAD_MIN_BATCH = 32


def _batch(t: g.Tensor) -> int:
    """get_op_batch_size() in ggml-cuda.cu."""
    if t.op == "GET_ROWS":
        return 0
    if t.op == "MUL_MAT":
        return t.ne[1]
    if t.op == "ROPE":
        return t.ne[2]
    return t.ne[1] * t.ne[2] * t.ne[3]


def _split(
    graph: g.Graph, home: dict[int, int], is_weight: set[int]
) -> tuple[list[tuple[list[g.Tensor], list[g.Tensor]]], dict[int, int]]:
    """Passes 1-5 and the graph copy: (input dependencies and copies, nodes) per split, and
    each tensor's backend. ``home``: backend of each external tensor (weights, KV cache)."""
    be: dict[int, int] = {}

    def from_cur(t: g.Tensor) -> int | None:
        if t.external:
            return home.get(id(t), _CPU)
        if t.view_src is not None and t.view_src.external:
            return home.get(id(t.view_src), _CPU)
        if t.flags & g.INPUT:
            return _CPU
        if t.op not in ("ROPE", "FLASH_ATTN_EXT"):
            for s in t.src:
                if s is not None and id(s) in is_weight:
                    if home[id(s)] == _CPU and _batch(t) >= OFFLOAD_MIN_BATCH:
                        return _GPU  # "1.off"
                    return home[id(s)]
        return None

    for t in graph.leafs + graph.nodes:
        b = from_cur(t)
        if b is not None:
            be[id(t)] = b
    ops = [t for t in graph.nodes if t.op not in _VIEW_OPS]
    for order, gpu_only in ((ops, True), (ops[::-1], True), (ops, False), (ops[::-1], False)):
        cur = None
        for t in order:
            if id(t) in be:
                cur = None if gpu_only and be[id(t)] == _CPU else be[id(t)]
            elif cur is not None:
                be[id(t)] = cur
    for t in graph.nodes:  # pass 4
        if id(t) not in be:
            be[id(t)] = be.get(id(t.view_src), _GPU) if t.view_src is not None else _GPU
        for s in t.src:
            if s is not None and id(s) not in be:
                be[id(s)] = be.get(id(s.view_src), be[id(t)]) if s.view_src else be[id(t)]
    splits: list[tuple[list[g.Tensor], list[g.Tensor]]] = []
    copies: dict[tuple[int, int], g.Tensor] = {}
    cur_b = next((be[id(t)] for t in ops), _CPU)
    inputs: list[g.Tensor] = []
    nodes: list[g.Tensor] = []
    for t in graph.nodes:
        if t.op not in _VIEW_OPS:
            b = be[id(t)]
            weight_copy = any(
                s is not None and id(s) in is_weight and be[id(s)] != cur_b for s in t.src
            )
            if b != cur_b or (inputs and weight_copy):
                splits.append((inputs, nodes))
                inputs, nodes, cur_b = [], [], b
            srcs = list(t.src)
            for j, s in enumerate(srcs):
                if s is None or be[id(s)] == cur_b:
                    continue
                key = (id(s), cur_b)
                if key not in copies:
                    copies[key] = g.Tensor(f"{s.name}#{cur_b}", "NONE", s.type, s.ne, s.nb)
                    be[id(copies[key])] = cur_b
                    inputs.append(s)
                srcs[j] = copies[key]
            t.src = tuple(srcs)
        nodes.append(t)
    splits.append((inputs, nodes))
    graph_copy: list[tuple[list[g.Tensor], list[g.Tensor]]] = []
    for split_inputs, split_nodes in splits:
        b = be[id(split_nodes[0])] if split_nodes else _CPU
        deps = []
        for s in split_inputs:
            dep = g.Tensor(f"{s.name} (dep)", "NONE", s.type, s.ne, s.nb, (s,))
            dep.view_src = s.view_src or s
            be[id(dep)] = be[id(s)]
            deps += [dep, copies[(id(s), b)]]
        graph_copy.append((deps, split_nodes))
    return graph_copy, be


class _SchedAllocator(_GraphAllocator):
    """ggml_gallocr with one buffer per backend (CUDA0: 128-byte alignment, CUDA_Host: 32)."""

    def __init__(self, be: dict[int, int], gpu_alignment: int, host_alignment: int) -> None:
        super().__init__(host_alignment)
        self.be = be
        self.allocs = {_GPU: _DynAllocator(gpu_alignment), _CPU: self.alloc}
        self.home: dict[int, int] = {}

    def place(self, node: g.Tensor, buffer: int) -> None:
        if not self.is_allocated(node) and node.view_src is None:
            self.home[id(node)] = buffer
        self.alloc = self.allocs[self.home.get(id(node), buffer)]
        self.allocate_node(node)

    def free_node(self, node: g.Tensor) -> None:
        self.alloc = self.allocs[self.home.get(id(node), _CPU)]
        super().free_node(node)

    def leaf_buffer(self, leaf: g.Tensor) -> int:
        return self.be.get(id(leaf), _CPU)

    def node_buffer(self, node: g.Tensor) -> int:
        return self.be[id(node)]

    def run_split(self, leafs: list[g.Tensor], nodes: list[g.Tensor]) -> tuple[int, int]:
        self.run_nodes(leafs, nodes)
        return self.allocs[_GPU].max_size, self.allocs[_CPU].max_size


def sched_graph_bytes(
    shape: ModelShape,
    cfg: GraphConfig,
    on_gpu: Callable[[str], bool],
    gpu_alignment: int = 128,
) -> tuple[int, int]:
    """(CUDA0, CUDA_Host) compute buffer bytes of one graph in a CUDA build.

    ``on_gpu(name)`` tells where a weight or KV cache tensor (``cache_k_l3``...) lives.
    """
    builder = _Builder(shape, cfg)
    graph = builder.build()
    head = graph.nodes[-1]  # result_output: a tied head is a separate copy where output lives
    if head.src[0] is not None and head.src[0].name == "token_embd.weight" and on_gpu("output"):
        t = head.src[0]
        head.src = (g.weight("output.weight", t.type, t.ne), *head.src[1:])
    externals = [t for t in graph.leafs if t.external]
    home = {id(t): _GPU if on_gpu(t.name) else _CPU for t in externals}
    weights = {id(t) for t in externals if not t.name.startswith("cache_")}
    copy, be = _split(graph, home, weights)
    leafs = [t for t in graph.leafs if not t.external]
    nodes = [t for deps, split_nodes in copy for t in deps + split_nodes]
    return _SchedAllocator(be, gpu_alignment, 32).run_split(leafs, nodes)
