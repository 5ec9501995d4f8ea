"""Hugging Face Hub access: search GGUF models, list a repository's quantizations, read headers.

:class:`HubClient` talks to the hub through ``huggingface_hub`` (its ``HfApi``, URL helpers and
shared HTTP session), so ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` work as they do for
every Hugging Face tool. Headers are read with HTTP range requests (see
:mod:`~quantdesk.engine.hub._header`) and cached by (repository, commit, path, ETag).

Every failure becomes a :class:`~quantdesk.engine.errors.HubError`: :class:`HubUnreachable`,
:class:`RepoNotFound` or :class:`AuthRequired`. Server errors (5xx, 429) and dropped
connections are retried twice with a short backoff (honouring ``Retry-After`` up to 5 s).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx2
from huggingface_hub import HfApi, get_hf_file_metadata, get_session, get_token, hf_hub_url
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

from quantdesk.engine.errors import HubError, HubUnreachable, InvalidGGUF, NeedMoreBytes
from quantdesk.engine.gguf.reader import GGUFHeader, read_header
from quantdesk.engine.hub._errors import translate_http_error
from quantdesk.engine.hub._header import HeaderCache, RemoteHeader, read_remote_header
from quantdesk.engine.hub.quants import QuantGroup, RemoteFile, RepoGGUF, group_gguf_files

__all__ = ["HubClient", "ModelSummary", "QuantGroup", "RemoteFile", "RemoteHeader", "RepoGGUF"]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
REF_TTL_S = 300.0
"""How long a branch's commit, once seen, is trusted before asking the hub again."""
MAX_RETRY_AFTER_S = 5.0
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SORTS = {"downloads": "downloads", "likes": "likes", "recent": "lastModified"}
_SEARCH_FIELDS = ("author", "downloads", "likes", "lastModified", "tags", "gguf")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
T = TypeVar("T")


@dataclass(frozen=True)
class ModelSummary:
    """One search result. Parameters, architecture and context come from the hub's GGUF data."""

    repo_id: str
    author: str | None
    downloads: int
    likes: int
    last_modified: str | None
    tags: tuple[str, ...]
    parameter_count: int | None
    architecture: str | None
    context_length: int | None = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _has_default_token() -> bool:
    try:
        return bool(get_token())
    except Exception:  # noqa: BLE001 - a broken token file must not hide the real error
        return False


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _summary(info: ModelInfo) -> ModelSummary:
    gguf = info.gguf if isinstance(info.gguf, dict) else {}
    arch = gguf.get("architecture")
    return ModelSummary(
        repo_id=info.id,
        author=info.author or (info.id.partition("/")[0] if "/" in info.id else None),
        downloads=info.downloads or 0,
        likes=info.likes or 0,
        last_modified=info.last_modified.isoformat() if info.last_modified else None,
        tags=tuple(info.tags or ()),
        parameter_count=_int_or_none(gguf.get("total")),
        architecture=arch if isinstance(arch, str) else None,
        context_length=_int_or_none(gguf.get("context_length")),
    )


class HubClient:
    """Search and read a model hub. Thread-safe; one instance can serve the whole app.

    ``endpoint``, ``token`` and ``offline`` default to ``HF_ENDPOINT``, the token of
    ``HF_TOKEN`` / ``hf auth login`` and ``HF_HUB_OFFLINE``. ``cache_dir`` keeps header bytes
    across runs (memory only when None). In offline mode nothing is sent; cached headers are
    still served.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        cache_dir: Path | None = None,
        offline: bool | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        max_parallel: int = 6,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token
        self.offline = (
            offline
            if offline is not None
            else _env_flag("HF_HUB_OFFLINE") or hf_constants.is_offline_mode()
        )
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_parallel = max_parallel
        self._api = HfApi(endpoint=self.endpoint, token=token, library_name="quantdesk")
        self._cache = HeaderCache(Path(cache_dir) if cache_dir is not None else None)
        self._refs: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def set_token(self, token: str | None) -> None:
        """Send ``token`` from now on (None: huggingface_hub's own, HF_TOKEN or its login)."""
        self.token = token
        self._api.token = token

    # -- public API ----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        gguf_only: bool = True,
        sort: Literal["downloads", "likes", "recent"] = "downloads",
        limit: int = 50,
    ) -> list[ModelSummary]:
        """Models whose name contains ``query``, best first by ``sort`` (at most ``limit``)."""
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {sorted(_SORTS)}, not {sort!r}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: list[tuple[str, str]] = [("search", query)] if query else []
        params += [("sort", _SORTS[sort]), ("direction", "-1"), ("limit", str(limit))]
        params += [("filter", "gguf")] if gguf_only else []
        params += [("expand", field) for field in _SEARCH_FIELDS]
        items = self._call(lambda: self._get_json(f"{self.endpoint}/api/models", params))
        try:
            return [_summary(ModelInfo(**item)) for item in items[:limit]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HubError(
                f"The hub at {self.endpoint} sent a search result QuantDesk cannot read.",
                details=repr(exc),
            ) from None

    def list_gguf(self, repo_id: str, revision: str | None = None) -> RepoGGUF:
        """The GGUF files of a repository grouped by quantization, plus vision projectors."""
        info = self._call(
            lambda: self._api.model_info(
                repo_id, revision=revision, files_metadata=True, timeout=self.timeout
            ),
            repo_id=repo_id,
            revision=revision,
        )
        commit = info.sha if info.sha and _COMMIT_RE.match(info.sha) else None
        files = []
        for sib in info.siblings or []:
            size = sib.lfs.size if sib.lfs else sib.size
            sha256 = sib.lfs.sha256 if sib.lfs else None
            etag = sha256 or sib.blob_id
            files.append(self._file(repo_id, sib.rfilename, size, etag, commit, revision))
        if commit:
            self._remember_ref(repo_id, revision or DEFAULT_REVISION, commit)
            self._cache.put_pins(
                repo_id,
                commit,
                {f.path: (f.etag, f.size) for f in files if f.etag and f.path.endswith(".gguf")},
            )
        return group_gguf_files(repo_id, files, commit)

    def list_quants(self, repo_id: str, revision: str | None = None) -> list[QuantGroup]:
        """The quantizations of a repository's model, smallest download first."""
        return list(self.list_gguf(repo_id, revision).quants)

    def resolve_file(self, repo_id: str, path: str, revision: str | None = None) -> RemoteFile:
        """Size, LFS sha256 (as ETag), commit and URL of one file (one HEAD, or cached)."""
        return self._resolve(repo_id, path, revision)

    def stream_from(
        self, repo_id: str, f: RemoteFile, start: int, sink: Callable[[bytes], None]
    ) -> None:
        """Send the bytes of ``f`` from ``start`` to the end into ``sink``, chunk by chunk.

        A dropped connection or a server error is retried by the client's policy, each retry
        asking only for the bytes not yet received; errors are translated to HubError
        subclasses. A server that ignores Range raises HubError instead of sending wrong bytes.
        """
        position = [start]

        def request() -> None:
            headers = {**self._headers(), "Accept-Encoding": "identity"}
            if position[0]:
                headers["Range"] = f"bytes={position[0]}-"
            with get_session().stream("GET", f.url, headers=headers, timeout=self.timeout) as r:
                hf_raise_for_status(r)
                if position[0] and r.status_code != 206:
                    raise HubError(f"The hub ignored the resume request for {f.path}.")
                for chunk in r.iter_raw(4 << 20):
                    sink(chunk)
                    position[0] += len(chunk)

        self._call(request, repo_id=repo_id, path=f.path)

    def fetch_header(self, repo_id: str, path: str, revision: str | None = None) -> RemoteHeader:
        """The GGUF header of one file, read with range requests (or from the cache)."""
        return self._fetch(repo_id, self._resolve(repo_id, path, revision))

    def fetch_headers(self, repo_id: str, files: Sequence[RemoteFile]) -> list[RemoteHeader]:
        """Headers of several files (e.g. every part of a split model), read in parallel."""

        def one(f: RemoteFile) -> RemoteHeader:
            if f.commit is None or f.etag is None or f.size is None:
                f = self._resolve(repo_id, f.path, f.commit)
            return self._fetch(repo_id, f)

        if len(files) <= 1:
            return [one(f) for f in files]
        workers = min(self.max_parallel, len(files))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-header") as pool:
            return list(pool.map(one, files))

    def fetch_quant_headers(self, repo_id: str, group: QuantGroup) -> list[GGUFHeader]:
        """One header per file of a quantization (one per part of a split model), in order."""
        return [r.header for r in self.fetch_headers(repo_id, group.files)]

    # -- files and revisions -------------------------------------------------------------------

    def _file(
        self,
        repo_id: str,
        path: str,
        size: int | None,
        etag: str | None,
        commit: str | None,
        revision: str | None = None,
    ) -> RemoteFile:
        """A RemoteFile whose URL is pinned to ``commit`` when it is known."""
        sha256 = etag if etag and _SHA256_RE.match(etag) else None
        rev = commit or revision or DEFAULT_REVISION
        url = hf_hub_url(repo_id, path, revision=rev, endpoint=self.endpoint)
        return RemoteFile(path, size, sha256, url, etag, commit)

    def _remember_ref(self, repo_id: str, revision: str, commit: str) -> None:
        with self._lock:
            self._refs[(repo_id, revision)] = (commit, time.monotonic())
        self._cache.put_ref(repo_id, revision, commit)

    def _known_commit(self, repo_id: str, revision: str) -> str | None:
        if _COMMIT_RE.match(revision):
            return revision
        with self._lock:
            seen = self._refs.get((repo_id, revision))
        if seen and time.monotonic() - seen[1] < REF_TTL_S:
            return seen[0]
        return None

    def _pinned(self, repo_id: str, commit: str | None, path: str) -> RemoteFile | None:
        pin = self._cache.get_pin(repo_id, commit, path) if commit else None
        return self._file(repo_id, path, pin[1], pin[0], commit) if pin else None

    def _resolve(self, repo_id: str, path: str, revision: str | None) -> RemoteFile:
        """Commit, ETag and size of a file: from memory or disk when known, else one HEAD."""
        rev = revision or DEFAULT_REVISION
        commit = self._known_commit(repo_id, rev)
        pinned = self._pinned(repo_id, commit, path)
        if pinned is not None:
            return pinned
        url = hf_hub_url(repo_id, path, revision=rev, endpoint=self.endpoint)
        try:
            meta = self._call(
                lambda: get_hf_file_metadata(
                    url, token=self.token, timeout=self.timeout, endpoint=self.endpoint
                ),
                repo_id=repo_id,
                path=path,
                revision=revision,
            )
        except HubUnreachable:
            # Offline or down: a header cached for the commit last seen still answers.
            stale = self._pinned(repo_id, commit or self._cache.get_ref(repo_id, rev), path)
            if stale is not None:
                return stale
            raise
        if not meta.commit_hash or not meta.etag:
            raise HubError(
                f"{self.endpoint} did not answer like a Hugging Face hub (no commit or ETag for "
                f"{repo_id}/{path}); check the HF_ENDPOINT setting."
            )
        self._remember_ref(repo_id, rev, meta.commit_hash)
        etag = meta.etag.strip('"')
        if not _SHA256_RE.match(etag.lower()):  # no X-Linked-Etag: the listing has the sha256
            etag = self._listed_sha256(repo_id, meta.commit_hash, path) or meta.etag
        self._cache.put_pins(repo_id, meta.commit_hash, {path: (etag, meta.size)})
        return self._file(repo_id, path, meta.size, etag, meta.commit_hash)

    def _listed_sha256(self, repo_id: str, commit: str, path: str) -> str | None:
        """The LFS sha256 of ``path`` at ``commit`` from the hub's file listing, if it has one."""
        info = self._call(
            lambda: self._api.model_info(repo_id, revision=commit, files_metadata=True,
                                         timeout=self.timeout),  # fmt: skip
            repo_id=repo_id, revision=commit,
        )  # fmt: skip
        for sib in info.siblings or []:
            if sib.rfilename == path and sib.lfs and _SHA256_RE.match(sib.lfs.sha256 or ""):
                return sib.lfs.sha256
        return None

    # -- headers -------------------------------------------------------------------------------

    def _fetch(self, repo_id: str, f: RemoteFile) -> RemoteHeader:
        key = (repo_id, f.commit, f.path, f.etag) if f.commit and f.etag else None
        cached = self._cache.get_header(*key) if key else None
        if cached is not None and f.size is not None:
            try:
                return RemoteHeader(read_header(cached, f.size), 0, True)
            except (InvalidGGUF, NeedMoreBytes):
                pass  # a damaged cache entry: read the file again
        sent = [0]

        def fetch(start: int, end: int) -> tuple[bytes, int | None, int]:
            before = sent[0]
            data, total = self._call(
                lambda: self._get_range(f.url, start, end, sent), repo_id=repo_id, path=f.path
            )
            return data, total, sent[0] - before

        header, data, n = read_remote_header(fetch, f.size, f"{repo_id}/{f.path}")
        if key:
            self._cache.put_header(*key, data)
        return RemoteHeader(header, n, False)

    # -- HTTP ----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return build_hf_headers(token=self.token, library_name="quantdesk")

    def _get_json(self, url: str, params: list[tuple[str, str]]) -> Any:
        response = get_session().get(
            url, params=params, headers=self._headers(), timeout=self.timeout
        )
        hf_raise_for_status(response)
        return response.json()

    def _get_range(
        self, url: str, start: int, end: int, sent: list[int]
    ) -> tuple[bytes, int | None]:
        """Bytes ``start..end`` of a file and its total size; adds bytes received to ``sent``."""
        headers = {**self._headers(), "Range": f"bytes={start}-{end}"}
        headers["Accept-Encoding"] = "identity"
        want = end - start + 1
        session = get_session()
        with session.stream("GET", url, headers=headers, timeout=self.timeout) as response:
            hf_raise_for_status(response)
            if response.status_code == 206:
                match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
                if match is None or int(match[1]) != start:
                    raise HubError(
                        f"The hub sent the wrong part of {url}",
                        details=f"asked bytes={start}-{end}, got "
                        f"Content-Range: {response.headers.get('Content-Range')}",
                    )
                total = None if match[3] == "*" else int(match[3])
                skip = 0
            else:  # 200: the server ignored the Range header; read only what is needed
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                skip = start
            out = bytearray()
            for chunk in response.iter_bytes():
                sent[0] += len(chunk)
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                out += chunk
                if len(out) >= want:
                    break
        return bytes(out[:want]), total

    def _call(
        self,
        fn: Callable[[], T],
        *,
        repo_id: str | None = None,
        path: str | None = None,
        revision: str | None = None,
    ) -> T:
        """Run one hub request: retry server errors and dropped connections, translate errors."""
        if self.offline:
            raise self._offline_error()
        attempt = 0
        while True:
            try:
                return fn()
            except OfflineModeIsEnabled:
                raise self._offline_error() from None
            except HfHubHTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status in _RETRY_STATUS and attempt < self.retries:
                    attempt += 1
                    time.sleep(self._wait(attempt, exc.response))
                    continue
                raise translate_http_error(
                    exc, status, self.endpoint, repo_id, path, revision, attempt + 1,
                    token_sent=bool(self.token) or _has_default_token(),
                ) from None
            except httpx2.TransportError as exc:
                if attempt < self.retries:
                    attempt += 1
                    time.sleep(self._wait(attempt, None))
                    continue
                raise HubUnreachable(
                    f"Could not reach the model hub at {self.endpoint} "
                    f"({type(exc).__name__}: {exc or 'no answer'}). Check your internet "
                    "connection and the HF_ENDPOINT setting, or turn on offline mode "
                    "(HF_HUB_OFFLINE=1) to use only what is cached.",
                    details=repr(exc),
                ) from None
            except httpx2.TooManyRedirects as exc:
                raise HubError(
                    f"The model hub at {self.endpoint} sent {path or repo_id or 'the request'} "
                    "round a redirect loop (more than 20 redirects), so it cannot be fetched "
                    "now. Try again later; if it persists, check the HF_ENDPOINT setting or a "
                    "proxy in between.",
                    details=repr(exc),
                ) from None
            except httpx2.HTTPError as exc:  # anything else httpx refuses: said, not raised raw
                raise HubError(
                    f"The model hub at {self.endpoint} gave an answer QuantDesk cannot use "
                    f"({type(exc).__name__}: {exc}).",
                    details=repr(exc),
                ) from None

    def _wait(self, attempt: int, response: httpx2.Response | None) -> float:
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return self.backoff * 2 ** (attempt - 1)

    def _offline_error(self) -> HubUnreachable:
        return HubUnreachable(
            f"Offline mode is on (HF_HUB_OFFLINE), so the model hub at {self.endpoint} was not "
            "contacted and nothing about this model is cached. Turn offline mode off to browse "
            "and download models."
        )
