"""Peer: a minimal raw-ASGI SSE endpoint (the floor: no framework, no disconnect handling)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from bench.peers import deltas, token_data

_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    query = dict(parse_qsl(scope["query_string"].decode()))
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    async for delta in deltas(query):
        frame = b"data: " + token_data(delta).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
