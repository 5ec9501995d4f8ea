"""An OpenAI-compatible HTTP API over the loaded model (aiohttp): ``/v1/models``,
``/v1/chat/completions`` and ``/v1/completions``, streamed (server-sent events) or not, with usage
counts, stop sequences, sampling parameters and errors in OpenAI's format.

Requests queue on the one :class:`~quantdesk.engine.run.model_host.ModelHost` that owns the model.
The server binds 127.0.0.1 unless told otherwise, and refuses any other address without an API
key (a model server on the network must not be open to everyone). Web pages are kept out by the
Host, Origin and Content-Type checks of :mod:`~quantdesk.engine.serve._api_guard`; a client that
disconnects stops its generation.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from quantdesk.engine.chat.structured import SchemaError, grammar_for_response_format
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import ToolRequest, tool_request
from quantdesk.engine.errors import PromptTooLong, QuantDeskError, ToolError
from quantdesk.engine.events import STOP_EOS, GenerationStats, ThinkingText, TokenText, ToolCall
from quantdesk.engine.params import SamplingSettings
from quantdesk.engine.run.model_host import DONE, ModelHost
from quantdesk.engine.serve._api_guard import (
    CORS_HEADERS,
    CORS_METHODS,
    IDLE_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_REQUESTS_PER_CONNECTION,
    RequestPolicy,
)

ROLES = ("system", "user", "assistant", "tool")
MAX_STOP_SEQUENCES = 4  # as OpenAI's API


class ApiError(Exception):
    """A request the API refuses, in OpenAI's error format."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 kind: str = "invalid_request_error", code: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = (
            status, message, param, kind, code)  # fmt: skip

    def response(self) -> web.Response:
        """The JSON error response."""
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}  # fmt: skip
        return web.json_response(body, status=self.status)


class StopMatcher:
    """Cuts streamed text at the first stop sequence, holding back what could start one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that can be sent now (never part of a stop sequence)."""
        if self.stopped:
            return ""
        buffer = self._held + text
        hits = [(buffer.find(s), s) for s in self.stops if s in buffer]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(at for at, _ in hits)]
        keep = max((n for s in self.stops for n in range(1, len(s)) if buffer.endswith(s[:n])),
                   default=0)  # fmt: skip
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """What was held back, once the text has ended without a stop sequence."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


@dataclass
class _Request:
    messages: list[Message]
    sampling: SamplingSettings
    stops: list[str]
    stream: bool
    raw: bool
    include_usage: bool
    tools: ToolRequest | None = None


def _number(body: dict, name: str, kind: type, low: float, high: float, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not isinstance(value, int)):  # fmt: skip
        raise ApiError(400, f"'{name}' must be a number.", param=name)
    if not low <= value <= high:
        raise ApiError(400, f"'{name}' must be between {low} and {high}.", param=name)
    return kind(value)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(value) and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    raise ApiError(400, f"{where} must be a string or a list of text parts.", param=where)


def parse_request(body: Any, *, chat: bool) -> _Request:
    """Validate a request body into what the engine needs (ApiError for anything wrong)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    defaults = SamplingSettings()
    if chat:
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise ApiError(400, "'messages' must be a non-empty list.", param="messages")
        messages = [_message(m, i) for i, m in enumerate(raw_messages)]
        if messages[-1].role not in ("user", "tool"):
            raise ApiError(400, "The last message must be from the user (or a tool's result).",
                           param="messages")  # fmt: skip
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise ApiError(400, "'prompt' must be a string.", param="prompt")
        messages = [Message("user", prompt)]
    if body.get("n", 1) != 1:
        raise ApiError(400, "Only n=1 is supported.", param="n")
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(
            stops) > MAX_STOP_SEQUENCES:  # fmt: skip
        raise ApiError(400, f"'stop' must be a string or up to {MAX_STOP_SEQUENCES} strings.",
                       param="stop")  # fmt: skip
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    sampling = SamplingSettings(
        temperature=_number(body, "temperature", float, 0.0, 2.0, defaults.temperature),
        top_p=_number(body, "top_p", float, 0.0, 1.0, defaults.top_p),
        top_k=_number(body, "top_k", int, 0, 100_000, defaults.top_k),
        min_p=_number(body, "min_p", float, 0.0, 1.0, defaults.min_p),
        repeat_penalty=_number(body, "repeat_penalty", float, 0.5, 3.0, defaults.repeat_penalty),
        seed=_number(body, "seed", int, -1, 2**31 - 1, -1),
        max_tokens=_number({"max_tokens": limit}, "max_tokens", int, 1, 1 << 20,
                           defaults.max_tokens),  # fmt: skip
        thinking=_thinking(body),
        grammar=_grammar(body),
    )
    options = body.get("stream_options") or {}
    return _Request(messages, sampling, stops, bool(body.get("stream")), not chat,
                    bool(isinstance(options, dict) and options.get("include_usage")),
                    _tools(body) if chat else None)  # fmt: skip


def _message(m: Any, i: int) -> Message:
    """messages[i] of a chat request: a turn, an assistant's calls, or a tool's result."""
    if not isinstance(m, dict) or m.get("role") not in ROLES:
        raise ApiError(400, f"messages[{i}].role must be one of {', '.join(ROLES)}.",
                       param=f"messages[{i}].role")  # fmt: skip
    calls = m.get("tool_calls") if m["role"] == "assistant" else None
    if calls is not None and not isinstance(calls, list):
        raise ApiError(400, f"messages[{i}].tool_calls must be a list.",
                       param=f"messages[{i}].tool_calls")  # fmt: skip
    content = m.get("content")
    text = "" if content is None and calls else _content(content, f"messages[{i}].content")
    if m["role"] == "tool":
        ident = m.get("tool_call_id")
        if not isinstance(ident, str) or not ident:
            raise ApiError(400, f"messages[{i}] is a tool's result: it needs the "
                           "'tool_call_id' of the call it answers.",
                           param=f"messages[{i}].tool_call_id")  # fmt: skip
        return Message("tool", text, tool_call_id=ident, name=str(m.get("name") or ""))
    return Message(m["role"], text, tool_calls=tuple(
        _call(c, f"messages[{i}].tool_calls[{j}]") for j, c in enumerate(calls or ())))


def _call(call: Any, where: str) -> dict[str, str]:
    """One of an assistant message's ``tool_calls``, as :class:`Message` keeps it."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ApiError(400, f"{where} must be {{\"id\": …, \"type\": \"function\", "
                       "\"function\": {\"name\": …, \"arguments\": \"…\"}}.",
                       param=where)  # fmt: skip
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": str(call.get("id") or ""), "name": function["name"], "arguments": arguments}


def _tools(body: dict) -> ToolRequest | None:
    """The request's ``tools`` and ``tool_choice``; ones that cannot be used are a 400."""
    try:
        return tool_request(body.get("tools"), body.get("tool_choice"))
    except ToolError as exc:
        param = "tool_choice" if "tool_choice" in exc.message else "tools"
        raise ApiError(400, exc.message, param=param) from None


def _grammar(body: dict) -> str:
    """The grammar of the reply's ``response_format`` ("" for free text); a format or JSON
    Schema that cannot be used is a 400 that says why."""
    try:
        return grammar_for_response_format(body.get("response_format"))
    except SchemaError as exc:
        raise ApiError(400, exc.message, param="response_format") from None


def _thinking(body: dict) -> bool:
    """False when the request asks the template for no thinking, as llama-server reads it:
    ``"chat_template_kwargs": {"enable_thinking": false}``."""
    kwargs = body.get("chat_template_kwargs")
    if kwargs is None:
        return True
    if not isinstance(kwargs, dict) or not isinstance(kwargs.get("enable_thinking", True), bool):
        raise ApiError(400, "'chat_template_kwargs' must be an object; its 'enable_thinking' "
                       "true or false.", param="chat_template_kwargs")  # fmt: skip
    return kwargs.get("enable_thinking", True)


class OpenAIServer:
    """The aiohttp application over one :class:`ModelHost`."""

    def __init__(
        self, host: ModelHost, model_id: str | Callable[[], str], api_key: str | None = None,
        *, allowed_origins: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        """``model_id``: the served model's name, or a function giving the current one (the
        GUI serves whichever model is loaded). ``allowed_origins``: web pages that may call it
        (none by default; "*" for every one)."""
        self.host, self._model_id, self.api_key = host, model_id, api_key
        self.allowed_origins = allowed_origins
        self.policy = RequestPolicy.of("127.0.0.1", allowed_origins)  # RunningServer sets it
        self.created = int(time.time())
        self.log: list[str] = []  # one line per request: what a GUI request log shows
        self._served: dict[int, int] = {}  # requests per connection (by its transport)
        self.app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY_BYTES)
        self.app.on_response_prepare.append(self._cors_headers)
        self.app.add_routes([
            web.get("/v1/models", self.models),
            web.post("/v1/chat/completions", self.chat),
            web.post("/v1/completions", self.completions),
        ])  # fmt: skip

    @property
    def model_id(self) -> str:
        """The name the API gives the model being served."""
        return self._model_id() if callable(self._model_id) else self._model_id

    def listening_on(self, bind: str) -> None:
        """The address the server listens on: the Host names it accepts follow from it."""
        self.policy = RequestPolicy.of(bind, self.allowed_origins)

    def _guard(self, request: web.Request) -> web.StreamResponse | None:
        """A refusal for requests from where they must not come (or a preflight's answer)."""
        if not self.policy.host_allowed(request.headers.get("Host")):
            raise ApiError(400, "This server answers only requests addressed to it by its own "
                           "address (the Host header names another).", code="invalid_host")
        origin = request.headers.get("Origin")
        if origin is not None and not self.policy.origin_allowed(origin):
            raise ApiError(403, f"Requests from web pages at {origin} are refused. Add it to "
                           "the allowed origins (the Server page, or quantdesk serve "
                           "--allow-origin) to let it in.", code="origin_not_allowed")
        if request.method == "OPTIONS":  # a CORS preflight, from an allowed origin
            return web.Response(status=204)
        if request.method == "POST" and request.content_type != "application/json":
            raise ApiError(415, "Send the request body as JSON, with Content-Type: "
                           "application/json.", code="unsupported_media_type")
        return None

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and self.policy.origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Vary"] = "Origin"

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        started = time.monotonic()
        try:
            response = self._guard(request)
            if response is None:
                if self.api_key and (request.headers.get("Authorization")
                                     != f"Bearer {self.api_key}"):  # fmt: skip
                    raise ApiError(401, "Invalid API key.", code="invalid_api_key")
                response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            response = ApiError(exc.status, exc.reason or "Not found.").response()
        except PromptTooLong as exc:
            response = ApiError(400, exc.message, code="context_length_exceeded").response()
        except ToolError as exc:
            response = ApiError(400, exc.message, param="tools").response()
        except QuantDeskError as exc:
            response = ApiError(500, exc.message, kind="server_error").response()
        self._count(request, response)
        self.log.append(f"{request.method} {request.path} {response.status} "
                        f"{(time.monotonic() - started) * 1000:.0f} ms")  # fmt: skip
        return response

    async def models(self, _request: web.Request) -> web.Response:
        """``GET /v1/models``: the model served, or an empty list while none is loaded."""
        model_id = self.model_id
        return web.json_response({"object": "list", "data": [
            {"id": model_id, "object": "model", "created": self.created,
             "owned_by": "quantdesk"}] if model_id else []})  # fmt: skip

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        return await self._complete(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/completions``."""
        return await self._complete(request, chat=False)

    def _count(self, request: web.Request, response: web.StreamResponse) -> None:
        """Close a keep-alive connection after MAX_REQUESTS_PER_CONNECTION requests."""
        key = id(request.transport)
        self._served[key] = self._served.get(key, 0) + 1
        if self._served[key] >= MAX_REQUESTS_PER_CONNECTION:
            self._served.pop(key, None)
            response.force_close()
        if len(self._served) > 4 * MAX_REQUESTS_PER_CONNECTION:
            self._served.clear()  # connections come and go: forget the old ones

    async def _body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except RecursionError:
            raise ApiError(400, "The request body's JSON is nested too deeply.") from None
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None

    async def _events(self, req: _Request, chat: bool) -> AsyncIterator[object]:
        """The job's events on this event loop; the job is stopped if the caller goes away.
        A chat reply's thinking comes apart (ThinkingText), for ``reasoning_content``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        class Bridge:
            def put(self, item: object) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the server was stopped: the reply (max_tokens at most)
                    pass  # finishes unread instead of raising on the model's thread

        job = self.host.submit(req.messages, req.sampling, raw=req.raw, thinking_apart=chat,
                               events=Bridge(), tools=req.tools)  # fmt: skip
        try:
            while (item := await queue.get()) is not DONE:
                if isinstance(item, QuantDeskError):
                    raise item
                yield item
        finally:
            job.stop.set()  # a stop sequence, or the client left: the host moves on

    async def _complete(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        req = parse_request(await self._body(request), chat=chat)
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        created = int(time.time())
        kind = "chat.completion" if chat else "text_completion"
        matcher = StopMatcher(req.stops)
        stats: GenerationStats | None = None

        calls: list[ToolCall] = []

        def choice(text: str, finish: str | None, delta: bool, thinking: str = "") -> dict:
            if not chat:
                return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            key = "delta" if delta else "message"
            body = {"content": text} if delta else {"role": "assistant", "content": text}
            if thinking:  # as llama-server's --reasoning-format deepseek gives it
                body["reasoning_content"] = thinking
            if delta and thinking and not text:
                del body["content"]
            if calls and not delta:
                body["tool_calls"] = [_call_body(c) for c in calls]
                body["content"] = text or None
            return {"index": 0, key: body, "finish_reason": finish}

        def usage() -> dict:
            prompt = stats.prompt_tokens if stats else 0
            done = stats.completion_tokens if stats else 0
            return {"prompt_tokens": prompt, "completion_tokens": done,
                    "total_tokens": prompt + done}  # fmt: skip

        def finish_reason() -> str:
            if calls:
                return "tool_calls"
            if matcher.stopped or (stats is not None and stats.stop_reason == STOP_EOS):
                return "stop"
            return "length"

        if not req.stream:
            parts, thinking = [], []
            async for event in self._events(req, chat):
                if isinstance(event, ThinkingText):
                    thinking.append(event.text)
                elif isinstance(event, ToolCall):
                    calls.append(event)
                elif isinstance(event, TokenText) and not matcher.stopped:
                    parts.append(matcher.feed(event.text))
                    if matcher.stopped:
                        break
                elif isinstance(event, GenerationStats):
                    stats = event
            parts.append(matcher.flush())
            return web.json_response({
                "id": ident, "object": kind, "created": created, "model": self.model_id,
                "choices": [choice("".join(parts), finish_reason(), delta=False,
                                   thinking="".join(thinking).strip())],
                "usage": usage()})  # fmt: skip

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})  # fmt: skip
        await response.prepare(request)
        chunk_kind = "chat.completion.chunk" if chat else "text_completion"

        async def send(payload: dict) -> None:
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        def chunk(text: str, finish: str | None, thinking: str = "") -> dict:
            return {"id": ident, "object": chunk_kind, "created": created, "model": self.model_id,
                    "choices": [choice(text, finish, delta=True, thinking=thinking)]}  # fmt: skip

        if chat:
            first = chunk("", None)
            first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
            await send(first)
        async for event in self._events(req, chat):
            if isinstance(event, ThinkingText):
                await send(chunk("", None, thinking=event.text))
            elif isinstance(event, ToolCall):  # its name first, then its arguments
                calls.append(event)
                head, rest = _call_body(event, len(calls) - 1), {"index": len(calls) - 1}
                rest["function"] = {"arguments": head["function"]["arguments"]}
                head["function"]["arguments"] = ""
                for part in (head, rest):
                    delta = chunk("", None)
                    delta["choices"][0]["delta"] = {"tool_calls": [part]}
                    await send(delta)
            elif isinstance(event, TokenText) and not matcher.stopped:
                text = matcher.feed(event.text)
                if text:
                    await send(chunk(text, None))
                if matcher.stopped:
                    break
            elif isinstance(event, GenerationStats):
                stats = event
        if tail := matcher.flush():
            await send(chunk(tail, None))
        last = chunk("", finish_reason())
        if chat:
            last["choices"][0]["delta"] = {}
        await send(last)
        if req.include_usage:
            await send({"id": ident, "object": chunk_kind, "created": created,
                        "model": self.model_id, "choices": [], "usage": usage()})  # fmt: skip
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _call_body(call: ToolCall, index: int | None = None) -> dict:
    """A call as OpenAI's API gives it (``index`` in a streamed delta)."""
    function = {"name": call.name, "arguments": call.arguments}
    body: dict[str, Any] = {"id": call.id, "type": "function", "function": function}
    return body if index is None else {"index": index, **body}


def check_bind(bind: str, api_key: str | None) -> None:
    """Refuse to listen beyond this computer without an API key."""
    try:
        loopback = ipaddress.ip_address(bind).is_loopback
    except ValueError:
        loopback = bind == "localhost"
    if not loopback and not api_key:
        raise QuantDeskError(
            f"Listening on {bind} makes the model reachable from other computers: give an API "
            "key (--api-key) so that only those who have it can use it."
        )


class RunningServer:
    """An :class:`OpenAIServer` served on its own thread and event loop."""

    def __init__(self, server: OpenAIServer, bind: str = "127.0.0.1", port: int = 0, *,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:  # fmt: skip
        check_bind(bind, server.api_key)
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        server.listening_on(bind)
        # a client that disconnects cancels its handler, which stops its generation
        self._runner = web.AppRunner(server.app, access_log=None, handler_cancellation=True,
                                     keepalive_timeout=idle_timeout_s)  # fmt: skip
        self.port = port
        self.bind = bind
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="openai-server", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise QuantDeskError(f"The server could not listen on {bind}:{port}: {self._error}")

    @property
    def url(self) -> str:
        """The API's base URL (what an OpenAI client takes as ``base_url``)."""
        return f"http://{self.bind}:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.bind, self.port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the port chosen for 0
        except OSError as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        """Stop listening (requests in flight are cut)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
