"""The quantization ladder: one F16/BF16/F32 source quantized to several types, each measured
on this machine — file size and bits per weight, peak RAM, prompt and decode speed, perplexity
on a text, KL divergence and top-1 agreement against the source.

Every step runs in a child process (quantize, speed, quality: llama.cpp never runs in the
caller). Finished rungs are cached in SQLite by (source sha256, type, llama.cpp version,
measurement settings), so a rerun only measures what is new; a cancelled or failed rung leaves
no file behind, the finished ones stay cached. The files the lab makes are recorded too: a
rung's file that is still there unchanged is used again, and a file the lab did not make is
never overwritten.
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

from quantdesk.engine.errors import QuantizeCancelled, QuantizeError
from quantdesk.engine.file_hash import file_sha256, file_version
from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.lab.speed import measure_speed
from quantdesk.engine.params import default_threads
from quantdesk.engine.quantize.options import IMATRIX_HINT_TYPES, QuantizeOptions, target_name
from quantdesk.engine.quantize.quality import SAMPLE_FILE_NAME, read_text_file, sample_text
from quantdesk.engine.quantize.quality_run import run_quality_check
from quantdesk.engine.quantize.quantizer import inspect_source, quantize
from quantdesk.engine.sqlite_files import open_database

DEFAULT_TYPES = ("Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rungs (
    source_sha256 TEXT NOT NULL,
    qtype TEXT NOT NULL,
    llama_version TEXT NOT NULL,
    settings TEXT NOT NULL,
    rung TEXT NOT NULL,
    PRIMARY KEY (source_sha256, qtype, llama_version, settings)
);
CREATE TABLE IF NOT EXISTS source_hashes (
    path TEXT NOT NULL, stamp TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (path, stamp)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, stamp TEXT NOT NULL, source_sha256 TEXT NOT NULL, qtype TEXT NOT NULL
);
"""



def _to_v2(db: sqlite3.Connection) -> None:
    """Version 1 keyed source hashes by size and mtime (a copy over the file kept both): they
    are hashed again, by inode and ctime, into ``source_hashes``; finished rungs stay."""
    db.execute("DROP TABLE IF EXISTS hashes")


MIGRATIONS = {2: _to_v2}

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
    # type -> this source's file of that type, made by the lab (now or before) and still there
    files: dict[str, Path] = field(default_factory=dict)
    measured: list[str] = field(default_factory=list)  # types measured now (not from cache)
    environment: dict = field(default_factory=dict)
    settings: LadderSettings = field(default_factory=lambda: LadderSettings())
    text_name: str = SAMPLE_FILE_NAME  # what perplexity and agreement were measured on


class LadderCancelled(QuantizeCancelled):
    """The ladder was cancelled; ``partial`` holds the rungs finished before (measured now or
    cached), so that they can still be shown."""

    def __init__(self, message: str, partial: LadderResult) -> None:
        super().__init__(message)
        self.partial = partial


class LadderCache:
    """Finished rungs and source hashes, in SQLite."""

    def __init__(self, path: Path | str) -> None:
        self._db, self.recovered_from = open_database(
            path, _SCHEMA, SCHEMA_VERSION, what="The quantization lab's results",
            migrations=MIGRATIONS,
        )  # fmt: skip

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

    def sha256(self, path: Path, cancel: threading.Event | None = None) -> str:
        """The file's sha256, hashed once per (path, stamp); a set ``cancel`` stops hashing
        (QuantizeCancelled)."""
        key = file_version(path)
        row = self._db.execute(
            "SELECT sha256 FROM source_hashes WHERE path=? AND stamp=?", key
        ).fetchone()
        if row:
            return row[0]
        digest = file_sha256(path, cancel)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO source_hashes VALUES (?, ?, ?)",
                             (*key, digest))  # fmt: skip
        return digest

    def record_file(self, path: Path, sha: str, qtype: str) -> None:
        """Remember that the lab made ``path``: ``sha``'s source quantized to ``qtype``."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                             (*file_version(path), sha, qtype))  # fmt: skip

    def made_file(self, path: Path) -> tuple[str, str] | None:
        """(source sha256, type) of the file at ``path`` if the lab made it and it is unchanged
        since; None for a missing, changed or foreign file."""
        try:
            key = file_version(path)
        except OSError:
            return None
        row = self._db.execute(
            "SELECT source_sha256, qtype FROM files WHERE path=? AND stamp=?", key
        ).fetchone()
        return (row[0], row[1]) if row else None

    def files_in(self, sha: str, folder: Path) -> dict[str, Path]:
        """type -> each file in ``folder`` the lab made from ``sha``'s source and that is
        still there unchanged."""
        rows = self._db.execute(
            "SELECT path, qtype FROM files WHERE source_sha256=?", (sha,)
        ).fetchall()
        found = {q: Path(path) for path, q in rows if Path(path).parent == folder.resolve()}
        return {q: path for q, path in found.items() if self.made_file(path) == (sha, q)}

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def rung_file(work_dir: Path, source: Path, qtype: str) -> Path:
    """Where the ladder writes ``source`` quantized to ``qtype``."""
    return work_dir / f"{source.stem}-{qtype}.gguf"


def environment(threads: int) -> dict:
    """CPU, threads (the count used, never 0) and versions the figures were measured with."""
    import llama_cpp

    from quantdesk.engine.hardware.cpu import cpu_name

    return {
        "cpu": cpu_name(),
        "threads": threads,
        "llama_cpp_python": llama_cpp.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def ladder_types(source_type: str, types: Sequence[str]) -> list[str]:
    """The rungs to measure: the source's own type first, then each of ``types`` once, in the
    order asked (names as llama-quantize takes them, any case). QuantizeError for an unknown
    type, one that needs an importance matrix, or nothing to compare with the source."""
    wanted = [source_type]
    for name in types:
        if not name.strip():
            continue
        try:
            qtype = target_name(name)
        except QuantizeError as exc:
            raise QuantizeError(f"{exc.message} {exc.details}.") from exc
        if qtype in IMATRIX_HINT_TYPES:
            raise QuantizeError(
                f"{qtype} needs an importance matrix, which the lab does not use: llama.cpp "
                "refuses to make it without one. Leave it out of the types."
            )
        if qtype not in wanted:
            wanted.append(qtype)
    if len(wanted) == 1:
        raise QuantizeError(
            f"Choose at least one quant type to compare with the source ({source_type})."
        )
    return wanted


def quantize_rung(
    source: Path,
    sha: str,
    qtype: str,
    work_dir: Path,
    cache: LadderCache,
    *,
    threads: int = 0,
    on_progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Path, bool]:
    """``source`` (whose sha256 is ``sha``) quantized to ``qtype`` in ``work_dir``: the file
    the lab made before if it is still there unchanged, else made now. Returns (path, made
    now). A file in the way that the lab did not make is left alone: QuantizeError."""
    path = rung_file(work_dir, source, qtype)
    if cache.made_file(path) == (sha, qtype):
        return path, False
    if path.exists():
        raise QuantizeError(
            f"'{path}' already exists, and it is not {qtype} made by the lab from this "
            f"'{source.name}': it was left as it is. Move or delete it, or choose another "
            "folder for the lab's files."
        )
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuantizeError(f"The folder '{work_dir}' for the lab's files cannot be made: "
                            f"{exc.strerror or exc}.") from exc  # fmt: skip
    quantize(source, path, QuantizeOptions(qtype, allow_requantize=True, threads=threads),
             on_progress=None if on_progress is None else lambda p: on_progress(p.fraction),
             cancel=cancel)  # fmt: skip
    cache.record_file(path, sha, qtype)
    return path, True


def run_ladder(
    source: Path,
    types: Sequence[str],
    work_dir: Path,
    cache: LadderCache,
    *,
    text_file: Path | None = None,
    settings: LadderSettings | None = None,
    on_progress: Callable[[LadderProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> LadderResult:
    """Quantize ``source`` to each of ``types`` in ``work_dir`` and measure every rung (the
    source's too) on ``text_file`` (None: the bundled sample); cached rungs are not measured
    again. Raises LadderCancelled on cancel, with the rungs finished so far (they stay cached;
    the unfinished one leaves no file)."""
    import llama_cpp

    source = Path(source)
    info = inspect_source(source)
    if info.is_quantized:
        raise QuantizeError(
            f"'{source.name}' is already quantized ({info.file_type}): the ladder starts from "
            "an F16, BF16 or F32 model, so that every rung is measured against the original."
        )
    wanted = ladder_types(info.file_type, types)
    text = sample_text() if text_file is None else read_text_file(text_file)
    settings = settings or LadderSettings()
    settings = replace(settings, threads=settings.threads or default_threads(),
                       text_sha256=hashlib.sha256(text.encode()).hexdigest())  # fmt: skip
    key, version = settings.key(), llama_cpp.__version__
    sha = cache.sha256(source, cancel)
    text_name = SAMPLE_FILE_NAME if text_file is None else text_file.name
    result = LadderResult(source, sha, [], environment=environment(settings.threads),
                          settings=settings, text_name=text_name)  # fmt: skip
    try:
        for done, qtype in enumerate(wanted):
            if cancel is not None and cancel.is_set():
                raise QuantizeCancelled("The ladder was cancelled.")

            def report(stage: str, fraction: float = 0.0, q: str = qtype, d: int = done) -> None:
                if on_progress is not None:
                    on_progress(LadderProgress(q, stage, d, len(wanted), fraction))

            is_source = qtype == info.file_type
            lab_file = rung_file(work_dir, source, qtype)
            if not is_source and cache.made_file(lab_file) == (sha, qtype):
                result.files[qtype] = lab_file
            cached = cache.get(sha, qtype, version, key)
            if cached is not None:
                report("cached")
                result.rungs.append(cached)
                continue
            rung, path = _make_and_measure(source, sha, qtype, work_dir, cache, text, settings,
                                           report, cancel, is_source=is_source)  # fmt: skip
            cache.put(sha, version, key, rung)
            result.rungs.append(rung)
            result.measured.append(qtype)
            if not is_source:
                result.files[qtype] = path
    except QuantizeCancelled as exc:
        raise LadderCancelled(exc.message, result) from exc
    return result


def _make_and_measure(
    source: Path,
    sha: str,
    qtype: str,
    work_dir: Path,
    cache: LadderCache,
    text: str,
    settings: LadderSettings,
    report: Callable[..., None],
    cancel: threading.Event | None,
    *,
    is_source: bool,
) -> tuple[Rung, Path]:
    """One rung measured (its file made first, or the lab's earlier one used): (figures, the
    file measured). A file made here and not measured to the end is deleted."""
    path, made = source, False
    try:
        if not is_source:
            report("quantizing")
            path, made = quantize_rung(source, sha, qtype, work_dir, cache,
                                       threads=settings.threads,
                                       on_progress=lambda f: report("quantizing", f),
                                       cancel=cancel)  # fmt: skip
        report("speed")
        speed = measure_speed(path, text, threads=settings.threads, n_prompt=settings.n_prompt,
                              n_gen=settings.n_gen, min_tokens=settings.n_ctx,
                              cancel=cancel)  # fmt: skip
        report("quality")
        quality = run_quality_check(source, path, text=text, threads=settings.threads,
                                    n_ctx=settings.n_ctx, max_chunks=settings.max_chunks,
                                    on_progress=lambda d, t: report("quality", d / max(1, t)),
                                    cancel=cancel)  # fmt: skip
        header = summarize(read_header_from_file(path), path=path)
    except BaseException:
        if made:
            path.unlink(missing_ok=True)  # an unmeasured rung leaves no file
        raise
    rung = Rung(
        qtype=qtype, size_bytes=path.stat().st_size,
        bits_per_weight=header.bits_per_weight or 0.0, peak_ram_bytes=speed.peak_ram_bytes,
        prompt_tps=speed.prompt_tps, decode_tps=speed.decode_tps,
        perplexity=quality.ppl_result, kld_mean=0.0 if is_source else quality.kld_mean,
        kld_p99=0.0 if is_source else quality.kld_p99,
        top1_agreement=1.0 if is_source else quality.top1_agreement, is_source=is_source,
    )  # fmt: skip
    return rung, path


def open_cache(path: Path) -> LadderCache:
    """The lab's cache at ``path`` (sqlite3 errors become QuantizeError with a message)."""
    try:
        return LadderCache(path)
    except sqlite3.Error as exc:
        raise QuantizeError(f"The quantization lab's results file cannot be opened: {exc}") from exc
