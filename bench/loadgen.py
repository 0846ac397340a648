"""The load client: raw asyncio sockets, a pre-built HTTP request, minimal parsing.

Each stream writes one pre-built request and then only counts `marker` occurrences (the bytes that
start a token frame) in what it reads, stamping the arrival time of every read that contains some.
No HTTP or SSE parser runs per event, so the client stays cheap next to the servers it measures
(run.py reports its CPU). A read that carries several frames stamps them all with one time: that
is when the client could have seen them.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

READ_SIZE = 65536
# Bytes of the previous read kept in front of the next one, so a marker split across reads counts
# (a marker or a regular expression's match must be longer than this).
MARKER_TAIL = 11


@dataclass
class StreamResult:
    sent_at: float = 0.0  # time.perf_counter() when the request was written
    headers_at: float | None = None
    status: int = 0
    token_times: list[float] = field(default_factory=list)  # one entry per token frame
    error: str = ""

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.sent_at if self.token_times else None

    def gaps(self) -> list[float]:
        times = self.token_times
        return [b - a for a, b in itertools.pairwise(times)]


def http_request(method: str, host: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 request, built once and written as is."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: text/event-stream", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Stream:
    """One connection: write the request, then count marker bytes until EOF, `stop_after` tokens or close()."""

    def __init__(
        self,
        host: str,
        port: int,
        request: bytes,
        marker: bytes | re.Pattern[bytes],
        stop_after: int | None = None,
        start_after: float = 0.0,
    ) -> None:
        self.host, self.port, self.request, self.marker = host, port, request, marker
        self.stop_after = stop_after
        self.start_after = start_after  # seconds to wait before connecting (a ramp of arrivals)
        self.result = StreamResult()
        self.writer: asyncio.StreamWriter | None = None
        self.headers_seen = asyncio.Event()
        self.closed_at: float | None = None  # time.time() when this client hung up

    async def run(self) -> StreamResult:
        result = self.result
        if self.start_after:
            await asyncio.sleep(self.start_after)
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.writer = writer
            result.sent_at = time.perf_counter()
            writer.write(self.request)
            head = b""
            while b"\r\n\r\n" not in head:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise ConnectionError("closed before headers")
                head += data
            result.headers_at = time.perf_counter()
            result.status = int(head[9:12])
            self.headers_seen.set()
            marker = self.marker
            count = marker.count if isinstance(marker, bytes) else (lambda text: len(marker.findall(text)))
            keep = MARKER_TAIL
            data = head.split(b"\r\n\r\n", 1)[1]
            tail = b""
            times = result.token_times
            while True:
                if data:
                    window = tail + data
                    found = count(window)
                    if found:
                        times.extend([time.perf_counter()] * found)
                        if self.stop_after is not None and len(times) >= self.stop_after:
                            break
                    tail = window[-keep:] if keep else b""
                data = await reader.read(READ_SIZE)
                if not data:
                    break
        except (OSError, ConnectionError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            self.headers_seen.set()
        finally:
            self.close()
        return result

    def close(self) -> None:
        if self.writer is not None and self.closed_at is None:
            self.closed_at = time.time()
            self.writer.close()


async def run_streams(
    host: str, port: int, requests: list[bytes], marker: bytes | re.Pattern[bytes], ramp: float = 0.0
) -> list[StreamResult]:
    """One stream per request, started evenly over `ramp` seconds, each read to its end."""
    step = ramp / len(requests) if requests else 0.0
    streams = [Stream(host, port, request, marker, start_after=i * step) for i, request in enumerate(requests)]
    return list(await asyncio.gather(*(stream.run() for stream in streams)))


async def run_for(
    host: str, port: int, request: bytes, marker: bytes | re.Pattern[bytes], concurrency: int, seconds: float
) -> tuple[list[StreamResult], float]:
    """`concurrency` streams, each re-opened when it ends, for `seconds`; returns results and elapsed."""
    results: list[StreamResult] = []
    deadline = time.perf_counter() + seconds
    live: set[Stream] = set()

    async def loop() -> None:
        while time.perf_counter() < deadline:
            stream = Stream(host, port, request, marker)
            live.add(stream)
            results.append(await stream.run())
            live.discard(stream)

    started = time.perf_counter()
    tasks = [asyncio.create_task(loop()) for _ in range(concurrency)]
    await asyncio.sleep(seconds)
    for stream in list(live):
        stream.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return results, time.perf_counter() - started


async def hold(
    host: str, port: int, request: bytes, count: int, batch: int = 250
) -> tuple[list[Stream], list[asyncio.Task[StreamResult]]]:
    """Open `count` streams in batches and return once each has its response headers."""
    streams: list[Stream] = []
    tasks: list[asyncio.Task[StreamResult]] = []
    for start in range(0, count, batch):
        group = [Stream(host, port, request, b"\ndata:") for _ in range(min(batch, count - start))]
        tasks += [asyncio.create_task(stream.run()) for stream in group]
        await asyncio.gather(*(stream.headers_seen.wait() for stream in group))
        streams += group
    return streams, tasks


async def release(streams: list[Stream], tasks: list[asyncio.Task[StreamResult]]) -> None:
    for stream in streams:
        stream.close()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until(predicate: Callable[[], bool | Awaitable[bool]], seconds: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or for `seconds`; returns whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return True
        await asyncio.sleep(interval)
    return False


def hard_close(stream: Stream) -> None:
    """Reset the connection (as a killed client does) instead of a graceful FIN."""
    if stream.writer is not None:
        sock = stream.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    stream.close()
