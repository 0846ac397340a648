"""Per-stream logs of framed SSE events: in memory (one worker process) or Redis Streams (any replica).

A log holds, for one resumable stream, the events exactly as they go on the wire (without the
`id:` line: readers add `id: <stream>:<offset>`), each at an offset 0, 1, 2, ... An entry with an
empty frame is the END marker written after the terminal event, so a reader knows the stream is
over (and a rejoin after it gets 204).

Offsets are assigned by the producer and an append at an offset that is already taken fails:
that is what makes "exactly one terminal event" hold even when a reader declares the producer
lost (lease expired) and writes the `error` event itself while a stale producer tries to go on.

Redis layout (all keys expire; `resume_ttl_seconds` after the end, or the longest stream + that
while it runs):
    {prefix}{id}:log      Stream; entry id `<offset + 1>-0`, field `f` = the frame; XADD MAXLEN ~
    {prefix}{id}:meta     hash: owner (sha256 of the owner token), producer (instance id), route
    {prefix}{id}:lease    the producer's lease, SET PX, refreshed while it generates
    {prefix}{id}:readers  sorted set: attached reader ids, score = when their presence expires
    {prefix}{id}:cancel   set by POST /v1/streams/{id}/cancel; also PUBLISHed on CANCEL_CHANNEL
Docs: https://redis.io/docs/latest/develop/data-types/streams/
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from redis.asyncio import Redis
from redis.exceptions import ResponseError

END = b""  # the end marker's frame
# A reader that stops refreshing its presence (its instance died) counts as gone after this long.
READER_PRESENCE_SECONDS = 3.0
KEY_PREFIX = "streamkit:resume:"
CANCEL_CHANNEL = "streamkit:resume:cancel"


@dataclass(slots=True)
class Meta:
    owner: str  # sha256 hex of the owner token
    producer: str  # instance id of the producing worker
    route: str


@dataclass(slots=True)
class Entry:
    offset: int
    frame: bytes


class StreamLog(Protocol):
    """What the producer and the readers need from a backend."""

    name: str
    shared: bool  # True: every replica sees the same logs (Redis); False: this worker only

    async def create(self, sid: str, meta: Meta) -> bool: ...
    async def meta(self, sid: str) -> Meta | None: ...
    async def append(self, sid: str, entries: list[Entry]) -> bool: ...
    async def read(self, sid: str, after: int, wait: float) -> list[Entry] | None: ...
    async def finish(self, sid: str) -> None: ...
    async def hold_lease(self, sid: str, producer: str) -> None: ...
    async def lease_alive(self, sid: str) -> bool: ...
    async def attach(self, sid: str, reader: str) -> None: ...
    async def detach(self, sid: str, reader: str) -> None: ...
    async def readers(self, sid: str) -> int: ...
    async def request_cancel(self, sid: str) -> None: ...
    async def cancel_requested(self, sid: str) -> bool: ...


class LogFull(Exception):
    """No room for another resumable stream (in-memory backend at RESUME_MAX_STREAMS)."""


# --- in memory -----------------------------------------------------------------------------------
@dataclass
class _Mem:
    meta: Meta
    created: float
    frames: list[bytes] = field(default_factory=list)
    base: int = 0  # offset of frames[0] (older entries trimmed at max_events)
    ended_at: float | None = None
    readers: set[str] = field(default_factory=set)
    cancel: bool = False
    changed: anyio.Event = field(default_factory=anyio.Event)


class MemoryLog:
    """Logs in this worker process: bounded in count (`max_streams`), length (`max_events`) and age
    (`ttl` after the end). A rejoin that lands on another worker or replica does not find the log
    (and gets 204, never a regeneration): use Redis for more than one worker."""

    name = "memory"
    shared = False

    def __init__(self, max_streams: int, max_events: int, ttl: float, max_age: float) -> None:
        self.max_streams = max_streams
        self.max_events = max_events
        self.ttl = ttl
        self.max_age = max_age  # a running stream's log lives at most this long (longest stream + ttl)
        self._logs: OrderedDict[str, _Mem] = OrderedDict()

    def _get(self, sid: str) -> _Mem | None:
        log = self._logs.get(sid)
        if log is not None and self._expired(log, time.monotonic()):
            del self._logs[sid]
            return None
        return log

    def _expired(self, log: _Mem, now: float) -> bool:
        return (log.ended_at is not None and now - log.ended_at > self.ttl) or now - log.created > self.max_age

    def _expire(self) -> None:
        """Drop every expired log (on create: O(logs), never on the per-event path)."""
        now = time.monotonic()
        for sid, log in list(self._logs.items()):
            if self._expired(log, now):
                del self._logs[sid]

    async def create(self, sid: str, meta: Meta) -> bool:
        self._expire()
        if len(self._logs) >= self.max_streams:
            ended = [s for s, log in self._logs.items() if log.ended_at is not None]
            if not ended:
                raise LogFull(f"{len(self._logs)} resumable streams are open (RESUME_MAX_STREAMS)")
            del self._logs[ended[0]]  # the oldest finished one
        if sid in self._logs:
            return False
        self._logs[sid] = _Mem(meta, time.monotonic())
        return True

    async def meta(self, sid: str) -> Meta | None:
        log = self._get(sid)
        return log.meta if log else None

    async def append(self, sid: str, entries: list[Entry]) -> bool:
        log = self._logs.get(sid)
        if log is None:
            return False
        for entry in entries:
            if entry.offset != log.base + len(log.frames):
                return False
            log.frames.append(entry.frame)
        excess = len(log.frames) - self.max_events
        if excess > 0:
            del log.frames[:excess]
            log.base += excess
        log.changed.set()
        log.changed = anyio.Event()
        return True

    async def read(self, sid: str, after: int, wait: float) -> list[Entry] | None:
        """Entries after offset `after` (waiting up to `wait` s for one); None: unknown, expired, or
        `after` already trimmed away (the reader cannot continue exactly)."""
        log = self._get(sid)
        if log is None or after + 1 < log.base:
            return None
        start = after + 1 - log.base
        if start >= len(log.frames) and wait > 0:
            with anyio.move_on_after(wait):
                await log.changed.wait()
            return await self.read(sid, after, 0)
        return [Entry(log.base + i, frame) for i, frame in enumerate(log.frames[start:], start)]

    async def finish(self, sid: str) -> None:
        log = self._logs.get(sid)
        if log is not None:
            log.ended_at = time.monotonic()

    async def hold_lease(self, sid: str, producer: str) -> None:
        return None  # the producer lives in this process: if it dies, so do its readers

    async def lease_alive(self, sid: str) -> bool:
        return sid in self._logs

    async def attach(self, sid: str, reader: str) -> None:
        log = self._logs.get(sid)
        if log is not None:
            log.readers.add(reader)

    async def detach(self, sid: str, reader: str) -> None:
        log = self._logs.get(sid)
        if log is not None:
            log.readers.discard(reader)

    async def readers(self, sid: str) -> int:
        log = self._logs.get(sid)
        return len(log.readers) if log else 0

    async def request_cancel(self, sid: str) -> None:
        log = self._logs.get(sid)
        if log is not None:
            log.cancel = True

    async def cancel_requested(self, sid: str) -> bool:
        log = self._logs.get(sid)
        return bool(log and log.cancel)


# --- Redis Streams -------------------------------------------------------------------------------
def _entry_id(offset: int) -> bytes:
    return b"%d-0" % (offset + 1)


def _offset(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0]) - 1


class RedisLog:
    """Logs in Redis Streams: any replica can replay and follow any stream."""

    name = "redis"
    shared = True

    def __init__(self, client: Redis, max_events: int, ttl: float, max_age: float, lease: float) -> None:
        self.r: Any = client  # redis-py's types are unions of bytes and str; this client speaks bytes
        self.max_events = max_events
        self.ttl = int(max(1, ttl))
        self.max_age = int(max(1, max_age))
        self.lease = lease

    @staticmethod
    def key(sid: str, part: str) -> str:
        return f"{KEY_PREFIX}{sid}:{part}"

    async def create(self, sid: str, meta: Meta) -> bool:
        key = self.key(sid, "meta")
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "owner", meta.owner)
            pipe.hset(key, mapping={"producer": meta.producer, "route": meta.route})
            pipe.expire(key, self.max_age)
            created, *_ = await pipe.execute()
        return bool(created)

    async def meta(self, sid: str) -> Meta | None:
        raw = await self.r.hgetall(self.key(sid, "meta"))
        if not raw or b"owner" not in raw:
            return None
        return Meta(raw[b"owner"].decode(), raw.get(b"producer", b"").decode(), raw.get(b"route", b"").decode())

    async def append(self, sid: str, entries: list[Entry]) -> bool:
        """False if an offset was already taken (the stream was ended by someone else)."""
        return sid not in await self.append_many({sid: entries})

    async def append_many(self, batches: dict[str, list[Entry]]) -> set[str]:
        """One pipelined round trip for the entries of many streams (the worker's writer coalesces
        what piled up); returns the streams whose append failed (an offset already taken)."""
        order: list[str] = []
        async with self.r.pipeline(transaction=False) as pipe:
            for sid, entries in batches.items():
                key = self.key(sid, "log")
                for entry in entries:
                    pipe.xadd(key, {"f": entry.frame}, id=_entry_id(entry.offset), maxlen=self.max_events,
                              approximate=True)
                    order.append(sid)
                if entries and entries[0].offset == 0:
                    pipe.expire(key, self.max_age)  # the key exists from the first XADD on
                    order.append("")
            results = await pipe.execute(raise_on_error=False)
        return {sid for sid, result in zip(order, results, strict=True) if sid and isinstance(result, ResponseError)}

    async def read(self, sid: str, after: int, wait: float) -> list[Entry] | None:
        key = self.key(sid, "log")
        if wait > 0:
            # Follow: XREAD BLOCK answers at once with what is already there after `after`, else
            # as soon as the next entry is added (one command per event while following).
            streams = await self.r.xread({key: _entry_id(after)}, count=512, block=max(1, int(wait * 1000)))
            found = streams[0][1] if streams else []
        else:
            found = await self.r.xrange(key, min=_entry_id(after + 1), count=512)  # replay / look ahead
        if not found:
            # Nothing after `after` yet. Expired (or never existed) only if the meta is gone too:
            # a fresh stream's log key appears with the producer's first coalesced write.
            if after >= 0 and not await self.r.exists(self.key(sid, "meta")):
                return None
            return []
        if _offset(found[0][0]) != after + 1:
            return None  # trimmed past `after`: cannot continue exactly
        return [Entry(_offset(entry_id), fields[b"f"]) for entry_id, fields in found]

    async def finish(self, sid: str) -> None:
        async with self.r.pipeline(transaction=False) as pipe:
            for part in ("log", "meta", "readers", "cancel"):
                pipe.expire(self.key(sid, part), self.ttl)
            pipe.delete(self.key(sid, "lease"))
            await pipe.execute()

    async def hold_lease(self, sid: str, producer: str) -> None:
        await self.r.set(self.key(sid, "lease"), producer, px=int(self.lease * 1000))

    async def lease_alive(self, sid: str) -> bool:
        return bool(await self.r.exists(self.key(sid, "lease")))

    async def attach(self, sid: str, reader: str) -> None:
        key = self.key(sid, "readers")
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {reader: time.time() + READER_PRESENCE_SECONDS})
            pipe.expire(key, self.max_age)
            await pipe.execute()

    async def detach(self, sid: str, reader: str) -> None:
        await self.r.zrem(self.key(sid, "readers"), reader)

    async def readers(self, sid: str) -> int:
        key = self.key(sid, "readers")
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time())
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    async def request_cancel(self, sid: str) -> None:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.set(self.key(sid, "cancel"), b"1", ex=self.max_age)
            pipe.publish(CANCEL_CHANNEL, sid)
            await pipe.execute()

    async def cancel_requested(self, sid: str) -> bool:
        return bool(await self.r.exists(self.key(sid, "cancel")))
