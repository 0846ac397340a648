"""The upstream interface: what the streaming core needs from any LLM source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.ending import Ending
from app.errors import APIError


@dataclass(slots=True)
class Chunk:
    """One piece of upstream output.

    `raw` is the upstream's own `chat.completion.chunk` JSON when there is one: the
    chat.completions endpoint relays it verbatim, whatever it holds (tool calls, refusal,
    reasoning, logprobs, several choices, unknown fields), with the upstream's identity kept.
    `delta` (the first choice's text) and `obj` (the parsed chunk) are filled only for the
    endpoints that translate (`/v1/chat/stream`, `/v1/responses`): relaying needs no parse.
    """

    delta: str = ""
    raw: bytes | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    # The usage-only chunk the relay asked for on the client's behalf: counted, never sent.
    withheld: bool = False
    # An in-stream upstream error object (relayed as the upstream sent it, key redacted).
    error: dict[str, Any] | None = None
    obj: dict[str, Any] | None = None


@dataclass
class Generation:
    """What to generate, independent of the endpoint that asked for it."""

    request_id: str
    model: str
    prompt: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    include_usage: bool = False
    # The client's other fields: relayed to an OpenAI-compatible upstream unchanged; the kit's own
    # `fake` field (never relayed: the routes refuse it then) holds the built-in fake's knobs.
    extra: dict[str, Any] = field(default_factory=dict)
    # Relay each upstream chunk's bytes without parsing them (POST /v1/chat/completions).
    passthrough: bool = False
    # Which upstream API: `chat` (/chat/completions) or `responses` (/responses, relayed natively).
    api: str = "chat"
    # Client headers forwarded to the upstream (tracing and request id: see app.upstreams.contract).
    headers: dict[str, str] = field(default_factory=dict)


class UpstreamError(APIError):
    """An upstream failure and the stream's `ending` (app/ending.py: UPSTREAM_ERROR or
    UPSTREAM_TIMEOUT). Its error `type` is the ending's for the kit's own failures (unreachable,
    timeout, broken stream); an error the upstream reported keeps the upstream's own `type`, `code`
    and `param` (and ends the stream as UPSTREAM_ERROR, whatever its type). Before the first byte it
    is the HTTP error the client gets (`status`, `body()`)."""

    def __init__(
        self,
        message: str,
        ending: Ending = Ending.UPSTREAM_ERROR,
        status: int = 502,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(status, message, type or ending.error_type, param, code)
        self.ending = ending


class UpstreamStream(Protocol):
    """An open upstream generation. Iterate for chunks; `aclose` must close the upstream
    request at once (not leave it to garbage collection) and is safe to call twice; `ending`:
    how the stream ended (the fake LLM writes it into its record)."""

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    async def aclose(self, ending: Ending) -> None: ...


class Upstream(Protocol):
    models: list[str]

    async def ensure_models(self, wanted: str | None) -> None:
        """Bring `models` up to date (an OpenAI-compatible upstream lists its own)."""
        ...

    async def open(self, generation: Generation) -> UpstreamStream:
        """Start a generation. Failures known before streaming raise UpstreamError."""
        ...

    async def aclose(self) -> None: ...
