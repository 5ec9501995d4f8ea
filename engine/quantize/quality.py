"""How much a quantized model differs from its source: perplexity, KL divergence, top-1 match.

Both models read the same text, chunk by chunk, the way llama.cpp's ``llama-perplexity``
does: the text is tokenized once (with BOS when the model adds one), cut into chunks of
``n_ctx`` tokens, each chunk starts with BOS, and only the second half of each chunk is
scored (the first half gives every scored token some context). At each scored position
both models' next-token distributions are compared in float64:

* perplexity of each model on the real next token,
* KL(P_source || P_result) in nats (0 when the result predicts exactly like the source),
* how often both models rank the same token first.

Runs in-process on the CPU with both models loaded at once; a caller that must survive
a llama.cpp crash runs it in a child process. Memory stays bounded: only the current
chunk's logits (those llama.cpp holds) and a few rows of float64 at a time.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantdesk.engine.errors import ModelLoadError, QuantDeskError
from quantdesk.engine.llama.log import import_llama_cpp, recent_errors, route_llama_logs
from quantdesk.engine.resources import resource_dirs

SAMPLE_FILE_NAME = "quality_sample.txt"
_ROW_BLOCK = 8  # scored positions converted to float64 at once (16 MiB each for a 262k vocab)


class QualityError(QuantDeskError):
    """The quality of a quantized model could not be measured."""


class SampleTextMissing(QualityError):
    """The bundled text sample is not where the installation should have put it."""


class TextTooShort(QualityError):
    """The text gives fewer tokens than one chunk of the chosen context length."""


class IncomparableModels(QualityError):
    """The two models do not share a vocabulary, so their predictions cannot be compared."""


@dataclass(frozen=True)
class QualityReport:
    """Source vs quantized result on the same text (see the module docstring)."""

    tokens_scored: int
    n_ctx: int
    ppl_source: float
    ppl_result: float
    kld_mean: float  # mean KL(P_source || P_result), nats per scored token
    kld_p99: float  # 99th percentile of the per-token KL divergence
    top1_agreement: float  # fraction of scored positions where both argmax tokens agree
    seconds: float  # wall time of the whole measurement, loading included

    def summary(self) -> str:
        """One plain-language line, e.g. for a status bar or a log."""
        change = (self.ppl_result / self.ppl_source - 1.0) * 100.0
        kld = f"{self.kld_mean:.3f}"
        if 0.0 < self.kld_mean < 0.0005:
            kld = "below 0.001"  # tiny but not zero: do not print a misleading 0.000
        return (
            f"Perplexity {self.ppl_source:.2f} -> {self.ppl_result:.2f} ({change:+.1f} %), "
            f"KL divergence {kld}, same top token {self.top1_agreement * 100:.1f} %"
        )


def text_too_short(n_tokens: int, needed: int) -> TextTooShort:
    """The error for a text that gives ``n_tokens`` tokens where ``needed`` are needed."""
    return TextTooShort(
        f"The text is too short to measure on: it gives {n_tokens} tokens, and at least "
        f"{needed} are needed. Use a longer text (a few pages)."
    )


def read_text_file(path: Path) -> str:
    """A user's text sample, strictly UTF-8 (a byte-order mark is dropped): a text in another
    encoding would be measured on garbled characters, so it is refused with a reason."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QualityError(
            f"'{Path(path).name}' is not UTF-8 text (byte {exc.start} cannot be read as UTF-8): "
            "save it as UTF-8 and choose it again."
        ) from exc
    except OSError as exc:
        raise QualityError(f"The text file '{path}' cannot be read: "
                           f"{exc.strerror or exc}.") from exc  # fmt: skip


def sample_text() -> str:
    """The bundled English sample (about 3,200 words) used to compare models."""
    for folder in resource_dirs():
        path = folder / SAMPLE_FILE_NAME
        if path.is_file():
            return path.read_text(encoding="utf-8")
    looked = ", ".join(str(folder) for folder in resource_dirs())
    raise SampleTextMissing(
        f"The text sample '{SAMPLE_FILE_NAME}' used to measure quality is missing. "
        "The installation is incomplete; reinstall QuantDesk.",
        details=f"Looked in: {looked}",
    )


def measure_quality(
    source: Path,
    result: Path,
    *,
    text: str | None = None,
    n_ctx: int = 512,
    threads: int = 0,
    max_chunks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> QualityReport:
    """Compare ``result`` (e.g. a quantized file) with ``source`` on ``text``.

    ``text`` defaults to :func:`sample_text`. ``threads=0`` uses every CPU.
    ``max_chunks`` limits the number of ``n_ctx``-token chunks scored (None: all).
    ``progress(done_chunks, total_chunks)`` is called before the first and after each chunk.

    Raises ModelLoadError when llama.cpp cannot load a file, IncomparableModels when the
    vocabularies differ, TextTooShort when the text does not fill one chunk, QualityError
    when evaluation fails.
    """
    if n_ctx < 4:
        raise QualityError(f"The context length must be at least 4 tokens, not {n_ctx}.")
    if max_chunks is not None and max_chunks < 1:
        raise QualityError(f"max_chunks must be at least 1, not {max_chunks}.")
    started = time.perf_counter()
    text = sample_text() if text is None else text
    threads = threads if threads > 0 else (os.cpu_count() or 1)

    with ExitStack() as stack:
        src = stack.enter_context(_loaded(Path(source), n_ctx, threads))
        res = stack.enter_context(_loaded(Path(result), n_ctx, threads))
        tokens = _common_tokens(src, res, Path(source), Path(result), text)
        n_chunks = len(tokens) // n_ctx
        if n_chunks == 0:
            raise text_too_short(len(tokens), n_ctx)
        if max_chunks is not None:
            n_chunks = min(n_chunks, max_chunks)
        bos = src.token_bos() if _adds_bos(src) else None
        stats = _Accumulator()
        batch = stack.enter_context(_batch(n_ctx))
        if progress is not None:
            progress(0, n_chunks)
        for chunk in range(n_chunks):
            chunk_tokens = tokens[chunk * n_ctx : (chunk + 1) * n_ctx]
            if bos is not None:
                chunk_tokens[0] = bos
            first = n_ctx // 2
            _fill_batch(batch, chunk_tokens, first)
            n_out = n_ctx - 1 - first
            src_logits = _decode(src, batch, n_out, Path(source))
            res_logits = _decode(res, batch, n_out, Path(result))
            targets = np.asarray(chunk_tokens[first + 1 :], dtype=np.int64)
            for lo in range(0, n_out, _ROW_BLOCK):
                hi = min(lo + _ROW_BLOCK, n_out)
                stats.add(src_logits[lo:hi], res_logits[lo:hi], targets[lo:hi])
            if progress is not None:
                progress(chunk + 1, n_chunks)
        return stats.report(n_ctx, time.perf_counter() - started)


class _Accumulator:
    """Running sums over scored positions; per-token KL values kept for the percentile."""

    def __init__(self) -> None:
        self.nll_source = 0.0
        self.nll_result = 0.0
        self.same_top = 0
        self.kld: list[np.ndarray] = []

    def add(self, src: np.ndarray, res: np.ndarray, targets: np.ndarray) -> None:
        logp_src = _log_softmax(src)
        logp_res = _log_softmax(res)
        rows = np.arange(len(targets))
        self.nll_source -= float(logp_src[rows, targets].sum())
        self.nll_result -= float(logp_res[rows, targets].sum())
        self.kld.append(np.sum(np.exp(logp_src) * (logp_src - logp_res), axis=1))
        self.same_top += int(np.count_nonzero(src.argmax(axis=1) == res.argmax(axis=1)))

    def report(self, n_ctx: int, seconds: float) -> QualityReport:
        kld = np.concatenate(self.kld)
        n = len(kld)
        return QualityReport(
            tokens_scored=n,
            n_ctx=n_ctx,
            ppl_source=float(np.exp(self.nll_source / n)),
            ppl_result=float(np.exp(self.nll_result / n)),
            kld_mean=float(kld.mean()),
            kld_p99=float(np.percentile(kld, 99)),
            top1_agreement=self.same_top / n,
            seconds=seconds,
        )


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = logits.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
    return x


# -- llama.cpp ------------------------------------------------------------------------------


@contextmanager
def _loaded(path: Path, n_ctx: int, threads: int) -> Iterator[object]:
    """A llama_cpp.Llama for ``path`` (CPU), closed on exit."""
    llama_cpp = import_llama_cpp("models cannot be compared")
    if not path.is_file():
        raise ModelLoadError(f"The model file '{path}' does not exist.")
    route_llama_logs()
    recent_errors()  # forget errors of earlier loads
    try:
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        said = recent_errors()
        reason = f" llama.cpp said: {said[-1]}" if said else ""
        raise ModelLoadError(
            f"llama.cpp could not load '{path.name}' to measure its quality.{reason}",
            details="\n".join([*said, str(exc)]),
        ) from exc
    try:
        yield llama
    finally:
        llama.close()


def _adds_bos(llama) -> bool:  # noqa: ANN001 - llama_cpp.Llama, imported lazily
    import llama_cpp

    return bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llama.model)))


def _common_tokens(src, res, src_path: Path, res_path: Path, text: str) -> list[int]:  # noqa: ANN001
    """The text's tokens, after checking both models share the vocabulary."""
    data = text.encode("utf-8")
    tokens = src.tokenize(data, add_bos=True, special=False)
    if src.n_vocab() != res.n_vocab():
        raise IncomparableModels(
            f"'{src_path.name}' and '{res_path.name}' have different vocabularies "
            f"({src.n_vocab()} and {res.n_vocab()} tokens), so their predictions cannot be "
            "compared. Compare a quantized model only with the model it was made from.",
        )
    if res.tokenize(data, add_bos=True, special=False) != tokens:
        raise IncomparableModels(
            f"'{src_path.name}' and '{res_path.name}' split the same text into different "
            "tokens: their vocabularies differ, so their predictions cannot be compared. "
            "Compare a quantized model only with the model it was made from.",
        )
    return tokens


@contextmanager
def _batch(n_ctx: int) -> Iterator[object]:
    import llama_cpp

    batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)
    try:
        yield batch
    finally:
        llama_cpp.llama_batch_free(batch)


def _fill_batch(batch, tokens: list[int], first: int) -> None:  # noqa: ANN001
    """One sequence from position 0; logits only for positions first .. len-2 (the scored)."""
    last = len(tokens) - 1
    batch.n_tokens = len(tokens)
    for i, token in enumerate(tokens):
        batch.token[i] = token
        batch.pos[i] = i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = first <= i < last


def _decode(llama, batch, n_out: int, path: Path) -> np.ndarray:  # noqa: ANN001
    """Evaluate ``batch`` from an empty cache; a float32 view of its ``n_out`` logit rows.

    The view points into llama.cpp's output buffer: valid until the next decode.
    """
    import llama_cpp

    ctx = llama.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    status = llama_cpp.llama_decode(ctx, batch)
    if status != 0:
        said = recent_errors()
        raise QualityError(
            f"llama.cpp failed while evaluating '{path.name}' (status {status}).",
            details="\n".join(said),
        )
    n_vocab = llama.n_vocab()
    # Logits of the requested positions are stored contiguously, in batch order.
    pointer = llama_cpp.llama_get_logits(ctx)
    array = (ctypes.c_float * (n_out * n_vocab)).from_address(ctypes.addressof(pointer.contents))
    return np.frombuffer(array, dtype=np.float32).reshape(n_out, n_vocab)
