"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LiteLLM, ...) through the official
`openai` SDK (`AsyncOpenAI`, which speaks HTTPX2 since openai 3.0), over an aiohttp transport
(app/upstreams/transport.py: the upstream read per chunk in C, the dead-peer socket options kept).

What is sent: the client's own body (unknown fields included), changed only where
`app.upstreams.contract` says so, to the upstream's `POST /chat/completions` (or `/responses` with
UPSTREAM_RESPONSES=native); non-streaming requests go as non-streaming (`complete`).

The hot path: the SDK sends the request and checks the status (its documented "undocumented
endpoints" call `client.post(..., stream=True, stream_cls=...)`), then `RawEvents` reads the
event bytes off its raw HTTP response: no pydantic model per chunk. For POST /v1/chat/completions
(`Generation.passthrough`) a chunk is not even parsed unless a byte check (`_unsettled`) finds a
finish reason, usage or an error in it: its bytes are relayed as they came (`Chunk.raw`). The
translating endpoints parse each chunk for its text and tool calls. Relies on
`AsyncStream.__stream__` and `drain_response_async` of the pinned openai.

Cancellation: `aclose()` closes the upstream HTTP response at once, which closes its connection
(the signal vLLM, Ollama and TGI abort generation on). The streaming core calls it in a shielded
`finally`, whatever ended the stream; it is never left to garbage collection.

Errors become `UpstreamError`: HTTP statuses keep their status and the upstream's error object
(type, code, param; the message key-redacted, replaced for 401/403); connection failures
become 502 `upstream_error`; connect and read timeouts become 504 `upstream_timeout`; after the
first byte the streaming core turns the same errors into one in-band `error` event. Only connect
errors (refused, connect timeout) are retried, only before the first byte, at most
UPSTREAM_CONNECT_RETRIES times; the SDK's own retries are off (they would also retry 429/5xx and
read timeouts).

Key hygiene: the API key lives only in the SDK client. Every relayed chunk and non-streamed body
has the key replaced (one substring search per chunk; a hostile or careless upstream may echo it),
error texts too, 401/403 texts are replaced, and exceptions are re-raised without their SDK cause
(whose message can hold the upstream's raw body).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, AsyncOpenAI, AsyncStream
from openai._streaming_cleanup import drain_response_async

from app.ending import Ending
from app.settings import Settings
from app.upstreams.base import Chunk, Generation, UpstreamError
from app.upstreams.transport import upstream_http_client

log = logging.getLogger("app.upstream")

# Pause between connect attempts (refused or connect timeout); a restarting upstream needs a moment.
RETRY_BACKOFF_SECONDS = 0.25
# Longest upstream error text relayed to clients.
MAX_MESSAGE_CHARS = 500
# A request for a model the upstream did not list re-reads the list at most this often.
MODELS_RELIST_SECONDS = 5.0


class RawEvents(AsyncStream[bytes]):
    """The `data` of each upstream SSE event as bytes, read straight off the SDK's HTTP response.

    This is the per-token hot path, so it replaces the SDK's general decoder (a regex line
    splitter, a str per line, an object per event: about 30 µs a chunk here) with a split on the
    blank line that ends each event. It keeps the SSE rules OpenAI-compatible servers rely on:
    CRLF or CR line ends, comments, other fields ignored, multi-line `data`. `done` tells a clean
    end (`data: [DONE]`, after which the body is drained so the connection can be reused) from a
    connection that just stopped. httpx2 errors propagate (timeouts, broken connections).
    """

    done = False

    async def __stream__(self) -> AsyncIterator[bytes]:
        response = self.response
        split = EventSplitter()
        try:
            async for received in response.aiter_bytes():
                for data in split(received):
                    if data == b"[DONE]":
                        self.done = True
                        await drain_response_async(response)
                        return
                    yield data
        finally:
            await response.aclose()


class EventSplitter:
    """Bytes of an SSE body in, the `data` of each complete event out (SSE line rules kept)."""

    def __init__(self) -> None:
        self._pending = b""  # an incomplete event, line ends already normalized to LF
        self._after_cr = False  # the last read ended with CR: a LF opening the next one is its pair

    def __call__(self, received: bytes) -> list[bytes]:
        if self._after_cr and received.startswith(b"\n"):
            received = received[1:]
        self._after_cr = received.endswith(b"\r")
        if b"\r" in received:
            received = received.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending + received
        *blocks, self._pending = pending.split(b"\n\n")
        out = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                out.append(block[6:])  # the usual event: one `data: ` line
                continue
            lines = [line[5:] for line in block.split(b"\n") if line.startswith(b"data") and line[4:5] in (b":", b"")]
            if lines:  # else a comment or an event without data: nothing to dispatch
                out.append(b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines))
        return out


def _unsettled(data: bytes) -> bool:
    """Does this chunk carry a finish reason, usage or an error (or need parsing at all)?

    Byte checks first, because this runs per token: a chunk whose every `finish_reason` is null
    and that has neither a `usage` object nor an `error` key is relayed without being parsed. A
    JSON string cannot contain these quoted keys unescaped, so text never triggers a parse; a
    server that writes spaced JSON (`"finish_reason": null`) is parsed every chunk (correct, slower).
    """
    return (
        data.count(b'"finish_reason"') != data.count(b'"finish_reason":null')
        or data.count(b'"usage"') != data.count(b'"usage":null')
        or b'"error"' in data
    )


def _responses_event(data: bytes) -> Chunk:
    """One event of a natively relayed Responses stream: relayed as it came; parsed for its type
    (the SSE event name the relay writes again), the final usage and errors."""
    obj = json.loads(data)
    kind = obj["type"]
    chunk = Chunk(raw=data, obj=obj)
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        response = obj.get("response") or {}
        chunk.finish_reason = response.get("status") or "completed"
        usage = response.get("usage")
        chunk.usage = usage if isinstance(usage, dict) else None
    if kind in ("error", "response.failed"):
        chunk.error = obj
    return chunk


class OpenAIStream:
    """One open upstream generation: chunks in, the upstream response closed by `aclose`.

    `passthrough` (POST /v1/chat/completions): each chunk's bytes are relayed as they came; they
    are parsed only when `_unsettled` says they carry a finish reason, usage or an error (for the
    accounting). Otherwise (the endpoints that translate) every chunk is parsed and its first
    choice's text read. `include_usage`: whether the client asked for the usage chunk (the relay
    always asks the upstream for it; it is withheld from a client that did not).
    """

    def __init__(
        self, events: RawEvents, redact: Redactor, passthrough: bool, include_usage: bool, responses: bool = False
    ) -> None:
        self._events = events
        self._redact = redact
        self._passthrough = passthrough
        self._include_usage = include_usage
        self._responses = responses
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        events = self._events
        key = self._redact.key
        passthrough = self._passthrough
        finished = errored = False
        try:
            async for data in events:
                if key and key in data:
                    data = data.replace(key, b"[redacted]")
                if self._responses:
                    chunk = _responses_event(data)
                    finished = finished or chunk.finish_reason is not None
                    errored = errored or chunk.error is not None
                    yield chunk
                    continue
                if passthrough and not _unsettled(data):
                    yield Chunk(raw=data)
                    continue
                obj = json.loads(data)
                error = obj.get("error")
                if isinstance(error, dict) and not obj.get("choices"):
                    errored = True
                    if not passthrough:
                        raise self._redact.upstream_error(error)
                    yield Chunk(raw=data, error=error)
                    continue
                choices = obj.get("choices") or []
                usage = obj.get("usage")
                finish = None
                for choice in choices:
                    finish = choice.get("finish_reason") or finish
                finished = finished or finish is not None
                chunk = Chunk(raw=data, finish_reason=finish, usage=usage if isinstance(usage, dict) else None, obj=obj)
                if not choices and chunk.usage is not None and not self._include_usage:
                    chunk.withheld = True
                elif choices and not passthrough:
                    chunk.delta = (choices[0].get("delta") or {}).get("content") or ""
                yield chunk
        except httpx2.TimeoutException:
            raise UpstreamError(
                "The upstream went silent longer than the read timeout.", Ending.UPSTREAM_TIMEOUT, 504
            ) from None
        except httpx2.RequestError:  # a broken connection, a protocol or decoding error
            raise UpstreamError("The upstream connection broke before the stream finished.") from None
        except (ValueError, AttributeError):  # not JSON, or JSON of another shape
            raise UpstreamError("The upstream sent a chunk that is not a chat.completion.chunk.") from None
        if not (events.done or finished or errored):
            raise UpstreamError("The upstream closed the stream before it finished.")

    async def aclose(self, ending: Ending) -> None:
        await self._events.close()


class Redactor:
    """Keeps the upstream API key out of every text the app relays."""

    def __init__(self, key: str) -> None:
        self._key = key
        self.key = key.encode()

    def __call__(self, text: str) -> str:
        if self._key and self._key in text:
            text = text.replace(self._key, "[redacted]")
        return text[:MAX_MESSAGE_CHARS]

    def error_text(self, error: object, fallback: str) -> str:
        message = error.get("message") if isinstance(error, dict) else None
        return self(message) if isinstance(message, str) and message else fallback

    def field(self, error: dict[str, Any], name: str) -> str | None:
        value = error.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # vLLM's error `code` is the HTTP status, a number
        return self(value)[:64] if isinstance(value, str) and value else None

    def upstream_error(self, error: dict[str, Any], status: int = 502, message: str | None = None) -> UpstreamError:
        """The upstream's own error object (type, code, param, message), key redacted."""
        return UpstreamError(
            message or self.error_text(error, "The upstream reported an error."),
            Ending.UPSTREAM_ERROR,
            status,
            self.field(error, "code"),
            self.field(error, "param"),
            type=self.field(error, "type"),
        )


class OpenAIUpstream:
    def __init__(self, settings: Settings) -> None:
        self.default_model = settings.upstream_model
        self._configured = [name.strip() for name in settings.upstream_models.split(",") if name.strip()]
        self.models = self._configured or [settings.upstream_model]
        self._models_refresh = settings.upstream_models_refresh
        self._listed_at: float | None = None
        self._listing = anyio.Lock()
        key = settings.upstream_api_key.get_secret_value()
        self._redact = Redactor(key)
        self._retries = settings.upstream_connect_retries
        connect = settings.upstream_connect_timeout
        self._client = AsyncOpenAI(
            base_url=settings.upstream_base_url,
            # Local servers (vLLM without --api-key, Ollama) accept any key; the SDK needs one.
            api_key=key or "unused",
            # Retries are ours: connect errors only, before the first byte.
            max_retries=0,
            # read: the longest silence between two reads, the wait for response headers included.
            timeout=httpx2.Timeout(connect=connect, read=settings.upstream_read_timeout, write=connect, pool=connect),
            # A vanished upstream (no FIN, no RST) is given up within DEAD_PEER_TIMEOUT (app/sockets.py).
            http_client=upstream_http_client(settings),
        )

    # --- models -------------------------------------------------------------------------------
    async def ensure_models(self, wanted: str | None) -> None:
        """Keep `models` equal to the upstream's `GET /models`: read on first use, again when it is
        older than UPSTREAM_MODELS_REFRESH, and (at most every MODELS_RELIST_SECONDS) when a client
        asks for a model not in it (a LoRA adapter loaded since). UPSTREAM_MODELS fixes the list."""
        if self._configured:
            return
        now = anyio.current_time()
        if self._listed_at is not None:
            age = now - self._listed_at
            if age < self._models_refresh and (wanted in self.models or age < MODELS_RELIST_SECONDS):
                return
        async with self._listing:
            if self._listed_at is not None and anyio.current_time() - self._listed_at < MODELS_RELIST_SECONDS:
                return  # another request listed them meanwhile
            self._listed_at = anyio.current_time()
            try:
                response = await self._client.get("/models", cast_to=httpx2.Response)
                listed = [m["id"] for m in response.json()["data"] if isinstance(m.get("id"), str)]
            except (APIError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("could not list the upstream's models (%s); keeping the list", type(exc).__name__)
                return
            if self.default_model not in listed:
                listed.append(self.default_model)
            self.models = listed

    # --- requests -----------------------------------------------------------------------------
    def _body(self, generation: Generation, stream: bool) -> dict[str, Any]:
        """The client's body as sent (unknown fields included); only what app.upstreams.contract
        lists as `set` is changed."""
        if generation.api == "responses":
            return {**generation.extra, **({"stream": True} if stream else {})}
        body = {"model": generation.model, "messages": generation.messages, **generation.extra}
        if generation.max_tokens is not None and "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = generation.max_tokens
        if stream:
            body["stream"] = True
            # Real token counts for every endpoint; withheld from clients that did not ask.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return body

    async def _post(self, generation: Generation, stream: bool) -> Any:
        """POST /chat/completions, retrying connect errors only; statuses become UpstreamError."""
        body = self._body(generation, stream)
        path = "/responses" if generation.api == "responses" else "/chat/completions"
        headers = {"X-Request-ID": generation.request_id, **generation.headers}
        for attempt in range(self._retries + 1):
            try:
                if stream:
                    return await self._client.post(
                        path,
                        cast_to=object,
                        body=body,
                        options={"headers": headers},
                        stream=True,
                        stream_cls=RawEvents,
                    )
                return await self._client.post(
                    path,
                    cast_to=httpx2.Response,
                    body=body,
                    options={"headers": headers},
                )
            except APIStatusError as exc:
                raise self._status_error(exc) from None
            except APIConnectionError as exc:
                cause = exc.__cause__
                if isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout) and attempt < self._retries:
                    log.warning(
                        "upstream connect failed (%s), retry %d/%d request_id=%s",
                        type(cause).__name__,
                        attempt + 1,
                        self._retries,
                        generation.request_id,
                    )
                    await anyio.sleep(RETRY_BACKOFF_SECONDS)
                    continue
                raise _connection_error(exc) from None
            except APIError as exc:
                raise UpstreamError(self._redact.error_text(exc.body, "The upstream answered unexpectedly.")) from None
        raise AssertionError("unreachable")

    async def open(self, generation: Generation) -> OpenAIStream:
        events = await self._post(generation, stream=True)
        responses = generation.api == "responses"
        return OpenAIStream(events, self._redact, generation.passthrough, generation.include_usage, responses)

    async def complete(self, generation: Generation) -> tuple[bytes, dict[str, Any] | None]:
        """Non-streaming, forwarded as non-streaming: the upstream's `chat.completion` body as it
        came (key redacted) and its usage for the accounting.

        Why forward rather than assemble a stream: the upstream's own non-streaming answer is by
        definition what a client talking to it directly gets (every choice, message field,
        logprobs, fingerprint, usage detail, fields this kit has never heard of), while an
        assembly would have to know every field. Cancellation holds: the route awaits this
        under `_unless_disconnected`, and cancelling the await closes the upstream connection."""
        response = await self._post(generation, stream=False)
        try:
            data = await response.aread()
        except httpx2.TimeoutException:
            message = "The upstream did not answer within the read timeout."
            raise UpstreamError(message, Ending.UPSTREAM_TIMEOUT, 504) from None
        except httpx2.RequestError:
            raise UpstreamError("The upstream connection broke before the answer finished.") from None
        key = self._redact.key
        if key and key in data:
            data = data.replace(key, b"[redacted]")
        try:
            usage = json.loads(data).get("usage")
        except (ValueError, AttributeError):
            raise UpstreamError("The upstream sent an answer that is not a chat.completion.") from None
        return data, usage if isinstance(usage, dict) else None

    def _status_error(self, exc: APIStatusError) -> UpstreamError:
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        message = None
        if status in (401, 403):
            # The upstream's text may echo part of the server's key (OpenAI shows its last four).
            message = f"The upstream rejected the server's credentials (HTTP {status})."
        log.warning("upstream answered HTTP %d before streaming", status)
        return self._redact.upstream_error(body, status if 400 <= status < 600 else 502, message)

    async def aclose(self) -> None:
        await self._client.close()


def _connection_error(exc: APIConnectionError) -> UpstreamError:
    cause = exc.__cause__
    log.warning("upstream unreachable before streaming: %s", type(cause).__name__)
    if isinstance(exc, APITimeoutError):
        what = "connect" if isinstance(cause, httpx2.ConnectTimeout) else "read"
        return UpstreamError(f"The upstream did not answer within the {what} timeout.", Ending.UPSTREAM_TIMEOUT, 504)
    return UpstreamError("The upstream could not be reached.", Ending.UPSTREAM_ERROR, 502, "upstream_unreachable")
