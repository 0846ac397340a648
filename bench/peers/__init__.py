"""Small peer apps the benchmark measures the kit against, each served by uvicorn with one worker.

Every peer streams the same tokens from the same generator (`app.fakellm`) on `GET /stream` with the
fake LLM's query knobs (`tokens`, `tokens_per_second`, `first_token_delay`), one `data:` frame per
token, so the only difference between them is the serving path.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

from app.fakellm import FakeKnobs, FakeLLM

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def knobs_of(query: Mapping[str, str]) -> FakeKnobs:
    return FakeKnobs(
        tokens=int(query.get("tokens", 48)),
        tokens_per_second=float(query.get("tokens_per_second", 0)),
        first_token_delay=float(query.get("first_token_delay", 0)),
    )


def token_data(delta: str) -> str:
    """The payload of one token frame (what the kit's `/v1/chat/stream` puts in `data:`)."""
    return _dumps({"delta": delta})


async def deltas(query: Mapping[str, str]) -> AsyncIterator[str]:
    async for delta in FakeLLM("bench", knobs_of(query), "peer").deltas():
        yield delta
