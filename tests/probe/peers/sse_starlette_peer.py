"""Peer: sse-starlette's `EventSourceResponse` on plain Starlette, with a plain
`Cache-Control: no-cache` (as many OpenAI-compatible servers send) instead of its default.

Run: python -m uvicorn tests.probe.peers.sse_starlette_peer:app --port PORT
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.probe.peers.script import Script

HEADERS = {"Cache-Control": "no-cache"}


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _stream(request: Request, openai: bool) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        async for data in Script.of(request.query_params).datas(openai):
            yield {"data": data}

    return EventSourceResponse(events(), headers=HEADERS)


async def generic(request: Request) -> EventSourceResponse:
    return _stream(request, openai=False)


async def chat(request: Request) -> EventSourceResponse:
    return _stream(request, openai=True)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/generic", generic),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
)
