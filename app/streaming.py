"""The streaming core shared by every streaming endpoint.

One stream = two tasks inside sse-starlette's task group:

* the **producer** (`data_sender_callable`) reads the upstream and hands chunks over a
  small channel. It owns the upstream request: whatever ends the stream (client
  disconnect, send timeout, drain deadline, max duration, upstream failure, completion), its
  `finally` closes the upstream explicitly, shielded, with the reason.
* the **consumer** (the response body iterator) frames each chunk for the wire and is the only
  writer of events, so each stream ends with exactly one terminal event.

Why this shape catches a disconnect in every window: sse-starlette listens for
`http.disconnect` the whole time and cancels the task group when it comes. The producer is then
parked at an `await` (the upstream read while waiting for the first token or between tokens, or
the channel hand-over while the consumer is blocked sending to a slow client), so cancellation
lands at once and the upstream closes within milliseconds. Nothing here polls
`request.is_disconnected()`. A client that stops reading without closing is caught by the send
timeout. Headers and the first bytes go out before the upstream's first token, and heartbeat
comments flow from then on, so idle timeouts at every hop see traffic during a long TTFT.

What crosses the channel: `Chunk`s and, last, one `Terminal`. A relayed chunk (`Chunk.raw`, the
upstream's own JSON bytes) crosses unchanged; the producer only reads its finish reason, usage and
error for the accounting (already extracted by the upstream reader, which parses nothing it does
not have to), and withholds the usage chunk a client did not ask for. The encoder decides what each
chunk becomes on its endpoint (`Encoder.token`; empty bytes: nothing to send there), and the
consumer counts every frame it sends as a token (`self.tokens`: the one place to hook token
accounting).
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import AsyncIterator
from typing import Any

import anyio
from prometheus_client import Histogram
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from app import metrics as m
from app.drain import Drain
from app.errors import SERVER_ERROR, SERVER_SHUTDOWN, UPSTREAM_ERROR, UPSTREAM_TIMEOUT, error_body
from app.limits import budget_error, within_budget
from app.settings import Settings
from app.upstreams.base import Chunk, UpstreamError, UpstreamStream
from app.wire import Encoder, usage_of

log = logging.getLogger("app.streaming")

STREAM_HEADERS = {
    # no-cache: intermediaries must not serve a stored copy; no-transform: they must not
    # re-encode (compress) the body, which would hold events back.
    "Cache-Control": "no-cache, no-transform",
    # sse-starlette also sets X-Accel-Buffering: no (nginx reads it per response).
}

_OUTCOME_OF_ERROR = {
    UPSTREAM_ERROR: m.UPSTREAM_ERROR,
    UPSTREAM_TIMEOUT: m.UPSTREAM_TIMEOUT,
    SERVER_SHUTDOWN: m.SHUTDOWN,
    SERVER_ERROR: m.UPSTREAM_ERROR,
}


# Chunks the producer may read ahead of the consumer. A few let a fast upstream hand over several
# tokens per task switch (bench/: the switch is a measurable share of per-token CPU); the producer
# still parks at an `await` (the upstream read or a full hand-over) where cancellation lands.
HANDOVER_BUFFER = 8


# A stream adds its inter-token gaps to the histogram with its first token after this many seconds
# since it last did, and all of them when it ends: inside a scrape interval while tokens flow.
GAP_FLUSH_SECONDS = 1.0


class _Gaps:
    """The per-token `observe` of the inter-token gap histogram, counted per stream and added to the
    histogram with the first token GAP_FLUSH_SECONDS after the last flush and at the stream's end:
    the same observations (count, sum, bucket of every gap), at most GAP_FLUSH_SECONDS late while
    tokens flow (during a pause in the stream, until its next token or its end).
    Why: with PROMETHEUS_MULTIPROC_DIR every `observe` is two locked mmap writes
    and a pid check, a quarter of the worker's CPU at the ceiling before (bench/README.md, the levers of issue #18).
    Relies on prometheus_client's `Histogram` child keeping `_upper_bounds`, `_buckets` (one value
    per bucket, not cumulative) and `_sum`, as its own `observe` does (pinned in pyproject.toml;
    tests/metrics read the histogram back through /metrics)."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum", "flush_at")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = child._upper_bounds
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self.flush_at = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def flush(self, now: float) -> None:
        self.flush_at = now + GAP_FLUSH_SECONDS
        if not self._sum and not any(self._counts):
            return
        buckets = self._child._buckets
        for i, count in enumerate(self._counts):
            if count:
                buckets[i].inc(count)
                self._counts[i] = 0
        self._child._sum.inc(self._sum)
        self._sum = 0.0


class Terminal:
    """The last item the producer hands over: how the generation ended. `kind` is the kit's error
    type (bounded: it labels metrics); `error` the body the client gets, which for an error the
    upstream reported carries the upstream's own type, code and param. `relayed_error`: the
    upstream's in-stream error already went to the client as one of its chunks."""

    __slots__ = ("error", "finish_reason", "kind", "relayed_error", "usage")

    def __init__(
        self,
        finish_reason: str = "stop",
        usage: dict[str, int] | None = None,
        error: dict[str, Any] | None = None,
        kind: str = "",
        relayed_error: bool = False,
    ) -> None:
        self.finish_reason = finish_reason
        self.usage = usage
        self.error = error
        self.kind = kind
        self.relayed_error = relayed_error


class _SendWatchdog:
    """SEND_TIMEOUT for the event sends of one stream: one cancel scope and at most one timer per
    stream, instead of sse-starlette's cancel scope (and timer) per send.

    Each send stamps its deadline; the timer, armed at the first pending send's deadline, checks
    when it fires: the send still pending past its deadline cancels the scope (the send is where
    the stream is parked, so the cancellation lands there); a later send still pending re-arms it
    at that send's deadline; none pending disarms it (the next send arms it again). A blocked send
    is thus abandoned exactly SEND_TIMEOUT after it started, as before (tests/app/
    test_cancellation.py); per send the cost is a clock read and two attribute writes.
    """

    __slots__ = ("_handle", "_loop", "_send", "deadline", "fired", "scope", "timeout")

    def __init__(self, send: Send, timeout: float) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self.timeout = timeout
        self.deadline: float | None = None  # of the send in progress
        self.fired = False
        self.scope = anyio.CancelScope()

    async def __call__(self, message: Message) -> None:
        self.deadline = deadline = self._loop.time() + self.timeout
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._check)
        try:
            await self._send(message)
        finally:
            self.deadline = None

    def _check(self) -> None:
        deadline = self.deadline
        if deadline is None:
            self._handle = None
        elif self._loop.time() >= deadline:
            self._handle = None
            self.fired = True
            self.scope.cancel()
        else:
            self._handle = self._loop.call_at(deadline, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _Response(EventSourceResponse):
    """sse-starlette's response, with a send timeout treated as the expected end it is (the stream
    already recorded it and closed its upstream) rather than an application error, and the event
    sends watched by one `_SendWatchdog` per stream (heartbeats keep sse-starlette's own per-send
    timeout: they come from another task, once per PING_INTERVAL)."""

    _watched: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("send timeout: client stopped reading; stream dropped")

    async def _stream_response(self, send: Send) -> None:
        if not self.send_timeout:
            return await super()._stream_response(send)
        watchdog = self._watched = _SendWatchdog(send, self.send_timeout)
        try:
            with watchdog.scope:
                await super()._stream_response(watchdog)
        finally:
            watchdog.stop()
        if watchdog.fired:
            raise SendTimeoutError()

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if send is self._watched:
            await send(message)  # the watchdog times it
        else:
            await super()._send_with_timeout(send, message)


class Stream:
    def __init__(
        self,
        *,
        route: str,
        upstream: UpstreamStream,
        encoder: Encoder,
        settings: Settings,
        drain: Drain,
        received_at: float,
        prompt_tokens: int,
    ) -> None:
        self.route = route
        self.upstream = upstream
        self.encoder = encoder
        self.settings = settings
        self.drain = drain
        self.received_at = received_at  # time.perf_counter() when the request arrived
        self.prompt_tokens = prompt_tokens
        self.reason: str | None = None  # why the stream ended early, once known
        self.disconnected_at: float | None = None
        self.outcome: str | None = None
        self.tokens = 0
        self._send, self._receive = anyio.create_memory_object_stream[Chunk | Terminal](HANDOVER_BUFFER)

    # --- producer -----------------------------------------------------------------------------
    async def produce(self) -> None:
        try:
            terminal = await self._pump()
            async with self._send:
                await self._send.send(terminal)
        except anyio.BrokenResourceError:
            return  # the consumer is gone (send timeout): _pump already closed the upstream

    async def _pump(self) -> Terminal:
        scope = anyio.CancelScope(deadline=anyio.current_time() + self.settings.max_stream_seconds)
        self.drain.register(scope)
        finish_reason, usage, relayed_error = "stop", None, False
        closing = m.COMPLETED
        try:
            with scope:
                async for chunk in self.upstream:
                    # Accounting only: an upstream chunk (`raw`) is handed over unchanged.
                    if chunk.finish_reason is not None:
                        finish_reason = chunk.finish_reason
                    if chunk.usage is not None:
                        usage = chunk.usage  # also from a withheld usage chunk: still counted
                    if chunk.raw is not None:
                        if chunk.error is not None:
                            relayed_error = True
                            closing = m.UPSTREAM_ERROR
                            m.UPSTREAM_ERRORS.labels(self.route, UPSTREAM_ERROR).inc()
                        if not chunk.withheld:
                            await self._hand_over(chunk)  # BrokenResourceError: consumer gone
                    elif chunk.delta:
                        await self._hand_over(chunk)
            if scope.cancelled_caught:
                if self.drain.draining:
                    closing = m.SHUTDOWN
                    return self._error(SERVER_SHUTDOWN, "The server is shutting down; retry the request.")
                closing = m.UPSTREAM_TIMEOUT
                return self._error(UPSTREAM_TIMEOUT, "The stream exceeded the maximum stream duration.")
            return Terminal(finish_reason, usage, relayed_error=relayed_error)
        except anyio.BrokenResourceError:
            closing = self.end_reason()
            raise
        except UpstreamError as exc:
            closing = exc.kind
            m.UPSTREAM_ERRORS.labels(self.route, exc.kind).inc()
            return Terminal(error=exc.body(), kind=exc.kind)
        except Exception:
            closing = m.UPSTREAM_ERROR
            m.UPSTREAM_ERRORS.labels(self.route, SERVER_ERROR).inc()
            log.exception("stream %s failed", self.encoder.request_id)
            return self._error(SERVER_ERROR, "The server had an error while streaming.")
        except BaseException:
            closing = self.end_reason()  # cancelled: client gone, send timeout or forced shutdown
            raise
        finally:
            self.drain.unregister(scope)
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose(closing)
            if closing == m.CLIENT_DISCONNECT and self.disconnected_at is not None:
                m.UPSTREAM_CLOSE_AFTER_DISCONNECT.labels(self.route).observe(time.perf_counter() - self.disconnected_at)

    async def _hand_over(self, chunk: Chunk) -> None:
        """Into the channel without a pass of the event loop when there is room: anyio's `send`
        yields to the loop first (a checkpoint) on every call, a full loop pass per token. The
        producer still parks at an `await` where cancellation lands: the upstream read, which
        always yields (anyio's socket receive checkpoints even with data buffered), or `send` when
        the channel is full (the consumer blocked on a slow client)."""
        try:
            self._send.send_nowait(chunk)
        except anyio.WouldBlock:
            await self._send.send(chunk)

    def _error(self, type: str, message: str) -> Terminal:
        return Terminal(error=error_body(message, type), kind=type)

    def end_reason(self) -> str:
        """Why a stream ends without its terminal event reaching the client (decided once)."""
        if self.reason is None:
            self.reason = m.SHUTDOWN if self.drain.draining else m.SEND_TIMEOUT
        return self.reason

    async def on_disconnect(self, message: Message) -> None:
        if self.reason is None:
            self.reason = m.CLIENT_DISCONNECT
            self.disconnected_at = time.perf_counter()

    # --- consumer -----------------------------------------------------------------------------
    async def events(self, coalesce: bool = False) -> AsyncIterator[bytes]:
        """The stream's frames. `coalesce` (the HTTP response): every token already handed over when
        the consumer wakes goes out as one write (never waiting to batch: what one upstream read
        brought, or what piled up while a send blocked); without it (the resumable log, which gives
        each event its own offset) one frame per item. Every token is still counted, checked
        against the budget and timed one by one; tokens written together have a gap of 0 between
        them, which is what a client sees."""
        route = self.route
        m.ACTIVE_STREAMS.labels(route).inc()
        gap = _Gaps(m.INTER_TOKEN_GAP.labels(route))  # resolved once: the loop below runs per token
        last_token_at = 0.0
        # A relayed stream opens with the upstream's first chunk (no frame of the app's own):
        # its first byte is then its first token. Headers went out before either.
        opening = self.encoder.start()
        token = self.encoder.token
        try:
            for i, frame in enumerate(opening):
                yield frame
                if i == 0:
                    m.TIME_TO_FIRST_BYTE.labels(route).observe(time.perf_counter() - self.received_at)
            receive = self._receive
            async with receive:
                while True:
                    # Parked in `receive` only when the channel is empty; what has arrived is taken
                    # without a pass of the event loop (anyio's `receive` yields to it on every call).
                    try:
                        item: Chunk | Terminal | None = receive.receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            item = await receive.receive()
                        except anyio.EndOfStream:
                            return
                    except anyio.EndOfStream:
                        return
                    frames: list[bytes] = []
                    now = time.perf_counter()
                    while isinstance(item, Chunk):
                        frame = token(item)
                        if frame:  # else nothing this endpoint carries (e.g. a tool call on /v1/chat/stream)
                            # Issue #20: the key's tokens per minute (app.limits). A relayed stream's
                            # opening chunk (the role, no text yet) is not a token: it is not spent.
                            opening_role = not self.tokens and item.raw is not None and b'"role"' in item.raw
                            if not opening_role and not within_budget():
                                self.outcome = self.reason = m.TOKEN_BUDGET
                                frames.append(self.encoder.error(budget_error()))
                                item = None
                                break
                            if self.tokens:
                                gap.observe(now - last_token_at)
                            else:
                                m.TIME_TO_FIRST_TOKEN.labels(route).observe(now - self.received_at)
                                if not opening:
                                    m.TIME_TO_FIRST_BYTE.labels(route).observe(now - self.received_at)
                            last_token_at = now
                            self.tokens += 1
                            frames.append(frame)
                            if now >= gap.flush_at:
                                gap.flush(now)
                        try:
                            item = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            item = None
                    if frames:
                        if coalesce:
                            yield frames[0] if len(frames) == 1 else b"".join(frames)
                        else:
                            for frame in frames:
                                yield frame
                    if self.outcome == m.TOKEN_BUDGET:
                        return
                    if item is None:
                        continue  # the next receive parks (or ends the stream)
                    if item.error is not None:
                        self.outcome = _OUTCOME_OF_ERROR.get(item.kind, m.UPSTREAM_ERROR)
                        yield self.encoder.error(item.error)
                    else:
                        self.outcome = m.UPSTREAM_ERROR if item.relayed_error else m.COMPLETED
                        usage = item.usage or usage_of(self.prompt_tokens, self.tokens)
                        for frame in self.encoder.done(item.finish_reason, usage):
                            yield frame
                    return
        finally:
            gap.flush(0.0)
            outcome = self.outcome or self.end_reason()
            m.ACTIVE_STREAMS.labels(route).dec()
            m.TOKENS_STREAMED.labels(route).inc(self.tokens)
            m.STREAM_DURATION.labels(route, outcome).observe(time.perf_counter() - self.received_at)
            if outcome != m.COMPLETED:
                m.STREAMS_CANCELLED.labels(route, outcome).inc()

    def _ping(self) -> ServerSentEvent:
        m.PINGS_SENT.labels(self.route).inc()
        return ServerSentEvent(comment="ping", sep="\n")

    def response(self, headers: dict[str, str]) -> EventSourceResponse:
        return _Response(
            self.events(coalesce=True),
            headers={**STREAM_HEADERS, **headers},
            ping=self.settings.ping_interval,
            ping_message_factory=self._ping,
            sep="\n",
            send_timeout=self.settings.send_timeout,
            data_sender_callable=self.produce,
            client_close_handler_callable=self.on_disconnect,
        )
