"""HubClient with the real huggingface_hub client against the fake hub on loopback."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

from quantdesk.engine.errors import AuthRequired, HubUnreachable, InvalidGGUF, RepoNotFound
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.hub._header import FIRST_RANGE
from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.hub.quants import RemoteFile, group_gguf_files, parse_quant
from tests.support.fake_hub import FAKE_TOKEN, FakeHub, corrupt, drop_after, http_status
from tests.support.hub_fixtures import (
    BIG_HEADER,
    CHAT,
    GATED,
    MINI,
    MMPROJ,
    README_ONLY,
    SAFETENSORS,
    STARTER,
    TINY,
    Dims,
    llama_tensors,
)

Q4 = "TinyLlama-Mini-Q4_K_M.gguf"


def client(hub: FakeHub, **kwargs: object) -> HubClient:
    return HubClient(endpoint=hub.endpoint, backoff=0.01, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "quant"),
    [
        ("Model-Q4_K_M.gguf", "Q4_K_M"),
        ("model.Q4_K_M.gguf", "Q4_K_M"),
        ("model-q4_k_m.gguf", "Q4_K_M"),
        ("Qwen2.5-0.5B-Instruct-IQ2_XXS.gguf", "IQ2_XXS"),
        ("Llama-3.2-1B-Q4_0_4_4.gguf", "Q4_0_4_4"),
        ("gemma-3-4b-it-BF16.gguf", "BF16"),
        ("phi-2.fp16.gguf", "F16"),
        ("Qwen3-8B-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("Q4_K_M/Llama-70B-00001-of-00002.gguf", "Q4_K_M"),
        ("Llama-70B-Q6_K_L-00002-of-00003.gguf", "Q6_K_L"),
        ("mistral.i1-IQ3_M.gguf", "IQ3_M"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("ggml-model.gguf", None),
    ],
)
def test_quant_names_are_read_from_file_names(path: str, quant: str | None) -> None:
    assert parse_quant(path) == quant


def test_files_are_grouped_per_model_file_with_split_parts_in_order() -> None:
    def f(path: str, size: int) -> RemoteFile:
        return RemoteFile(path, size, None, f"http://x/{path}")

    files = [
        f("big/M-Q8_0-00002-of-00002.gguf", 50),
        f("big/M-Q8_0-00001-of-00002.gguf", 60),
        f("M-Q4_K_M.gguf", 70),
        f("other-Q4_K_M.gguf", 80),
        f("M-F16-00001-of-00003.gguf", 10),
        f("mmproj-M-f16.gguf", 5),
        f("README.md", 1),
        f("M.gguf", 3),
    ]
    repo = group_gguf_files("o/r", files)
    assert [(g.label, g.total_size) for g in repo.quants] == [
        ("M", 3),
        ("F16 (incomplete: 1 of 3 parts)", 10),
        ("M-Q4_K_M", 70),
        ("other-Q4_K_M", 80),
        ("Q8_0 (2 parts)", 110),
    ]
    split = repo.quants[-1]
    assert split.is_split and split.is_complete and split.quant == "Q8_0"
    assert [x.path for x in split.files] == [
        "big/M-Q8_0-00001-of-00002.gguf",
        "big/M-Q8_0-00002-of-00002.gguf",
    ]
    assert not repo.quants[1].is_complete
    assert [p.path for p in repo.projectors] == ["mmproj-M-f16.gguf"]


def test_search_sorts_and_filters(fake_hub: FakeHub) -> None:
    hub = HubClient(backoff=0.01)  # endpoint from HF_ENDPOINT
    assert hub.endpoint == fake_hub.endpoint
    by = {s: [m.repo_id for m in hub.search("", sort=s)] for s in ("downloads", "likes", "recent")}
    assert by["downloads"] == [MINI, CHAT, TINY, BIG_HEADER, GATED]
    assert by["likes"] == [TINY, MINI, CHAT, GATED, BIG_HEADER]
    assert by["recent"] == [CHAT, TINY, MINI, GATED, BIG_HEADER]
    assert [m.repo_id for m in hub.search("llama")] == [MINI, CHAT]
    assert [m.repo_id for m in hub.search("llama", gguf_only=False)] == [SAFETENSORS, MINI, CHAT]
    assert [m.repo_id for m in hub.search("qd-test", limit=2)] == [MINI, TINY]
    mini = hub.search("TinyLlama-Mini-GGUF")[0]
    params = sum(math.prod(dims) for _, dims, _ in llama_tensors(Dims(), "F16"))
    assert (mini.parameter_count, mini.architecture, mini.context_length) == (params, "llama", 8192)
    assert (mini.author, mini.downloads, mini.likes) == ("qd-test", 5000, 10)
    assert mini.last_modified.startswith("2024-03-01T10:00:00") and "gguf" in mini.tags
    assert hub.search("no-such-model") == []


def test_list_quants_groups_a_real_repository(fake_hub: FakeHub, hub_root: Path) -> None:
    repo = client(fake_hub).list_gguf(MINI)
    assert repo.commit == fake_hub.repos[MINI].sha
    assert [g.label for g in repo.quants] == [
        "Q2_K",
        "IQ4_XS",
        "Q4_K_M",
        "UD-Q4_K_XL",
        "Q5_K_M (2 parts)",
        "Q6_K",
        "Q8_0",
        "F16 (3 parts)",
    ]
    for group in repo.quants:
        sizes = [(hub_root / MINI / f.path).stat().st_size for f in group.files]
        assert [f.size for f in group.files] == sizes and group.total_size == sum(sizes)
    f16 = repo.quants[-1]
    assert [f.path for f in f16.files] == [
        f"TinyLlama-Mini-F16-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    ]
    q4 = repo.quants[2].files[0]
    assert q4.sha256 == hashlib.sha256((hub_root / MINI / Q4).read_bytes()).hexdigest()
    assert q4.url == hf_hub_url(MINI, Q4, revision=repo.commit, endpoint=fake_hub.endpoint)
    assert repo.quants[4].files[0].path.startswith("Q5_K_M/")
    assert [p.path for p in repo.projectors] == [MMPROJ]
    assert client(fake_hub).list_quants(README_ONLY) == []


def test_fetch_header_reads_a_small_prefix_then_the_cache(
    fake_hub: FakeHub, hub_root: Path, tmp_path: Path
) -> None:
    local = hub_root / MINI / Q4
    hub = client(fake_hub, cache_dir=tmp_path / "cache")
    remote = hub.fetch_header(MINI, Q4)
    assert remote.header == read_header_from_file(local)
    assert not remote.from_cache and remote.bytes_read == FIRST_RANGE
    assert remote.bytes_read / local.stat().st_size < 0.02
    assert fake_hub.bytes_served("/lfs-files/*") == remote.bytes_read

    seen = len(fake_hub.requests())
    again = hub.fetch_header(MINI, Q4)
    assert again.from_cache and again.bytes_read == 0 and again.header == remote.header
    assert len(fake_hub.requests()) == seen  # no request at all

    commit = fake_hub.repos[MINI].sha
    pinned = client(fake_hub, cache_dir=tmp_path / "cache").fetch_header(MINI, Q4, commit)
    assert pinned.from_cache and len(fake_hub.requests()) == seen
    fresh = client(fake_hub, cache_dir=tmp_path / "cache").fetch_header(MINI, Q4)
    assert fresh.from_cache and [r.method for r in fake_hub.requests()[seen:]] == ["HEAD"]
    offline = client(fake_hub, cache_dir=tmp_path / "cache", offline=True)
    assert offline.fetch_header(MINI, Q4).header == remote.header
    with pytest.raises(HubUnreachable, match="Offline mode"):
        offline.fetch_header(MINI, "TinyLlama-Mini-Q2_K.gguf")
    assert [r.method for r in fake_hub.requests()[seen:]] == ["HEAD"]


def test_a_header_larger_than_the_first_range_grows_the_range(
    fake_hub: FakeHub, hub_root: Path
) -> None:
    local = hub_root / BIG_HEADER / "big-vocab-Q4_K_M.gguf"
    expected = read_header_from_file(local)
    assert expected.header_size > 4 * FIRST_RANGE
    remote = client(fake_hub).fetch_header(BIG_HEADER, local.name)
    assert remote.header == expected
    ranges = [r.range for r in fake_hub.requests("/lfs-files/*")]
    assert len(ranges) >= 3 and ranges[0] == f"bytes=0-{FIRST_RANGE - 1}"
    ends = [int(r.split("=")[1].split("-")[1]) for r in ranges]
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
    assert starts[1:] == [e + 1 for e in ends[:-1]]  # only the missing bytes are fetched
    assert expected.header_size <= remote.bytes_read < 2 * expected.header_size
    assert remote.bytes_read < local.stat().st_size / 4


def test_fetch_quant_headers_reads_every_split_part(fake_hub: FakeHub, hub_root: Path) -> None:
    hub = client(fake_hub)
    f16 = hub.list_quants(MINI)[-1]
    headers = hub.fetch_quant_headers(MINI, f16)
    assert headers == [read_header_from_file(hub_root / MINI / f.path) for f in f16.files]
    assert [h.metadata["split.no"] for h in headers] == [0, 1, 2]
    assert {h.metadata["split.tensors.count"] for h in headers} == {
        sum(len(h.tensors) for h in headers)
    }
    assert "general.architecture" in headers[0].metadata
    assert "general.architecture" not in headers[1].metadata


def test_all_quant_headers_of_a_repository_in_under_two_seconds(fake_hub: FakeHub) -> None:
    hub = client(fake_hub)
    start = time.perf_counter()
    groups = hub.list_quants(MINI)
    files = [f for g in groups for f in g.files]
    headers = hub.fetch_headers(MINI, files)
    elapsed = time.perf_counter() - start
    read, total = sum(h.bytes_read for h in headers), sum(f.size for f in files)
    print(
        f"\n{len(groups)} quant groups, {len(files)} files: {elapsed:.3f} s, "
        f"{read:,} of {total:,} bytes read ({read / total:.2%})"
    )
    assert elapsed < 2.0
    assert read < total / 50


def test_hub_errors_are_typed_and_readable(fake_hub: FakeHub) -> None:
    hub = client(fake_hub)
    with pytest.raises(RepoNotFound, match="no model repository 'qd-test/nope'"):
        hub.list_quants("qd-test/nope")
    with pytest.raises(RepoNotFound, match="has no file 'missing.gguf'"):
        hub.fetch_header(MINI, "missing.gguf")
    with pytest.raises(RepoNotFound, match="no branch, tag or commit named 'v9'"):
        hub.list_quants(MINI, revision="v9")
    fake_hub.inject(f"/api/models/{MINI}", http_status(404))
    with pytest.raises(RepoNotFound):
        hub.list_quants(MINI)
    fake_hub.inject(f"/api/models/{MINI}", http_status(401))
    with pytest.raises(AuthRequired, match="HF_TOKEN") as refused:
        hub.list_quants(MINI)
    assert "no access token is set" in refused.value.message


def test_gated_repositories_need_a_token(fake_hub: FakeHub, hub_root: Path) -> None:
    (group,) = client(fake_hub).list_quants(GATED)  # the listing itself is public
    with pytest.raises(AuthRequired, match="gated"):
        client(fake_hub).fetch_quant_headers(GATED, group)
    with_token = client(fake_hub, token=FAKE_TOKEN).fetch_quant_headers(GATED, group)
    assert with_token == [read_header_from_file(hub_root / GATED / group.files[0].path)]


def test_server_errors_are_retried_then_reported(fake_hub: FakeHub) -> None:
    fake_hub.inject(f"/api/models/{MINI}", http_status(503, retry_after=1))
    start = time.perf_counter()
    assert len(client(fake_hub).list_quants(MINI)) == 8
    assert time.perf_counter() - start >= 1.0  # Retry-After was honoured
    assert [r.status for r in fake_hub.requests(f"/api/models/{MINI}")] == [503, 200]

    fake_hub.reset_log()
    fake_hub.inject("/api/models", http_status(500, times=None))
    with pytest.raises(HubUnreachable, match="HTTP 500, 3 tries"):
        client(fake_hub).search("llama")
    assert len(fake_hub.requests("/api/models")) == 3


def test_a_dropped_range_is_fetched_again(fake_hub: FakeHub, hub_root: Path) -> None:
    fake_hub.inject("/lfs-files/*", drop_after(10_000))
    remote = client(fake_hub).fetch_header(MINI, Q4)
    assert remote.header == read_header_from_file(hub_root / MINI / Q4)
    faults = [r.fault for r in fake_hub.requests("/lfs-files/*")]
    assert faults == ["drop", None]
    assert remote.bytes_read == 10_000 + FIRST_RANGE


def test_corrupted_header_bytes_are_reported(fake_hub: FakeHub) -> None:
    fake_hub.inject("/lfs-files/*", corrupt(0, 4))
    with pytest.raises(InvalidGGUF, match="not a usable GGUF model"):
        client(fake_hub).fetch_header(MINI, Q4)


def test_an_unreachable_hub_is_reported(tmp_path: Path) -> None:
    hub = FakeHub().start()
    endpoint = hub.endpoint
    hub.stop()
    with pytest.raises(HubUnreachable, match="Could not reach the model hub") as failure:
        HubClient(endpoint=endpoint, backoff=0.01).search("llama")
    assert "HF_ENDPOINT" in failure.value.message
    with pytest.raises(HubUnreachable, match="Offline mode"):
        HubClient(endpoint=endpoint, offline=True).list_quants(MINI)


def test_hf_hub_download_follows_the_cdn_redirect(
    fake_hub: FakeHub, hub_root: Path, tmp_path: Path
) -> None:
    name = "tiny-real-Q8_0.gguf"
    path = hf_hub_download(TINY, name, cache_dir=tmp_path / "hf-cache", endpoint=fake_hub.endpoint)
    data = Path(path).read_bytes()
    assert data == (hub_root / TINY / name).read_bytes()
    meta = get_hf_file_metadata(hf_hub_url(TINY, name, endpoint=fake_hub.endpoint))
    assert hashlib.sha256(data).hexdigest() == meta.etag
    assert meta.location.startswith(fake_hub.cdn_endpoint)
    assert [r.status for r in fake_hub.requests(f"/{TINY}/resolve/*")] == [302, 302]
    cdn = fake_hub.requests("/lfs-files/*", method="GET")
    assert len(cdn) == 1 and cdn[0].bytes_sent == len(data)


def quantdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_cli_search_and_quants(fake_hub: FakeHub) -> None:
    table = quantdesk("search", "llama", "--sort", "likes")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["REPO", "DOWNLOADS", "LIKES", "UPDATED", "PARAMS", "ARCH"]
    assert lines[1].split() == [MINI, "5,000", "10", "2024-03-01", "28M", "llama"]
    assert lines[2].split()[0] == CHAT and len(lines) == 3

    found = json.loads(quantdesk("search", "qd-test", "--limit", "2", "--json").stdout)
    assert [m["repo_id"] for m in found] == [MINI, TINY]

    quants = quantdesk("quants", MINI)
    assert quants.returncode == 0, quants.stderr
    assert "8 quantizations" in quants.stdout and MMPROJ in quants.stdout
    assert any(
        line.split()[:4] == ["F16", "(3", "parts)", "56.8"] for line in quants.stdout.splitlines()
    )
    data = json.loads(quantdesk("quants", MINI, "--json").stdout)
    assert data["commit"] == fake_hub.repos[MINI].sha and len(data["quants"]) == 8
    assert data["quants"][0]["files"][0]["path"] == "TinyLlama-Mini-Q2_K.gguf"

    missing = quantdesk("quants", "qd-test/nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("quantdesk: error: There is no model repository")
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.starter
def test_the_starter_model_header_from_the_hub(fake_hub: FakeHub, starter_model: Path) -> None:
    fake_hub.add_repo(STARTER, {"gemma-3-270m-Q4_K_M.gguf": starter_model})
    remote = client(fake_hub).fetch_header(STARTER, "gemma-3-270m-Q4_K_M.gguf")
    assert remote.header == read_header_from_file(starter_model)
    print(f"\nstarter header: {remote.bytes_read:,} of {starter_model.stat().st_size:,} bytes")
    assert remote.bytes_read < starter_model.stat().st_size / 20


def test_the_token_is_sent_but_never_logged_or_shown(fake_hub: FakeHub, monkeypatch, caplog):
    """HF_TOKEN is read the way huggingface_hub reads it and goes only into the request's
    Authorization header: not into any log record (every level) nor any error message."""
    import logging

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)
    hub = HubClient()  # the token comes from the environment, as in the app
    (group,) = hub.list_quants(GATED)
    assert hub.fetch_quant_headers(GATED, group)  # authorized: the token was sent
    fake_hub.inject(f"/api/models/{MINI}", http_status(401))
    with pytest.raises(AuthRequired) as refused:
        hub.list_quants(MINI)
    said = refused.value.message + refused.value.details
    assert FAKE_TOKEN not in said and FAKE_TOKEN not in caplog.text
    assert any(r.status == 200 for r in fake_hub.requests())
