"""The HTTP side of :mod:`tests.support.fake_hub`: routes, JSON shapes, ranges, redirects,
faults.

JSON fields and headers follow what ``huggingface_hub`` reads (``hf_api.ModelInfo``,
``RepoSibling``, ``RepoFile``, ``file_download.get_hf_file_metadata``, ``utils/_http.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode

from tests.support.fake_hub import FakeHub, Fault, HubFile, HubRepo, Request

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SORT_KEYS = {
    "downloads": lambda r: r.downloads,
    "likes": lambda r: r.likes,
    "trendingScore": lambda r: r.likes,
    "lastModified": lambda r: r.last_modified,
    "createdAt": lambda r: r.created_at,
}
_SEARCH_DEFAULT_FIELDS = (
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive), UNSATISFIABLE, or None when the header is absent or ignored."""
    match = _RANGE_RE.match((header or "").replace(" ", ""))
    if match is None or (not match[1] and not match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
        if match[2] and end < start:
            return None  # syntactically invalid: ignored, as RFC 9110 says
        return UNSATISFIABLE if start >= size else (start, min(end, size - 1))
    suffix = int(match[2])
    return UNSATISFIABLE if suffix == 0 or size == 0 else (max(0, size - suffix), size - 1)


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


def _sibling(f: HubFile, blobs: bool) -> dict:
    entry: dict = {"rfilename": f.path}
    if blobs:
        entry.update(size=f.size, blobId=f.blob_oid)
        if f.lfs:
            entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
    return entry


def model_json(repo: HubRepo, fields: Iterable[str] | None, *, blobs: bool = False) -> dict:
    """A repository as /api/models answers: every field, or ``_id``, ``id`` and ``fields``."""
    owner = repo.repo_id.partition("/")[0]
    full = {
        "_id": repo.sha[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": owner,
        "sha": repo.sha,
        "lastModified": repo.last_modified,
        "createdAt": repo.created_at,
        "private": repo.private,
        "gated": "auto" if repo.gated else False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "trendingScore": repo.likes,
        "tags": list(repo.tags),
        "pipeline_tag": "text-generation",
        "library_name": "gguf" if repo.gguf else None,
        "siblings": [_sibling(f, blobs) for f in repo.files.values()],
        "usedStorage": sum(f.size for f in repo.files.values()),
    }
    if repo.gguf:
        full["gguf"] = repo.gguf
    if fields is None:
        return full
    return {k: full[k] for k in ("_id", "id", *fields) if k in full}


class HubHandler(BaseHTTPRequestHandler):
    """Answers one connection of the fake hub or of its CDN (``server.role``)."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the hub keeps its own request log."""

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    # -- dispatch ------------------------------------------------------------------------------

    def _handle(self) -> None:
        hub = self.server.hub  # type: ignore[attr-defined]
        raw_path, _, query = self.path.partition("?")
        self.segments = [unquote(s) for s in raw_path.split("/")[1:]]
        path = "/" + "/".join(self.segments)
        self.query = parse_qs(query, keep_blank_values=True)
        self.authorized = self.headers.get("Authorization") == f"Bearer {hub.token}"
        self.rec = hub.record(
            Request(
                self.server.role,
                self.command,
                path,
                query,  # type: ignore[attr-defined]
                self.headers.get("Range"),
                self.authorized,
            )
        )
        self.fault: Fault | None = hub.take_fault(self.command, path)
        if self.fault is not None:
            self.rec.fault = self.fault.kind
        try:
            if self.fault is not None and self.fault.kind == "status":
                self._error(
                    self.fault.code,
                    f"Injected HTTP {self.fault.code}",
                    self.fault.error_code,
                    retry_after=self.fault.retry_after,
                )
            elif self.fault is not None and self.fault.kind == "redirect_loop":
                self.send_response(302)  # back to the same URL, for ever
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.server.role == "cdn":  # type: ignore[attr-defined]
                self._cdn()
            else:
                self._route(hub)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, hub: FakeHub) -> None:
        seg = self.segments
        if seg[:2] == ["api", "models"] and len(seg) == 2:
            return self._search(hub)
        if seg[:2] == ["api", "models"] and len(seg) >= 4:
            return self._api_repo(hub, f"{seg[2]}/{seg[3]}", seg[4:])
        if len(seg) >= 5 and seg[2] == "resolve":
            return self._resolve(hub, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        self._error(404, "Not found")

    def _repo(self, hub: FakeHub, repo_id: str, revision: str | None) -> HubRepo | None:
        """The repository if it exists, is visible and has ``revision``; else answer an error."""
        repo = hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        elif repo.private and not self.authorized:
            self._error(401, "Invalid username or password.", "RepoNotFound")
        elif revision not in (None, "main", repo.sha):
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        else:
            return repo
        return None

    # -- API -----------------------------------------------------------------------------------

    def _search(self, hub: FakeHub) -> None:
        q = self.query
        repos = [r for r in hub.repos.values() if self.authorized or not r.private]
        for word in q.get("search", []):
            repos = [r for r in repos if word.lower() in r.repo_id.lower()]
        for tag in q.get("filter", []):
            repos = [r for r in repos if tag in r.tags]
        for author in q.get("author", []):
            repos = [r for r in repos if r.repo_id.startswith(author + "/")]
        sort = q.get("sort", ["trendingScore"])[-1]
        if sort in _SORT_KEYS:
            descending = q.get("direction", ["-1"])[-1] != "1"
            repos.sort(key=_SORT_KEYS[sort], reverse=descending)
        fields = q.get("expand", []) + q.get("expand[]", [])
        cursor = int(q.get("cursor", ["0"])[-1])
        limit = int(q["limit"][-1]) if "limit" in q else None
        page = repos[cursor : cursor + (limit or hub.page_size)]
        headers = {}
        if limit is None and cursor + hub.page_size < len(repos):
            rest = {k: v for k, v in q.items() if k != "cursor"}
            rest["cursor"] = [str(cursor + hub.page_size)]
            headers["Link"] = (
                f'<{hub.endpoint}/api/models?{urlencode(rest, doseq=True)}>; rel="next"'
            )
        body = [model_json(r, fields or _SEARCH_DEFAULT_FIELDS) for r in page]
        self._json(body, headers=headers)

    def _api_repo(self, hub: FakeHub, repo_id: str, rest: list[str]) -> None:
        if not rest or (rest[0] == "revision" and len(rest) == 2):
            repo = self._repo(hub, repo_id, rest[1] if rest else None)
            if repo is not None:
                fields = self.query.get("expand", []) + self.query.get("expand[]", [])
                blobs = _truthy(self.query.get("blobs"))
                self._json(model_json(repo, fields or None, blobs=blobs))
        elif rest[0] == "tree" and len(rest) >= 2:
            repo = self._repo(hub, repo_id, rest[1])
            if repo is not None:
                self._tree(repo, "/".join(rest[2:]).strip("/"))
        else:
            self._error(404, "Not found")

    def _tree(self, repo: HubRepo, folder: str) -> None:
        prefix = f"{folder}/" if folder else ""
        recursive = _truthy(self.query.get("recursive"))
        files, dirs = [], set()
        for f in repo.files.values():
            if not f.path.startswith(prefix):
                continue
            rest = f.path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                dirs.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                files.append(f)
        if folder and not files and not dirs:
            return self._error(404, f"{folder} does not exist", "EntryNotFound")
        body = [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(dirs)
        ]
        for f in files:
            entry = {"type": "file", "oid": f.blob_oid, "size": f.size, "path": f.path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            body.append(entry)
        self._json(body)

    # -- files ---------------------------------------------------------------------------------

    def _resolve(self, hub: FakeHub, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(hub, repo_id, revision)
        if repo is None:
            return
        commit = {"X-Repo-Commit": repo.sha}
        if repo.gated and not self.authorized:
            message = (
                f"Access to model {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            return self._error(401, message, "GatedRepo", extra=commit)
        f = repo.files.get(path)
        if f is None:
            return self._error(404, "Entry not found", "EntryNotFound", extra=commit)
        if not f.lfs:
            return self._send_file(f, {**commit, "ETag": f'"{f.blob_oid}"'})
        name = quote(path.rsplit("/", 1)[-1])
        location = f"{hub.cdn_endpoint}/lfs-files/{f.sha256}?filename={name}"
        body = f"Found. Redirecting to {location}".encode()
        headers = {
            **commit,
            "ETag": f'"{f.blob_oid}"',
            "X-Linked-Etag": f'"{f.sha256}"',
            "X-Linked-Size": str(f.size),
            "Location": location,
            "Content-Type": "text/plain",
            "Content-Length": str(len(body)),
        }
        if self.fault is not None and self.fault.kind == "no_linked_etag":
            del headers["X-Linked-Etag"]  # as some mirrors and proxies answer
        self._respond(302, headers, [body])

    def _cdn(self) -> None:
        seg = self.segments
        f = self.server.hub.lfs_file(seg[1]) if len(seg) == 2 and seg[0] == "lfs-files" else None  # type: ignore[attr-defined]
        if f is None:
            return self._error(404, "NoSuchKey")
        name = self.query.get("filename", [f.path.rsplit("/", 1)[-1]])[-1]
        self._send_file(
            f, {"ETag": f'"{f.sha256}"', "Content-Disposition": f'attachment; filename="{name}"'}
        )

    def _send_file(self, f: HubFile, headers: dict[str, str]) -> None:
        span = parse_range(self.headers.get("Range"), f.size)
        if span == UNSATISFIABLE:
            return self._error(
                416, "Requested range not satisfiable", extra={"Content-Range": f"bytes */{f.size}"}
            )
        start, end = span if isinstance(span, tuple) else (0, f.size - 1)
        status = 206 if isinstance(span, tuple) else 200
        headers = {
            **headers,
            "Accept-Ranges": "bytes",
            "Content-Length": str(end - start + 1),
            "Content-Type": "application/octet-stream",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{f.size}"
        self._respond(status, headers, f.chunks(start, end + 1), start)

    # -- responses -----------------------------------------------------------------------------

    def _respond(
        self, status: int, headers: dict[str, str], body: Iterable[bytes] = (), offset: int = 0
    ) -> None:
        """Status line and headers, then the body (GET only). Logged before it is sent, so a
        client never sees an answer that the request log does not show yet."""
        self.rec.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "GET":
            self._send_body(body, offset)

    def _json(self, data: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self._respond(
            status,
            {
                "Content-Type": "application/json; charset=utf-8",
                "Content-Length": str(len(body)),
                **(headers or {}),
            },
            [body],
        )

    def _error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        retry_after: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self._json({"error": message}, status, headers)

    def _send_body(self, chunks: Iterable[bytes], offset: int) -> None:
        """Write the body, applying a drop / slow / corrupt fault; count the bytes sent."""
        fault = self.fault
        for chunk in chunks:
            if fault is not None and fault.kind == "corrupt":
                lo, hi = max(fault.span[0], offset), min(fault.span[1], offset + len(chunk))
                if lo < hi:
                    flipped = bytes(b ^ 0xFF for b in chunk[lo - offset : hi - offset])
                    chunk = chunk[: lo - offset] + flipped + chunk[hi - offset :]
            offset += len(chunk)
            if fault is not None and fault.kind == "drop":
                room = fault.after_bytes - self.rec.bytes_sent
                if len(chunk) >= room:
                    self._write(chunk[: max(room, 0)])
                    self._abort()
                    return
            if fault is not None and fault.kind == "slow":
                step = max(1, int(fault.rate / 20))
                for pos in range(0, len(chunk), step):
                    self._write(chunk[pos : pos + step])
                    time.sleep(min(step, len(chunk) - pos) / fault.rate)
            else:
                self._write(chunk)

    def _write(self, data: bytes) -> None:
        self.rec.bytes_sent += len(data)  # counted first: the client may finish before we return
        try:
            self.wfile.write(data)
        except OSError:
            self.rec.bytes_sent -= len(data)
            raise

    def _abort(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class HubServer(ThreadingHTTPServer):
    """One listening socket of the fake hub (``role`` "hub" or "cdn"); tracks connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hub: FakeHub, role: str) -> None:
        self.hub = hub
        self.role = role
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, HubHandler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every kept-alive connection (a stopped hub must look gone to clients)."""
        with self._sockets_lock:
            sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
