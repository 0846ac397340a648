"""The built-in fake LLM as an in-process upstream (the default: no key, no network)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from app.fakellm import FakeFailure, FakeKnobs, FakeLLM
from app.settings import Settings
from app.upstreams.base import Chunk, Generation, UpstreamError


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

    async def aclose(self, reason: str) -> None:
        await self._deltas.aclose()
        self._llm.close(reason)


class FakeUpstream:
    def __init__(self, settings: Settings) -> None:
        self.models = [settings.model_name]
        self._record_dir = settings.fake_record_dir
        self.defaults = FakeKnobs(
            tokens=settings.fake_tokens,
            tokens_per_second=settings.fake_tokens_per_second,
            first_token_delay=settings.fake_first_token_delay,
        )

    async def ensure_models(self, wanted: str | None) -> None:
        return None

    async def open(self, generation: Generation) -> FakeStream:
        knobs = generation.fake or self.defaults
        if generation.max_tokens is not None and generation.max_tokens < knobs.tokens:
            knobs = FakeKnobs(**{**knobs.__dict__, "tokens": generation.max_tokens})
        return FakeStream(FakeLLM(generation.prompt, knobs, generation.request_id, self._record_dir))

    async def aclose(self) -> None:
        return None
