"""Who may talk to the local API server: the checks that keep web pages out.

A page in the user's browser can send requests to ``http://127.0.0.1:<port>`` (a "simple"
cross-site POST with ``Content-Type: text/plain`` needs no CORS preflight), and with DNS
rebinding it can read the answers too - the class of Ollama's CVE-2024-28224. As the trusted
local servers do, the server therefore accepts only ``Host`` values that name the address it
listens on, refuses requests whose ``Origin`` is not on an allow-list (empty by default, like
``OLLAMA_ORIGINS``), answers CORS preflights for allowed origins only, and takes JSON bodies
only as ``application/json``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BODY_BYTES = 16 * 1024 * 1024
"""A prompt filling a 128k-token context is well under this."""
IDLE_TIMEOUT_S = 15.0
"""A connection that has not sent a whole request (or a next one) by then is closed: half-open
connections cannot pile up (aiohttp's own default is 75 s)."""
MAX_REQUESTS_PER_CONNECTION = 1000
"""After this many requests on one keep-alive connection the server closes it."""
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or IPv6 brackets."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8080
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        return value.rsplit(":", 1)[0]
    return value


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address in LOOPBACK_NAMES or address.endswith(".localhost")


def _is_any(address: str) -> bool:
    return address in ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class RequestPolicy:
    """The server's address and the web origins allowed to call it."""

    bind: str = "127.0.0.1"
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, bind: str, origins: Iterable[str] = ()) -> RequestPolicy:
        """A policy for a server on ``bind``; ``origins`` as users write them ("*" for all)."""
        cleaned = tuple(o.strip().rstrip("/").lower() for o in origins if o.strip())
        return cls(bind.strip().lower(), cleaned)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header names the server itself: on a loopback
        address only loopback names pass (a rebinding page's host does not); a server open on
        every address takes any (it requires an API key there)."""
        if header is None or not header.strip():
            return True  # HTTP/1.0 clients: no browser sends a request without Host
        name = host_name(header)
        if _is_any(self.bind):
            return True
        if _is_loopback(self.bind):
            return _is_loopback(name)
        return name == host_name(self.bind)

    def origin_allowed(self, origin: str) -> bool:
        """Whether a web page at ``origin`` may call the server."""
        value = origin.strip().rstrip("/").lower()
        return "*" in self.allowed_origins or value in self.allowed_origins
