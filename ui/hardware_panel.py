"""Hardware panel: CPU, memory, GPUs and what the llama.cpp build can use of them.

Shows a :class:`~quantdesk.engine.hardware.report.HardwareReport`. Reasons a probe found
nothing ("not detected: ...") are muted; warnings a person should act on (a GPU this build
cannot use, a CPU/build mismatch) are highlighted at the top. Refresh probes again on the
thread pool (``run_job``), never on the GUI thread.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.hardware.machine import probe_hardware
from quantdesk.engine.hardware.report import HardwareReport, ProbeNote
from quantdesk.engine.hardware.text import (
    GPU_SOURCES,
    cpu_line,
    device_line,
    format_text,
    gpu_line,
    gpu_title,
    ram_line,
    simd_label,
    simd_line,
    swap_line,
    usable_line,
)
from quantdesk.ui.jobs import run_job

_WARNING_STYLE = (
    "QLabel { background: #fff4e0; color: #5a3a00; border: 1px solid #e9b35f;"
    " border-radius: 6px; padding: 6px 8px; }"
)
SECTIONS = ("CPU", "Memory", "GPUs", "llama.cpp build")
# Which section shows the notes of which probe.
_NOTE_SECTION = {"CPU features": "CPU", "Memory": "Memory", "llama.cpp build": "llama.cpp build"}


class HardwarePanel(QWidget):
    """The hardware report in four sections, with Refresh and Copy report."""

    reportChanged = Signal(object)  # HardwareReport, after it is shown  # noqa: N815 - Qt style
    probeFailed = Signal(str)  # noqa: N815 - Qt style

    def __init__(
        self,
        probe: Callable[[], HardwareReport] = probe_hardware,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Hardware")
        self._probe = probe
        self._report: HardwareReport | None = None
        self._busy = False
        self.probe_count = 0  # probes started by this panel (Refresh, first show)

        title = QLabel("Hardware")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        title.setFont(font)
        self.status = QLabel("Not probed yet.")
        self.status.setAccessibleName("Hardware probe status")
        self.status.setWordWrap(True)
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setAccessibleName("Copy hardware report")
        self.copy_button.setToolTip("Copy the whole report as text, e.g. for a bug report")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self._copy)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Refresh hardware probe")
        self.refresh_button.setToolTip("Probe the CPU, memory, GPUs and llama.cpp build again")
        self.refresh_button.clicked.connect(self.refresh)
        header = QHBoxLayout()
        header.addWidget(title)
        header.addWidget(self.status, 1)
        header.addWidget(self.copy_button)
        header.addWidget(self.refresh_button)

        self._warnings = QVBoxLayout()
        body = QWidget()
        self._body = QVBoxLayout(body)
        self._body.addLayout(self._warnings)
        self.sections: dict[str, QGroupBox] = {}
        for name in SECTIONS:
            box = QGroupBox(name)
            box.setAccessibleName(f"{name} section")
            QFormLayout(box).setFieldGrowthPolicy(
                QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow
            )
            self.sections[name] = box
            self._body.addWidget(box)
        self._body.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(scroll, 1)

    def report(self) -> HardwareReport | None:
        """The report shown, if any."""
        return self._report

    def refresh(self) -> None:
        """Probe again off the GUI thread; the result replaces what is shown."""
        if self._busy:
            return
        self._busy = True
        self.probe_count += 1
        self.refresh_button.setEnabled(False)
        self.status.setText("Probing…")
        run_job(self._probe, on_done=self._probed, on_error=self._failed)

    def set_report(self, report: HardwareReport) -> None:
        """Show ``report``."""
        self._report = report
        self.status.setText(
            f"{report.os_name} {report.os_release} ({report.arch}), "
            f"probed in {report.probe_seconds:.2f} s"
        )
        self.copy_button.setEnabled(True)
        _clear(self._warnings)
        for text in report.warnings:
            label = _value(f"⚠ {text}", "Hardware warning")
            label.setStyleSheet(_WARNING_STYLE)
            label.setProperty("warning", True)
            self._warnings.addWidget(label)
        notes: dict[str, list[ProbeNote]] = {name: [] for name in SECTIONS}
        for note in report.notes:
            notes[_section_of(note)].append(note)
        self._fill("CPU", self._cpu_rows(report), notes["CPU"])
        mem = report.memory
        self._fill("Memory", [("RAM", ram_line(mem)), ("Swap", swap_line(mem))], notes["Memory"])
        self._fill("GPUs", self._gpu_rows(report), notes["GPUs"])
        self._fill("llama.cpp build", self._build_rows(report), notes["llama.cpp build"])
        self.reportChanged.emit(report)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        """Probe on first show when no report was given."""
        super().showEvent(event)
        if self._report is None and not self._busy:
            self.refresh()

    # -- building the sections --------------------------------------------------------

    @staticmethod
    def _cpu_rows(report: HardwareReport) -> list[tuple[str, str]]:
        cpu = report.cpu
        rows = [("Processor", cpu_line(cpu)), ("SIMD", simd_line(cpu))]
        if cpu.amx:
            rows.append(("AMX", f"{' '.join(simd_label(a) for a in cpu.amx)}: {cpu.amx_note}"))
        return rows

    @staticmethod
    def _gpu_rows(report: HardwareReport) -> list[tuple[str, str]]:
        if not report.gpus:
            return [("Detected", "none")]
        rows = []
        for gpu in report.gpus:
            text = f"{gpu_line(gpu)}\n{usable_line(gpu)}"
            if gpu.working_set_source:
                text += f"\nGPU memory limit: {gpu.working_set_source}"
            rows.append((gpu_title(gpu), text))
        return rows

    @staticmethod
    def _build_rows(report: HardwareReport) -> list[tuple[str, str]]:
        build = report.build
        return [
            ("Version", f"llama-cpp-python {build.version}" if build.version else "not loaded"),
            ("Backends", ", ".join(build.backends) or "none"),
            ("Devices", "\n".join(device_line(d) for d in build.devices) or "none"),
            ("GPU offload", "yes" if build.gpu_offload else "no"),
            ("Compiled for", " ".join(build.cpu_features) or "unknown"),
            ("Verdict", build.verdict),
        ]

    def _fill(self, section: str, rows: list[tuple[str, str]], notes: list[ProbeNote]) -> None:
        form = self.sections[section].layout()
        assert isinstance(form, QFormLayout)
        while form.rowCount():
            form.removeRow(0)
        # One label column width for all sections, so their values line up.
        width = self.fontMetrics().horizontalAdvance("Compiled for:") + 12
        for label, text in rows:
            name = QLabel(f"{label}:")
            name.setMinimumWidth(width)
            form.addRow(name, _value(text, f"{section}: {label}"))
        for note in notes:
            value = _value(note.message, f"{note.source}: {note.message}")
            name = QLabel(f"{note.source}:")
            name.setMinimumWidth(width)
            _mute(value)
            _mute(name)
            form.addRow(name, value)

    # -- job callbacks --------------------------------------------------------------

    def _probed(self, report: HardwareReport) -> None:
        self._busy = False
        self.refresh_button.setEnabled(True)
        self.set_report(report)

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self.refresh_button.setEnabled(True)
        message = f"The hardware probe failed: {exc}"
        self.status.setText(message)
        self.probeFailed.emit(message)

    def _copy(self) -> None:
        if self._report is not None:
            QGuiApplication.clipboard().setText(format_text(self._report))


def _section_of(note: ProbeNote) -> str:
    if note.source in GPU_SOURCES:
        return "GPUs"
    return _NOTE_SECTION.get(note.source, "CPU")


def _value(text: str, accessible_name: str) -> QLabel:
    """A selectable, wrapping value.

    Qt wraps after any hyphen, even in <nobr>, so a build command (CMAKE_ARGS=-DGGML_CUDA=ON)
    starts a line of its own rather than being cut as "CMAKE_ARGS=-" / "DGGML_CUDA=ON"; the
    text itself stays plain so that a copied command works.
    """
    escaped = html.escape(text).replace("\n", "<br>")
    label = QLabel(re.sub(r" (?=CMAKE_ARGS=)", "<br>", escaped))
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(accessible_name)
    return label


def _mute(label: QLabel) -> None:
    """Secondary text: the text color blended toward the background (follows light/dark)."""
    palette = label.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    back = palette.color(QPalette.ColorRole.Window)
    muted = QColor(
        round(text.red() * 0.55 + back.red() * 0.45),
        round(text.green() * 0.55 + back.green() * 0.45),
        round(text.blue() * 0.55 + back.blue() * 0.45),
    )
    palette.setColor(QPalette.ColorRole.WindowText, muted)
    label.setPalette(palette)
    label.setProperty("muted", True)


def _clear(layout: QVBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item is not None and (widget := item.widget()) is not None:
            widget.deleteLater()
