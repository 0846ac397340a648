"""NEGATIVE CONTROL, never shipped: the straightforward relay the app must not be.

It awaits the upstream's answer inside the route (nobody listens for the client meanwhile),
then iterates the SDK stream into a plain StreamingResponse and leaves closing the upstream
response to garbage collection. The cancellation tests run their same measurement against it
and must see the upstream stay open after the client left.

    UPSTREAM_BASE_URL=... UPSTREAM_API_KEY=... python -m uvicorn tests.relay.naive_relay:app
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

client = AsyncOpenAI(
    base_url=os.environ.get("UPSTREAM_BASE_URL", ""), api_key=os.environ.get("UPSTREAM_API_KEY", "unused")
)


async def chat_stream(request: Request) -> StreamingResponse:
    stream = await client.chat.completions.create(
        model=os.environ.get("UPSTREAM_MODEL", ""),
        messages=[{"role": "user", "content": request.query_params["prompt"]}],
        stream=True,
        extra_headers={"X-Request-ID": request.headers.get("x-request-id", "naive")},
    )

    async def events() -> AsyncIterator[str]:
        yield "event: start\ndata: {}\n\n"
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield f"event: token\ndata: {json.dumps({'delta': chunk.choices[0].delta.content})}\n\n"
        yield "event: done\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def chat_completions(request: Request) -> StreamingResponse:
    """The tutorial relay of Chat Completions: each chunk parsed into the SDK's model and dumped
    again (tests/relay/test_passthrough.py must see that it is not the upstream's stream)."""
    stream = await client.chat.completions.create(**(await request.json()))

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            yield f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(
    routes=[Route("/v1/chat/stream", chat_stream), Route("/v1/chat/completions", chat_completions, methods=["POST"])]
)
