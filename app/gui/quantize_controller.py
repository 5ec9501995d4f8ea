"""Runs the Quantize dialog: prediction, quantization, quality check, the result into the library.

All engine work runs off the GUI thread (``run_job``); llama.cpp itself runs in child
processes (see ``engine.quantize``), so a crash or a cancel never touches the app.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from quantdesk.config.paths import AppPaths
from quantdesk.engine.errors import QuantDeskError, QuantizeCancelled
from quantdesk.engine.estimate.load_plan import Budget, machine_budget
from quantdesk.engine.library.store import LibraryEntry, add_model_file
from quantdesk.engine.quantize.convert import converted_path, converter_missing_reason, is_hf_folder
from quantdesk.engine.quantize.job_parts import PartJournal
from quantdesk.engine.quantize.options import smaller_target
from quantdesk.engine.quantize.quality import QualityReport
from quantdesk.engine.quantize.quantizer import (
    QuantizePrediction,
    QuantizeProgress,
    QuantizeResult,
    SourceInfo,
    default_output,
    inspect_source,
    predict,
    quantize,
)
from quantdesk.engine.quantize.report import plan_lines, result_line, source_line
from quantdesk.engine.wording import eta_text
from quantdesk.gui.library_controller import LibraryController
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import CHAT_PAGE, Notifier
from quantdesk.ui.jobs import run_job
from quantdesk.ui.quantize_dialog import DEFAULT_TARGET, QuantizeDialog


@dataclass(frozen=True)
class QuantizeOutcome:
    """What a finished run produced (the quality check may have failed on its own)."""

    result: QuantizeResult
    entry: LibraryEntry
    quality: QualityReport | None
    quality_error: str = ""


class QuantizeController(QObject):
    """Opens Quantize dialogs for library entries, dropped F16 files and HF folders."""

    modelQuantized = Signal(object)  # LibraryEntry, on the GUI thread
    predictionShown = Signal(str)  # the text shown (or the error)
    runFailed = Signal(str)
    imatrixComputed = Signal(str)  # path of the new importance matrix

    def __init__(
        self,
        library: LibraryController,
        paths: AppPaths,
        notifier: Notifier,
        models: ModelController,
    ) -> None:
        super().__init__()
        self.library, self.paths, self.notifier, self.models = library, paths, notifier, models
        self.dialog: QuantizeDialog | None = None
        self._cancel, self._skip_quality = threading.Event(), threading.Event()
        self._generation = 0
        self._info: SourceInfo | None = None
        self._budget: Budget | None = None
        self._plan: QuantizePrediction | None = None

    # -- opening ------------------------------------------------------------------------------

    def open(self, source: Path) -> QuantizeDialog:
        """Show the dialog for a GGUF file or a Hugging Face model folder."""
        if self.dialog is not None:
            self.dialog.close()
        source = Path(source)
        is_folder = source.is_dir()
        target = (
            converted_path(source).with_name(f"{source.name}-{DEFAULT_TARGET}.gguf")
            if is_folder
            else default_output(source, DEFAULT_TARGET)
        )
        dialog = QuantizeDialog(source, target, self.notifier.dialog_parent)
        self.dialog, self._info, self._plan = dialog, None, None
        dialog.predictRequested.connect(self._predict)
        dialog.startRequested.connect(self._start)
        dialog.imatrixRequested.connect(self._compute_imatrix)
        dialog.cancelRequested.connect(self._request_cancel)
        dialog.skipQualityRequested.connect(lambda: self._skip_quality.set())  # the run's own
        dialog.loadRequested.connect(self._load)
        dialog.show()
        if is_folder:
            self._show_folder(source)
        else:
            run_job(
                lambda: self._facts(source), on_done=self._got_facts, on_error=self._facts_failed
            )
        return dialog

    def _facts(self, source: Path) -> tuple[SourceInfo, Budget]:
        return inspect_source(source), self._budget or machine_budget()

    def _got_facts(self, facts: tuple[SourceInfo, Budget]) -> None:
        self._info, self._budget = facts
        if self.dialog is None:
            return
        warning = ""
        if self._info.is_quantized:
            warning = (
                f"This model is already quantized ({self._info.file_type}). Quantizing again "
                "stacks a second rounding error on the first, so the result is worse than the "
                "same type made from the F16/BF16 original: start from that when you have it. "
                "Requantizing is allowed for this model (Advanced options)."
            )
        self.dialog.set_source(source_line(self._info), warning)
        if self._info.is_quantized:
            self.dialog.requantize.setChecked(True)
            smaller = smaller_target(self._info.file_type)
            if smaller and self.dialog.target() == self._info.file_type:
                self.dialog.choose_target(smaller)  # the same type again would gain nothing
        self._predict()

    def _facts_failed(self, exc: BaseException) -> None:
        if self.dialog is not None:
            self.dialog.set_source(f"<b>{self.dialog.source.name}</b>")
            self.dialog.set_prediction([], _message(exc))

    def _show_folder(self, folder: Path) -> None:
        assert self.dialog is not None
        text = (
            f"<b>{folder.name}</b>: Hugging Face model folder. It is converted to an F16 GGUF "
            f"first ({converted_path(folder).name}, kept beside it), then quantized."
        )
        self.dialog.set_source(text)
        if not is_hf_folder(folder):
            self.dialog.set_prediction([], "This folder is not a Hugging Face model (no "
                                       "config.json with weight files).")  # fmt: skip
            return
        run_job(converter_missing_reason, on_done=self._converter_checked,
                on_error=self._facts_failed)  # fmt: skip

    def _converter_checked(self, missing: str) -> None:
        if self.dialog is not None:
            lines = ["The size is predicted after the F16 conversion."]
            self.dialog.set_prediction(lines, missing)

    def _request_cancel(self) -> None:
        self._cancel.set()
        self._skip_quality.set()  # during the quality check: the quantized file is kept
        if self.dialog is not None:
            self.dialog.status_label.setText("Cancelling…")

    # -- predicting ---------------------------------------------------------------------------

    def _predict(self) -> None:
        dialog, info = self.dialog, self._info
        if dialog is None or info is None:
            return
        self._generation += 1
        generation = self._generation
        options, output, budget = dialog.options(), dialog.output_path(), self._budget
        if info.is_quantized and options.target == info.file_type:
            dialog.set_prediction([], (
                f"'{info.path.name}' is already {info.file_type}: quantizing it to the same "
                "type only adds rounding error. Choose a smaller type."), can_start=False)
            self.predictionShown.emit(f"already {info.file_type}")
            return

        def work() -> tuple[QuantizePrediction, list[str]]:
            plan = predict(info.path, options)
            return plan, plan_lines(info, plan, budget, output)

        def done(outcome: tuple[QuantizePrediction, list[str]]) -> None:
            if generation == self._generation and self.dialog is dialog:
                self._plan = outcome[0]
                dialog.set_prediction(outcome[1], can_start=not outcome[0].requires_imatrix)
                self.predictionShown.emit("\n".join(outcome[1]))

        def failed(exc: BaseException) -> None:
            if generation == self._generation and self.dialog is dialog:
                dialog.set_prediction([], _message(exc))
                self.predictionShown.emit(_message(exc))

        run_job(work, on_done=done, on_error=failed)

    # -- importance matrix -------------------------------------------------------------------

    def _compute_imatrix(self, text_file: Path | None) -> None:
        dialog, info = self.dialog, self._info
        if dialog is None or info is None:
            return
        from quantdesk.engine.quantize.imatrix_compute import (
            compute_imatrix_in_child,
            default_imatrix_path,
        )

        self._cancel = threading.Event()
        cancel, output = self._cancel, default_imatrix_path(info.path)
        threads = dialog.threads.value()

        def work(report: Any) -> Any:
            report((None, "Computing the importance matrix…"))
            return compute_imatrix_in_child(
                info.path, output, text_file=text_file, threads=threads, cancel=cancel,
                on_progress=lambda d, t: report((d / max(t, 1), f"Importance matrix: {d} of {t}")),
            )  # fmt: skip

        def done(summary: Any) -> None:
            if self.dialog is dialog:
                dialog.set_result(
                    f"Importance matrix: {summary.entries} weights from {summary.chunks} chunks "
                    f"({summary.tokens:,} tokens) in {summary.seconds:.1f} s, saved as "
                    f"{summary.output.name}."
                )
                dialog.set_imatrix(summary.output)
            self.imatrixComputed.emit(str(summary.output))

        dialog.set_running(True, "Starting…")
        run_job(work, on_done=done, on_error=self._failed, on_progress=self._progress)

    # -- running ------------------------------------------------------------------------------

    def _start(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        self._cancel, self._skip_quality = threading.Event(), threading.Event()
        cancel, db = self._cancel, self.paths.library_db
        source, options, output = dialog.source, dialog.options(), dialog.output_path()
        quality, plan = dialog.quality_wanted(), self._plan

        def work(report: Any) -> QuantizeOutcome:
            gguf = source
            if source.is_dir():
                from quantdesk.engine.quantize.convert import convert_hf_folder

                report((None, "Converting the Hugging Face folder to F16 GGUF…"))
                gguf = converted_path(source)
                if not gguf.exists():
                    convert_hf_folder(source, gguf, cancel=cancel)
            result = quantize(
                gguf, output, options, cancel=cancel, prediction=plan,
                on_progress=lambda p: report((p.fraction, _progress_text(p))),
                journal=PartJournal(self.paths.jobs_dir),
            )  # fmt: skip
            # QuantDesk wrote it: its own file, which Delete file… may remove
            entry = add_model_file(db, result.output, source="quantized", owned=True)
            return QuantizeOutcome(result, entry, *self._quality(gguf, result, quality, report))

        dialog.set_running(True, "Starting…")
        run_job(work, on_done=self._finished, on_error=self._failed, on_progress=self._progress)

    def _quality(
        self, source: Path, result: QuantizeResult, wanted: bool, report: Any
    ) -> tuple[QualityReport | None, str]:
        if not wanted:
            return None, ""
        from quantdesk.engine.quantize.quality_run import run_quality_check

        report((0.0, "Measuring quality: perplexity and KL divergence (Skip keeps the file)…",
                True))  # fmt: skip
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            left = (time.monotonic() - started) / done * (total - done) if done else None
            report((done / max(total, 1), f"Quality check: chunk {done} of {total}, about "
                    f"{eta_text(left)} left. The quantized file is ready; Skip keeps it.", True))

        try:
            quality = run_quality_check(source, result.output, cancel=self._skip_quality,
                                        on_progress=progress)  # fmt: skip
        except QuantizeCancelled:
            return None, "skipped"
        except QuantDeskError as exc:  # the quantized model is still good
            return None, exc.message
        return quality, ""

    def _progress(self, value: tuple) -> None:
        """(fraction, text) or (fraction, text, measuring quality) from the running job."""
        if self.dialog is not None:
            self.dialog.set_progress(*value)

    def _finished(self, outcome: QuantizeOutcome) -> None:
        self.library.refresh()
        self.modelQuantized.emit(outcome.entry)
        if self.dialog is None:
            return
        lines = [result_line(outcome.result), "Added to the library."]
        if outcome.quality is not None:
            lines.insert(1, "Quality: " + outcome.quality.summary())
        elif outcome.quality_error == "skipped":
            lines.insert(1, "Quality check skipped: the quantized file is kept.")
        elif outcome.quality_error:
            lines.insert(1, "Quality check failed: " + outcome.quality_error)
        self.dialog.set_result("<br>".join(lines), str(outcome.result.output))

    def _failed(self, exc: BaseException) -> None:
        self.runFailed.emit(_message(exc))
        if self.dialog is None:
            return
        if isinstance(exc, QuantizeCancelled):
            self.dialog.set_result("Cancelled; no file was written.", ok=False)
        else:
            self.dialog.set_result(_message(exc), ok=False)

    def _load(self, path: str) -> None:
        entry = self.library.find(Path(path))
        if entry is not None:
            self.notifier.show_page(CHAT_PAGE)
            self.models.load(entry)
        if self.dialog is not None:
            self.dialog.close()


def _progress_text(p: QuantizeProgress) -> str:
    return f"Tensor {p.index} of {p.count}: {p.name} → {p.target_type}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, QuantDeskError):
        return exc.message
    return f"Something unexpected went wrong: {type(exc).__name__}: {exc}"

