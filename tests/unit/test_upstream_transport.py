"""The upstream transport over aiohttp (app/upstreams/transport.py) behaves as the httpx2 one did:
bytes that arrived before a dropped connection are relayed before the error, errors keep the
httpx2 classes the relay's answers depend on, and every upstream socket carries the dead-peer
options. Against a raw asyncio server on 127.0.0.1, so the timing is ours."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx2
import pytest
from openai._constants import DEFAULT_CONNECTION_LIMITS

from app.settings import Settings
from app.sockets import dead_peer_options
from app.upstreams.transport import UpstreamTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b"data: {}\n\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await handler(reader, writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def client(read_timeout: float = 5.0) -> httpx2.AsyncClient:
    transport = UpstreamTransport(DEFAULT_CONNECTION_LIMITS, dead_peer_options(Settings()))
    return httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(5.0, read=read_timeout))


# Without the fix aiohttp raised at once and these bytes were lost (seen under load in
# tests/relay/test_faults.py::test_dropped_connection_is_one_error_event).


def test_bytes_before_a_dropped_connection_are_relayed_then_the_error() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(EVENT * 3))  # three events, then the connection ends mid-body
        await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, BaseException | None]:
        server, url = await serve(drop)
        received, error = b"", None
        async with server, client() as http, http.stream("POST", url, content=b"{}") as response:
            await asyncio.sleep(0.2)  # the body and the close have both arrived before the first read
            try:
                async for data in response.aiter_bytes():
                    received += data
            except httpx2.HTTPError as exc:
                error = exc
        return received, error

    received, error = asyncio.run(main())
    assert received == EVENT * 3
    assert isinstance(error, httpx2.ReadError)


def test_refused_connect_is_connect_error() -> None:
    async def main() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # bound, not listening: refused
            async with client() as http:
                await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=b"{}")

    with pytest.raises(httpx2.ConnectError):
        asyncio.run(main())


def test_silent_upstream_is_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(EVENT))
        await writer.drain()
        await asyncio.sleep(3)
        writer.close()

    async def main() -> bytes:
        server, url = await serve(silent)
        received = b""
        async with server, client(read_timeout=0.3) as http, http.stream("POST", url, content=b"{}") as response:
            async for data in response.aiter_bytes():
                received += data
        return received

    with pytest.raises(httpx2.ReadTimeout):
        asyncio.run(main())


def test_upstream_sockets_carry_the_dead_peer_options() -> None:
    settings = Settings()
    options = dead_peer_options(settings)
    assert options, "dead-peer options are on by default"
    transport = UpstreamTransport(DEFAULT_CONNECTION_LIMITS, options)
    with transport._socket((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))) as sock:
        for level, option, value in options:
            assert sock.getsockopt(level, option) == value
