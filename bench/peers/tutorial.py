"""Peer: the common tutorial pattern, FastAPI + sse-starlette + `request.is_disconnected()` polling.

* `GET /stream`: tokens from the in-process fake LLM (the ceiling and memory scenarios).
* `POST /v1/chat/completions`: the straightforward openai-SDK relay to `UPSTREAM_BASE_URL`: every
  chunk parsed into the SDK's models and re-serialized (`model_dump_json`), one `data:` per chunk.

With `TUTORIAL_PRODUCER_TASK=1` the token producer runs as its own task (`asyncio.create_task`)
feeding a queue, the other pattern tutorials show; nothing cancels that task when the client leaves.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from openai import AsyncOpenAI
from sse_starlette import EventSourceResponse

from bench.peers import deltas, token_data

PRODUCER_TASK = os.environ.get("TUTORIAL_PRODUCER_TASK") == "1"

app = FastAPI()
client = AsyncOpenAI(
    base_url=os.environ.get("UPSTREAM_BASE_URL", "http://127.0.0.1:1/v1"),
    api_key=os.environ.get("UPSTREAM_API_KEY", "unused"),
)
_DONE = object()


async def _via_task(source: AsyncIterator[Any]) -> AsyncIterator[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def produce() -> None:
        async for item in source:
            await queue.put(item)
        await queue.put(_DONE)

    task = asyncio.create_task(produce())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    while (item := await queue.get()) is not _DONE:
        yield item


_tasks: set[asyncio.Task[None]] = set()


def _source(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    return _via_task(items) if PRODUCER_TASK else items


@app.get("/stream")
async def stream(request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        async for delta in _source(deltas(request.query_params)):
            if await request.is_disconnected():
                break
            yield {"data": token_data(delta)}

    return EventSourceResponse(events())


@app.post("/v1/chat/completions")
async def relay(request: Request) -> EventSourceResponse:
    body = await request.json()
    request_id = request.headers.get("x-request-id", "")
    upstream = await client.chat.completions.create(
        model=body["model"], messages=body["messages"], stream=True, extra_headers={"X-Request-ID": request_id}
    )

    async def events() -> AsyncIterator[dict[str, str]]:
        async for chunk in _source(upstream):
            if await request.is_disconnected():
                break
            if chunk.choices and chunk.choices[0].delta.content == "":
                continue  # the role-only first chunk
            yield {"data": chunk.model_dump_json()}
        yield {"data": "[DONE]"}

    return EventSourceResponse(events())
