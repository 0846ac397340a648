"""The streaming core shared by every streaming endpoint.

One stream = two tasks inside sse-starlette's task group:

* the **producer** (`data_sender_callable`) reads the upstream and hands chunks over a
  small channel. It owns the upstream request: whatever ends the stream (client
  disconnect, send timeout, drain deadline, max duration, upstream failure, completion), its
  `finally` closes the upstream explicitly, shielded, with the stream's ending (app/ending.py).
* the **consumer** (the response body iterator) frames each chunk for the wire and is the only
  writer of events, so each stream ends with exactly one terminal event: the one its ending
  states. Whichever of the two finishes last records the ending in the metrics, once.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from prometheus_client import Histogram
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from app import metrics as m
from app.drain import Drain
from app.ending import Ending
from app.errors import error_body
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
    """The last item the producer hands over: the stream's `ending` (app/ending.py) and what its
    terminal event carries. `error`: the body of the `error` event (for an error the upstream
    reported, with the upstream's own type, code and param) and `status` the HTTP status it gets on
    a request that is not streamed; None: the endpoint's `done` (after an in-stream upstream error
    relayed as the upstream's own chunk, ending UPSTREAM_ERROR, only the end marker is left)."""

    __slots__ = ("ending", "error", "finish_reason", "status", "usage")

    def __init__(
        self,
        ending: Ending,
        finish_reason: str = "stop",
        usage: dict[str, int] | None = None,
        error: dict[str, Any] | None = None,
        status: int = 200,
    ) -> None:
        self.ending = ending
        self.finish_reason = finish_reason
        self.usage = usage
        self.error = error
        self.status = status


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


def _error(ending: Ending, status: int, message: str) -> Terminal:
    """The terminal of a failure of the kit's own: an `error` event of the ending's type."""
    return Terminal(ending, error=error_body(message, ending.error_type), status=status)


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
        # How the stream ended (app/ending.py): decided once, by the first of the terminal the
        # consumer writes, the client leaving (`on_disconnect`), the token budget, the resume layer
        # (`end`), or a cancellation with nothing decided yet (`_cancelled`).
        self.ending: Ending | None = None
        self.wrote_terminal = False  # its terminal event went out (else the resume layer writes one)
        self.disconnected_at: float | None = None
        self.tokens = 0
        self._send, self._receive = anyio.create_memory_object_stream[Chunk | Terminal](HANDOVER_BUFFER)
        # What a cancellation that decided nothing means: only a send that timed out cancels a
        # streamed response that way; a collected one (`collect`) sends nothing, only its client leaves.
        self._unexplained = Ending.SEND_TIMEOUT
        self._running = 2  # producer and consumer: the last one to finish records the ending
        self._ended_at = 0.0  # the consumer's end (perf_counter): the stream's duration
        self._close_delay: float | None = None  # client gone -> upstream closed (seconds)

    # --- producer -----------------------------------------------------------------------------
    async def produce(self) -> None:
        try:
            terminal = await self._pump(self._hand_over)
            async with self._send:
                await self._send.send(terminal)
        except anyio.BrokenResourceError:
            return  # the consumer is gone (send timeout): _pump already closed the upstream
        finally:
            self._finished()

    async def collect(self) -> tuple[list[Chunk], Terminal]:
        """Not streamed (`stream: false` on the built-in fake, Responses translated): the same
        producer to its end, keeping every chunk it would hand over; the route assembles the answer.
        Records no stream metrics (nothing was streamed): the route counts how it ended."""
        chunks: list[Chunk] = []

        async def keep(chunk: Chunk) -> None:
            chunks.append(chunk)

        self._unexplained = Ending.CLIENT_DISCONNECT  # cancelled: the route saw the client leave
        return chunks, await self._pump(keep)

    async def _pump(self, deliver: Callable[[Chunk], Awaitable[None]]) -> Terminal:
        scope = anyio.CancelScope(deadline=anyio.current_time() + self.settings.max_stream_seconds)
        self.drain.register(scope)
        finish_reason, usage, relayed_error = "stop", None, False
        terminal: Terminal | None = None
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
                        if not chunk.withheld:
                            await deliver(chunk)  # BrokenResourceError: consumer gone
                    elif chunk.delta:
                        await deliver(chunk)
            if not scope.cancelled_caught:
                terminal = Terminal(Ending.UPSTREAM_ERROR if relayed_error else Ending.COMPLETED, finish_reason, usage)
            elif self.drain.draining:
                terminal = _error(Ending.SHUTDOWN, 503, "The server is shutting down; retry the request.")
            else:
                terminal = _error(Ending.MAX_DURATION, 504, "The stream exceeded the maximum stream duration.")
        except UpstreamError as exc:
            terminal = Terminal(exc.ending, error=exc.body(), status=exc.status)
        except anyio.BrokenResourceError:
            raise  # the consumer is gone: no terminal (below)
        except Exception:
            log.exception("stream %s failed", self.encoder.request_id)
            terminal = _error(Ending.SERVER_ERROR, 500, "The server had an error while streaming.")
        finally:
            # No terminal: cancelled (client gone, send timeout, resume cancel, forced shutdown) or
            # the consumer gone (BrokenResourceError).
            ending = terminal.ending if terminal is not None else self._cancelled()
            self.drain.unregister(scope)
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose(ending)
            if ending is Ending.CLIENT_DISCONNECT and self.disconnected_at is not None:
                self._close_delay = time.perf_counter() - self.disconnected_at
        assert terminal is not None  # else the exception that left it unset propagates
        return terminal

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

    def end(self, ending: Ending) -> Ending:
        """Decide how the stream ended, unless that is decided already; the decision."""
        if self.ending is None:
            self.ending = ending
        return self.ending

    def _cancelled(self) -> Ending:
        """Cancelled with no terminal event: the ending decided already (the client left, the token
        budget, the resume layer), else the shutdown's when draining, else `_unexplained`."""
        return self.end(Ending.SHUTDOWN if self.drain.draining else self._unexplained)

    async def on_disconnect(self, message: Message) -> None:
        if self.ending is None:
            self.disconnected_at = time.perf_counter()
            self.end(Ending.CLIENT_DISCONNECT)

    def _finished(self) -> None:
        """Producer and consumer each call this once at their end; the last one records the
        ending: the one place a stream's metrics of how it ended are written."""
        self._running -= 1
        if self._running == 0:
            duration = self._ended_at - self.received_at
            m.record_ending(self.route, self._cancelled(), self._close_delay, duration, self.tokens)

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
                                self.end(Ending.TOKEN_BUDGET)
                                self.wrote_terminal = True
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
                    if self.wrote_terminal:  # the token budget's error event
                        return
                    if item is None:
                        continue  # the next receive parks (or ends the stream)
                    self.end(item.ending)
                    self.wrote_terminal = True
                    if item.error is not None:
                        yield self.encoder.error(item.error)
                    else:
                        usage = item.usage or usage_of(self.prompt_tokens, self.tokens)
                        for frame in self.encoder.done(item.finish_reason, usage):
                            yield frame
                    return
        finally:
            gap.flush(0.0)
            m.ACTIVE_STREAMS.labels(route).dec()
            self._ended_at = time.perf_counter()
            self._finished()

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
