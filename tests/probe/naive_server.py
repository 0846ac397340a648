"""A tiny SSE server with switchable defects: the probe's negative controls (never shipped).

Raw asyncio and hand-written HTTP/1.1 on purpose: each defect is a few lines you can read,
with nothing in between that could fix it. One process serves every variant; the query string
picks the defects:

    n=8           events to send (token events with `emitted_at` unless stamps=0)
    interval=0.1  seconds between events
    stamps=1      include `emitted_at` (unix seconds) in each event
    pings=0.3     a `: ping` comment every this many seconds (0 = no heartbeats)
    silence=0     pause this long after half the events (the server "thinks")
    buffer=0      1 = hold the whole response, headers included, and send it at the end
    gzip=0        1 = gzip the stream (flushed per event, so only the encoding is wrong)
    cut=0         1 = drop the connection before the terminal event (no final chunk)
    headers=1     0 = leave out Cache-Control and X-Accel-Buffering

Run: python -m tests.probe.naive_server PORT [CERT KEY]   (with CERT and KEY: https)
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import zlib
from urllib.parse import parse_qsl, urlsplit


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of the chunked transfer coding."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Response:
    """Writes SSE frames, through gzip and/or a hold-everything buffer when asked."""

    def __init__(self, writer: asyncio.StreamWriter, params: dict[str, str]) -> None:
        self.writer = writer
        self.buffer = params.get("buffer") == "1"
        self.gzip = zlib.compressobj(wbits=31) if params.get("gzip") == "1" else None
        self.held: list[bytes] = []

    async def raw(self, data: bytes) -> None:
        if self.buffer:
            self.held.append(data)
            return
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, text: str) -> None:
        data = text.encode()
        if self.gzip is not None:
            data = self.gzip.compress(data) + self.gzip.flush(zlib.Z_SYNC_FLUSH)
        await self.raw(chunk(data))

    async def end(self) -> None:
        if self.gzip is not None:
            await self.raw(chunk(self.gzip.flush()))
        await self.raw(b"0\r\n\r\n")
        await self.flush_held()

    async def flush_held(self) -> None:
        self.writer.write(b"".join(self.held))
        self.held.clear()
        await self.writer.drain()


async def pinger(response: Response, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await response.frame(": ping\n\n")


async def stream(writer: asyncio.StreamWriter, params: dict[str, str]) -> None:
    n = int(params.get("n", "8"))
    interval = float(params.get("interval", "0.1"))
    stamps = params.get("stamps", "1") == "1"
    silence = float(params.get("silence", "0"))
    ping_every = float(params.get("pings", "0.3"))
    response = Response(writer, params)
    head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked", "Connection: close"]
    if params.get("headers", "1") == "1":
        head += ["Cache-Control: no-cache, no-transform", "X-Accel-Buffering: no"]
    if response.gzip is not None:
        head.append("Content-Encoding: gzip")
    await response.raw(("\r\n".join(head) + "\r\n\r\n").encode())
    pings = asyncio.create_task(pinger(response, ping_every)) if ping_every > 0 else None
    try:
        for i in range(n):
            await asyncio.sleep(interval)
            if silence and i == n // 2:
                await asyncio.sleep(silence)
            payload: dict[str, object] = {"delta": f"t{i} "}
            if stamps:
                payload["emitted_at"] = time.time()
            await response.frame(f"id: {i}\nevent: token\ndata: {json.dumps(payload)}\n\n")
        if params.get("cut") == "1":
            await response.flush_held()
            return  # the caller closes the socket: the chunked body never ends
        await response.frame('event: done\ndata: {"finish_reason": "stop"}\n\n')
    finally:
        if pings is not None:
            pings.cancel()
    await response.end()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # request headers are not needed
        target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
        url = urlsplit(target)
        if url.path == "/healthz":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        else:
            await stream(writer, dict(parse_qsl(url.query)))
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(port: int, tls: ssl.SSLContext | None) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=tls)
    async with server:
        await server.serve_forever()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here: an h2 client must fall back
    return context


if __name__ == "__main__":
    tls = tls_context(sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(main(int(sys.argv[1]), tls))
