"""Request bodies of the OpenAI-compatible endpoints, validated strictly enough that bad input
gets a 400 with a clear `param`, and loosely enough that real OpenAI clients (which send many
optional fields) are accepted."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from app.fakellm import FakeKnobs

Number = StrictInt | StrictFloat


class FakeKnobsIn(BaseModel):
    """Per-request knobs of the built-in fake LLM; rejected unless the fake upstream is active."""

    model_config = ConfigDict(extra="forbid")

    tokens: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = None
    tokens_per_second: Annotated[Number, Field(ge=0, le=1_000_000)] | None = None
    first_token_delay: Annotated[Number, Field(ge=0, le=3600)] | None = None
    stall_at: Annotated[StrictInt, Field(ge=0)] | None = None
    stall_seconds: Annotated[Number, Field(ge=0, le=3600)] = 0.0
    fail_at: Annotated[StrictInt, Field(ge=0)] | None = None

    def to_knobs(self, defaults: FakeKnobs) -> FakeKnobs:
        values = {k: v for k, v in self.model_dump().items() if v is not None}
        return FakeKnobs(**{**defaults.__dict__, **values})


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    fake: FakeKnobsIn | None = None

    def prompt(self) -> str:
        return "\n".join(m.text() for m in self.messages)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def passthrough(self) -> dict[str, Any]:
        """Fields relayed as-is to an OpenAI-compatible upstream (everything but the kit's own)."""
        return self.model_dump(exclude={"fake"}, exclude_none=True)


class ResponseInputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[ContentPart]
    type: Literal["message"] = "message"

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content)
        return self.content


class ResponseInputItem(BaseModel):
    """Any other input item (`function_call`, `function_call_output`, `reasoning`, ...): kept as sent."""

    model_config = ConfigDict(extra="allow")
    type: StrictStr

    @field_validator("type")
    @classmethod
    def _not_a_message(cls, value: str) -> str:
        if value == "message":
            raise ValueError("a message item needs a role of system, developer, user or assistant and a content")
        return value

    def text(self) -> str:
        output = getattr(self, "output", None)
        return output if isinstance(output, str) else ""


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    input: StrictStr | Annotated[list[ResponseInputMessage | ResponseInputItem], Field(min_length=1)]
    instructions: StrictStr | None = None
    stream: StrictBool = False
    max_output_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    fake: FakeKnobsIn | None = None

    def prompt(self) -> str:
        parts = [self.instructions] if self.instructions else []
        if isinstance(self.input, str):
            parts.append(self.input)
        else:
            parts.extend(m.text() for m in self.input)
        return "\n".join(parts)

    def messages(self) -> list[dict[str, Any]]:
        """The same conversation as Chat Completions messages (for relaying upstream)."""
        out: list[dict[str, Any]] = []
        if self.instructions:
            out.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            out.append({"role": "user", "content": self.input})
        else:
            out.extend({"role": m.role, "content": m.text()} for m in self.input if isinstance(m, ResponseInputMessage))
        return out
