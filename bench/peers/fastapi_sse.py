"""Peer: FastAPI's native SSE (`fastapi.sse.EventSourceResponse` as response_class, a `yield` route)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.sse import EventSourceResponse

from bench.peers import deltas

app = FastAPI()


@app.get("/stream", response_class=EventSourceResponse)
async def stream(request: Request) -> AsyncIterator[dict[str, str]]:
    # The documented pattern: yield plain objects, FastAPI serializes each to JSON in `data:`.
    async for delta in deltas(request.query_params):
        yield {"delta": delta}
