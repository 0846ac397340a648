"""Resumable streams: the generation runs detached from the HTTP connection and writes its framed
events into a per-stream log; every HTTP response (the first one and each rejoin) reads the log
from an offset, then follows it live.

* **Producer** (one task per resumable stream, in the worker that started it): runs the kit's own
  `Stream` (app/streaming.py: the upstream read, max duration, drain, terminal event) and appends
  each frame to the log. A watchdog holds the lease (Redis), stops the generation when nobody has
  been attached for RESUME_GRACE_SECONDS or when a cancel was requested, and the log always ends
  with a terminal event and an END marker.
* **Reader** (the body of each HTTP response): replays the log after the client's offset, then
  follows it; `id: <stream id>:<offset>` on every event, so a reconnect's `Last-Event-ID` names the
  stream and where to go on. A reader that finds the producer's lease expired ends the stream with
  an `error` event (written into the log at the next offset: whoever writes it first wins).

Streams that do not opt in never come here: they keep the cancel-on-disconnect path unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.exceptions import RedisError
from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from app import metrics as m
from app import store
from app.drain import Drain
from app.ending import Ending
from app.errors import NOT_FOUND, SERVER_ERROR, SERVER_SHUTDOWN, APIError, error_body
from app.resume.log import CANCEL_CHANNEL, END, Entry, LogFull, MemoryLog, Meta, RedisLog, StreamLog
from app.settings import Settings
from app.streaming import STREAM_HEADERS, Stream
from app.streaming import _Response as StreamResponse  # a send timeout is an expected end
from app.upstreams.base import Generation, UpstreamStream
from app.wire import ChatCompletionsEncoder, ChatStreamEncoder, Encoder, ResponsesEncoder

log = logging.getLogger("app.resume")

# The owner token: set as this cookie on the first response (browsers), and accepted in this
# header instead (API clients without a cookie jar). Only its SHA-256 is stored with the log.
# Not the `streamkit_stream` cookie: every stream response rewrites that one to its request id, so
# opening any other stream would orphan a resumable one.
OWNER_COOKIE = "streamkit_resume"
TOKEN_HEADER = "streamkit-resume-token"
# POST /v1/chat/completions (and /v1/responses) opt in with this request header.
RESUMABLE_HEADER = "streamkit-resumable"
# Every resumable response names its stream here (rejoin: GET /v1/streams/{id}).
STREAM_ID_HEADER = "Streamkit-Stream-Id"

# Error types written into the log when a resumable stream ends early (OpenAI-style body): the
# type of the cancelled endings (app/ending.py), and the code of a lost producer's.
CANCELLED = Ending.CLIENT_CANCEL.error_type
PRODUCER_LOST = "producer_lost"

# How often the producer's watchdog looks at its readers: the grace acts within this much.
WATCH_INTERVAL = 0.2
# How often it looks at the cancel key in Redis (the fallback if pub/sub missed a cancel).
CANCEL_KEY_CHECK = 1.0
# Redis writes: events framed within this long go out in one pipelined round trip (all streams of
# the worker). The stated bound on what coalescing adds for readers on other workers or replicas.
FLUSH_DELAY = 0.010
# A finished producer waits at most this long for its last events to reach Redis.
FLUSH_TIMEOUT = 5.0
# A reader blocks this long on the log before it checks the producer's lease again.
READ_WAIT = 0.5
# A reader refreshes its presence this often (the presence lapses after READER_PRESENCE_SECONDS).
READER_REFRESH = 1.0

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
_LAST_EVENT_ID = re.compile(r"^([A-Za-z0-9_-]{16,64}):(-1|\d{1,12})$")

_instance: tuple[int, str] | None = None


def instance_id() -> str:
    """This worker process (host, pid and a random part, so a restarted pid is a new instance)."""
    global _instance
    if _instance is None or _instance[0] != os.getpid():
        _instance = (os.getpid(), f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
    return _instance[1]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def presented_token(request: Request) -> str | None:
    token = request.headers.get(TOKEN_HEADER) or request.cookies.get(OWNER_COOKIE)
    return token if token and _TOKEN.match(token) else None


def parse_event_id(value: str) -> tuple[str, int]:
    """`<stream id>:<offset>` as sent in `id:`; a clear 400 for anything else."""
    match = _LAST_EVENT_ID.match(value.strip())
    if not match:
        raise APIError(400, "Last-Event-ID must be '<stream id>:<offset>' as sent by this server.",
                       param="Last-Event-ID", code="invalid_last_event_id")
    return match.group(1), int(match.group(2))


def strip_id(frame: bytes) -> bytes:
    """The encoder's own `id:` line is replaced by the reader's `id: <stream>:<offset>`."""
    if frame.startswith(b"id:"):
        return frame[frame.index(b"\n") + 1 :]
    return frame


_ENCODERS: dict[str, type[Encoder]] = {
    "chat_stream": ChatStreamEncoder,
    "chat_completions": ChatCompletionsEncoder,
    "responses": ResponsesEncoder,
}


def error_frame(route: str, body: dict[str, Any], offset: int) -> bytes:
    """An `error` event in the wire format of `route` (for a stream whose producer is gone)."""
    encoder = _ENCODERS.get(route, ChatStreamEncoder)(request_id="", model="", emit_timestamps=False, retry_ms=0)
    if isinstance(encoder, ResponsesEncoder):
        encoder.seq = offset  # sequence_number == offset in a Responses log
    return encoder.error(body)


class Producer:
    """One detached generation writing into the log: always into this worker's memory (readers on
    this worker follow it without a round trip), and into Redis when configured (any replica)."""

    def __init__(self, manager: Resume, sid: str, route: str, stream: Stream) -> None:
        self.manager = manager
        self.local = manager.local
        self.shared = manager.shared
        self.sid = sid
        self.route = route
        self.stream = stream
        self.scope = anyio.CancelScope()
        self.ending: Ending | None = None  # why the resume layer stopped it
        self.next = 0  # offset of the next frame
        self.written = -1  # last offset in Redis

    def cancel(self, ending: Ending) -> None:
        if self.ending is None:
            self.ending = ending
            self.stream.end(ending)  # why the upstream is closed (its record, the cancel metrics)
            m.RESUME_CANCELS.labels(ending.label).inc()
        self.scope.cancel()

    async def _put(self, frame: bytes) -> None:
        entry = Entry(self.next, frame)
        self.next += 1
        await self.local.append(self.sid, [entry])  # a list append: no round trip
        if self.shared is not None:
            assert self.manager.writer is not None
            self.manager.writer.put(self, entry)

    async def _watch(self) -> None:
        grace = self.manager.settings.resume_grace_seconds
        lease_every = self.manager.settings.resume_lease_seconds / 3
        next_lease = next_cancel_check = anyio.current_time()
        abandoned_at: float | None = None
        shared = self.shared
        while True:
            await anyio.sleep(WATCH_INTERVAL)
            now = anyio.current_time()
            if shared is not None and now >= next_lease:
                await shared.hold_lease(self.sid, instance_id())
                next_lease = now + lease_every
            # A cancel reaches this worker at once (in-process, or Redis pub/sub); the cancel key
            # is the fallback for a missed message.
            if shared is not None and now >= next_cancel_check:
                if await shared.cancel_requested(self.sid):
                    self.cancel(Ending.CLIENT_CANCEL)
                    return
                next_cancel_check = now + CANCEL_KEY_CHECK
            readers = await self.local.readers(self.sid)
            if not readers and shared is not None:
                readers = await shared.readers(self.sid)
            if readers:
                abandoned_at = None
            elif abandoned_at is None:
                abandoned_at = now
            elif now - abandoned_at >= grace:
                m.RESUME_GRACE_EXPIRIES.inc()
                self.cancel(Ending.GRACE_EXPIRED)
                return

    async def run(self) -> None:
        drain = self.manager.drain
        # Held by the drain until the log has its terminal event: on SIGTERM the worker waits for
        # resumable generations to finish or end with `server_shutdown` in the log (the Stream's
        # own scope gets the drain deadline, as for every stream).
        hold = anyio.CancelScope()
        drain.register(hold)
        try:
            with self.scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(self.stream.produce)
                    group.start_soon(self._watch)
                    async for frame in self.stream.events():
                        # One log entry per SSE event: an encoder may frame several events at once
                        # (the Responses translation opens an item and its part together), and a
                        # rejoin's offset counts events (`sequence_number` on the Responses API).
                        for event in frame.split(b"\n\n")[:-1]:
                            await self._put(event + b"\n\n")
                    group.cancel_scope.cancel()
            if not self.stream.wrote_terminal:  # stopped before its terminal event
                code = self.ending.value if self.ending is not None else "cancelled"
                if drain.draining and self.ending is None:
                    body = error_body("The server is shutting down; retry the request.", SERVER_SHUTDOWN)
                else:
                    body = error_body(f"The stream was stopped ({code}).", CANCELLED, code=code)
                await self._put(error_frame(self.route, body, self.next))
            await self._put(END)
            if self.manager.writer is not None:
                with anyio.move_on_after(FLUSH_TIMEOUT):
                    await self.manager.writer.flushed(self)
        except Exception:
            log.exception("resumable stream %s failed", self.sid)
        finally:
            with anyio.CancelScope(shield=True):
                await self.local.finish(self.sid)
                if self.shared is not None:
                    with contextlib.suppress(Exception):
                        await self.shared.finish(self.sid)
                drain.unregister(hold)
                self.manager.producers.pop(self.sid, None)


def _unavailable(exc: Exception) -> APIError:
    log.warning("resumable streams: Redis unavailable: %s", exc)
    return APIError(503, "Resumable streams are unavailable right now (their store cannot be reached); retry.",
                    SERVER_ERROR, code="resume_unavailable")


class Writer:
    """Redis: one writer per worker. What all producers framed since the last round trip goes out
    in one pipeline; the next round trip starts when the previous one is back, after at most
    FLUSH_DELAY of collecting. Readers on the producing worker read its memory and never wait for
    this; readers elsewhere see an event at most FLUSH_DELAY + one round trip after it was framed."""

    def __init__(self, shared: RedisLog) -> None:
        self.shared = shared
        self.outbox: dict[str, tuple[Producer, list[Entry]]] = {}
        self.wake = anyio.Event()
        self.cycle = anyio.Event()  # set after each round trip
        self.task: asyncio.Task[None] | None = None

    def put(self, producer: Producer, entry: Entry) -> None:
        if producer.ending is Ending.LOG_LOST:
            return  # its Redis log was ended by someone else (or refused a write): never leave a gap
        pending = self.outbox.get(producer.sid)
        if pending is None:
            self.outbox[producer.sid] = (producer, [entry])
        else:
            pending[1].append(entry)
        self.wake.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="resume-writer")

    async def flushed(self, producer: Producer) -> None:
        """Wait until everything `producer` framed is in Redis (or it was refused)."""
        while producer.written < producer.next - 1 and producer.ending is not Ending.LOG_LOST:
            cycle = self.cycle
            await cycle.wait()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            await anyio.sleep(FLUSH_DELAY)
            self.wake = anyio.Event()
            batch, self.outbox = self.outbox, {}
            try:
                failed = await self.shared.append_many({sid: entries for sid, (_, entries) in batch.items()})
            except Exception:
                log.exception("resume: writing %d stream(s) to Redis failed", len(batch))
                failed = set(batch)
            for sid, (producer, entries) in batch.items():
                if sid in failed:
                    # An offset was taken: a reader declared this producer lost and ended the log.
                    producer.cancel(Ending.LOG_LOST)
                else:
                    producer.written = entries[-1].offset
            cycle, self.cycle = self.cycle, anyio.Event()
            cycle.set()


class Resume:
    """Per worker: the logs (this worker's memory; Redis when REDIS_URL is set), the producers
    running here, the cancel listener (Redis)."""

    def __init__(self, settings: Settings, drain: Drain) -> None:
        self.settings = settings
        self.drain = drain
        max_age = settings.max_stream_seconds + settings.resume_ttl_seconds
        self.local = MemoryLog(settings.resume_max_streams, settings.resume_max_events,
                               settings.resume_ttl_seconds, max_age)
        self.shared: StreamLog | None = None
        self.writer: Writer | None = None
        if store.url(settings):
            self.redis = store.follower(settings)
            redis_log = RedisLog(self.redis, settings.resume_max_events, settings.resume_ttl_seconds, max_age,
                                 settings.resume_lease_seconds)
            self.shared, self.writer = redis_log, Writer(redis_log)
        self.backend = self.shared.name if self.shared is not None else self.local.name
        self.producers: dict[str, Producer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None

    # --- start ------------------------------------------------------------------------------
    async def start(
        self, request: Request, route: str, generation: Generation, encoder: Encoder, upstream: UpstreamStream
    ) -> Response:
        """Detach the generation (upstream already opened) and answer with a reader from offset 0."""
        token = presented_token(request) or secrets.token_urlsafe(24)
        sid = secrets.token_urlsafe(18)
        if isinstance(encoder, ResponsesEncoder):  # the response id names the stream (background mode)
            encoder.response_id = f"resp_{sid}"
        meta = Meta(digest(token), instance_id(), route)
        try:
            await self.local.create(sid, meta)
            if self.shared is not None:
                await self.shared.create(sid, meta)
                await self.shared.hold_lease(sid, meta.producer)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await upstream.aclose(Ending.SERVER_ERROR)  # the client gets a 503 server_error
            if isinstance(exc, LogFull):
                raise APIError(503, f"Too many resumable streams open; retry later ({exc}).", SERVER_ERROR,
                               code="resume_capacity") from None
            if isinstance(exc, RedisError):
                raise _unavailable(exc) from None
            raise
        stream = Stream(
            route=route,
            upstream=upstream,
            encoder=encoder,
            settings=self.settings,
            drain=self.drain,
            received_at=request.state.received_at,
            prompt_tokens=len(generation.prompt.split()),
        )
        producer = Producer(self, sid, route, stream)
        self.producers[sid] = producer
        if self.shared is not None:
            self._listen()
        reader = secrets.token_hex(8)
        await self.local.attach(sid, reader)  # attached before the producer's watchdog first looks
        task = asyncio.get_running_loop().create_task(producer.run(), name=f"resume-{sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        m.RESUMABLE_STARTED.labels(route, self.backend).inc()
        response = self._response(self.local, sid, -1, meta.route, reader)
        response.set_cookie(OWNER_COOKIE, token, httponly=True, samesite="strict", path="/")
        if route != "chat_stream":  # API clients (no cookie jar): the token to rejoin or cancel with
            response.headers["Streamkit-Resume-Token"] = token
        return response

    # --- rejoin -----------------------------------------------------------------------------
    async def _find(self, sid: str) -> tuple[StreamLog, Meta] | None:
        """This worker's copy if it has one (no round trip), else Redis."""
        meta = await self.local.meta(sid)
        if meta is not None:
            return self.local, meta
        if self.shared is not None:
            try:
                meta = await self.shared.meta(sid)
            except RedisError as exc:
                raise _unavailable(exc) from None
            if meta is not None:
                return self.shared, meta
        return None

    async def _owned(self, request: Request, sid: str) -> tuple[StreamLog, Meta] | None:
        """The stream's log and meta if it exists; 404 if it belongs to another client."""
        found = await self._find(sid)
        if found is None:
            return None
        token = presented_token(request)
        if token is None or not hmac.compare_digest(digest(token), found[1].owner):
            m.RESUMES.labels("forbidden").inc()
            raise APIError(404, "No such stream for this client.", NOT_FOUND, code="stream_not_found")
        return found

    async def join(self, request: Request, sid: str, after: int) -> Response:
        """Replay after `after`, then follow. 204 (EventSource stops) when the stream is unknown,
        expired, trimmed past `after`, or already ended: never a regeneration."""
        found = await self._owned(request, sid)
        if found is None:
            m.RESUMES.labels("gone").inc()
            return Response(status_code=204)
        stream_log, meta = found
        ahead = await stream_log.read(sid, after, 0)
        if ahead is None or (ahead and ahead[0].frame == END):
            m.RESUMES.labels("gone").inc()
            return Response(status_code=204)
        m.RESUMES.labels("resumed").inc()
        m.REJOINS.labels("same" if meta.producer == instance_id() else "other").inc()
        reader = secrets.token_hex(8)
        await stream_log.attach(sid, reader)
        return self._response(stream_log, sid, after, meta.route, reader)

    def _response(self, stream_log: StreamLog, sid: str, after: int, route: str, reader: str) -> Response:
        settings = self.settings

        def ping() -> ServerSentEvent:
            m.PINGS_SENT.labels(route).inc()
            return ServerSentEvent(comment="ping", sep="\n")

        return StreamResponse(
            self._follow(stream_log, sid, after, route, reader),
            headers={**STREAM_HEADERS, STREAM_ID_HEADER: sid},
            ping=settings.ping_interval,
            ping_message_factory=ping,
            sep="\n",
            send_timeout=settings.send_timeout,
        )

    async def _follow(
        self, stream_log: StreamLog, sid: str, after: int, route: str, reader: str
    ) -> AsyncIterator[bytes]:
        # `id: <stream>:<offset>` on the EventSource route. Not on the OpenAI routes: their wire stays
        # OpenAI's, and the openai SDK turns a heartbeat comment after any `id:` into an empty event
        # it fails to parse (openai/openai-python#3833). There the offset is the count of events
        # received - 1 (for Responses, the `sequence_number`): rejoin with `?after=N`.
        prefix = f"id: {sid}:".encode() if route == "chat_stream" else None
        refreshed = time.monotonic()
        try:
            while True:
                entries = await stream_log.read(sid, after, READ_WAIT)
                if entries is None:
                    return  # expired or trimmed: cut without a terminal; the reconnect gets 204
                for entry in entries:
                    if entry.frame == END:
                        return
                    yield prefix + b"%d\n" % entry.offset + strip_id(entry.frame) if prefix else entry.frame
                    after = entry.offset
                if not stream_log.shared:
                    continue
                if not entries and not await stream_log.lease_alive(sid):
                    await self._end_lost(stream_log, sid, after, route)
                if time.monotonic() - refreshed >= READER_REFRESH:
                    await stream_log.attach(sid, reader)
                    refreshed = time.monotonic()
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream_log.detach(sid, reader)

    async def _end_lost(self, stream_log: StreamLog, sid: str, after: int, route: str) -> None:
        """The producer's lease lapsed (killed, node lost): end the log with an `error` event. If
        another reader (or the producer) wrote at that offset first, the append fails: fine."""
        body = error_body("The instance generating this stream stopped; retry the request.", SERVER_ERROR,
                          code=PRODUCER_LOST)
        entries = [Entry(after + 1, error_frame(route, body, after + 1)), Entry(after + 2, END)]
        if await stream_log.append(sid, entries):
            m.RESUME_CANCELS.labels(PRODUCER_LOST).inc()
            await stream_log.finish(sid)

    # --- cancel -----------------------------------------------------------------------------
    async def cancel(self, request: Request, sid: str) -> dict[str, Any]:
        found = await self._owned(request, sid)
        if found is None:
            raise APIError(404, "No such stream for this client.", NOT_FOUND, code="stream_not_found")
        producer = self.producers.get(sid)
        if producer is not None:
            producer.cancel(Ending.CLIENT_CANCEL)
        elif self.shared is not None:
            await self.shared.request_cancel(sid)  # the producer (another worker or replica) acts on it
        return {"id": sid, "object": "stream.cancel", "status": "cancelling"}

    def _listen(self) -> None:
        """Redis: one subscription per worker; a cancel published by any replica stops the local
        producer at once (the producers' watchdogs also see the cancel key within CANCEL_KEY_CHECK)."""
        if self._listener is not None and not self._listener.done():
            return

        async def listen() -> None:
            while True:
                try:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(CANCEL_CHANNEL)
                    async for message in pubsub.listen():
                        producer = self.producers.get(message["data"].decode())
                        if producer is not None:
                            producer.cancel(Ending.CLIENT_CANCEL)
                except Exception:
                    log.warning("resume cancel listener: reconnecting", exc_info=True)
                    await anyio.sleep(1.0)

        self._listener = asyncio.get_running_loop().create_task(listen(), name="resume-cancel-listener")


def resume_of(request: Request) -> Resume:
    """The worker's Resume (created on first use, inside the worker's event loop)."""
    state = request.app.state
    manager: Resume | None = getattr(state, "resume", None)
    if manager is None:
        manager = Resume(state.settings, state.drain)
        state.resume = manager
    return manager
