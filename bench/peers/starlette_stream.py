"""Peer: Starlette's StreamingResponse with hand-framed SSE."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from bench.peers import deltas, token_data


async def stream(request: Request) -> StreamingResponse:
    async def frames() -> AsyncIterator[bytes]:
        async for delta in deltas(request.query_params):
            yield b"data: " + token_data(delta).encode() + b"\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")


app = Starlette(routes=[Route("/stream", stream)])
