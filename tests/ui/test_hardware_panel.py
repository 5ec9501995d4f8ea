"""The hardware panel: sections, muted "not detected" reasons, warnings, Refresh off-thread."""

from __future__ import annotations

import html
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from quantdesk.engine.hardware.machine import probe_hardware
from quantdesk.engine.hardware.report import HardwareReport
from quantdesk.ui.hardware_panel import HardwarePanel
from tests.support.fake_tools import ROCM_JSON, fake_tool, gpu_build, needs_posix


@pytest.fixture(scope="module")
def report() -> HardwareReport:
    return probe_hardware()


def _label(panel: QWidget, accessible_name: str) -> QLabel:
    (label,) = [lb for lb in panel.findChildren(QLabel) if lb.accessibleName() == accessible_name]
    return label


def _labels(panel: QWidget) -> list[QLabel]:
    return panel.findChildren(QLabel)


def _gb(report: HardwareReport) -> str:
    return f"{report.memory.ram_total / 1e9:.1f} GB"


def test_panel_shows_the_cpu_and_the_nvidia_reason_muted(qtbot, report: HardwareReport) -> None:
    panel = HardwarePanel()
    qtbot.addWidget(panel)
    panel.set_report(report)
    texts = [label.text() for label in _labels(panel)]
    assert any(report.cpu.name in t for t in texts)
    for note in report.notes_for("NVIDIA"):
        (reason,) = [lb for lb in _labels(panel) if lb.text() == html.escape(note.message)]
        assert reason.property("muted") is True
        assert reason.accessibleName() == f"NVIDIA: {note.message}"
        assert reason.parent() is panel.sections["GPUs"]
    verdict = _label(panel, "llama.cpp build: Verdict").text()
    assert verdict.replace("<br>", " ") == html.escape(report.build.verdict)
    assert _label(panel, "Memory: RAM").text().endswith("free of " + _gb(report))
    assert panel.refresh_button.accessibleName() == "Refresh hardware probe"
    assert all(lb.accessibleName() for lb in _labels(panel) if lb.wordWrap())


def test_refresh_probes_again_off_the_gui_thread(qtbot, report: HardwareReport) -> None:
    threads: list[object] = []

    def probe() -> HardwareReport:
        threads.append(threading.current_thread())
        return probe_hardware()

    panel = HardwarePanel(probe=probe)
    qtbot.addWidget(panel)
    panel.set_report(report)
    with qtbot.waitSignal(panel.reportChanged, timeout=30_000) as signal:
        qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    fresh = signal.args[0]
    assert threads and threads[0] is not threading.main_thread()
    assert fresh is not report and panel.report() is fresh and panel.probe_count == 1
    assert fresh.memory.ram_total == report.memory.ram_total
    qtbot.waitUntil(panel.refresh_button.isEnabled)
    assert "probed in" in panel.status.text()


def test_panel_probes_on_first_show(qtbot) -> None:
    panel = HardwarePanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.reportChanged, timeout=30_000):
        panel.show()
    assert panel.probe_count == 1 and panel.report() is not None


def test_a_failing_probe_is_reported_in_the_panel(qtbot) -> None:
    def probe() -> HardwareReport:
        raise RuntimeError("psutil exploded")

    panel = HardwarePanel(probe=probe)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.probeFailed, timeout=10_000) as signal:
        panel.refresh()
    assert signal.args == ["The hardware probe failed: psutil exploded"]
    assert panel.status.text() == signal.args[0]
    qtbot.waitUntil(panel.refresh_button.isEnabled)


@needs_posix
@pytest.mark.skipif(gpu_build(), reason="this llama.cpp build ships a GPU backend")
def test_panel_highlights_a_gpu_this_build_cannot_use(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path / "bin", "rocm-smi", f"echo '{ROCM_JSON}'", monkeypatch)
    panel = HardwarePanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.reportChanged, timeout=30_000):
        panel.refresh()
    (warning,) = [lb for lb in _labels(panel) if lb.property("warning") and "Radeon" in lb.text()]
    assert "cannot use it" in warning.text() and warning.styleSheet()
    gpu_rows = [lb.text() for lb in panel.sections["GPUs"].findChildren(QLabel)]
    assert any("Radeon RX 7900 XTX" in t and "cannot use it" in t for t in gpu_rows)
