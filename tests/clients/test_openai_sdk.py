"""The official openai SDK (the kit's pinned version) through the relay and through nginx: its
stream helpers assemble exactly what they assemble straight from the upstream (issue #13,
acceptance 2). The whole assembled object is compared (ids, every choice, tool calls with their
arguments, refusal, reasoning, finish reasons, usage with details), not a summary of it."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from tests.clients.conftest import MODEL, VIA, Bases

WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
        },
    },
]


def sdk(bases: Bases, name: str) -> OpenAI:
    return OpenAI(base_url=bases.url(name), api_key=bases.key(name), max_retries=0, timeout=30)


def assembled(client: OpenAI, fixture: str, **extra: Any) -> dict[str, Any]:
    """`chat.completions.stream`'s final completion, as a plain dict."""
    messages = [{"role": "user", "content": f"weather and time in Paris? fake.replay={fixture}"}]
    with client.chat.completions.stream(
        model=MODEL,
        messages=messages,
        stream_options={"include_usage": True},
        **extra,  # type: ignore[arg-type]
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion().model_dump()


@pytest.mark.parametrize("via", VIA)
def test_stream_helper_assembles_both_tool_calls(bases: Bases, via: str) -> None:
    final = assembled(sdk(bases, via), "tool_calls", tools=WEATHER_TOOLS)
    assert final == assembled(sdk(bases, "direct"), "tool_calls", tools=WEATHER_TOOLS)
    calls = final["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("get_weather", '{"location": "Paris, France"}'),
        ("get_time", '{"timezone": "Europe/Paris"}'),
    ]
    assert final["choices"][0]["finish_reason"] == "tool_calls"
    assert final["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert final["usage"]["completion_tokens_details"]["reasoning_tokens"] == 5


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("fixture", ["refusal", "reasoning", "logprobs"])
def test_stream_helper_assembles_refusal_reasoning_logprobs_choices(bases: Bases, via: str, fixture: str) -> None:
    final = assembled(sdk(bases, via), fixture)
    assert final == assembled(sdk(bases, "direct"), fixture)
    message = final["choices"][0]["message"]
    if fixture == "refusal":
        assert message["refusal"] == "I'm sorry, I can't help with that."
    if fixture == "reasoning":  # vLLM's field, kept by the SDK's models as an extra
        assert message["reasoning_content"] == "The user asks for 2+2. That is 4."
    if fixture == "logprobs":
        assert [t["token"] for t in final["choices"][0]["logprobs"]["content"]] == ["Hello", " there", "!"]


def chat_tool_loop(client: OpenAI) -> list[Any]:
    """A complete two-turn tool loop: the model calls two tools, the client answers each, the model
    answers in text. Returns both turns' assembled messages."""
    messages: list[Any] = [{"role": "user", "content": "weather and time in Paris? fake.replay=tool_calls"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS, stream=True)
    calls: dict[int, dict[str, Any]] = {}
    for chunk in first:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function and call.function.name) or ""
            entry["arguments"] += (call.function and call.function.arguments) or ""
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()
        ],
    }
    results = {"get_weather": "sunny fake.replay=tool_answer", "get_time": "14:05"}
    messages += [assistant] + [
        {"role": "tool", "tool_call_id": c["id"], "content": results[c["name"]]} for c in calls.values()
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in second if c.choices)
    return [assistant, text]


@pytest.mark.parametrize("via", VIA)
def test_two_turn_tool_loop_on_chat_completions(bases: Bases, via: str) -> None:
    loop = chat_tool_loop(sdk(bases, via))
    assert loop == chat_tool_loop(sdk(bases, "direct"))
    assert len(loop[0]["tool_calls"]) == 2
    assert loop[1] == "In Paris it is sunny and 14:05."


RESPONSES_TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}, "strict": False},
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}, "strict": False},
]


def responses_tool_loop(client: OpenAI) -> list[Any]:
    """`responses.stream` with function tools, then the second turn with `function_call_output`
    items: returns the first turn's function_call items, its argument deltas, usage, and the answer."""
    ask = [{"role": "user", "content": "weather and time in Paris? fake.replay=tool_calls"}]
    with client.responses.stream(model=MODEL, input=ask, tools=RESPONSES_TOOLS) as stream:  # type: ignore[arg-type]
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        first = stream.get_final_response()
    calls = [item.model_dump() for item in first.output if item.type == "function_call"]
    results = {"get_weather": "sunny fake.replay=tool_answer", "get_time": "14:05"}
    second_input: list[Any] = [
        *ask,
        *calls,
        *({"type": "function_call_output", "call_id": c["call_id"], "output": results[c["name"]]} for c in calls),
    ]
    with client.responses.stream(model=MODEL, input=second_input, tools=RESPONSES_TOOLS) as stream:  # type: ignore[arg-type]
        for _ in stream:
            pass
        answer = stream.get_final_response()
    return [calls, deltas, first.usage.model_dump() if first.usage else None, answer.output_text]


@pytest.mark.parametrize("via", VIA)
def test_responses_stream_function_calls_and_two_turn_tool_loop(bases: Bases, via: str) -> None:
    loop = responses_tool_loop(sdk(bases, via))
    assert loop == responses_tool_loop(sdk(bases, "direct"))
    calls, deltas, usage, answer = loop
    assert [(c["type"], c["name"], c["arguments"]) for c in calls] == [
        ("function_call", "get_weather", '{"location": "Paris, France"}'),
        ("function_call", "get_time", '{"timezone": "Europe/Paris"}'),
    ]
    assert len(deltas) == 10
    assert usage["input_tokens_details"]["cached_tokens"] == 3
    assert usage["output_tokens_details"]["reasoning_tokens"] == 5
    assert answer == "In Paris it is sunny and 14:05."


@pytest.mark.parametrize("via", VIA)
def test_responses_non_streaming_equals_the_upstreams(bases: Bases, via: str) -> None:
    def create(name: str) -> dict[str, Any]:
        ask = "weather and time in Paris? fake.replay=tool_calls"
        return sdk(bases, name).responses.create(model=MODEL, input=ask, tools=RESPONSES_TOOLS).model_dump()  # type: ignore[arg-type]

    assert create(via) == create("direct")
