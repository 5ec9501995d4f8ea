"""The strict GGUF header reader (engine/gguf/reader.py), the ggml type table, model summaries."""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path

import gguf
import pytest

from quantdesk.engine.errors import InvalidGGUF, NeedMoreBytes
from quantdesk.engine.gguf import reader
from quantdesk.engine.gguf.model_info import format_text, parameter_label, summarize
from quantdesk.engine.gguf.reader import read_header, read_header_from_file
from quantdesk.engine.gguf.types import (
    GGML_TYPES,
    LLAMA_FILE_TYPES,
    file_type_name,
    tensor_nbytes,
)
from tests.support.gguf_fixtures import (
    ARRAY_VALUES,
    CHAT_TEMPLATE,
    QT,
    SCALAR_VALUES,
    TOKENS,
    VT,
    build_gguf,
    nbytes,
    pack_string,
    simple_tensors,
    write_writer_model,
)


@pytest.fixture(scope="module")
def writer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_writer_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def writer_bytes(writer_file: Path) -> bytes:
    return writer_file.read_bytes()


def assert_same_tensors_as_gguf_reader(header: reader.GGUFHeader, path: Path) -> None:
    ref = gguf.GGUFReader(path)
    ours = [(t.name, t.shape, t.ggml_type, header.data_offset + t.offset) for t in header.tensors]
    theirs = [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), int(t.data_offset))
        for t in ref.tensors
    ]
    assert ours == theirs
    assert [t.n_bytes for t in header.tensors] == [int(t.n_bytes) for t in ref.tensors]
    assert [t.n_elements for t in header.tensors] == [int(t.n_elements) for t in ref.tensors]


# --- the type tables -----------------------------------------------------------------------


def test_ggml_types_match_gguf_package() -> None:
    for qtype in gguf.GGMLQuantizationType:
        ours = GGML_TYPES[int(qtype)]
        assert ours.name == qtype.name
        assert (ours.block_size, ours.bytes_per_block) == gguf.GGML_QUANT_SIZES[qtype]


def test_file_type_names_match_gguf_package() -> None:
    for ftype in gguf.LlamaFileType:
        if ftype == gguf.LlamaFileType.GUESSED:
            continue
        expected = "F32" if ftype.name == "ALL_F32" else ftype.name.removeprefix("MOSTLY_")
        assert LLAMA_FILE_TYPES[int(ftype)] == expected
    assert file_type_name(15) == "Q4_K_M"
    assert file_type_name(19) == "IQ2_XXS"
    assert file_type_name(15 | 1024) == "Q4_K_M (guessed)"
    assert file_type_name(999) == "unknown (999)"


def test_tensor_nbytes() -> None:
    assert tensor_nbytes(int(QT.Q4_K), (512, 3)) == 2 * 3 * 144
    assert tensor_nbytes(int(QT.F32), (7,)) == 28
    with pytest.raises(InvalidGGUF, match="not a multiple of the Q4_K block size 256"):
        tensor_nbytes(int(QT.Q4_K), (100, 2))
    with pytest.raises(InvalidGGUF, match="unknown ggml tensor type 99"):
        tensor_nbytes(99, (32,))
    with pytest.raises(InvalidGGUF, match="removed from llama.cpp"):
        tensor_nbytes(33, (32,))


# --- valid files -----------------------------------------------------------------------------


def test_writer_file_round_trips_every_value_type(writer_file: Path, writer_bytes: bytes) -> None:
    header = read_header(writer_bytes)
    assert header.version == 3
    for key, (vtype, value) in SCALAR_VALUES.items():
        assert header.metadata[key] == value, key
        assert header.value_types[key] == vtype
    for key, (item_type, items) in ARRAY_VALUES.items():
        assert header.metadata[key] == items, key
        assert header.value_types[key] == VT.ARRAY
        assert header.array_types[key] == item_type
    assert isinstance(header.metadata["test.bool_true"], bool)
    assert header.metadata["tokenizer.ggml.tokens"] == TOKENS
    assert header.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert header.metadata["general.architecture"] == "llama"
    assert header.file_size == len(writer_bytes)
    assert read_header_from_file(writer_file) == header


def test_tensor_table_matches_gguf_reader(writer_file: Path) -> None:
    header = read_header_from_file(writer_file)
    assert header.alignment == 32
    assert header.data_offset % 32 == 0
    assert header.header_size <= header.data_offset < header.header_size + 32
    assert [t.type_name for t in header.tensors] == ["F32", "F16", "Q8_0", "Q8_0"]
    assert header.tensors[0].shape == (32, 8)
    assert_same_tensors_as_gguf_reader(header, writer_file)


def test_custom_alignment(tmp_path: Path) -> None:
    path = write_writer_model(tmp_path / "aligned.gguf", alignment=64)
    header = read_header_from_file(path)
    assert header.alignment == 64 and header.data_offset % 64 == 0
    assert_same_tensors_as_gguf_reader(header, path)


@pytest.mark.parametrize("version", [1, 2])
def test_hand_packed_old_versions(version: int) -> None:
    kvs = [
        ("general.architecture", VT.STRING, "llama"),
        ("a.count", VT.UINT32, 7),
        ("a.empty", VT.ARRAY, (VT.STRING, [])),
        ("a.names", VT.ARRAY, (VT.STRING, ["x", "yz"])),
        ("a.nested", VT.ARRAY, (VT.ARRAY, [[1], [2, 3]])),
    ]
    data = build_gguf(kvs, simple_tensors(), version=version)
    header = read_header(data)
    assert header.version == version
    assert header.metadata == {
        "general.architecture": "llama",
        "a.count": 7,
        "a.empty": [],
        "a.names": ["x", "yz"],
        "a.nested": [[1], [2, 3]],
    }
    assert [(t.name, t.shape, t.offset) for t in header.tensors] == [
        ("a.weight", (8,), 0),
        ("b.weight", (8, 2), 32),
    ]
    assert header.data_offset % 32 == 0 and len(data) == header.data_offset + 96


# --- byte prefixes -----------------------------------------------------------------------------


def test_prefix_needs_more_bytes_then_succeeds(writer_bytes: bytes) -> None:
    full = read_header(writer_bytes)
    size = len(writer_bytes)
    for cut in range(full.header_size):
        with pytest.raises(NeedMoreBytes) as info:
            read_header(writer_bytes[:cut], size)
        assert cut < info.value.needed <= size
    for cut in (full.header_size, full.data_offset, size):
        assert read_header(writer_bytes[:cut], size) == full


def test_prefix_grows_to_the_header() -> None:
    names = [f"token-{i}" for i in range(3000)]
    data = build_gguf([("t.tokens", VT.ARRAY, (VT.STRING, names))], simple_tensors())
    prefix, rounds = 16, 0
    while True:
        try:
            header = read_header(memoryview(data)[:prefix], len(data))
            break
        except NeedMoreBytes as more:
            assert more.needed > prefix
            prefix, rounds = more.needed, rounds + 1
    assert header.metadata["t.tokens"] == names and rounds < 20


def test_read_from_file_in_small_chunks(writer_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "FIRST_READ", 16)
    assert read_header_from_file(writer_file) == read_header(writer_file.read_bytes())


# --- malformed files ----------------------------------------------------------------------------


def test_truncated_at_every_byte(writer_bytes: bytes) -> None:
    for cut in range(len(writer_bytes)):
        with pytest.raises(InvalidGGUF):
            read_header(writer_bytes[:cut])
    assert "file ends at offset 6 while reading the GGUF version" in _error(writer_bytes[:6])


def _error(data: bytes) -> str:
    with pytest.raises(InvalidGGUF) as info:
        read_header(data)
    return str(info.value)


def _kvs_then_tensors(kvs: list, tensors: list | None = None, **kw: object) -> bytes:
    return build_gguf(kvs, simple_tensors() if tensors is None else tensors, **kw)


F32 = int(QT.F32)
MALFORMED = {
    "bad magic": (b"GGUX" + bytes(20), "not a GGUF model file"),
    "zip": (b"PK\x03\x04" + bytes(40), "zip archive"),
    "json": (b'{"model": 1}' + bytes(20), "JSON"),
    "version 0": (build_gguf(version=0), "unsupported GGUF version 0"),
    "version 4": (build_gguf(version=4), "unsupported GGUF version 4"),
    "version 99": (build_gguf(version=99), "unsupported GGUF version 99"),
    "big-endian": (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    "absurd tensor count": (build_gguf(n_tensors=2**63), "declares 9223372036854775808 tensors"),
    "absurd kv count": (build_gguf(n_kv=2**63), "9223372036854775808 metadata keys"),
    "key length past end": (
        build_gguf(n_kv=1, raw_kvs=struct.pack("<Q", 2**40) + bytes(16)),
        "past the end of the file",
    ),
    "bad value type": (
        build_gguf(n_kv=1, raw_kvs=pack_string("k") + struct.pack("<I", 13) + bytes(8)),
        "unknown value type 13 for key 'k'",
    ),
    "bad array item type": (
        build_gguf(n_kv=1, raw_kvs=pack_string("k") + struct.pack("<II", 9, 77) + bytes(8)),
        "unknown value type 77",
    ),
    "absurd array length": (
        build_gguf(n_kv=1, raw_kvs=pack_string("k") + struct.pack("<IIQ", 9, 4, 2**62)),
        "said to hold 4611686018427387904 items",
    ),
    "bool 2": (
        build_gguf(n_kv=1, raw_kvs=pack_string("k") + struct.pack("<IB", VT.BOOL, 2)),
        "key 'k' holds a bool that is neither 0 nor 1",
    ),
    "bad utf-8 key": (build_gguf([(b"k\xff", VT.UINT8, 1)]), "metadata key #0 is not valid UTF-8"),
    "bad utf-8 item": (
        build_gguf([("k", VT.ARRAY, (VT.STRING, [b"ok", b"\xc3"]))]),
        "key 'k'[1] is not valid UTF-8",
    ),
    "duplicate key": (build_gguf([("k", VT.UINT8, 1), ("k", VT.UINT8, 2)]), "duplicate metadata"),
    "alignment not power of two": (
        _kvs_then_tensors([("general.alignment", VT.UINT32, 48)]),
        "general.alignment 48 is not a power of two",
    ),
    "alignment zero": (
        _kvs_then_tensors([("general.alignment", VT.UINT32, 0)]),
        "not a power of two",
    ),
    "alignment wrong type": (
        _kvs_then_tensors([("general.alignment", VT.UINT64, 32)]),
        "general.alignment must be a uint32, not uint64",
    ),
    "bad ggml type": (
        build_gguf(tensors=[("t", [32], 100, 0)], data_size=128),
        "tensor 't': unknown ggml tensor type 100",
    ),
    "n_dims 0": (build_gguf(tensors=[("t", [], F32, 0)], data_size=64), "has 0 dimensions"),
    "n_dims 5": (build_gguf(tensors=[("t", [1] * 5, F32, 0)]), "has 5 dimensions"),
    "dim 0": (build_gguf(tensors=[("t", [8, 0], F32, 0)], data_size=64), "invalid shape (8, 0)"),
    "elements overflow": (
        build_gguf(tensors=[("t", [2**32, 2**32], F32, 0)], data_size=64),
        "more elements than fit in int64",
    ),
    "block size": (
        build_gguf(tensors=[("t", [100], int(QT.Q4_K), 0)], data_size=1024),
        "first dimension 100 is not a multiple of the Q4_K block size 256",
    ),
    "misaligned offset": (
        build_gguf(tensors=[("t", [8], F32, 4)]),
        "tensor 't' data offset 4 is not a multiple of 32",
    ),
    "offset past end": (
        build_gguf(tensors=[("t", [8], F32, 4096)], data_size=64),
        "tensor 't' data runs past the end of the file",
    ),
    "size past end": (
        build_gguf(tensors=[("t", [64], F32, 0)], data_size=64),
        "ends at",
    ),
    "overlap": (
        build_gguf(tensors=[("a", [16], F32, 0), ("b", [8], F32, 32)]),
        "tensor 'b' (data at 32) overlaps tensor 'a'",
    ),
    "duplicate tensor": (
        build_gguf(tensors=[("a", [8], F32, 0), ("a", [8], F32, 32)]),
        "duplicate tensor name 'a'",
    ),
    "tensor name too long": (
        build_gguf(tensors=[("x" * 64, [8], F32, 0)]),
        "name longer than 63 bytes",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed(case: str) -> None:
    data, fragment = MALFORMED[case]
    assert fragment in _error(data)


def test_deeply_nested_arrays() -> None:
    nested = b"".join(struct.pack("<IQ", 9, 1) for _ in range(40)) + struct.pack("<IQ", 0, 0)
    data = build_gguf(n_kv=1, raw_kvs=pack_string("k") + struct.pack("<I", 9) + nested)
    assert "nests arrays more than" in _error(data)


def test_random_bytes_and_mutations(writer_bytes: bytes) -> None:
    rng = random.Random(20240611)
    assert "not a GGUF model file" in _error(rng.randbytes(4096))
    for _ in range(300):
        with pytest.raises(InvalidGGUF):
            read_header(b"GGUF\x03\0\0\0" + rng.randbytes(rng.randrange(200)))
    for _ in range(300):
        mutated = bytearray(writer_bytes)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            read_header(bytes(mutated))
        except InvalidGGUF:
            pass


# --- files on disk -------------------------------------------------------------------------------


def test_random_file_named_gguf(tmp_path: Path) -> None:
    path = tmp_path / "random.gguf"
    path.write_bytes(random.Random(7).randbytes(4096))
    with pytest.raises(InvalidGGUF, match="not a GGUF model file"):
        read_header_from_file(path)


def test_empty_file_directory_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(InvalidGGUF, match="empty"):
        read_header_from_file(tmp_path / "empty.gguf")
    with pytest.raises(InvalidGGUF, match="is a folder"):
        read_header_from_file(tmp_path)
    with pytest.raises(InvalidGGUF, match="does not exist"):
        read_header_from_file(tmp_path / "missing.gguf")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path: Path, writer_bytes: bytes) -> None:
    path = tmp_path / "locked.gguf"
    path.write_bytes(writer_bytes)
    path.chmod(0)
    with pytest.raises(InvalidGGUF, match="permission denied"):
        read_header_from_file(path)


# --- summaries -------------------------------------------------------------------------------


def test_summarize_writer_file(writer_file: Path) -> None:
    report = summarize(read_header_from_file(writer_file), writer_file)
    assert report.architecture == "llama"
    assert report.name == "Tiny Test Model"
    assert (report.context_length, report.embedding_length, report.block_count) == (256, 32, 2)
    assert (report.head_count, report.head_count_kv, report.vocab_size) == (4, 2, len(TOKENS))
    assert report.has_chat_template and report.chat_template == CHAT_TEMPLATE
    assert report.file_type == "Q8_0" and not report.file_type_guessed
    assert report.parameter_count == 32 * 8 + 32 + 2 * 32 * 32
    assert {s.type_name: s.tensor_count for s in report.quant_mix} == {
        "F32": 1,
        "F16": 1,
        "Q8_0": 2,
    }
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["metadata"]["test.arr_long"] == "[array of 40 int32]"
    assert as_json["metadata"]["test.arr_u8"] == [0, 1, 255]
    assert len(as_json["tensors"]) == 4
    text = format_text(report)
    assert "Architecture:     llama" in text and "Context length:   256" in text
    assert "blk.0.attn_q.weight" not in text
    assert "blk.0.attn_q.weight" in format_text(report, include_tensors=True)


def test_summarize_guesses_file_type_and_name() -> None:
    q4k = int(QT.Q4_K)
    tensors = [
        ("blk.0.ffn_up.weight", [256, 4], q4k, 0),
        ("blk.0.ffn_down.weight", [256, 4], q4k, 576),
        ("blk.0.attn_norm.weight", [256], F32, 1152),
    ]
    header = read_header(build_gguf([("general.architecture", VT.STRING, "x")], tensors))
    report = summarize(header, "/models/my-model.Q4_K.gguf")
    assert report.file_type == "Q4_K" and report.file_type_guessed
    assert report.name == "my-model.Q4_K"
    assert report.context_length is None and not report.has_chat_template
    assert nbytes(q4k, [256, 4]) == 576


def test_parameter_label() -> None:
    assert parameter_label(268_098_176) == "268M"
    assert parameter_label(7_241_732_096) == "7.2B"
    assert parameter_label(70_553_706_496) == "71B"
    assert parameter_label(1_000_000_000) == "1B"
    assert parameter_label(512) == "512"


# --- the real starter model --------------------------------------------------------------------


@pytest.mark.starter
def test_starter_model_header(starter_model: Path) -> None:
    path = starter_model
    header = read_header_from_file(path)
    report = summarize(header, path)
    assert report.architecture == "gemma3"
    assert report.file_type == "Q4_K_M"
    assert report.context_length == 32768
    assert not report.has_chat_template
    assert report.vocab_size == 262144
    assert_same_tensors_as_gguf_reader(header, path)
