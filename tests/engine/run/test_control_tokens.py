"""Control tokens never become text (issue 19, fault 4): Gemma 3's ``<start_of_image>`` and
``[multimodal]`` are *user-defined* tokens, which llama.cpp writes out as text even without
``special``; they leaked into replies and exports. Real vocabularies, real llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.run.generation import Detokenizer, end_of_generation


def _vocab(path: Path):
    import llama_cpp

    llama = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    return llama, llama._model.vocab


def _token(llama, text: str) -> int:
    [token] = llama.tokenize(text.encode(), add_bos=False, special=True)
    return token


@pytest.mark.starter
def test_gemma_markers_are_not_text_but_its_html_tokens_are(starter_model: Path) -> None:
    llama, vocab = _vocab(starter_model)
    text = Detokenizer(vocab)
    for marker in ("<start_of_image>", "<end_of_image>", "[multimodal]", "<unused7>",
                   "<start_of_turn>", "<mask>"):  # fmt: skip
        assert text.feed(_token(llama, marker)) == "", marker
    for kept in ("<table>", "<strong>", "\n\n", "    "):  # user-defined, and real text
        assert text.feed(_token(llama, kept)) == kept
    words = llama.tokenize(b" apples and pears", add_bos=False)
    assert "".join(text.feed(t) for t in words) == " apples and pears"
    ends = end_of_generation(vocab)
    assert ends(_token(llama, "<end_of_turn>")) and ends(_token(llama, "<eos>"))
    assert not ends(_token(llama, "<start_of_image>"))


def test_chatml_markers_are_not_text(tmp_path: Path) -> None:
    from tests.support.tiny_models import write_tiny_chat_model

    llama, vocab = _vocab(write_tiny_chat_model(tmp_path / "chat.gguf"))
    text = Detokenizer(vocab)
    assert text.feed(_token(llama, "<|im_start|>")) == ""
    assert end_of_generation(vocab)(_token(llama, "<|im_end|>"))
