"""The Quantization lab: runs the ladder off the GUI thread (every llama.cpp step in a child
process), shows its figures, exports the report with the charts, keeps one result."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from quantdesk.config.paths import AppPaths
from quantdesk.config.settings import Settings
from quantdesk.engine.errors import QuantizeCancelled
from quantdesk.engine.estimate.fit import fit_words
from quantdesk.engine.estimate.load_plan import machine_budget
from quantdesk.engine.estimate.recommend import fit_files
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.lab.ladder import (
    LadderCache,
    LadderCancelled,
    LadderResult,
    LadderSettings,
    open_cache,
    quantize_rung,
    run_ladder,
)
from quantdesk.engine.lab.report import (
    DECODE,
    pareto_front,
    perplexity_text,
    verdict,
    write_report,
)
from quantdesk.engine.library.store import add_model_file
from quantdesk.engine.quantize.options import QuantizeOptions
from quantdesk.engine.quantize.quantizer import predict
from quantdesk.engine.quantize.report import result_fit
from quantdesk.gui.library_controller import LibraryController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.jobs import run_job
from quantdesk.ui.lab.ladder_chart import ChartPoint
from quantdesk.ui.lab.page import LabPage

#: Chart file names written beside the report.
CHARTS = {"Quality kept vs size": "quality-vs-size.png", "Speed vs size": "speed-vs-size.png"}


class LabController(QObject):
    """One ladder at a time; results stay on the page until the next run."""

    def __init__(
        self,
        page: LabPage,
        settings: Settings,
        paths: AppPaths,
        library: LibraryController,
        notifier: Notifier,
    ) -> None:
        super().__init__()
        self.page, self.settings, self.paths = page, settings, paths
        self.library, self.notifier = library, notifier
        self.result: LadderResult | None = None
        self.fits: dict[str, str] = {}  # type -> its fit on this machine, in words
        self._cancel: threading.Event | None = None
        page.runRequested.connect(self.run)
        page.cancelRequested.connect(self.cancel)
        page.exportRequested.connect(self.export_dialog)
        page.keepRequested.connect(self.keep)
        page.textRequested.connect(self.text_dialog)
        page.sampleRequested.connect(lambda: self.use_text(None))
        page.deleteFilesRequested.connect(self.delete_files)
        page.sourceChanged.connect(self._source_chosen)
        self.text_file: Path | None = None  # None: the bundled sample
        library.listChanged.connect(self._sources_changed)
        self._sources_changed()

    def _sources_changed(self) -> None:
        entries = [e for e in self.library.listed()
                   if e.remote is None and e.is_unquantized and e.exists]  # fmt: skip
        self.page.set_sources([(f"{Path(e.path).name} · {e.name} ({e.file_type})", str(e.path))
                               for e in entries])  # fmt: skip

    def _source_chosen(self, path: str) -> None:
        """Another source: the figures shown are not its own, so they go."""
        if self.result is not None and str(self.result.source) != path:
            self.result = None
            self.page.clear_results("Run to see this model's figures (types measured before "
                                    "come from the lab's results in seconds).")  # fmt: skip
            self._idle()

    def use_text(self, path: Path | None) -> None:
        """Measure perplexity and agreement on ``path`` (None: the bundled sample)."""
        self.text_file = path
        self.page.set_text_name(path.name if path else None)

    def text_dialog(self) -> None:
        """Choose a text file (Cancel keeps the text chosen before)."""
        name, _ = QFileDialog.getOpenFileName(
            self.notifier.dialog_parent, "Text to measure quality on", str(Path.home()),
            "Text (*.txt *.md);;All files (*)",
        )  # fmt: skip
        if name:
            self.use_text(Path(name))

    def work_dir(self, source: Path) -> Path:
        """Where a source's rungs are written: a folder of its own in the app's models folder
        (two models of the same name in different folders do not share one)."""
        where = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
        return self.paths.models_dir / "lab" / f"{source.stem}-{where}"

    def run(self, source: str, types: list[str]) -> None:
        """Run the ladder for ``source`` (progress and results arrive on the GUI thread)."""
        self._cancel = threading.Event()
        cancel, path = self._cancel, Path(source)
        settings = LadderSettings(threads=self.settings.load_settings().n_threads)
        load = self.settings.load_settings()
        self.page.set_running(True)
        self.page.set_progress(0, len(types) + 1, "Starting…")

        text_file = self.text_file

        def work(report) -> tuple[LadderResult, dict[str, str]]:  # noqa: ANN001
            cache = self._cache()
            try:
                result = run_ladder(
                    path, types, self.work_dir(path), cache, text_file=text_file,
                    settings=settings, on_progress=report, cancel=cancel,
                )  # fmt: skip
            finally:
                cache.close()
            return result, self._fit_labels(result, load)

        run_job(work, on_done=self._done, on_error=self._failed, on_progress=self._progress)

    @staticmethod
    def _fit_labels(result: LadderResult, load) -> dict[str, str]:  # noqa: ANN001 - LoadSettings
        """Each rung's fit on this machine at the current load settings ("Fits in RAM"...):
        the source from its header, each type from its predicted header (so rungs whose file
        was deleted still get one). Runs on the pool thread (dry runs in child processes)."""
        budget = machine_budget()
        source = result.rungs[0]
        labels = {source.qtype: fit_files([(result.source, (result.source,))], load,
                                          budget)[str(result.source)][1]}  # fmt: skip
        for rung in result.rungs[1:]:
            plan = predict(result.source, QuantizeOptions(rung.qtype, allow_requantize=True))
            labels[rung.qtype] = fit_words(result_fit(plan, budget, load.n_ctx))
        return labels

    def _cache(self) -> LadderCache:
        return open_cache(self.paths.data_dir / "ladder.sqlite3")

    def _files(self, result: LadderResult) -> dict[str, Path]:
        """Every file the lab made from the result's source that is there now (of any type,
        from this run or earlier ones)."""
        cache = self._cache()
        try:
            return cache.files_in(result.source_sha256, self.work_dir(result.source))
        finally:
            cache.close()

    def _deletable(self, result: LadderResult, keep: Path | None = None) -> list[Path]:
        """The lab's files of ``result``'s source but ``keep`` and those in the library (a
        kept file is the library's, though it lies in the lab's folder)."""
        spared = {Path(e.path).resolve() for e in self.library.entries()}
        if keep is not None:
            spared.add(keep.resolve())
        return [p for p in self._files(result).values() if p not in spared]

    def _idle(self) -> None:
        """The page's buttons for a lab at rest."""
        result = self.result
        self.page.set_running(False, files=result is not None and bool(self._deletable(result)))

    def _progress(self, step) -> None:  # noqa: ANN001 - LadderProgress
        if self._cancel is not None and self._cancel.is_set():
            return  # "Cancelling…" stays until the run ends (progress may still be queued)
        self.page.set_progress(step.done, step.total, f"{step.qtype}: {step.stage}…",
                               step.fraction)  # fmt: skip

    def cancel(self) -> None:
        """Stop the running ladder (the finished rungs stay measured)."""
        if self._cancel is not None:
            self._cancel.set()
            self.page.status.setText("Cancelling…")

    def _failed(
        self, exc: BaseException, cancelled: str = "Cancelled: the types measured so far are kept."
    ) -> None:
        if isinstance(exc, LadderCancelled) and len(exc.partial.rungs) > 1:
            self.result, self.fits = exc.partial, {}  # what was measured before the cancel
            self.show(self.result)  # and the buttons for a lab at rest
        else:
            self._idle()
        if isinstance(exc, QuantizeCancelled):
            self.page.status.setText(cancelled)
            return
        message = getattr(exc, "message", str(exc))
        self.page.status.setText(message)
        self.notifier.error(message, getattr(exc, "details", ""))

    def _done(self, outcome: tuple[LadderResult, dict[str, str]]) -> None:
        self.result, self.fits = outcome
        rungs = self.result.rungs
        earlier = [r.qtype for r in rungs if r.qtype not in self.result.measured]
        if not earlier:
            done = f"Measured now: all {len(rungs)} types."
        elif not self.result.measured:
            done = "Nothing new to measure: every figure is from earlier runs."
        else:
            done = (f"Measured now: {', '.join(self.result.measured)}; from earlier runs: "
                    f"{', '.join(earlier)}.")  # fmt: skip
        self.page.set_progress(len(rungs), len(rungs), done)
        self.show(self.result)
        self.notifier.info(
            f"The lab finished {self.result.source.name}: {verdict(rungs)}",
            [("Export report…", self.export_dialog)],
        )

    def show(self, result: LadderResult) -> None:
        """Fill the table, charts and verdict."""
        front = {r.qtype for r in pareto_front(result.rungs)}
        fastest = {r.qtype for r in pareto_front(result.rungs, DECODE)}
        rows = [[f"{r.qtype}{' (source)' if r.is_source else ''}", human_bytes(r.size_bytes),
                 f"{r.bits_per_weight:.2f}", human_bytes(r.peak_ram_bytes), f"{r.prompt_tps:.1f}",
                 f"{r.decode_tps:.1f}", perplexity_text(r.perplexity), f"{r.kld_mean:.4f}",
                 f"{r.top1_agreement * 100:.1f} %",
                 self.fits.get(r.qtype, "")] for r in result.rungs]  # fmt: skip
        quality = [ChartPoint(r.qtype, r.size_bytes, r.top1_agreement * 100, r.qtype in front)
                   for r in result.rungs]  # fmt: skip
        speed = [ChartPoint(r.qtype, r.size_bytes, r.decode_tps, r.qtype in fastest)
                 for r in result.rungs]  # fmt: skip
        keepable = {r.qtype for r in result.rungs if not r.is_source}  # gone: made again
        self.page.set_results(rows, [r.qtype for r in result.rungs], keepable, quality, speed,
                              f"{result.source.name}: {verdict(result.rungs)}")  # fmt: skip
        self._idle()

    def export(self, folder: Path) -> Path:
        """Write ladder.md, ladder.json and the two charts as PNG into ``folder``."""
        assert self.result is not None
        folder.mkdir(parents=True, exist_ok=True)
        for chart, name in ((self.page.quality_chart, CHARTS["Quality kept vs size"]),
                            (self.page.speed_chart, CHARTS["Speed vs size"])):  # fmt: skip
            chart.grab().save(str(folder / name))
        return write_report(self.result, folder, CHARTS)

    def export_dialog(self) -> None:
        """Ask for a folder and export the report into a folder of its own there (named after
        the model: another model's report in the same place is not overwritten)."""
        folder = QFileDialog.getExistingDirectory(
            self.notifier.dialog_parent, "Export the lab's report"
        )
        if not folder or self.result is None:
            return
        target = Path(folder) / f"{self.result.source.stem}-ladder"
        try:
            report = self.export(target)
        except OSError as exc:
            self.notifier.error(f"The report cannot be written to {target}: "
                                       f"{exc.strerror or exc}.")  # fmt: skip
            return
        self.notifier.info(f"Report written to {report} (with ladder.json and charts).")

    def keep(self, qtype: str) -> None:
        """Add ``qtype``'s file to the library; delete the lab's other quantized files. A type
        whose file is gone (measured in an earlier run, or deleted) is quantized again first."""
        if self.result is None:
            return
        result = self.result
        path = self._files(result).get(qtype)
        if path is not None:
            self._kept(qtype, path)
            return
        self._cancel = cancel = threading.Event()
        self.page.set_running(True)
        status = f"{qtype}: quantizing again to keep it…"
        self.page.set_progress(0, 1, status)
        threads = self.settings.load_settings().n_threads

        def work(report) -> Path:  # noqa: ANN001
            cache = self._cache()
            try:
                made, _new = quantize_rung(result.source, result.source_sha256, qtype,
                                           self.work_dir(result.source), cache, threads=threads,
                                           on_progress=report, cancel=cancel)  # fmt: skip
            finally:
                cache.close()
            return made

        run_job(work, on_done=lambda made: self._kept(qtype, made),
                on_error=lambda exc: self._failed(exc, "Cancelled: nothing was added to the "
                                                  "library, and no file was left."),
                on_progress=lambda f: self.page.set_progress(0, 1, status, f))  # fmt: skip

    def _kept(self, qtype: str, path: Path) -> None:
        assert self.result is not None
        self.result.files[qtype] = path
        add_model_file(self.library.db_path, path, source="quantized", owned=True)
        self._delete(keep=path)
        self.library.refresh()
        self.show(self.result)
        self.notifier.info(f"{path.name} is in the library; the other lab files were "
                                  "deleted (their figures stay in the lab).")  # fmt: skip

    def delete_files(self) -> None:
        """Delete the lab's quantized files of the shown source (a kept one is the library's
        now and lies in the same folder: it stays)."""
        if self.result is None:
            return
        freed = self._delete(keep=None)
        self.show(self.result)
        self.notifier.info(f"Deleted the lab's files: {human_bytes(freed)} freed. "
                                  "Their figures stay in the lab.")  # fmt: skip

    def _delete(self, keep: Path | None) -> int:
        """Delete the lab's files of the shown result's source but ``keep`` and any in the
        library (kept earlier); returns the bytes freed."""
        assert self.result is not None
        freed = 0
        for path in self._deletable(self.result, keep):
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.notifier.error(f"'{path}' could not be deleted: "
                                           f"{exc.strerror or exc}.")  # fmt: skip
                continue
            freed += size
        return freed
