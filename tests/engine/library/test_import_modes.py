"""Import modes on real files: reference, copy, move; split sets travel and list as one."""

from __future__ import annotations

from pathlib import Path

from quantdesk.engine.library.importer import MODE_COPY, MODE_MOVE, MODE_REFERENCE, import_paths
from quantdesk.engine.library.store import ModelLibrary
from tests.support.hub_fixtures import write_split_model
from tests.support.tiny_models import write_tiny_model


def _library(tmp_path: Path) -> ModelLibrary:
    return ModelLibrary(tmp_path / "library.sqlite3")


def test_move_renames_into_the_models_folder(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "downloads" / "tiny.gguf")
    data = source.read_bytes()
    models = tmp_path / "models"
    library = _library(tmp_path)
    [outcome] = import_paths([source], library, models, MODE_MOVE)
    assert outcome.error == ""
    entry = outcome.entry
    assert entry.owned and entry.path == (models / "tiny.gguf").resolve()
    assert not source.exists() and entry.path.read_bytes() == data
    library.close()


def test_reference_and_copy_leave_the_original(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "mine" / "tiny.gguf")
    library = _library(tmp_path)
    [ref] = import_paths([source], library, tmp_path / "models", MODE_REFERENCE)
    assert not ref.entry.owned and ref.entry.path == source.resolve()
    [copied] = import_paths([source], library, tmp_path / "models", MODE_COPY)
    assert copied.entry.owned and copied.entry.path != source.resolve() and source.exists()
    library.close()


def test_split_set_is_one_model_and_its_parts_travel_together(tmp_path: Path) -> None:
    parts = write_split_model(tmp_path / "dl" / "big", "Q8_0", 3)
    library = _library(tmp_path)
    models = tmp_path / "models"
    outcomes = import_paths([tmp_path / "dl"], library, models, MODE_MOVE)
    assert [o.error for o in outcomes] == [""]
    entry = outcomes[0].entry
    folder = models / "big"
    assert entry.path == (folder / parts[0].name).resolve()
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in parts]
    assert not any(p.exists() for p in parts)
    assert len(library.entries()) == 1
    library.close()


def test_split_set_with_a_missing_part_is_refused(tmp_path: Path) -> None:
    parts = write_split_model(tmp_path / "dl" / "big", "Q8_0", 3)
    parts[2].unlink()
    library = _library(tmp_path)
    [outcome] = import_paths([tmp_path / "dl"], library, tmp_path / "models", MODE_MOVE)
    assert "set of 3 files but 2 are here" in outcome.error
    assert all(p.exists() for p in parts[:2]) and library.entries() == []
    library.close()


def test_links_never_take_a_model_out_of_or_into_the_app_folder(tmp_path: Path) -> None:
    """Dropped symbolic links: moving one copies its content (a moved relative link would
    break, a moved absolute one would leave the model outside); a link into the app's folder
    is listed as the file it leads to, never as a file of the app at the link's place."""
    real = write_tiny_model(tmp_path / "store" / "real.gguf")
    data = real.read_bytes()
    links = tmp_path / "links"
    links.mkdir()
    relative = links / "relative.gguf"
    relative.symlink_to(Path("..") / "store" / "real.gguf")
    models = tmp_path / "models"
    library = _library(tmp_path)
    for mode in (MODE_MOVE, MODE_COPY):
        [outcome] = import_paths([relative], library, models, mode)
        stored = outcome.entry.path
        assert outcome.entry.owned and stored.parent == models.resolve()
        assert not stored.is_symlink() and stored.read_bytes() == data
    assert relative.is_symlink() and real.read_bytes() == data  # both left as they were
    models_file = next(models.glob("*.gguf"))
    into = links / "into-the-app.gguf"
    into.symlink_to(models_file)
    [ref] = import_paths([into], library, models, MODE_REFERENCE)
    assert ref.entry.path == models_file.resolve()  # the app's own file, not the link
    assert into.is_symlink()
    library.close()
