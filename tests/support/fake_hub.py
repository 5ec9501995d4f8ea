"""A local Hugging Face Hub for tests and offline demos: a real HTTP server on 127.0.0.1.

It speaks the part of the Hub API that ``huggingface_hub`` uses to search models
(``/api/models``), describe a repository (``/api/models/{repo}[/revision/{rev}]``, with
``blobs=true`` sizes and LFS hashes), list its tree (``/api/models/{repo}/tree/{rev}``) and
download files (``/{repo}/resolve/{rev}/{path}``: HEAD and GET, ``X-Repo-Commit``,
``X-Linked-Etag`` = the LFS sha256, ``X-Linked-Size``, and for LFS files a 302 to a second
"CDN" server, ``/lfs-files/{sha256}``, as the real Hub redirects to its CDN). Both honour
``Range`` (206 with ``Content-Range``, 416 past the end).

Tests inject faults per request path (:meth:`FakeHub.inject`) and read what was served
(:meth:`FakeHub.requests`, :meth:`FakeHub.bytes_served`).

Run it by hand for offline demos::

    .venv/bin/python -m tests.support.fake_hub --port 8808            # the generated demo repos
    .venv/bin/python -m tests.support.fake_hub --port 8808 --dir DIR  # DIR/owner/name/... as repos
    HF_ENDPOINT=http://127.0.0.1:8808 .venv/bin/quantdesk search llama

See docs/fake_hub.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.fake_hub_http import HubServer

LFS_THRESHOLD = 10 * 1024 * 1024
"""Files at least this large (and every .gguf) are stored in LFS, as on the Hub."""
FAKE_TOKEN = "hf_fake_hub_token"
META_FILE = ".fakehub.json"


@dataclass(frozen=True)
class HubFile:
    """One file of a fake repository, served from ``local`` or from ``content``."""

    path: str
    size: int
    sha256: str
    blob_oid: str
    lfs: bool
    local: Path | None = None
    content: bytes | None = None

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file git would store for this file."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {self.size}\n"
        ).encode()

    def chunks(self, start: int, end: int, chunk: int = 1 << 16) -> Iterator[bytes]:
        """The bytes ``start..end-1`` in pieces."""
        if self.content is not None:
            for pos in range(start, end, chunk):
                yield self.content[pos : min(end, pos + chunk)]
            return
        assert self.local is not None
        with open(self.local, "rb") as f:
            f.seek(start)
            left = end - start
            while left > 0:
                data = f.read(min(chunk, left))
                if not data:
                    raise OSError(f"{self.local} is shorter than {self.size} bytes")
                left -= len(data)
                yield data


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hub_file(path: str, source: Path | bytes, lfs: bool | None = None) -> HubFile:
    """Describe a file for a repository: sizes and hashes are computed from the real bytes."""
    sha = hashlib.sha256()
    if isinstance(source, bytes):
        sha.update(source)
        size, local, content = len(source), None, source
    else:
        local, content, size = Path(source), None, 0
        with open(local, "rb") as f:
            while block := f.read(1 << 22):
                sha.update(block)
                size += len(block)
    if lfs is None:
        lfs = path.endswith(".gguf") or size >= LFS_THRESHOLD
    digest = sha.hexdigest()
    probe = HubFile(path, size, digest, "", lfs, local, content)
    if lfs:
        oid = _git_oid(probe.pointer)
    else:
        oid = _git_oid(content if content is not None else Path(source).read_bytes())
    return HubFile(path, size, digest, oid, lfs, local, content)


def gguf_summary(files: list[HubFile]) -> dict | None:
    """The Hub's ``gguf`` field (total parameters, architecture, context) for a repository.

    Read from the first model file (all its parts when it is split).
    """
    from quantdesk.engine.gguf.reader import read_header_from_file

    models = sorted(
        (f for f in files if f.path.endswith(".gguf") and "mmproj" not in f.path.lower()),
        key=lambda f: f.path,
    )
    if not models or models[0].local is None:
        return None
    first = models[0]
    stem = first.path.split("-00001-of-")[0]
    parts = [f for f in models if f is first or f.path.startswith(stem + "-000")]
    headers = [read_header_from_file(f.local) for f in parts if f.local is not None]
    meta = headers[0].metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        return None
    info: dict = {"total": sum(t.n_elements for h in headers for t in h.tensors)}
    info["architecture"] = arch
    if isinstance(meta.get(f"{arch}.context_length"), int):
        info["context_length"] = meta[f"{arch}.context_length"]
    return info


@dataclass
class HubRepo:
    """A repository of the fake hub (a single commit, ``sha``)."""

    repo_id: str
    files: dict[str, HubFile]
    sha: str
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2024-01-01T00:00:00.000Z"
    created_at: str = "2023-06-01T00:00:00.000Z"
    tags: tuple[str, ...] = ()
    gated: bool = False
    private: bool = False
    gguf: dict | None = None


@dataclass(frozen=True)
class Fault:
    """Something that goes wrong with matching requests; ``times`` None means every time.

    kinds: ``status`` (answer ``code``, with ``retry_after`` and ``error_code`` headers),
    ``redirect_loop`` (a 302 back to the same URL), ``no_linked_etag`` (a file's answer
    without the ``X-Linked-Etag`` that carries its sha256),
    ``drop`` (close the connection after ``after_bytes`` of the body), ``slow`` (send the body
    at ``rate`` bytes/s), ``corrupt`` (flip the bytes at file offsets ``span``).
    """

    kind: str
    code: int = 0
    retry_after: int | None = None
    error_code: str | None = None
    after_bytes: int = 0
    rate: float = 0.0
    span: tuple[int, int] = (0, 0)
    times: int | None = 1


def http_status(
    code: int,
    *,
    retry_after: int | None = None,
    error_code: str | None = None,
    times: int | None = 1,
) -> Fault:
    """Answer with an HTTP error status (404 and 401 carry the Hub's ``X-Error-Code``)."""
    if error_code is None:
        error_code = {404: "RepoNotFound", 401: "RepoNotFound", 403: "GatedRepo"}.get(code)
    return Fault("status", code=code, retry_after=retry_after, error_code=error_code, times=times)


def drop_after(n_bytes: int, *, times: int | None = 1) -> Fault:
    """Send the headers and ``n_bytes`` of the body, then close the connection."""
    return Fault("drop", after_bytes=n_bytes, times=times)


def no_linked_etag(*, times: int | None = None) -> Fault:
    """Answer a file's resolve request without its ``X-Linked-Etag`` header."""
    return Fault("no_linked_etag", times=times)


def redirect_loop(*, times: int | None = None) -> Fault:
    """Answer 302 with the request's own URL as the Location (clients give up at their limit)."""
    return Fault("redirect_loop", times=times)


def slow(bytes_per_s: float, *, times: int | None = None) -> Fault:
    """Send the body at ``bytes_per_s``."""
    return Fault("slow", rate=bytes_per_s, times=times)


def corrupt(start: int, end: int, *, times: int | None = 1) -> Fault:
    """Flip every bit of the file bytes ``start..end-1`` in the response body."""
    return Fault("corrupt", span=(start, end), times=times)


@dataclass
class Request:
    """One request the hub answered (``bytes_sent`` counts body bytes only)."""

    server: str
    method: str
    path: str
    query: str
    range: str | None
    authorized: bool
    status: int = 0
    bytes_sent: int = 0
    fault: str | None = None


@dataclass
class _Injection:
    glob: str
    fault: Fault
    methods: tuple[str, ...]
    left: int | None = field(default=None)


class FakeHub:
    """The fake hub: the API server plus a CDN server for LFS files, both on 127.0.0.1."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = FAKE_TOKEN,
        page_size: int = 1000,
    ) -> None:
        self.host, self.port, self.token, self.page_size = host, port, token, page_size
        self.repos: dict[str, HubRepo] = {}
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._faults: list[_Injection] = []
        self._servers: list[HubServer] = []
        self._threads: list[threading.Thread] = []

    # -- repositories --------------------------------------------------------------------------

    def add_repo(
        self, repo_id: str, files: Mapping[str, Path | bytes] | Iterable[HubFile], **meta: object
    ) -> HubRepo:
        """Add (or replace, with a new commit) a repository; ``meta`` sets HubRepo fields."""
        items = [hub_file(p, s) for p, s in files.items()] if isinstance(files, Mapping) else files
        by_path = {f.path: f for f in sorted(items, key=lambda f: f.path)}
        listing = "".join(f"{p} {f.blob_oid}\n" for p, f in by_path.items())
        sha = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        repo = HubRepo(repo_id, by_path, sha, **meta)  # type: ignore[arg-type]
        if repo.gguf is None:
            repo.gguf = gguf_summary(list(by_path.values()))
        if repo.gguf and "gguf" not in repo.tags:
            repo.tags = ("gguf", *repo.tags)
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    def add_folder(self, root: Path) -> list[HubRepo]:
        """Serve ``root/owner/name/**`` as repositories (metadata from ``.fakehub.json``)."""
        added = []
        for repo_dir in sorted(p for p in Path(root).glob("*/*") if p.is_dir()):
            meta_path = repo_dir / META_FILE
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            files = {
                p.relative_to(repo_dir).as_posix(): p
                for p in sorted(repo_dir.rglob("*"))
                if p.is_file() and p.name != META_FILE
            }
            meta["tags"] = tuple(meta.get("tags", ()))
            added.append(self.add_repo(f"{repo_dir.parent.name}/{repo_dir.name}", files, **meta))
        return added

    def lfs_file(self, sha256: str) -> HubFile | None:
        """The LFS file with this hash, in any repository."""
        with self._lock:
            repos = list(self.repos.values())
        for repo in repos:
            for f in repo.files.values():
                if f.lfs and f.sha256 == sha256:
                    return f
        return None

    # -- faults and the request log ------------------------------------------------------------

    def inject(
        self, path_glob: str, fault: Fault, methods: Iterable[str] = ("GET", "HEAD")
    ) -> None:
        """Apply ``fault`` to requests whose path (no query) matches ``path_glob`` (fnmatch)."""
        with self._lock:
            self._faults.append(_Injection(path_glob, fault, tuple(methods), fault.times))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first injected fault matching this request (using up one of its times)."""
        with self._lock:
            for inj in self._faults:
                if method in inj.methods and fnmatch.fnmatchcase(path, inj.glob):
                    if inj.left is not None:
                        inj.left -= 1
                        if inj.left <= 0:
                            self._faults.remove(inj)
                    return inj.fault
        return None

    def record(self, request: Request) -> Request:
        """Add a request to the log (the handler fills in status and bytes)."""
        with self._lock:
            self._log.append(request)
        return request

    def requests(self, path_glob: str = "*", method: str | None = None) -> list[Request]:
        """Requests answered so far whose path matches ``path_glob``."""
        with self._lock:
            log = list(self._log)
        return [
            r
            for r in log
            if fnmatch.fnmatchcase(r.path, path_glob) and (method is None or r.method == method)
        ]

    def bytes_served(self, path_glob: str = "*") -> int:
        """Body bytes sent for requests matching ``path_glob``."""
        return sum(r.bytes_sent for r in self.requests(path_glob))

    def reset_log(self) -> None:
        """Forget the requests answered so far."""
        with self._lock:
            self._log.clear()

    # -- server life ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The hub's base URL (what HF_ENDPOINT should be)."""
        return f"http://{self.host}:{self._servers[0].server_address[1]}"

    @property
    def cdn_endpoint(self) -> str:
        """Base URL of the CDN server that LFS downloads are redirected to."""
        return f"http://{self.host}:{self._servers[1].server_address[1]}"

    def start(self) -> FakeHub:
        """Start listening (port 0 picks a free port)."""
        if self._servers:
            return self
        from tests.support.fake_hub_http import HubServer

        for role, port in (("hub", self.port), ("cdn", 0)):
            server = HubServer((self.host, port), self, role)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-{role}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers and close open connections: afterwards connections are refused."""
        for server in self._servers:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.fake_hub --port 8808 [--dir DIR]``: serve until Ctrl+C."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8808)
    parser.add_argument("--dir", type=Path, help="Serve DIR/owner/name/... instead of the demo.")
    args = parser.parse_args(argv)
    hub = FakeHub(port=args.port)
    with tempfile.TemporaryDirectory(prefix="fake-hub-") as tmp:
        if args.dir:
            hub.add_folder(args.dir)
        else:
            from tests.support.hub_fixtures import build_demo_repos

            hub.add_folder(build_demo_repos(Path(tmp)))
        with hub:
            print(f"Fake hub at {hub.endpoint} (CDN {hub.cdn_endpoint}), token {hub.token}")
            for repo in hub.repos.values():
                print(f"  {repo.repo_id}  ({len(repo.files)} files, commit {repo.sha[:7]})")
            print(f"Try: HF_ENDPOINT={hub.endpoint} .venv/bin/quantdesk search llama", flush=True)
            # SIGTERM ends the wait like Ctrl+C, so the demo files are removed.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
