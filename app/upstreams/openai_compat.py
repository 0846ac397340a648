"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LiteLLM, ...) through the official
`openai` SDK (`AsyncOpenAI`, which speaks HTTPX2 since openai 3.0).

Every endpoint of the app asks the upstream's `POST /chat/completions` with `stream: true` (the
one API all of these servers share) and the app re-frames the deltas for its own endpoint.

The hot path: the SDK sends the request and checks the status (its documented "undocumented
endpoints" call `client.post(..., stream=True, stream_cls=...)`), then `RawEvents` reads the
event bytes off its raw HTTP response: no pydantic model per chunk. Each chunk is parsed with
`json.loads` only to read its delta; its JSON bytes are relayed verbatim (`Chunk.raw`), ids
included. Relies on `AsyncStream.__stream__` and `drain_response_async` of the pinned openai.

Cancellation: `aclose()` closes the upstream HTTP response at once, which closes its connection
(the signal vLLM, Ollama and TGI abort generation on). The streaming core calls it in a shielded
`finally`, whatever ended the stream; it is never left to garbage collection.

Errors are normalized to `UpstreamError`: HTTP statuses keep their status; connection failures
become 502 `upstream_error`; connect and read timeouts become 504 `upstream_timeout`; after the
first byte the streaming core turns the same errors into one in-band `error` event. Only connect
errors (refused, connect timeout) are retried, only before the first byte, at most
UPSTREAM_CONNECT_RETRIES times; the SDK's own retries are off (they would also retry 429/5xx and
read timeouts).

Key hygiene: the API key lives only in the SDK client. Upstream error text is relayed with the key
redacted (a hostile or careless upstream may echo it), 401/403 texts are replaced, and exceptions
are re-raised without their SDK cause (whose message can hold the upstream's raw body).
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

from app.errors import UPSTREAM_ERROR, UPSTREAM_TIMEOUT
from app.settings import Settings
from app.sockets import upstream_http_client
from app.upstreams.base import Chunk, Generation, UpstreamError

log = logging.getLogger("app.upstream")

# Pause between connect attempts (refused or connect timeout); a restarting upstream needs a moment.
RETRY_BACKOFF_SECONDS = 0.25
# Longest upstream error text relayed to clients.
MAX_MESSAGE_CHARS = 500


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


class OpenAIStream:
    """One open upstream generation: chunks in, the upstream response closed by `aclose`."""

    def __init__(self, events: RawEvents, redact: Redactor) -> None:
        self._events = events
        self._redact = redact

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        events = self._events
        finished = False
        try:
            async for data in events:
                obj = json.loads(data)
                error = obj.get("error")
                if error:
                    raise UpstreamError(self._redact.error_text(error, "The upstream reported an error."))
                choices = obj.get("choices")
                delta, finish = "", None
                if choices:
                    choice = choices[0]
                    delta = (choice.get("delta") or {}).get("content") or ""
                    finish = choice.get("finish_reason")
                    finished = finished or finish is not None
                yield Chunk(delta=delta, raw=data, finish_reason=finish, usage=obj.get("usage"))
        except httpx2.TimeoutException:
            raise UpstreamError(
                "The upstream went silent longer than the read timeout.", UPSTREAM_TIMEOUT, 504
            ) from None
        except httpx2.RequestError:  # a broken connection, a protocol or decoding error
            raise UpstreamError("The upstream connection broke before the stream finished.") from None
        except (ValueError, AttributeError):  # not JSON, or JSON of another shape
            raise UpstreamError("The upstream sent a chunk that is not a chat.completion.chunk.") from None
        if not (events.done or finished):
            raise UpstreamError("The upstream closed the stream before it finished.")

    async def aclose(self, reason: str) -> None:
        await self._events.close()


class Redactor:
    """Keeps the upstream API key out of every text the app relays."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, text: str) -> str:
        if self._key and self._key in text:
            text = text.replace(self._key, "[redacted]")
        return text[:MAX_MESSAGE_CHARS]

    def error_text(self, error: object, fallback: str) -> str:
        message = error.get("message") if isinstance(error, dict) else None
        return self(message) if isinstance(message, str) and message else fallback


class OpenAIUpstream:
    def __init__(self, settings: Settings) -> None:
        self.models = [settings.upstream_model]
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

    def _body(self, generation: Generation) -> dict[str, Any]:
        body = {**generation.extra, "model": generation.model, "messages": generation.messages, "stream": True}
        # Ask for the usage chunk always: real token counts for every endpoint (it carries no
        # delta, so it reaches clients only as the app's own usage, when they asked for it).
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        if generation.max_tokens is not None and "max_completion_tokens" not in body:
            body.setdefault("max_tokens", generation.max_tokens)
        return body

    async def open(self, generation: Generation) -> OpenAIStream:
        body = self._body(generation)
        headers = {"X-Request-ID": generation.request_id}
        for attempt in range(self._retries + 1):
            try:
                events = await self._client.post(
                    "/chat/completions",
                    cast_to=object,
                    body=body,
                    options={"headers": headers},
                    stream=True,
                    stream_cls=RawEvents,
                )
                return OpenAIStream(events, self._redact)
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

    def _status_error(self, exc: APIStatusError) -> UpstreamError:
        status = exc.status_code
        if status in (401, 403):
            message = f"The upstream rejected the server's credentials (HTTP {status})."
        else:
            message = f"The upstream answered HTTP {status}: " + self._redact.error_text(exc.body, "no details")
        code = exc.code if exc.code and len(exc.code) <= 64 else None
        log.warning("upstream answered HTTP %d before streaming", status)
        return UpstreamError(
            message, UPSTREAM_ERROR, status if 400 <= status < 600 else 502, self._redact(code or "") or None
        )

    async def aclose(self) -> None:
        await self._client.close()


def _connection_error(exc: APIConnectionError) -> UpstreamError:
    cause = exc.__cause__
    log.warning("upstream unreachable before streaming: %s", type(cause).__name__)
    if isinstance(exc, APITimeoutError):
        what = "connect" if isinstance(cause, httpx2.ConnectTimeout) else "read"
        return UpstreamError(f"The upstream did not answer within the {what} timeout.", UPSTREAM_TIMEOUT, 504)
    return UpstreamError("The upstream could not be reached.", UPSTREAM_ERROR, 502, "upstream_unreachable")
