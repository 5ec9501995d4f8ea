"""The quantization ladder: one F16/BF16/F32 source quantized to several types, each measured
on this machine — file size and bits per weight, peak RAM, prompt and decode speed, perplexity
on a text, KL divergence and top-1 agreement against the source.

Every step runs in a child process (quantize, speed, quality: llama.cpp never runs in the
caller). Finished rungs are cached in SQLite by (source sha256, type, llama.cpp version,
measurement settings), so a rerun only measures what is new; a cancelled or failed rung leaves
no file behind, the finished ones stay cached.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from quantdesk.engine.chat_export import file_sha256
from quantdesk.engine.errors import QuantizeCancelled, QuantizeError
from quantdesk.engine.gguf import read_header_from_file
from quantdesk.engine.ladder_speed import measure_speed
from quantdesk.engine.model_info import summarize
from quantdesk.engine.quality import sample_text
from quantdesk.engine.quality_run import run_quality_check
from quantdesk.engine.quantize import inspect_source, quantize
from quantdesk.engine.quantize_options import QuantizeOptions, target_name
from quantdesk.engine.sqlite_files import open_database

DEFAULT_TYPES = ("Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rungs (
    source_sha256 TEXT NOT NULL,
    qtype TEXT NOT NULL,
    llama_version TEXT NOT NULL,
    settings TEXT NOT NULL,
    rung TEXT NOT NULL,
    PRIMARY KEY (source_sha256, qtype, llama_version, settings)
);
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""


@dataclass(frozen=True)
class Rung:
    """One type's figures (the source's own rung has KL divergence 0 and agreement 1)."""

    qtype: str
    size_bytes: int
    bits_per_weight: float
    peak_ram_bytes: int
    prompt_tps: float
    decode_tps: float
    perplexity: float
    kld_mean: float
    kld_p99: float
    top1_agreement: float
    is_source: bool = False


@dataclass(frozen=True)
class LadderSettings:
    """What the measurements depend on besides the model (part of the cache key)."""

    threads: int = 0
    n_ctx: int = 512  # quality: tokens per scored chunk
    max_chunks: int | None = 8  # quality: chunks scored (None: the whole text)
    n_prompt: int = 256  # speed: prompt tokens
    n_gen: int = 64  # speed: decoded tokens
    text_sha256: str = ""  # the text sample's
    # raised when a fix changes what is measured, so figures cached before are measured again
    # (2: the quality check reads the chosen text; before, always the bundled sample)
    method: int = 2

    def key(self) -> str:
        """The cache key's settings part."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class LadderProgress:
    """Where a ladder run is: the rung, its stage and how many rungs are done."""

    qtype: str
    stage: str  # "quantizing", "speed", "quality", "cached"
    done: int  # rungs finished
    total: int
    fraction: float = 0.0  # of the current stage (quantizing and quality report it)


@dataclass
class LadderResult:
    """The source's rung first, then one per type in the order asked."""

    source: Path
    source_sha256: str
    rungs: list[Rung]
    files: dict[str, Path] = field(default_factory=dict)  # type -> file made in this run
    measured: list[str] = field(default_factory=list)  # types measured now (not from cache)
    environment: dict = field(default_factory=dict)


class LadderCache:
    """Finished rungs and source hashes, in SQLite."""

    def __init__(self, path: Path | str) -> None:
        self._db, self.recovered_from = open_database(
            path, _SCHEMA, SCHEMA_VERSION, what="The quantization lab's results"
        )

    def get(self, sha: str, qtype: str, version: str, settings: str) -> Rung | None:
        """A cached rung, or None."""
        row = self._db.execute(
            "SELECT rung FROM rungs WHERE source_sha256=? AND qtype=? AND llama_version=? "
            "AND settings=?", (sha, qtype, version, settings)).fetchone()  # fmt: skip
        return Rung(**json.loads(row[0])) if row else None

    def put(self, sha: str, version: str, settings: str, rung: Rung) -> None:
        """Keep a finished rung."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO rungs VALUES (?, ?, ?, ?, ?)",
                (sha, rung.qtype, version, settings, json.dumps(asdict(rung))),
            )

    def sha256(self, path: Path) -> str:
        """The file's sha256, hashed once per (path, size, mtime)."""
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        row = self._db.execute(
            "SELECT sha256 FROM hashes WHERE path=? AND size=? AND mtime_ns=?", key
        ).fetchone()
        if row:
            return row[0]
        digest = file_sha256(path)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", (*key, digest))
        return digest

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def rung_file(work_dir: Path, source: Path, qtype: str) -> Path:
    """Where the ladder writes ``source`` quantized to ``qtype``."""
    return work_dir / f"{source.stem}-{qtype}.gguf"


def environment(threads: int) -> dict:
    """CPU, threads and versions the figures were measured with."""
    import llama_cpp

    from quantdesk.engine.params import default_threads

    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": threads if threads > 0 else default_threads(),
        "llama_cpp_python": llama_cpp.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_ladder(
    source: Path,
    types: Sequence[str],
    work_dir: Path,
    cache: LadderCache,
    *,
    text: str | None = None,
    settings: LadderSettings | None = None,
    on_progress: Callable[[LadderProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> LadderResult:
    """Quantize ``source`` to each of ``types`` in ``work_dir`` and measure every rung (the
    source's too); cached rungs are not measured again. Raises QuantizeCancelled on cancel
    (the finished rungs stay cached; the unfinished one leaves no file)."""
    import llama_cpp

    source = Path(source)
    info = inspect_source(source)
    if info.is_quantized:
        raise QuantizeError(
            f"'{source.name}' is already quantized ({info.file_type}): the ladder starts from "
            "an F16, BF16 or F32 model, so that every rung is measured against the original."
        )
    text = sample_text() if text is None else text
    settings = replace(settings or LadderSettings(),
                       text_sha256=hashlib.sha256(text.encode()).hexdigest())  # fmt: skip
    key, version = settings.key(), llama_cpp.__version__
    sha = cache.sha256(source)
    wanted = [info.file_type] + [target_name(t) for t in types if target_name(t) != info.file_type]
    result = LadderResult(source, sha, [], environment=environment(settings.threads))
    work_dir.mkdir(parents=True, exist_ok=True)
    for done, qtype in enumerate(wanted):
        def report(stage: str, fraction: float = 0.0, q: str = qtype, d: int = done) -> None:
            if on_progress is not None:
                on_progress(LadderProgress(q, stage, d, len(wanted), fraction))

        cached = cache.get(sha, qtype, version, key)
        if cached is not None:
            report("cached")
            result.rungs.append(cached)
            continue
        is_source = qtype == info.file_type
        path = source if is_source else rung_file(work_dir, source, qtype)
        made = False
        try:
            if not is_source:
                path.unlink(missing_ok=True)  # left by an interrupted run: not trusted
                report("quantizing")
                quantize(source, path, QuantizeOptions(qtype, allow_requantize=True,
                                                        threads=settings.threads),
                         on_progress=lambda p: report("quantizing", p.fraction),
                         cancel=cancel)  # fmt: skip
                made = True
            report("speed")
            speed = measure_speed(path, text, threads=settings.threads,
                                  n_prompt=settings.n_prompt, n_gen=settings.n_gen,
                                  cancel=cancel)  # fmt: skip
            report("quality")
            quality = run_quality_check(source, path, text=text, threads=settings.threads,
                                        n_ctx=settings.n_ctx, max_chunks=settings.max_chunks,
                                        on_progress=lambda d, t: report("quality", d / max(1, t)),
                                        cancel=cancel)  # fmt: skip
        except (QuantizeCancelled, QuantizeError):
            if made:
                path.unlink(missing_ok=True)  # an unmeasured rung leaves no file
            raise
        header = summarize(read_header_from_file(path), path=path)
        rung = Rung(
            qtype=qtype, size_bytes=path.stat().st_size,
            bits_per_weight=header.bits_per_weight or 0.0, peak_ram_bytes=speed.peak_ram_bytes,
            prompt_tps=speed.prompt_tps, decode_tps=speed.decode_tps,
            perplexity=quality.ppl_result, kld_mean=0.0 if is_source else quality.kld_mean,
            kld_p99=0.0 if is_source else quality.kld_p99,
            top1_agreement=1.0 if is_source else quality.top1_agreement, is_source=is_source,
        )  # fmt: skip
        cache.put(sha, version, key, rung)
        result.rungs.append(rung)
        result.measured.append(qtype)
        if made:
            result.files[qtype] = path
    return result


def open_cache(path: Path) -> LadderCache:
    """The lab's cache at ``path`` (sqlite3 errors become QuantizeError with a message)."""
    try:
        return LadderCache(path)
    except sqlite3.Error as exc:
        raise QuantizeError(f"The quantization lab's results file cannot be opened: {exc}") from exc
