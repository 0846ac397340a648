"""POST /v1/responses translated onto an upstream's Chat Completions (UPSTREAM_RESPONSES=translate,
the default: any OpenAI-compatible server): function tools in and out, a complete two-turn tool
loop with `function_call_output` items, `input_image`, `text.format`, `reasoning`, usage details
(issue #13). The openai SDK's `responses.stream` is the client; fake-upstream replays the Chat
Completions fixtures and records what it received."""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from tests.relay.conftest import MODEL, Relay, rid

TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}, "strict": False},
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}, "strict": False},
]
IMAGE = "data:image/png;base64,iVBORw0KGgo="


def sdk(relay: Relay, request_id: str) -> OpenAI:
    return OpenAI(
        base_url=relay.url + "/v1",
        api_key="client-key",
        max_retries=0,
        timeout=30,
        default_headers={"X-Request-ID": request_id},
    )


def test_function_tools_in_and_out_and_a_two_turn_loop(relay: Relay) -> None:
    first_id, second_id = rid(), rid()
    ask: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "weather and time here? fake.replay=tool_calls"},
                {"type": "input_image", "image_url": IMAGE},
            ],
        }
    ]
    extra: dict[str, Any] = {
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.5,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
    }
    with sdk(relay, first_id).responses.stream(model=MODEL, input=ask, **extra) as stream:
        types = [event.type for event in stream]
        first = stream.get_final_response()
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, c.arguments, c.call_id) for c in calls] == [
        ("get_weather", '{"location": "Paris, France"}', "call_Wx1aQk3"),
        ("get_time", '{"timezone": "Europe/Paris"}', "call_Tz9bRm7"),
    ]
    assert types.count("response.function_call_arguments.delta") == 10
    assert types.count("response.function_call_arguments.done") == 2
    assert first.usage is not None
    assert first.usage.input_tokens_details.cached_tokens == 3
    assert first.usage.output_tokens_details.reasoning_tokens == 5
    assert [t.name for t in first.tools] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    sent = relay.upstream.received(first_id)["body"]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": t["name"], "parameters": t["parameters"], "strict": False}}
        for t in TOOLS
    ]
    assert (sent["tool_choice"], sent["temperature"], sent["reasoning_effort"]) == ("auto", 0.5, "low")
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert sent["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": IMAGE}}

    results = {"get_weather": "sunny fake.replay=tool_answer", "get_time": "14:05"}
    second_input: list[Any] = [
        *ask,
        *(c.model_dump() for c in calls),
        *({"type": "function_call_output", "call_id": c.call_id, "output": results[c.name]} for c in calls),
    ]
    with sdk(relay, second_id).responses.stream(model=MODEL, input=second_input, tools=TOOLS) as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == "In Paris it is sunny and 14:05."
    messages = relay.upstream.received(second_id)["body"]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ],
    }
    assert messages[2:] == [{"role": "tool", "tool_call_id": c.call_id, "content": results[c.name]} for c in calls]


def test_non_streaming_function_calls(relay: Relay) -> None:
    response = sdk(relay, rid()).responses.create(
        model=MODEL, input="weather and time? fake.replay=tool_calls", tools=TOOLS
    )
    assert [(i.type, i.name) for i in response.output] == [  # type: ignore[union-attr]
        ("function_call", "get_weather"),
        ("function_call", "get_time"),
    ]
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 3
