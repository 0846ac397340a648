"""The relay's Chat Completions stream IS the upstream's stream (issue #13, acceptance 1 and 5).

fake-upstream replays recorded-style fixtures (streamkit/replay/: two parallel tool calls with
split arguments, a refusal, reasoning_content, logprobs, n=2, usage details, system_fingerprint,
unknown fields, an in-stream error, SSE framing variants, injection attempts). For each, the
events a client receives through the relay equal, byte for byte, the events the same client
receives straight from the upstream; and the usage chunk the relay asked for on the client's
behalf is the one event left out. Negative control: the same comparison against the tutorial
relay (tests/relay/naive_relay.py: each chunk parsed into the SDK's model and dumped again)
finds differences.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from httpx_sse._decoders import SSEDecoder

from app.upstreams.openai_compat import EventSplitter
from streamkit.fake_upstream import replay_events
from tests.relay.conftest import API_KEY, MODEL, NaiveRelay, Relay

FIXTURES = [
    "tool_calls",
    "refusal",
    "reasoning",
    "logprobs",
    "n2",
    "unknown_fields",
    "stream_error",
    "framing",
    "injection",
]
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def body(name: str, include_usage: bool | None = None, **extra: Any) -> dict[str, Any]:
    sent: dict[str, Any] = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": f"replay fake.replay={name}"}],
        **extra,
    }
    if include_usage is not None:
        sent["stream_options"] = {"include_usage": include_usage}
    return sent


def events(url: str, sent: dict[str, Any], headers: dict[str, str] | None = None) -> list[str]:
    """The `data` of every event of the response, per the SSE spec (httpx-sse's decoder)."""
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(client, "POST", url, json=sent, headers=dict(headers or {})) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        return [event.data for event in source.iter_sse()]


def direct(relay: Relay, sent: dict[str, Any]) -> list[str]:
    return events(relay.upstream.url + "/chat/completions", sent, AUTH)


def is_usage_chunk(data: str) -> bool:
    return data != "[DONE]" and json.loads(data).get("choices") == [] and "usage" in json.loads(data)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("include_usage", [None, True])
def test_event_sequence_is_the_upstreams(relay: Relay, name: str, include_usage: bool | None) -> None:
    sent = body(name, include_usage)
    through = events(relay.url + "/v1/chat/completions", sent)
    assert through == direct(relay, sent)
    # What the relay itself received: it asks for usage always; the usage chunk is the one
    # event withheld from a client that did not ask.
    received = direct(relay, body(name, True))
    withheld = [data for data in received if not is_usage_chunk(data)] if not include_usage else received
    assert through == withheld
    usage_chunks = sum(map(is_usage_chunk, received))
    assert usage_chunks == (0 if name == "stream_error" else 1)
    assert len(received) - len(through) == (0 if include_usage else usage_chunks)
    # Every event's data is intact JSON (or the [DONE] marker).
    assert through[-1] == "[DONE]"
    for data in through[:-1]:
        json.loads(data)


def test_simple_streams_are_byte_identical_on_the_wire(relay: Relay) -> None:
    sent = body("tool_calls", True)
    through = httpx.post(relay.url + "/v1/chat/completions", json=sent, timeout=30).content
    straight = httpx.post(relay.upstream.url + "/chat/completions", json=sent, headers=AUTH, timeout=30).content
    assert re.sub(rb": ping\n\n", b"", through) == straight


def test_negative_control_a_reserializing_relay_is_caught(naive_relay: NaiveRelay, relay: Relay) -> None:
    for name in ("tool_calls", "unknown_fields", "reasoning"):
        sent = body(name, True)
        assert events(naive_relay.url + "/v1/chat/completions", sent) != direct(relay, sent), name


def test_multi_line_data_arrives_as_one_valid_json_event(relay: Relay) -> None:
    through = events(relay.url + "/v1/chat/completions", body("framing"))
    chunks = [json.loads(data) for data in through[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "multi-line CR ends"
    # Negative control: the old framing (the joined data after one `data: `, newline and all)
    # gives the client an event that is not JSON.
    multi = next(e for e in replay_events("framing", False) if e.count(b"data:") > 2)
    data = EventSplitter()(multi)[0]
    decoder = SSEDecoder()
    seen = [decoder.decode(line) for line in (b"data: " + data + b"\n\n").decode().split("\n")]
    broken = next(e for e in seen if e is not None)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.data)


INJECTED = "".join(
    json.loads(e.removeprefix(b"data: "))["choices"][0]["delta"].get("content") or ""
    for e in replay_events("injection", False)[:-2]
    if b'"choices":[{' in e
)


def test_injection_attempts_create_no_event_on_any_endpoint(relay: Relay) -> None:
    """Texts holding `\\n\\ndata: ...`, CR, `[DONE]`, `id:`/`retry:` lines stay inside one event's
    JSON on all three endpoints (issue #15)."""
    fixture_events = len(replay_events("injection", False))
    through = events(relay.url + "/v1/chat/completions", body("injection"))
    assert len(through) == fixture_events
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in map(json.loads, through[:-1]) if c["choices"])
    assert text == INJECTED and "\n\ndata: " in text and "\r" in text
    with httpx.Client(timeout=30) as client:
        prompt = "replay fake.replay=injection"
        with connect_sse(client, "GET", relay.url + "/v1/chat/stream", params={"prompt": prompt}) as source:
            named = [(e.event, e.data) for e in source.iter_sse()]
        tokens = [json.loads(data)["delta"] for event, data in named if event == "token"]
        assert "".join(tokens) == INJECTED
        assert [event for event, _ in named] == ["start"] + ["token"] * 5 + ["done"]
        sent = {"model": MODEL, "stream": True, "input": prompt}
        with connect_sse(client, "POST", relay.url + "/v1/responses", json=sent) as source:
            typed = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
        deltas = [data["delta"] for event, data in typed if event == "response.output_text.delta"]
        assert "".join(deltas) == INJECTED and len(deltas) == 5
        assert all(event == data["type"] for event, data in typed)
    # Negative control: the same text written raw into an event (no JSON escaping) makes more events.
    decoder, count = SSEDecoder(), 0
    for line in re.split(r"\r\n|\r|\n", f"data: {INJECTED}\n\n"):
        count += decoder.decode(line) is not None
    assert count > 1


def test_in_stream_error_keeps_the_upstreams_type_and_code_on_translating_endpoints(relay: Relay) -> None:
    """The endpoints that translate end with their own error event, carrying the upstream's error
    object (not the kit's `upstream_error`); the negative control is the kit's own failure below."""
    prompt = "replay fake.replay=stream_error"
    with httpx.Client(timeout=30) as client:
        with connect_sse(client, "GET", relay.url + "/v1/chat/stream", params={"prompt": prompt}) as source:
            named = [(e.event, e.data) for e in source.iter_sse()]
        assert named[-1][0] == "error"
        error = json.loads(named[-1][1])["error"]
        assert (error["type"], error["code"]) == ("server_error", "overloaded")
        sent = {"model": MODEL, "stream": True, "input": prompt}
        with connect_sse(client, "POST", relay.url + "/v1/responses", json=sent) as source:
            last = json.loads([e.data for e in source.iter_sse()][-1])
        assert last["type"] == "error" and (last["error"]["type"], last["code"]) == ("server_error", "overloaded")
        # The kit's own failure (the upstream drops the connection) keeps the kit's type.
        dropped = "x fake.tokens=4 fake.drop_at=2 fake.tokens_per_second=0 fake.first_token_delay=0"
        with connect_sse(client, "GET", relay.url + "/v1/chat/stream", params={"prompt": dropped}) as source:
            named = [(e.event, e.data) for e in source.iter_sse()]
        assert named[-1][0] == "error" and json.loads(named[-1][1])["error"]["type"] == "upstream_error"
