"""A corpus of malformed GGUF files through the whole GUI path (drop, check, load): the app stays
up and says what is wrong with each; when llama.cpp dies, it dies in the child process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.gui_app import drop
from tests.support.malformed_corpus import LOAD_FAILURES, REFUSED_AT_IMPORT, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_structural_damage_is_refused_before_llama_cpp(qtbot, app, corpus) -> None:
    window, controller = app
    drop(window, [corpus[name] for name in REFUSED_AT_IMPORT])
    qtbot.waitUntil(window.banner.isVisible, timeout=30_000)
    text = window.banner.label.text()
    assert f"{len(REFUSED_AT_IMPORT)} files are not usable models" in text
    details = window.banner.details()
    for name in REFUSED_AT_IMPORT:
        assert f"{name}.gguf:" in details, name  # one reason per file
    assert window.library.model.rowCount() == 0 and controller.models.loaded is None
    assert window.isVisible()


#: What the message must say for each file llama.cpp refuses (its own reason, in a sentence).
SAYS = {
    "wrong_tensor_shape": "tensor 'blk.0.ffn_gate.weight' has wrong shape",
    "missing_tensor": "tensor 'blk.2.attn_norm.weight' not found",
    "bad_rope_dims": "invalid n_rot",
    "unknown_architecture": "unknown model architecture: 'frobnicator'",
    "aborts_rope_scaling": "llama.cpp aborted (SIGABRT)",  # in the child, which died
    "aborts_expert_count": "llama.cpp aborted (SIGABRT)",
}


@pytest.mark.parametrize("name", sorted(LOAD_FAILURES))
def test_a_file_llama_cpp_refuses_or_dies_on_is_reported(qtbot, app, corpus, name) -> None:
    window, controller = app
    pid = os.getpid()
    failures: list[str] = []
    controller.models.modelLoadFailed.connect(failures.append)
    controller.imports.import_files([corpus[name]], mode="reference", load_first=True)
    qtbot.waitUntil(lambda: bool(failures or window.banner.label.text()), timeout=60_000)
    if window.library.model.rowCount():  # accepted by the header check: the load must fail
        qtbot.waitUntil(lambda: bool(failures), timeout=60_000)
    text = window.banner.label.text()
    assert f"'{name}.gguf'" in text and SAYS[name] in text, text
    assert controller.models.loaded is None and window.isVisible() and os.getpid() == pid
    # the app still works: a good model loads after the bad one
    from tests.support.tiny_models import write_tiny_model

    good = write_tiny_model(corpus[name].with_name(f"good-after-{name}.gguf"))
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.imports.import_files([good], mode="reference", load_first=True)


def test_a_model_too_big_for_free_memory_loads_with_safer_settings(qtbot, app, tmp_path) -> None:
    """The estimate says 8,192 tokens of context do not fit what this (smaller) machine has
    free: the model loads with a shorter context and the user is told what was changed."""
    from quantdesk.engine.estimate.load_plan import Budget
    from quantdesk.engine.estimate.memory import EstimateParams, estimate
    from quantdesk.engine.gguf.reader import read_header_from_file
    from quantdesk.engine.params import LoadSettings
    from tests.support.tiny_models import write_tiny_model

    window, controller = app
    model = write_tiny_model(tmp_path / "long.gguf", n_ctx_train=8192)
    header = [read_header_from_file(model)]
    need = estimate(header, EstimateParams.from_load_settings(
        LoadSettings(n_ctx=2048, n_gpu_layers=0)), offload=False).peak_ram  # fmt: skip
    controller.models.worker.budget_probe = lambda: Budget(need + (513 << 20), None, False)
    controller.settings.set("load.n_ctx", 8192)
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000) as loaded:
        controller.imports.import_files([model], mode="reference", load_first=True)
    model_info = loaded.args[0]
    assert 512 <= model_info.context_size < 8192 and model_info.adjustments
    text = window.banner.label.text()
    assert "safer settings" in text and "context 8,192 →" in text
    assert controller.settings.get("load.n_ctx") == 8192  # the user's setting is kept


def test_a_model_that_fits_nowhere_is_not_even_tried(qtbot, app, tmp_path) -> None:
    from quantdesk.engine.estimate.load_plan import Budget
    from tests.support.tiny_models import write_tiny_model

    window, controller = app
    controller.models.worker.budget_probe = lambda: Budget(64 << 20, None, False)  # 64 MiB free
    failures: list[str] = []
    controller.models.modelLoadFailed.connect(failures.append)
    controller.imports.import_files([write_tiny_model(tmp_path / "m.gguf")], mode="reference",
                            load_first=True)  # fmt: skip
    qtbot.waitUntil(lambda: bool(failures), timeout=60_000)
    text = window.banner.label.text()
    assert "needs more memory than this computer has free" in text and "GiB of RAM" in text
    assert controller.models.loaded is None and window.isVisible()
