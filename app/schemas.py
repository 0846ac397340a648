"""Request bodies of the OpenAI-compatible endpoints, validated strictly enough that bad input
gets a 400 with a clear `param`, and loosely enough that real OpenAI clients (which send many
optional fields) are accepted."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from app.upstreams.fake import FakeKnobsIn


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
        """The same conversation as Chat Completions messages (UPSTREAM_RESPONSES=translate):
        text and image parts, `function_call` items as the assistant's tool calls, and
        `function_call_output` items as tool messages (the second turn of a tool loop)."""
        out: list[dict[str, Any]] = []
        if self.instructions:
            out.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            out.append({"role": "user", "content": self.input})
            return out
        for item in self.input:
            if isinstance(item, ResponseInputMessage):
                out.append({"role": item.role, "content": _chat_content(item.content)})
                continue
            extra = item.model_extra or {}
            if item.type == "function_call":
                call = {
                    "id": extra.get("call_id"),
                    "type": "function",
                    "function": {"name": extra.get("name"), "arguments": extra.get("arguments", "")},
                }
                if out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls"):
                    out[-1]["tool_calls"].append(call)  # parallel calls: one assistant message
                else:
                    out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif item.type == "function_call_output":
                out.append({"role": "tool", "tool_call_id": extra.get("call_id"), "content": item.text()})
        return out

    def chat_fields(self) -> dict[str, Any]:
        """The Responses request's parameters as Chat Completions parameters (translate mode)."""
        extra = self.model_extra or {}
        fields: dict[str, Any] = {k: extra[k] for k in _SAME_NAME if k in extra}
        tools = [t for t in extra.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        if tools:
            fields["tools"] = [
                {
                    "type": "function",
                    "function": {k: t[k] for k in ("name", "description", "parameters", "strict") if k in t},
                }
                for t in tools
            ]
        choice = extra.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function":
            fields["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif choice is not None:
            fields["tool_choice"] = choice
        text_format = (extra.get("text") or {}).get("format") if isinstance(extra.get("text"), dict) else None
        if isinstance(text_format, dict) and text_format.get("type") == "json_schema":
            schema = {k: text_format[k] for k in ("name", "schema", "strict", "description") if k in text_format}
            fields["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif isinstance(text_format, dict) and text_format.get("type") == "json_object":
            fields["response_format"] = {"type": "json_object"}
        reasoning = extra.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort"):
            fields["reasoning_effort"] = reasoning["effort"]
        return fields


# Responses parameters that Chat Completions takes under the same name.
_SAME_NAME = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "metadata",
    "store",
    "service_tier",
    "top_logprobs",
)


def _chat_content(content: str | list[ContentPart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.type in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.text or ""})
        elif part.type == "input_image":
            url = (part.model_extra or {}).get("image_url")
            detail = (part.model_extra or {}).get("detail")
            parts.append({"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}})
    return parts
