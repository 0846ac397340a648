"""The upstream interface: what the streaming core needs from any LLM source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import UPSTREAM_ERROR
from app.fakellm import FakeKnobs


@dataclass(slots=True)
class Chunk:
    """One piece of upstream output.

    `raw` is the upstream's own `chat.completion.chunk` JSON when there is one: the
    chat.completions endpoint relays it verbatim (ids kept, no model built per chunk).
    """

    delta: str = ""
    raw: bytes | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


@dataclass
class Generation:
    """What to generate, independent of the endpoint that asked for it."""

    request_id: str
    model: str
    prompt: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    include_usage: bool = False
    fake: FakeKnobs | None = None
    # Extra OpenAI parameters relayed to an OpenAI-compatible upstream unchanged.
    extra: dict[str, Any] = field(default_factory=dict)


class UpstreamError(Exception):
    """An upstream failure, already normalized to the kit's error types."""

    def __init__(self, message: str, type: str = UPSTREAM_ERROR, status: int = 502, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.status = status
        self.code = code


class UpstreamStream(Protocol):
    """An open upstream generation. Iterate for chunks; `aclose` must close the upstream
    request at once (not leave it to garbage collection) and is safe to call twice."""

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    async def aclose(self, reason: str) -> None: ...


class Upstream(Protocol):
    models: list[str]

    async def open(self, generation: Generation) -> UpstreamStream:
        """Start a generation. Failures known before streaming raise UpstreamError."""
        ...

    async def aclose(self) -> None: ...
