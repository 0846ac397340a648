"""Peer: a raw ASGI app (no framework): `http.response.start`, then one body message per event.

It sends `Cache-Control: no-cache` only (no no-transform, no X-Accel-Buffering).
Run: python -m uvicorn tests.probe.peers.raw_asgi:app --port PORT
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from tests.probe.peers.script import Script

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
ROUTES = {("GET", "/generic"): False, ("POST", "/v1/chat/completions"): True}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    route = (scope["method"], scope["path"])
    if route not in ROUTES:
        status = 200 if scope["path"] == "/healthz" else 404
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"not found"})
        return
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    query = dict(parse_qsl(scope["query_string"].decode()))
    async for data in Script.of(query).datas(openai=ROUTES[route]):
        await send({"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b""})
