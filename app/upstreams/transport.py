"""The upstream HTTP client: the openai SDK's own defaults over an aiohttp transport.

Why aiohttp: the SDK's default transport (httpx2 → httpcore2 → h11) parses every upstream chunk in
pure Python and runs anyio cancel scopes and socket checks per read; aiohttp's HTTP parser is C
and its reads are plain asyncio. The SDK ships the same idea as `DefaultAioHttpClient`
(`openai[aiohttp]`); this transport is that one with three things it lacks:

* the dead-peer socket options (app/sockets.py) on every upstream connection, through
  `TCPConnector(socket_factory=...)` (aiohttp ≥ 3.12): the vendored transport accepts
  `socket_options` and drops them;
* errors mapped the way httpx2 raises them, because the relay's answers depend on the class: a
  refused connect is `ConnectError` (502 upstream_unreachable, retried), a connect timeout
  `ConnectTimeout` (504, retried), a silent upstream `ReadTimeout` (504 upstream_timeout), anything
  else after the request went out `ReadError` (the upstream broke, never retried). The vendored map
  turns every `ClientConnectionError`, a refused connect included, into `ConnectTimeout`;
* the body read as it arrives (one bytes object per socket read), and what arrived before a dropped
  connection relayed before the error (aiohttp's reader raises the error first and drops it);
  closed at once when it is not finished: `aclose` on an unfinished body closes the connection (the signal
  vLLM, Ollama and TGI abort generation on); a finished one goes back to the pool.

Timeouts: httpx2's per-request `connect` / `read` / `pool` become
aiohttp's `sock_connect` / `sock_read` / `connect` (`sock_read` is the longest silence between two
reads, the wait for the response headers included, as httpx2's `read`).

Docs: https://docs.aiohttp.org/en/stable/client_reference.html (TCPConnector socket_factory,
ClientTimeout, StreamReader.readany).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
import httpx2

from app.settings import Settings
from app.sockets import SocketOption, apply, dead_peer_options


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """aiohttp's errors as the httpx2 errors the SDK and the relay tell apart."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx2.ConnectTimeout(str(exc)) from exc
    except aiohttp.ServerTimeoutError as exc:  # sock_read: the upstream went silent
        raise httpx2.ReadTimeout(str(exc)) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS
        raise httpx2.ConnectError(str(exc)) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx2.UnsupportedProtocol(str(exc)) from exc
    except (aiohttp.ClientError, OSError) as exc:  # disconnected, reset, payload cut short, bad HTTP
        raise httpx2.ReadError(str(exc)) from exc


class UpstreamBody(httpx2.AsyncByteStream):
    """One upstream response body, read as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        with _mapped():
            while True:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, OSError):
                    # aiohttp raises a stored error (the connection dropped) before it hands out
                    # what arrived ahead of it: relay those bytes first, as httpx2 does, then fail.
                    left = b"".join(content._read_nowait_chunk(-1) for _ in range(len(content._buffer)))
                    if left:
                        yield left
                    raise
                if not chunk:
                    return
                yield chunk

    async def aclose(self) -> None:
        response = self._response
        if response.content.is_eof():
            response.release()  # finished: the connection is reused
        else:
            response.close()  # unfinished: the connection is closed now, which tells the upstream


class UpstreamTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport interface over one aiohttp session (created on first use, in the loop)."""

    def __init__(self, limits: httpx2.Limits, socket_options: Sequence[SocketOption]) -> None:
        self._limits = limits
        self._options = list(socket_options)
        self._session: aiohttp.ClientSession | None = None

    def _socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto = addr_info[:3]
        sock = socket.socket(family=family, type=kind, proto=proto)
        if family in (socket.AF_INET, socket.AF_INET6):
            apply(sock, self._options)
        return sock

    def _open_session(self) -> aiohttp.ClientSession:
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,  # None: no expiry, as httpx2
            ssl=httpx2.create_ssl_context(),
            socket_factory=self._socket,
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._session is None:
            self._session = self._open_session()
        timeout = request.extensions.get("timeout", {})
        try:
            data = request.content or None
        except httpx2.RequestNotRead:  # a streamed request body (the SDK sends bytes)
            data = await request.aread() or None
        with _mapped():
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
                ),
            )
        return httpx2.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=UpstreamBody(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def upstream_http_client(settings: Settings) -> httpx2.AsyncClient:
    """The openai SDK's own default HTTP client (its timeouts, connection limits and redirects) over
    `UpstreamTransport`, with the dead-peer options on every upstream connection."""
    from openai import DefaultAsyncHttpxClient
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    transport = UpstreamTransport(DEFAULT_CONNECTION_LIMITS, dead_peer_options(settings))
    return DefaultAsyncHttpxClient(transport=transport)
