"""Compute an importance matrix (imatrix) with llama.cpp itself, as ``llama-imatrix`` does.

The model runs over a text in chunks of ``n_ctx`` tokens (BOS first in each chunk, one batch
per chunk, every position an output so the last layer sees all rows). llama.cpp's graph
scheduler calls ``cb_eval`` for every node: we ask for the ``MUL_MAT`` nodes whose weight
(``src[0]``) is named ``blk.*`` and whose activations (``src[1]``, F32) have at least 16 rows,
then add each column's sum of squares and the row count, as ``tools/imatrix/imatrix.cpp``
does (in float64 here; the file stores F32). Mixture-of-experts layers (``MUL_MAT_ID``) are
refused with a clear error. The file is llama-imatrix's GGUF (see :func:`write_imatrix_gguf`),
written to ``<output>.part`` and renamed when complete.

Differences from llama-imatrix: no perplexity, so one chunk of text suffices (it asks for two);
``output.weight`` is not collected (its default too). CPU only (``n_gpu_layers=0``).

Child usage (the parent kills it to cancel):
``python -m quantdesk.engine.quantize.imatrix_compute JOB`` with JOB a JSON object
``{"model", "text_file", "output", "n_ctx", "threads", "max_chunks", "dataset"}``; events
``progress`` (done, total) and ``result`` (ok, summary | message).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from quantdesk.engine.errors import ImatrixError, ModelLoadError, QuantizeCancelled
from quantdesk.engine.llama.ggml_ctypes import F32, GgmlLib, GgmlTensor, ggml_base
from quantdesk.engine.llama.log import recent_errors, route_llama_logs
from quantdesk.engine.quantize.quantizer import part_path

MIN_ROWS = 16  # imatrix.cpp ignores smaller batches ("why are small batches ignored?")
COPY_HOST_ACTIVATIONS = False  # True: read host tensors too through ggml_backend_tensor_get


class ImatrixCancelled(QuantizeCancelled):
    """The user cancelled the computation; no file was written."""


class ImatrixTextTooShort(ImatrixError):
    """The text gives fewer tokens than one chunk."""


@dataclass(frozen=True)
class ImatrixSummary:
    """What was computed: weight matrices, chunks and tokens evaluated, wall time, file."""

    entries: int
    chunks: int
    tokens: int
    seconds: float
    output: Path


# -- collection (imatrix.cpp's IMatrixCollector::collect_imatrix) -----------------------------


class _Collector:
    """The cb_eval callback: per weight, column sums of squared activations and row counts."""

    def __init__(self, ggml: GgmlLib) -> None:
        self.ggml = ggml
        self.sums: dict[str, np.ndarray] = {}  # [n_mat, ne0] float64
        self.counts: dict[str, int] = {}
        self.moe_weight: str | None = None
        self.error: BaseException | None = None
        self._copy = ctypes.create_string_buffer(0)
        proto = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p)
        self.callback = proto(self._on_node)  # kept alive as long as the context

    def _on_node(self, node: int, ask: bool, _user: int) -> bool:
        try:
            t = GgmlTensor.from_address(node)
            if ask:
                return self._wanted(t)
            self._collect(t)
        except BaseException as exc:  # noqa: BLE001 - must not unwind through C
            self.error = self.error or exc
        return True

    def _wanted(self, t: GgmlTensor) -> bool:
        if t.op not in (self.ggml.mul_mat, self.ggml.mul_mat_id):
            return False
        w = GgmlTensor.from_address(t.src[0])
        x = GgmlTensor.from_address(t.src[1])
        name = _weight_name(w.name)
        if not name.startswith("blk."):
            return False
        if t.op == self.ggml.mul_mat_id:
            self.moe_weight = self.moe_weight or name
            return False
        return x.ne[1] >= MIN_ROWS and x.type == F32

    def _collect(self, t: GgmlTensor) -> None:
        w = GgmlTensor.from_address(t.src[0])
        x = GgmlTensor.from_address(t.src[1])
        rows = _activations(self.ggml, t.src[1], x, self)
        name = _weight_name(w.name)
        n_mat = w.ne[2] * w.ne[3]
        acc = self.sums.setdefault(name, np.zeros((n_mat, x.ne[0]), dtype=np.float64))
        if acc.shape != (n_mat, x.ne[0]):
            raise ImatrixError(f"Inconsistent activation size for '{name}'.")
        for i3 in range(x.ne[3]):
            for i2 in range(x.ne[2]):
                mat_id = (i3 % w.ne[3]) * w.ne[2] + (i2 % w.ne[2])
                acc[mat_id] += np.square(rows[i3, i2], dtype=np.float64).sum(axis=0)
        if not np.all(np.isfinite(acc)):
            raise ImatrixError(
                f"The model produced non-finite activations in '{name}'; it is damaged or "
                "cannot run this text. No importance matrix can be computed from it."
            )
        self.counts[name] = self.counts.get(name, 0) + (x.ne[1] * x.ne[2] * x.ne[3]) // n_mat

    def copy_buffer(self, size: int) -> ctypes.Array:
        if len(self._copy) < size:
            self._copy = ctypes.create_string_buffer(size)
        return self._copy


def _weight_name(raw: bytes) -> str:
    """imatrix.cpp's filter_tensor_name: ``CUDA0#blk.0.attn_k.weight#0`` -> the middle part."""
    name = raw.decode("utf-8", "replace")
    return name.split("#")[1] if "#" in name else name


def _activations(ggml: GgmlLib, ptr: int, x: GgmlTensor, owner: _Collector) -> np.ndarray:
    """src1 as a [ne3, ne2, ne1, ne0] float32 array (a view of host memory, else a copy)."""
    if x.nb[0] != 4:
        raise ImatrixError("The activations of a weight are not contiguous rows of F32.")
    nbytes = ggml.lib.ggml_nbytes(ptr)
    host = x.buffer is None or ggml.lib.ggml_backend_buffer_is_host(x.buffer)
    if host and not COPY_HOST_ACTIVATIONS:
        raw = (ctypes.c_char * nbytes).from_address(x.data)
    else:
        raw = owner.copy_buffer(nbytes)
        ggml.lib.ggml_backend_tensor_get(ptr, raw, 0, nbytes)
    return np.ndarray(
        shape=tuple(reversed(list(x.ne))),
        dtype=np.float32,
        buffer=raw,
        strides=tuple(reversed(list(x.nb))),
    )


# -- the run (imatrix.cpp's compute_imatrix, without perplexity) ------------------------------


def compute_imatrix(
    model: Path,
    text: str,
    output: Path,
    *,
    n_ctx: int = 512,
    threads: int = 0,
    max_chunks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    dataset: str | None = None,
) -> ImatrixSummary:
    """Run ``model`` over ``text`` and write its importance matrix to ``output`` (GGUF).

    ``threads=0`` uses every CPU; ``max_chunks`` limits the chunks of ``n_ctx`` tokens (None:
    all); ``progress(done, total)`` is called before the first and after each chunk; ``cancel``
    is checked between chunks; ``dataset`` is recorded in ``imatrix.datasets`` (e.g. the text
    file's name). Raises ModelLoadError, ImatrixTextTooShort, ImatrixCancelled (no file left)
    or ImatrixError.
    """
    if n_ctx < MIN_ROWS:
        raise ImatrixError(f"The chunk length must be at least {MIN_ROWS} tokens, not {n_ctx}.")
    if max_chunks is not None and max_chunks < 1:
        raise ImatrixError(f"max_chunks must be at least 1, not {max_chunks}.")
    started = time.perf_counter()
    model, output = Path(model), Path(output)
    ggml = ggml_base()
    collector = _Collector(ggml)
    threads = threads if threads > 0 else (os.cpu_count() or 1)
    with _Llama(model, n_ctx, threads, collector) as run:
        tokens = run.tokenize(text)
        n_chunks = len(tokens) // n_ctx
        if n_chunks == 0:
            raise ImatrixTextTooShort(
                f"The text is too short for an importance matrix: it has {len(tokens)} tokens, "
                f"but one chunk needs {n_ctx}. Use a longer text or a smaller chunk length."
            )
        n_chunks = min(n_chunks, max_chunks) if max_chunks is not None else n_chunks
        if progress is not None:
            progress(0, n_chunks)
        for chunk in range(n_chunks):
            if cancel is not None and cancel.is_set():
                raise ImatrixCancelled("Importance matrix computation cancelled.")
            run.decode(tokens[chunk * n_ctx : (chunk + 1) * n_ctx])
            if collector.error is not None:
                raise collector.error
            if collector.moe_weight is not None:
                raise ImatrixError(
                    f"'{model.name}' is a mixture-of-experts model ('{collector.moe_weight}'); "
                    "QuantDesk cannot compute its importance matrix yet. Use llama.cpp's "
                    "llama-imatrix, then pick its file."
                )
            if progress is not None:
                progress(chunk + 1, n_chunks)
    if not collector.sums:
        raise ImatrixError(f"llama.cpp ran '{model.name}' but used no weight matrix of a layer.")
    if cancel is not None and cancel.is_set():
        raise ImatrixCancelled("Importance matrix computation cancelled.")
    chunk_count = max(collector.counts.values()) // n_ctx  # m_last_chunk
    write_imatrix_gguf(
        output,
        {name: (collector.sums[name], collector.counts[name]) for name in collector.sums},
        datasets=[dataset] if dataset else [],
        chunk_count=chunk_count,
        chunk_size=n_ctx,
    )
    return ImatrixSummary(
        len(collector.sums), n_chunks, n_chunks * n_ctx, time.perf_counter() - started, output
    )


class _Llama:
    """A CPU model + context whose scheduler calls ``collector.callback`` for every node."""

    def __init__(self, path: Path, n_ctx: int, threads: int, collector: _Collector) -> None:
        self.path, self.n_ctx, self.threads, self.collector = path, n_ctx, threads, collector

    def __enter__(self) -> _Llama:
        import llama_cpp as lc

        if not self.path.is_file():
            raise ModelLoadError(f"The model file '{self.path}' does not exist.")
        route_llama_logs()
        recent_errors()
        lc.llama_backend_init()
        mparams = lc.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self.model = lc.llama_model_load_from_file(str(self.path).encode("utf-8"), mparams)
        if not self.model:
            said = recent_errors()
            raise ModelLoadError(
                f"llama.cpp could not load '{self.path.name}' to compute an importance matrix."
                + (f" llama.cpp said: {said[-1]}" if said else ""),
                details="\n".join(said),
            )
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = self.n_ctx
        cparams.n_ubatch = min(self.n_ctx, 512)  # llama-imatrix's default physical batch
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = self.threads
        cparams.offload_kqv = cparams.op_offload = False
        cparams.no_perf = True
        cparams.cb_eval = self.collector.callback
        cparams.cb_eval_user_data = None
        self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lc.llama_model_free(self.model)
            raise ModelLoadError(
                f"llama.cpp could not create a context for '{self.path.name}'.",
                details="\n".join(recent_errors()),
            )
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.batch = lc.llama_batch_init(self.n_ctx, 0, 1)
        return self

    def __exit__(self, *_exc: object) -> None:
        import llama_cpp as lc

        lc.llama_batch_free(self.batch)
        lc.llama_free(self.ctx)
        lc.llama_model_free(self.model)

    def tokenize(self, text: str) -> list[int]:
        """common_tokenize(ctx, text, add_special=true, parse_special=false)."""
        import llama_cpp as lc

        data = text.encode("utf-8")
        size = len(data) + 2
        for _ in range(2):
            buf = (lc.llama_token * size)()
            n = lc.llama_tokenize(self.vocab, data, len(data), buf, size, True, False)
            if n >= 0:
                return list(buf[:n])
            size = -n
        raise ImatrixError("llama.cpp could not tokenize the text.")

    def decode(self, tokens: list[int]) -> None:
        """One chunk from an empty cache: BOS first (when the model adds one), all outputs."""
        import llama_cpp as lc

        if lc.llama_vocab_get_add_bos(self.vocab):
            tokens = [lc.llama_vocab_bos(self.vocab), *tokens[1:]]
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        batch = self.batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True  # outputs everywhere, so the last layer sees every row
        status = lc.llama_decode(self.ctx, batch)
        if status != 0:
            raise ImatrixError(
                f"llama.cpp failed while running '{self.path.name}' (status {status}).",
                details="\n".join(recent_errors()),
            )


# -- the file (imatrix.cpp's save_imatrix through gguf_write_to_file) -------------------------

_ALIGN = 32  # GGUF_DEFAULT_ALIGNMENT; general.alignment is not written
_T_U32, _T_STR, _T_ARR = 4, 8, 9


def write_imatrix_gguf(
    output: Path,
    stats: dict[str, tuple[np.ndarray, int]],
    *,
    datasets: list[str],
    chunk_count: int,
    chunk_size: int,
) -> None:
    """Write llama-imatrix's GGUF file atomically (``<output>.part``, then rename).

    ``stats``: weight name -> (sums [n_mat, ne0], count). KV pairs in llama-imatrix's order:
    general.type "imatrix", imatrix.datasets [str], imatrix.chunk_count u32,
    imatrix.chunk_size u32; tensors in sorted name order, ``<name>.in_sum2`` F32
    [ne0, n_mat] then ``<name>.counts`` F32 [1, n_mat] (trailing 1 dimensions dropped, as
    ggml_n_dims does), data aligned to 32 bytes.
    """

    def s(text: str) -> bytes:
        raw = text.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw

    kv = s("general.type") + struct.pack("<I", _T_STR) + s("imatrix")
    kv += s("imatrix.datasets") + struct.pack("<IIQ", _T_ARR, _T_STR, len(datasets))
    kv += b"".join(s(d) for d in datasets)
    kv += s("imatrix.chunk_count") + struct.pack("<II", _T_U32, chunk_count)
    kv += s("imatrix.chunk_size") + struct.pack("<II", _T_U32, chunk_size)
    infos, blobs, offset = b"", [], 0
    for name in sorted(stats):
        sums, count = stats[name]
        n_mat, ne0 = sums.shape
        for suffix, shape, data in (
            (".in_sum2", [ne0, n_mat], sums.astype("<f4")),
            (".counts", [1, n_mat], np.full(n_mat, count, dtype="<f4")),
        ):
            dims = shape if shape[-1] > 1 else shape[:1]
            infos += s(name + suffix) + struct.pack(f"<I{len(dims)}q", len(dims), *dims)
            infos += struct.pack("<IQ", F32, offset)
            blob = data.tobytes()
            blobs.append(blob + b"\0" * (-len(blob) % _ALIGN))
            offset += len(blobs[-1])
    head = b"GGUF" + struct.pack("<Iqq", 3, 2 * len(stats), 4) + kv + infos
    head += b"\0" * (-len(head) % _ALIGN)
    part = part_path(output)
    try:
        with open(part, "wb") as f:
            f.write(head)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, output)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ImatrixError(
            f"The importance matrix could not be written to '{output}': {exc.strerror or exc}"
        ) from None


# -- child entry --------------------------------------------------------------------------------


MODULE = "quantdesk.engine.quantize.imatrix_compute"


def compute_imatrix_in_child(
    model: Path,
    output: Path,
    *,
    text_file: Path | None = None,
    n_ctx: int = 512,
    threads: int = 0,
    max_chunks: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> ImatrixSummary:
    """:func:`compute_imatrix` in a child process (None text: the bundled sample)."""
    from quantdesk.engine.child_process import run_child_job

    job = {
        "model": str(model), "text_file": str(text_file) if text_file else None,
        "output": str(output), "n_ctx": n_ctx, "threads": threads, "max_chunks": max_chunks,
    }  # fmt: skip
    try:
        final = run_child_job(
            MODULE, job, what="Computing the importance matrix", on_progress=on_progress,
            cancel=cancel,
        )  # fmt: skip
    finally:
        part_path(Path(output)).unlink(missing_ok=True)
    summary = final["summary"]
    return ImatrixSummary(**{**summary, "output": Path(summary["output"])})


def default_imatrix_path(model: Path) -> Path:
    """``<folder>/<model stem>.imatrix.gguf`` beside the model."""
    return model.with_name(model.stem + ".imatrix.gguf")


def _compute(job: dict) -> dict:
    from quantdesk.engine.child_process import progress_event

    if job.get("text_file"):
        try:
            text = Path(job["text_file"]).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ImatrixError(f"The text cannot be read: {exc}") from exc
    else:  # the bundled English sample
        from quantdesk.engine.quantize.quality import SAMPLE_FILE_NAME, sample_text

        text, job["text_file"] = sample_text(), SAMPLE_FILE_NAME
    summary = compute_imatrix(
        Path(job["model"]),
        text,
        Path(job["output"]),
        n_ctx=job.get("n_ctx", 512),
        threads=job.get("threads", 0),
        max_chunks=job.get("max_chunks"),
        dataset=job.get("dataset") or Path(job["text_file"]).name,
        progress=progress_event,
    )
    return {"summary": {**asdict(summary), "output": str(summary.output)}}


def main(argv: list[str]) -> int:
    """Child entry point: the job (JSON, see the module docstring) comes on standard input."""
    from quantdesk.engine.child_process import serve_job

    return serve_job(_compute, "The importance matrix")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
