"""Upstreams: the built-in fake LLM, or any OpenAI-compatible server through the openai SDK."""

from __future__ import annotations

from app.settings import Settings
from app.upstreams.base import Chunk, Generation, Upstream, UpstreamError, UpstreamStream

__all__ = ["Chunk", "Generation", "Upstream", "UpstreamError", "UpstreamStream", "make_upstream"]


def make_upstream(settings: Settings) -> Upstream:
    if settings.uses_fake:
        from app.upstreams.fake import FakeUpstream

        return FakeUpstream(settings)
    from app.upstreams.openai_compat import OpenAIUpstream

    return OpenAIUpstream(settings)
