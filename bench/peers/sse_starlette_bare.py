"""Peer: bare sse-starlette EventSourceResponse (its defaults: 15 s pings, disconnect listener)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from bench.peers import deltas, token_data


async def stream(request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        async for delta in deltas(request.query_params):
            yield {"data": token_data(delta)}

    return EventSourceResponse(events())


app = Starlette(routes=[Route("/stream", stream)])
