"""Models on another server that speaks OpenAI's API (llama-server, Ollama, LM Studio, vLLM, or
another QuantDesk): list its models and stream a chat reply as the same events a local model
gives (TokenText..., then GenerationStats).

Through httpx (httpx2, the one huggingface_hub ships): explicit timeouts, the proxy settings of
the environment, server-sent events read line by line, and a connection that drops before the
stream's end raised as an error (the chat keeps and marks the partial reply) instead of passing
for a finished reply. A stop request closes the connection, which also stops the server's
generation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx2

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import ToolRequest
from quantdesk.engine.errors import GenerationError, QuantDeskError, ToolError
from quantdesk.engine.events import (
    STOP_EOS,
    STOP_LENGTH,
    STOP_USER,
    GenerationEvent,
    GenerationStats,
    ThinkingText,
    TokenText,
)
from quantdesk.engine.params import SamplingSettings

TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


class RemoteError(QuantDeskError):
    """The remote server could not be reached, refused the request, or answered nonsense."""


class RemoteStreamCut(GenerationError):
    """The server's reply stopped before its end (the connection dropped mid-stream)."""


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: its base URL (``http://host:port/v1``) and API key."""

    url: str
    api_key: str | None = None

    def _base(self) -> str:
        parts = urlsplit(self.url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"'{self.url}' is not an http(s) URL such as http://host:8080/v1.")
        return self.url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _client(self, timeout: float) -> httpx2.Client:
        return httpx2.Client(timeout=httpx2.Timeout(timeout, connect=min(timeout,
                                                                         CONNECT_TIMEOUT_S)),
                             headers=self._headers(), trust_env=True)  # fmt: skip

    def _unreachable(self, exc: httpx2.HTTPError) -> RemoteError:
        return RemoteError(f"Could not reach {self.url}: {exc or type(exc).__name__}.")

    def _check(self, response: httpx2.Response) -> None:
        if response.status_code < 400:
            return
        try:
            said = json.loads(response.read().decode("utf-8", "replace"))["error"]["message"]
        except (ValueError, KeyError, TypeError, httpx2.HTTPError):
            said = response.reason_phrase
        if response.status_code == 401:
            raise RemoteError(f"{self.url} refused the API key ({said}).")
        raise RemoteError(f"{self.url} answered {response.status_code}: {said}")

    def models(self, timeout: float = TIMEOUT_S) -> list[str]:
        """The ids of the models the server offers."""
        base = self._base()
        try:
            with self._client(timeout) as client:
                response = client.get(base + "/models")
                self._check(response)
                data = response.json()["data"]
        except httpx2.HTTPError as exc:
            raise self._unreachable(exc) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteError(f"{self.url} answered /models with something else.") from exc
        try:
            return [str(m["id"]) for m in data]
        except (KeyError, TypeError) as exc:
            raise RemoteError(f"{self.url} answered /models with something else.") from exc

    def stream_chat(self, model: str, messages: Sequence[Message], sampling: SamplingSettings,
                    stop: threading.Event,
                    thinking_apart: bool = False) -> Iterator[GenerationEvent]:  # fmt: skip
        """Stream a chat reply from ``model``: TokenText events, then GenerationStats; with
        ``thinking_apart``, the ``reasoning_content`` a server sends (llama-server, QuantDesk)
        as ThinkingText, else it is left out.

        RemoteStreamCut when the connection drops before the stream's end (after the text
        that did arrive)."""
        body: dict[str, Any] = {
            "model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }  # fmt: skip
        if sampling.seed >= 0:
            body["seed"] = sampling.seed
        if not sampling.thinking:  # as llama-server (and QuantDesk's server) read it
            body["chat_template_kwargs"] = {"enable_thinking": False}
        base = self._base()
        started = time.perf_counter()
        first_at, pieces, finish, usage, ended_well = None, 0, None, {}, False
        try:
            with self._client(TIMEOUT_S) as client, client.stream(
                "POST", base + "/chat/completions", json=body
            ) as response:
                self._check(response)
                for line in response.iter_lines():
                    if stop.is_set():
                        finish, ended_well = "user", True
                        break
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        ended_well = True
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError as exc:
                        raise RemoteError(
                            f"{self.url} sent a stream this app cannot read."
                        ) from exc
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        thought = (delta.get("reasoning_content") or "") if thinking_apart else ""
                        text = delta.get("content") or ""
                        if text or thought:
                            first_at = first_at or time.perf_counter()
                            pieces += 1
                        if thought:
                            yield ThinkingText(thought)
                        if text:
                            yield TokenText(text)
                        finish = choice.get("finish_reason") or finish
        except (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ReadTimeout) as exc:
            if pieces or first_at:
                raise RemoteStreamCut(
                    f"The connection to {urlsplit(self.url).netloc} dropped in the middle of "
                    "the reply: what arrived is kept, marked unfinished.", repr(exc),
                ) from exc
            raise self._unreachable(exc) from exc
        except httpx2.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if not ended_well and finish is None:
            # the server closed the stream cleanly but never said it was done: not a whole reply
            raise RemoteStreamCut(
                f"{urlsplit(self.url).netloc} ended the reply without finishing it: what arrived "
                "is kept, marked unfinished."
            )
        ended = time.perf_counter()
        produced = int(usage.get("completion_tokens", pieces))
        reason = {"stop": STOP_EOS, "length": STOP_LENGTH, "user": STOP_USER}.get(
            finish or "", STOP_EOS)  # fmt: skip
        decode_s = ended - first_at if first_at else 0.0
        yield GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens", 0)), completion_tokens=produced,
            time_to_first_token_s=(first_at or ended) - started, total_s=ended - started,
            decode_tokens_per_s=(produced - 1) / decode_s if produced > 1 and decode_s else 0.0,
            stop_reason=reason, context_used=0, context_size=0,
        )  # fmt: skip


#: What the key of a remote model starts with (library rows, chat history, presets).
REMOTE_KEY_PREFIX = "remote/"


@dataclass(frozen=True)
class RemoteModel:
    """One model offered by a remote server."""

    endpoint: Endpoint
    model: str

    @property
    def key(self) -> str:
        """Stands for the model where a local one has its path: ``remote/<url>/<model id>``
        (both quoted, so it is also a valid relative path; never holds the API key)."""
        url, model = quote(self.endpoint.url, safe=""), quote(self.model, safe="")
        return f"{REMOTE_KEY_PREFIX}{url}/{model}"

    @property
    def host(self) -> str:
        """``host:port`` of the server, for labels."""
        return urlsplit(self.endpoint.url).netloc


def parse_remote_key(key: str) -> tuple[str, str] | None:
    """(server URL, model id) of a :attr:`RemoteModel.key`; None for anything else."""
    if not key.startswith(REMOTE_KEY_PREFIX):
        return None
    parts = key[len(REMOTE_KEY_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return unquote(parts[0]), unquote(parts[1])


def normalized_url(text: str) -> str:
    """A server address as typed (``localhost:8080``, ``http://host:8080``,
    ``http://host:8080/v1/``) as the base URL of its OpenAI API (``http://host:8080/v1``)."""
    url = text.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"'{text.strip()}' is not a server address such as http://host:8080.")
    if not parts.path.rstrip("/").endswith("/v1"):
        url += "/v1"
    return url


class RemoteSession:
    """A remote model in the place of a loaded one: the same ``generate`` as
    :class:`~quantdesk.engine.run.session.InferenceSession` (chat only: the server applies its own
    chat template; there is no raw completion or Continue)."""

    mode = "chat"

    def __init__(self, remote: RemoteModel) -> None:
        """Checks that the server answers and still offers the model (RemoteError if not)."""
        offered = remote.endpoint.models()
        if remote.model not in offered:
            raise RemoteError(
                f"{remote.endpoint.url} no longer offers '{remote.model}'"
                + (f" (it offers {', '.join(offered[:5])})." if offered else ".")
            )
        self.remote = remote

    def generate(self, messages: Sequence[Message], sampling: SamplingSettings,
                 stop: threading.Event, prefill: str = "", raw: bool = False,
                 thinking_apart: bool = False,
                 tools: ToolRequest | None = None) -> Iterator[GenerationEvent]:  # fmt: skip
        """Stream the server's reply to ``messages``: TokenText events (ThinkingText too, with
        ``thinking_apart``), then GenerationStats."""
        if tools is not None:
            raise ToolError(f"'{self.remote.model}' runs on {self.remote.host}: tools cannot "
                            "be passed on to it from here; call that server directly.")
        if prefill or raw:
            what = "continued" if prefill else "completed as plain text (no chat template)"
            raise GenerationError(
                f"'{self.remote.model}' runs on {self.remote.host}, which applies its own chat "
                f"template: its replies cannot be {what} from here."
            )
        return self.remote.endpoint.stream_chat(self.remote.model, messages, sampling, stop,
                                                thinking_apart)

    def close(self) -> None:
        """Nothing to free: the model lives on the server."""
