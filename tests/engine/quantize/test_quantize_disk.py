"""Quantizing onto a disk that is, or becomes, full: on a real small tmpfs (root only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quantdesk.engine.errors import QuantizeError
from quantdesk.engine.quantize.options import QuantizeOptions
from quantdesk.engine.quantize.quantizer import QuantizeProgress, part_path, quantize
from tests.support.small_disk import fill_disk, mounted_tmpfs
from tests.support.tiny_models import write_tiny_model


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A real filesystem of the size given by the test's ``disk_size`` marker."""
    marker = request.node.get_closest_marker("disk_size")
    with mounted_tmpfs(tmp_path / "disk", marker.args[0] if marker else "2m") as mount:
        yield mount


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")


@pytest.mark.disk_size("2m")
def test_too_little_space_is_refused_before_starting(model: Path, small_disk: Path) -> None:
    out = small_disk / "tiny-Q8_0.gguf"
    with pytest.raises(QuantizeError, match="Not enough disk space"):
        quantize(model, out, QuantizeOptions("Q8_0"))
    assert list(small_disk.iterdir()) == []


@pytest.mark.disk_size("80m")
def test_disk_filling_up_midway_leaves_no_file(tmp_path: Path, small_disk: Path) -> None:
    """Something else fills the disk after the check: the short file is caught and removed."""
    model = write_tiny_model(
        tmp_path / "big-F16.gguf", n_embd=512, n_ff=1536, n_layer=6, quant="F16"
    )
    out = small_disk / "big-IQ4_XS.gguf"
    filler = small_disk / "other-program.bin"

    def fill(_p: QuantizeProgress) -> None:
        if not filler.exists():
            fill_disk(small_disk, filler.name)

    with pytest.raises(QuantizeError, match="disk filled up|incomplete"):
        quantize(model, out, QuantizeOptions("IQ4_XS", threads=1), on_progress=fill)
    assert not out.exists() and not part_path(out).exists()
    filler.unlink()
