"""The quantization ladder on a tiny generated F16 model (real llama.cpp in child processes):
figures per rung, the cache (a rerun measures only what is new), cancel, the report and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from quantdesk.engine.errors import QuantizeCancelled, QuantizeError
from quantdesk.engine.ladder import LadderCache, LadderSettings, Rung, run_ladder
from quantdesk.engine.ladder_report import markdown, pareto_front, to_json, verdict
from tests.tiny_models import write_tiny_model

FAST = LadderSettings(threads=1, n_ctx=64, max_chunks=2, n_prompt=32, n_gen=8)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ladder")
    return write_tiny_model(folder / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")


def test_a_rerun_with_one_type_added_measures_only_that_type(source: Path, tmp_path: Path):
    cache = LadderCache(tmp_path / "lab.sqlite3")
    first = run_ladder(source, ["Q8_0"], tmp_path / "out", cache, settings=FAST)
    assert first.measured == ["F16", "Q8_0"]
    assert [r.qtype for r in first.rungs] == ["F16", "Q8_0"] and first.rungs[0].is_source
    src, q8 = first.rungs
    assert q8.size_bytes < src.size_bytes and q8.bits_per_weight < src.bits_per_weight
    assert src.kld_mean == 0.0 and src.top1_agreement == 1.0 and q8.kld_mean > 0.0
    assert q8.peak_ram_bytes > 0 and q8.prompt_tps > 0 and q8.decode_tps > 0
    seen: list = []
    again = run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST,
                       on_progress=seen.append)  # fmt: skip
    assert again.measured == ["Q4_0"]  # F16 and Q8_0 come from the cache
    assert again.rungs[:2] == first.rungs
    assert [s.stage for s in seen if s.qtype != "Q4_0"] == ["cached", "cached"]
    # within a rung, quantizing and the quality check report how far they are
    for stage in ("quantizing", "quality"):
        fractions = [s.fraction for s in seen if s.stage == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, stage
    q4 = again.rungs[2]
    assert q4.size_bytes < q8.size_bytes and q4.kld_mean > q8.kld_mean
    # another text is another cache entry, and the figures are measured on it (a text far
    # bigger than a command-line argument may be: the children read their job from stdin)
    big_text = "a different text, the same words again and again. " * 6000
    assert len(big_text) > 256 * 1024
    other = run_ladder(source, ["Q8_0"], tmp_path / "out", cache, text=big_text,
                       settings=FAST)  # fmt: skip
    assert other.measured == ["F16", "Q8_0"]
    for theirs, ours in zip(other.rungs, first.rungs, strict=True):
        assert theirs.perplexity != ours.perplexity, theirs.qtype


def test_cancel_keeps_the_finished_rungs_and_leaves_no_partial_file(source, tmp_path):
    cache = LadderCache(tmp_path / "lab.sqlite3")
    cancel = threading.Event()

    def progress(step) -> None:  # noqa: ANN001
        if step.qtype == "Q4_0" and step.stage == "speed":
            cancel.set()  # mid-rung: Q4_0 is quantized but not measured yet

    with pytest.raises(QuantizeCancelled):
        run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST,
                   on_progress=progress, cancel=cancel)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tiny-F16-Q8_0.gguf"]
    again = run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST)
    assert again.measured == ["Q4_0"]


def test_a_quantized_source_is_refused(source: Path, tmp_path: Path) -> None:
    q8 = write_tiny_model(tmp_path / "tiny-Q8_0.gguf", n_embd=256, n_ff=512, quant="Q8_0")
    with pytest.raises(QuantizeError, match="already quantized"):
        run_ladder(q8, ["Q4_0"], tmp_path / "out", LadderCache(tmp_path / "c.sqlite3"))


def rung(qtype: str, size: int, top1: float, source: bool = False) -> Rung:
    return Rung(qtype, size, size / 100, 1, 1.0, 1.0, 10.0, 1 - top1, 1 - top1, top1, source)


def test_verdict_and_pareto_front_in_words() -> None:
    rungs = [rung("F16", 1000, 1.0, True), rung("Q8_0", 530, 0.995), rung("Q5_K_M", 360, 0.992),
             rung("Q4_0", 300, 0.95), rung("Q3_K_M", 320, 0.90), rung("Q2_K", 210, 0.81)]
    assert verdict(rungs) == ("Q5_K_M keeps 99.2 % top-1 agreement at 36 % of the size; Q2_K "
                              "drops to 81.0 % at 21 % of the size.")  # fmt: skip
    # Q3_K_M is bigger than Q4_0 and agrees less: not on the front
    assert [r.qtype for r in pareto_front(rungs)] == ["Q2_K", "Q4_0", "Q5_K_M", "Q8_0", "F16"]
    assert verdict(rungs[:1]).startswith("Nothing to compare")
    only = verdict([rung("F16", 1000, 1.0, True), rung("Q2_K", 200, 0.8)])
    assert only == "No type keeps 99 % top-1 agreement; Q2_K comes closest with 80.0 %."


def test_report_and_cli(source: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quantdesk", "ladder", str(source), "--types", "Q8_0", "--json",
         "--out", str(tmp_path / "lab"), "--chunks", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "quantdesk-ladder" and [r["qtype"] for r in data["rungs"]] == [
        "F16", "Q8_0"]  # fmt: skip
    assert data["environment"]["threads"] == 1 and data["environment"]["llama_cpp_python"]
    written = json.loads((tmp_path / "lab" / "ladder.json").read_text())
    assert written["rungs"] == data["rungs"]
    text = (tmp_path / "lab" / "ladder.md").read_text()
    assert "| Q8_0 |" in text and data["verdict"] in text
    assert (tmp_path / "lab" / "tiny-F16-Q8_0.gguf").is_file()
    bad = subprocess.run([sys.executable, "-m", "quantdesk", "ladder", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "is not a file" in bad.stderr


def test_markdown_names_every_rung(source: Path, tmp_path: Path) -> None:
    result = run_ladder(source, ["Q8_0"], tmp_path / "out", LadderCache(tmp_path / "c.sqlite3"),
                        settings=FAST)  # fmt: skip
    text = markdown(result, {"Quality vs size": "quality.png"})
    assert "| F16 (source) |" in text and "| Q8_0 |" in text
    assert "![Quality vs size](quality.png)" in text
    assert to_json(result)["pareto_front"]
