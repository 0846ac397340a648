"""The built-in fake LLM as an in-process upstream (the default: no key, no network), and its
per-request knobs: the one parser of them (`FakeKnobsIn`), used by the request bodies
(app/schemas.py), this upstream and `streamkit fake-upstream`. The knobs reach this upstream in the
request it gets: the client's `fake` field (or the fake's query parameters of GET /v1/chat/stream)
as `Generation.extra["fake"]`. Their defaults are `FakeKnobs`'s (app/fakellm.py), which FAKE_*
settings override."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from app.ending import Ending
from app.errors import INVALID_REQUEST, APIError, validation_message
from app.fakellm import FakeFailure, FakeKnobs, FakeLLM
from app.settings import Settings
from app.upstreams.base import Chunk, Generation, UpstreamError

Number = StrictInt | StrictFloat


class FakeKnobsIn(BaseModel):
    """Per-request knobs of the built-in fake LLM, as a client sends them (validated: a bad one is
    a 400 naming it); rejected unless the fake upstream is active."""

    model_config = ConfigDict(extra="forbid")

    tokens: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = None
    tokens_per_second: Annotated[Number, Field(ge=0, le=1_000_000)] | None = None
    first_token_delay: Annotated[Number, Field(ge=0, le=3600)] | None = None
    stall_at: Annotated[StrictInt, Field(ge=0)] | None = None
    stall_seconds: Annotated[Number, Field(ge=0, le=3600)] = 0.0
    fail_at: Annotated[StrictInt, Field(ge=0)] | None = None
    word_repeat: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = None  # i15: big tokens for flood tests

    def to_knobs(self, defaults: FakeKnobs) -> FakeKnobs:
        """These knobs over `defaults` (the ones not given keep the default)."""
        return replace(defaults, **{k: v for k, v in self.model_dump().items() if v is not None})


class FakeStream:
    def __init__(self, llm: FakeLLM) -> None:
        self._llm = llm
        self._deltas: AsyncGenerator[str, None] = llm.deltas()

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        try:
            async for delta in self._deltas:
                yield Chunk(delta=delta)
        except FakeFailure as exc:
            raise UpstreamError(str(exc)) from exc
        yield Chunk(finish_reason="stop")

    async def aclose(self, ending: Ending) -> None:
        await self._deltas.aclose()
        self._llm.close(ending.value)


class FakeUpstream:
    def __init__(self, settings: Settings) -> None:
        self.models = [settings.model_name]
        self._record_dir = settings.fake_record_dir
        self._defaults = FakeKnobs(
            tokens=settings.fake_tokens,
            tokens_per_second=settings.fake_tokens_per_second,
            first_token_delay=settings.fake_first_token_delay,
        )

    async def ensure_models(self, wanted: str | None) -> None:
        return None

    async def open(self, generation: Generation) -> FakeStream:
        knobs = self._knobs(generation.extra.get("fake"))
        if generation.max_tokens is not None and generation.max_tokens < knobs.tokens:
            knobs = replace(knobs, tokens=generation.max_tokens)
        return FakeStream(FakeLLM(generation.prompt, knobs, generation.request_id, self._record_dir))

    def _knobs(self, given: object) -> FakeKnobs:
        """The request's knobs over this upstream's defaults; a bad one is a 400 naming it."""
        if given is None:
            return self._defaults
        try:
            return FakeKnobsIn.model_validate(given).to_knobs(self._defaults)
        except ValidationError as exc:
            message, param = validation_message(exc.errors())
            raise APIError(400, message, INVALID_REQUEST, param) from None

    async def aclose(self) -> None:
        return None
