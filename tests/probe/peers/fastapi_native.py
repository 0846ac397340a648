"""Peer: FastAPI's native SSE (`fastapi.sse.EventSourceResponse`, FastAPI >= 0.135).

FastAPI sends `Cache-Control: no-cache` and `X-Accel-Buffering: no` itself.
Run: python -m uvicorn tests.probe.peers.fastapi_native:app --port PORT
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tests.probe.peers.script import Script

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/generic", response_class=EventSourceResponse)
async def generic(request: Request) -> AsyncIterator[ServerSentEvent]:
    async for data in Script.of(request.query_params).datas(openai=False):
        yield ServerSentEvent(raw_data=data)


@app.post("/v1/chat/completions", response_class=EventSourceResponse)
async def chat(request: Request) -> AsyncIterator[ServerSentEvent]:
    async for data in Script.of(request.query_params).datas(openai=True):
        yield ServerSentEvent(raw_data=data)
