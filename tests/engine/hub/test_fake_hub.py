"""The fake hub keeps the Hub's contract: checked with plain HTTP and with huggingface_hub."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RevisionNotFoundError
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.support.fake_hub import FAKE_TOKEN, FakeHub, corrupt, drop_after, http_status, slow
from tests.support.hub_fixtures import GATED, MINI, TINY, Dims, llama_tensors

Q4 = "TinyLlama-Mini-Q4_K_M.gguf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_url(hub: FakeHub, repo: str, path: str, rev: str = "main") -> str:
    return f"{hub.endpoint}/{repo}/resolve/{rev}/{path}"


def test_lfs_files_redirect_to_the_cdn_with_hub_headers(fake_hub: FakeHub, hub_root: Path) -> None:
    local = hub_root / MINI / Q4
    head = httpx2.head(resolve_url(fake_hub, MINI, Q4))
    assert head.status_code == 302
    assert head.headers["X-Linked-Etag"] == f'"{sha256(local)}"'
    assert int(head.headers["X-Linked-Size"]) == local.stat().st_size
    assert head.headers["X-Repo-Commit"] == fake_hub.repos[MINI].sha
    location = head.headers["Location"]
    assert location.startswith(f"{fake_hub.cdn_endpoint}/lfs-files/{sha256(local)}")
    # GET follows the same redirect and the CDN honours the Range header.
    ranged = httpx2.get(
        resolve_url(fake_hub, MINI, Q4), headers={"Range": "bytes=100-199"}, follow_redirects=True
    )
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{local.stat().st_size}"
    assert ranged.content == local.read_bytes()[100:200]


@pytest.mark.parametrize(
    ("header", "status", "span"),
    [
        ("bytes=0-9", 206, (0, 10)),
        ("bytes=-10", 206, (-10, None)),
        ("bytes=5-", 206, (5, None)),
        ("bytes=0-999999999", 206, (0, None)),
        ("bytes=999999999-", 416, None),
        ("bytes=9-3", 200, (0, None)),  # invalid: ignored, whole file
        (None, 200, (0, None)),
    ],
)
def test_cdn_ranges(
    fake_hub: FakeHub, hub_root: Path, header: str | None, status: int, span: tuple | None
) -> None:
    local = hub_root / TINY / "tiny-real-Q8_0.gguf"
    data, size = local.read_bytes(), local.stat().st_size
    location = httpx2.head(resolve_url(fake_hub, TINY, local.name)).headers["Location"]
    response = httpx2.get(location, headers={"Range": header} if header else {})
    assert response.status_code == status
    if span is None:
        assert response.headers["Content-Range"] == f"bytes */{size}"
        return
    assert response.content == data[span[0] : span[1]]
    assert fake_hub.requests("/lfs-files/*")[-1].bytes_sent == len(response.content)
    head = httpx2.head(location, headers={"Range": header} if header else {})
    assert int(head.headers["Content-Length"]) == len(response.content) and not head.content


def test_small_files_are_served_by_the_hub_with_their_git_blob_id(
    fake_hub: FakeHub, hub_root: Path
) -> None:
    readme = (hub_root / MINI / "README.md").read_bytes()
    response = httpx2.get(resolve_url(fake_hub, MINI, "README.md"))
    assert response.status_code == 200 and response.content == readme
    git_oid = hashlib.sha1(b"blob %d\0" % len(readme) + readme).hexdigest()
    assert response.headers["ETag"] == f'"{git_oid}"'
    assert "X-Linked-Etag" not in response.headers
    part = httpx2.get(resolve_url(fake_hub, MINI, "README.md"), headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == readme[2:6]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/qd-test/nope/resolve/main/x.gguf", "RepoNotFound"),
        (f"/{MINI}/resolve/main/missing.gguf", "EntryNotFound"),
        (f"/{MINI}/resolve/v9/{Q4}", "RevisionNotFound"),
        (f"/api/models/{MINI}/revision/v9", "RevisionNotFound"),
        ("/api/models/qd-test/nope", "RepoNotFound"),
    ],
)
def test_missing_things_answer_404_with_the_hub_error_code(
    fake_hub: FakeHub, url: str, code: str
) -> None:
    response = httpx2.get(fake_hub.endpoint + url)
    assert response.status_code == 404
    assert response.headers["X-Error-Code"] == code


def test_gated_files_need_the_token(fake_hub: FakeHub) -> None:
    url = resolve_url(fake_hub, GATED, "gated-tiny-F16.gguf")
    refused = httpx2.head(url)
    assert refused.status_code == 401 and refused.headers["X-Error-Code"] == "GatedRepo"
    allowed = httpx2.head(url, headers={"Authorization": f"Bearer {FAKE_TOKEN}"})
    assert allowed.status_code == 302


def test_huggingface_hub_parses_search_results(fake_hub: FakeHub) -> None:
    api = HfApi(endpoint=fake_hub.endpoint)
    found = list(
        api.list_models(
            search="qd-test", filter="gguf", sort="likes", expand=["likes", "gguf", "author"]
        )
    )
    assert [m.id for m in found] == [
        TINY,
        MINI,
        GATED,
        "qd-test/big-vocab-GGUF",
    ]
    assert [m.likes for m in found] == [50, 10, 2, 1]
    params = sum(math.prod(dims) for _, dims, _ in llama_tensors(Dims(), "F16"))
    assert found[1].gguf == {"total": params, "architecture": "llama", "context_length": 8192}
    assert found[1].author == "qd-test" and found[1].downloads is None  # not expanded


def test_huggingface_hub_follows_search_pages(fake_hub: FakeHub) -> None:
    fake_hub.page_size = 2
    found = [m.id for m in HfApi(endpoint=fake_hub.endpoint).list_models(search="qd-test")]
    expected = [r for r in fake_hub.repos if r.startswith("qd-test/")]
    assert len(expected) == 6 and sorted(found) == sorted(expected)
    assert len(fake_hub.requests("/api/models")) == 3


def test_huggingface_hub_parses_model_info_and_tree(fake_hub: FakeHub, hub_root: Path) -> None:
    api = HfApi(endpoint=fake_hub.endpoint)
    info = api.model_info(MINI, files_metadata=True)
    assert info.sha == fake_hub.repos[MINI].sha
    siblings = {s.rfilename: s for s in info.siblings}
    local = hub_root / MINI / Q4
    assert siblings[Q4].size == local.stat().st_size
    assert siblings[Q4].lfs.sha256 == sha256(local) and siblings[Q4].lfs.size == siblings[Q4].size
    assert siblings["README.md"].lfs is None
    assert set(siblings) == {
        p.relative_to(hub_root / MINI).as_posix()
        for p in (hub_root / MINI).rglob("*")
        if p.is_file() and p.name != ".fakehub.json"
    }
    assert api.model_info(MINI, revision=info.sha).sha == info.sha
    with pytest.raises(RevisionNotFoundError):
        api.model_info(MINI, revision="v9")

    top = list(api.list_repo_tree(MINI))
    assert [e.path for e in top if isinstance(e, RepoFolder)] == ["Q5_K_M"]
    assert all("/" not in e.path for e in top)
    deep = {e.path: e for e in api.list_repo_tree(MINI, recursive=True) if isinstance(e, RepoFile)}
    part = deep["Q5_K_M/TinyLlama-Mini-Q5_K_M-00002-of-00002.gguf"]
    assert part.lfs.sha256 == sha256(hub_root / MINI / part.path)
    inside = list(api.list_repo_tree(MINI, path_in_repo="Q5_K_M"))
    assert sorted(e.path for e in inside) == sorted(p for p in deep if p.startswith("Q5_K_M/"))


def test_faults_are_applied_once_or_always(fake_hub: FakeHub, hub_root: Path) -> None:
    local = hub_root / TINY / "tiny-real-F32.gguf"
    location = httpx2.head(resolve_url(fake_hub, TINY, local.name)).headers["Location"]
    fake_hub.inject("/lfs-files/*", drop_after(1000))
    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.get(location)
    assert fake_hub.requests("/lfs-files/*")[-1].bytes_sent == 1000
    assert httpx2.get(location).content == local.read_bytes()  # once: the next one is fine

    fake_hub.inject("/lfs-files/*", http_status(503, retry_after=7, times=2))
    answers = [httpx2.get(location) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"

    fake_hub.inject("/lfs-files/*", corrupt(2, 6))
    damaged = httpx2.get(location, headers={"Range": "bytes=0-9"}).content
    good = local.read_bytes()[:10]
    assert damaged[:2] + damaged[6:] == good[:2] + good[6:]
    assert bytes(b ^ 0xFF for b in damaged[2:6]) == good[2:6]

    fake_hub.inject("/lfs-files/*", slow(200_000))
    start = time.perf_counter()
    assert len(httpx2.get(location, headers={"Range": "bytes=0-99999"}).content) == 100_000
    assert time.perf_counter() - start >= 0.45
    fake_hub.clear_faults()
    assert httpx2.get(location, headers={"Range": "bytes=0-99999"}).status_code == 206


def test_a_stopped_hub_refuses_connections_even_kept_alive_ones() -> None:
    hub = FakeHub().start()
    hub.add_repo("a/b-GGUF", {"README.md": b"hello"})
    url = resolve_url(hub, "a/b-GGUF", "README.md")
    with httpx2.Client() as client:
        assert client.get(url).content == b"hello"
        hub.stop()
        with pytest.raises(httpx2.TransportError):
            client.get(url)
