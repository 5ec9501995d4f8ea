"""The quantization ladder on a tiny generated F16 model (real llama.cpp in child processes):
figures per rung, the cache (a rerun measures only what is new), cancel, the report and CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from quantdesk.engine.errors import QuantizeError
from quantdesk.engine.lab.ladder import (
    LadderCache,
    LadderCancelled,
    LadderSettings,
    Rung,
    ladder_types,
    run_ladder,
)
from quantdesk.engine.lab.report import markdown, pareto_front, to_json, verdict
from tests.support.tiny_models import write_tiny_model

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
    big_text = tmp_path / "big.txt"
    big_text.write_text("a different text, the same words again and again. " * 6000)
    assert big_text.stat().st_size > 256 * 1024
    other = run_ladder(source, ["Q8_0"], tmp_path / "out", cache, text_file=big_text,
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

    with pytest.raises(LadderCancelled) as cancelled:
        run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST,
                   on_progress=progress, cancel=cancel)  # fmt: skip
    assert [r.qtype for r in cancelled.value.partial.rungs] == ["F16", "Q8_0"]  # can be shown
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
    # equal figures never "drop"; a figure shown as 99.0 % counts as keeping 99 %
    same = [rung("F16", 1000, 1.0, True), rung("Q8_0", 530, 1.0), rung("Q4_0", 300, 1.0)]
    assert verdict(same) == "Q4_0 keeps 100.0 % top-1 agreement at 30 % of the size."
    near = [rung("F16", 1000, 1.0, True), rung("Q8_0", 530, 0.98996), rung("Q4_0", 300, 0.9)]
    assert verdict(near).startswith("Q8_0 keeps 99.0 % top-1 agreement")
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
    assert "Text: quality_sample.txt" in text and data["settings"]["max_chunks"] == 1
    assert data["measured_now"] == ["F16", "Q8_0"] and data["text"] == "quality_sample.txt"


def quantdesk_ladder(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantdesk", "ladder", *map(str, args)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_cli_refuses_bad_input_before_measuring(source: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 na\xefve ".encode("latin-1") * 400)
    for args, words in [
        ((tmp_path / "none",), "does not exist"),
        ((source, "--out", a_file), "is a file: --out needs a folder"),
        ((source, "--types", ","), "at least one quant type"),
        ((source, "--types", "Q9"), "Types: "),
        ((source, "--types", "IQ2_XXS"), "needs an importance matrix"),
        ((source, "--text", latin1, "--out", tmp_path / "o"), "is not UTF-8 text"),
        ((source, "--chunks", "-1"), "must be 0 or more"),
    ]:
        done = quantdesk_ladder(*args)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
    assert a_file.read_text() == "not a folder"


def test_ctrl_c_cancels_cleanly_at_any_step(source: Path, tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group; the children run in their own
    session, so only the command sees it and cancels them (before: 'it crashed (SIGINT)')."""
    out = tmp_path / "lab"
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "ladder", str(source), "--types", "Q8_0", "--out",
         str(out), "--chunks", "1", "--threads", "1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Q8_0: quantizing" in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "Cancelled" in rest and "crashed" not in rest
    assert not out.exists() or list(out.iterdir()) == []


def test_a_file_in_the_way_is_never_overwritten(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    out.mkdir()
    (out / "tiny-F16-Q8_0.gguf").write_text("my own file")
    cache = LadderCache(tmp_path / "lab.sqlite3")
    with pytest.raises(QuantizeError, match="already exists.*left as it is"):
        run_ladder(source, ["Q8_0"], out, cache, settings=FAST)
    assert (out / "tiny-F16-Q8_0.gguf").read_text() == "my own file"


def test_the_lab_uses_its_own_files_again_and_says_which_are_gone(source, tmp_path) -> None:
    cache = LadderCache(tmp_path / "lab.sqlite3")
    first = run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST)
    q8 = first.files["Q8_0"]
    made = q8.stat().st_mtime_ns
    first.files["Q4_0"].unlink()
    # other settings: every rung is measured again, but Q8_0's file is the one made before
    again = run_ladder(source, ["Q8_0"], tmp_path / "out", cache,
                       settings=replace(FAST, n_gen=4))  # fmt: skip
    assert again.measured == ["F16", "Q8_0"] and q8.stat().st_mtime_ns == made
    cached = run_ladder(source, ["Q8_0", "Q4_0"], tmp_path / "out", cache, settings=FAST)
    assert cached.measured == [] and cached.files == {"Q8_0": q8}  # Q4_0's file is gone


def test_a_changed_source_is_hashed_again(tmp_path: Path) -> None:
    cache = LadderCache(tmp_path / "lab.sqlite3")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"0123456789")
    before = os.stat(model)
    first = cache.sha256(model)
    time.sleep(0.05)  # file times may tick coarsely
    with model.open("r+b") as f:
        f.write(b"ab")
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert cache.sha256(model) != first
    assert cache.sha256(model) == hashlib.sha256(b"ab23456789").hexdigest()


def test_types_are_checked_and_listed_once() -> None:
    assert ladder_types("F16", ["q8_0", "Q4_K", "Q8_0", " ", "f16"]) == ["F16", "Q8_0", "Q4_K_M"]
    for types, words in [([], "at least one"), (["F16"], "at least one"),
                         (["Q9"], "not a quantization type.*Q4_K_M"),
                         (["IQ1_S"], "importance matrix")]:  # fmt: skip
        with pytest.raises(QuantizeError, match=words):
            ladder_types("F16", types)


def test_markdown_names_every_rung(source: Path, tmp_path: Path) -> None:
    result = run_ladder(source, ["Q8_0"], tmp_path / "out", LadderCache(tmp_path / "c.sqlite3"),
                        settings=FAST)  # fmt: skip
    text = markdown(result, {"Quality vs size": "quality.png"})
    assert "| F16 (source) |" in text and "| Q8_0 |" in text
    assert "![Quality vs size](quality.png)" in text
    assert to_json(result)["pareto_front"]
