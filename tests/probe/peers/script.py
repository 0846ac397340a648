"""What every peer streams (one definition, three servers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

DONE = "[DONE]"


@dataclass(frozen=True)
class Script:
    n: int = 10
    interval: float = 0.05
    pause: float = 0.0

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Script:
        return cls(int(query.get("n", 10)), float(query.get("interval", 0.05)), float(query.get("pause", 0)))

    async def datas(self, openai: bool) -> AsyncIterator[str]:
        """The `data:` payloads, paced: JSON objects, and `[DONE]` at the end of an OpenAI stream."""
        for i in range(self.n):
            if i == self.n // 2 and self.pause:
                await asyncio.sleep(self.pause)
            yield json.dumps(chat_chunk(i) if openai else {"seq": i})
            await asyncio.sleep(self.interval)
        if openai:
            yield DONE


def chat_chunk(i: int) -> dict[str, object]:
    return {
        "id": "chatcmpl-peer",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "peer",
        "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
    }
