"""The README's table of what the relay forwards, sets, changes or withholds is exactly
`app.upstreams.contract.ROWS`, and every row is checked here against real processes (the app under
gunicorn relaying `streamkit fake-upstream`, which records what it received). Issue #13,
acceptance 4 and 6; n=2 (acceptance 3) at the end.

A row without a check, or a check without a row, fails `test_every_row_has_exactly_one_check`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from app.upstreams.contract import ROWS, markdown
from tests.relay.conftest import ADAPTER, API_KEY, MODEL, DeadRelay, Relay, app_env, rid
from tests.relay.test_passthrough import AUTH, body, direct, events, is_usage_chunk

README = Path(__file__).resolve().parents[2] / "README.md"
CHECKS: dict[str, Callable[[Relay, DeadRelay], None]] = {}


def check(fn: Callable[[Relay, DeadRelay], None]) -> Callable[[Relay, DeadRelay], None]:
    CHECKS[fn.__name__] = fn
    return fn


def post(relay: Relay, sent: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(relay.url + "/v1/chat/completions", json=sent, headers=headers, timeout=30)


CLIENT_BODY: dict[str, Any] = {
    "model": MODEL,
    "stream": True,
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather? fake.replay=tool_calls"}]},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "n": 1,
    "temperature": 0.25,
    "logprobs": False,
    "response_format": {"type": "text"},
    "reasoning_effort": "low",
    "x_unknown_field": {"nested": [1, 2.5, None, "ü"]},
    "stream_options": {"include_obfuscation": False},
}


@check
def body_forwarded(relay: Relay, _: DeadRelay) -> None:
    request_id = rid()
    assert post(relay, CLIENT_BODY, {"X-Request-ID": request_id}).status_code == 200
    received = relay.upstream.received(request_id)["body"]
    assert {k: v for k, v in received.items() if k != "stream_options"} == {
        k: v for k, v in CLIENT_BODY.items() if k != "stream_options"
    }


@check
def include_usage_set(relay: Relay, _: DeadRelay) -> None:
    request_id = rid()
    assert post(relay, CLIENT_BODY, {"X-Request-ID": request_id}).status_code == 200
    assert relay.upstream.received(request_id)["body"]["stream_options"] == {
        "include_obfuscation": False,
        "include_usage": True,
    }


@check
def fake_refused(relay: Relay, _: DeadRelay) -> None:
    request_id = rid()
    response = post(relay, {**CLIENT_BODY, "fake": {"tokens": 3}}, {"X-Request-ID": request_id})
    assert response.status_code == 400 and response.json()["error"]["param"] == "fake"
    assert not (relay.upstream.records / f"{request_id}.request.json").exists()


def _headers_seen(relay: Relay, headers: dict[str, str]) -> dict[str, Any]:
    request_id = rid()
    assert post(relay, body("refusal"), {"X-Request-ID": request_id, **headers}).status_code == 200
    return relay.upstream.received(request_id) | {"request_id": request_id}


@check
def authorization_replaced(relay: Relay, _: DeadRelay) -> None:
    assert _headers_seen(relay, {"Authorization": "Bearer client-key"})["authorization"] == "key"


@check
def cookie_dropped(relay: Relay, _: DeadRelay) -> None:
    seen = _headers_seen(relay, {"Cookie": "session=client-secret"})
    assert "cookie" not in seen["headers"]


@check
def request_id(relay: Relay, _: DeadRelay) -> None:
    seen = _headers_seen(relay, {})
    assert seen["headers"]["x-request-id"] == seen["request_id"]
    # Absent: the app's own id goes upstream (and comes back to the client).
    response = post(relay, body("refusal"), {})
    own = response.headers["x-request-id"]
    assert response.status_code == 200 and relay.upstream.received(own)["headers"]["x-request-id"] == own
    # Malformed: refused before the upstream (tests/app/test_bad_input.py has the hostile cases).
    refused = post(relay, body("refusal"), {"X-Request-ID": "bad id!"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request_id"
    assert not list(relay.upstream.records.glob("*.request.json")) or all(
        "bad id!" not in path.read_text() for path in relay.upstream.records.glob("*.request.json")
    )


@check
def trace_headers(relay: Relay, _: DeadRelay) -> None:
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "kit=1,x=y"}
    seen = _headers_seen(relay, trace)["headers"]
    assert {k: seen.get(k) for k in trace} == trace


@check
def other_headers_dropped(relay: Relay, _: DeadRelay) -> None:
    sent = {"X-Client-Secret": "s3", "OpenAI-Organization": "org-client", "X-Forwarded-For": "203.0.113.9"}
    seen = _headers_seen(relay, sent)["headers"]
    assert not {k.lower() for k in sent} & set(seen)
    assert seen["content-type"] == "application/json"


@check
def chunks_identical(relay: Relay, _: DeadRelay) -> None:
    for name in ("tool_calls", "n2", "logprobs", "reasoning", "refusal", "unknown_fields"):
        sent = body(name, True)
        assert events(relay.url + "/v1/chat/completions", sent) == direct(relay, sent), name


@check
def emitted_at(relay: Relay, _: DeadRelay) -> None:
    assert all("emitted_at" not in data for data in events(relay.url + "/v1/chat/completions", body("tool_calls")))
    _, url = relay.processes.app(env=app_env(relay.upstream.url, EMIT_TIMESTAMPS="true"))
    stamped = events(url + "/v1/chat/completions", body("tool_calls"))
    plain = direct(relay, body("tool_calls"))
    assert len(stamped) == len(plain)
    for got, want in zip(stamped[:-1], plain[:-1], strict=True):
        chunk = json.loads(got)
        assert isinstance(chunk.pop("emitted_at"), float) and chunk == json.loads(want)


@check
def usage_withheld(relay: Relay, _: DeadRelay) -> None:
    request_id = rid()
    through = events(relay.url + "/v1/chat/completions", body("tool_calls"), {"X-Request-ID": request_id})
    assert not [data for data in through if is_usage_chunk(data)]
    assert relay.upstream.received(request_id)["body"]["stream_options"] == {"include_usage": True}
    asked = events(relay.url + "/v1/chat/completions", body("tool_calls", True))
    assert [data for data in asked if is_usage_chunk(data)]


@check
def multiline(relay: Relay, _: DeadRelay) -> None:
    raw = post(relay, body("framing")).text
    lines = [block.count("\ndata:") + 1 for block in raw.split("\n\n") if block.startswith("data:")]
    assert max(lines) > 2  # the multi-line event went out as several `data:` lines
    for data in events(relay.url + "/v1/chat/completions", body("framing"))[:-1]:
        json.loads(data)


@check
def comments_dropped(relay: Relay, _: DeadRelay) -> None:
    straight = httpx.post(relay.upstream.url + "/chat/completions", json=body("framing"), headers=AUTH).text
    assert ": connected" in straight and ": keep-alive" in straight
    through = post(relay, body("framing")).text
    assert ": connected" not in through and ": keep-alive" not in through


@check
def done_marker(relay: Relay, _: DeadRelay) -> None:
    for name in ("tool_calls", "stream_error"):
        assert events(relay.url + "/v1/chat/completions", body(name))[-1] == "[DONE]"


@check
def stream_error(relay: Relay, _: DeadRelay) -> None:
    through = events(relay.url + "/v1/chat/completions", body("stream_error"))
    error = json.loads(through[-2])["error"]
    assert error == json.loads(direct(relay, body("stream_error"))[-2])["error"]
    assert (error["type"], error["code"]) == ("server_error", "overloaded")
    # The key redacted: fake-upstream's own in-stream errors echo it (tests/relay/test_key_hygiene.py).
    prompt = "x fake.tokens=3 fake.fail_at=1 fake.tokens_per_second=0 fake.first_token_delay=0"
    sent = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    upstream_error = json.loads(direct(relay, sent)[-2])["error"]
    relayed = json.loads(events(relay.url + "/v1/chat/completions", sent)[-2])["error"]
    assert API_KEY in upstream_error["message"] and API_KEY not in relayed["message"]
    assert relayed == {**upstream_error, "message": upstream_error["message"].replace(API_KEY, "[redacted]")}


@check
def nonstream_identical(relay: Relay, _: DeadRelay) -> None:
    for name in ("tool_calls", "n2"):
        sent = {**body(name), "stream": False}
        through = post(relay, sent)
        straight = httpx.post(relay.upstream.url + "/chat/completions", json=sent, headers=AUTH, timeout=30)
        assert through.status_code == 200 and through.content == straight.content, name


@check
def response_headers(relay: Relay, _: DeadRelay) -> None:
    straight = httpx.post(relay.upstream.url + "/chat/completions", json=body("refusal"), headers=AUTH)
    assert straight.headers["openai-processing-ms"] == "7"
    for sent in (body("refusal"), {**body("n2"), "stream": False}):
        through = post(relay, sent)
        assert "openai-processing-ms" not in through.headers
        assert through.headers["x-request-id"]
        if sent["stream"]:
            assert through.headers["cache-control"] == "no-cache, no-transform"
            assert through.headers["x-accel-buffering"] == "no"
            assert through.headers["content-type"].startswith("text/event-stream")


@check
def status_error(relay: Relay, _: DeadRelay) -> None:
    for status in (429, 503, 401):
        sent = {**body("x"), "messages": [{"role": "user", "content": f"x fake.status={status}"}]}
        straight = httpx.post(relay.upstream.url + "/chat/completions", json=sent, headers=AUTH, timeout=30)
        through = post(relay, sent)
        assert through.status_code == straight.status_code == status
        upstream, relayed = straight.json()["error"], through.json()["error"]
        assert {k: relayed[k] for k in ("type", "code", "param")} == {k: upstream[k] for k in ("type", "code", "param")}
        assert API_KEY in upstream["message"] and API_KEY not in relayed["message"]
        if status != 401:
            assert relayed["message"] == upstream["message"].replace(API_KEY, "[redacted]")


@check
def kit_errors(_: Relay, dead: DeadRelay) -> None:
    dead.upstream.refuse()
    response = httpx.post(dead.url + "/v1/chat/completions", json=body("refusal"), timeout=30)
    assert response.status_code == 502 and response.json()["error"]["type"] == "upstream_error"


@check
def models(relay: Relay, _: DeadRelay) -> None:
    listed = [m["id"] for m in httpx.get(relay.url + "/v1/models", timeout=10).json()["data"]]
    assert listed == [MODEL, ADAPTER]
    for model in listed:  # each works
        assert events(relay.url + "/v1/chat/completions", {**body("refusal"), "model": model})[-1] == "[DONE]"
    unknown = post(relay, {**body("refusal"), "model": "not-served"})
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "message": "The model 'not-served' does not exist.",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_every_row_has_exactly_one_check() -> None:
    assert sorted(row.check for row in ROWS) == sorted(CHECKS)


def test_readme_shows_exactly_the_table() -> None:
    text = README.read_text()
    found = re.search(r"<!-- relay-table:start -->\n(.*?)\n<!-- relay-table:end -->", text, re.DOTALL)
    assert found, "README.md lacks the relay table markers"
    assert found.group(1) == markdown(), "regenerate with: .venv/bin/python -m app.upstreams.contract"


@pytest.mark.parametrize("row", ROWS, ids=[row.check for row in ROWS])
def test_row(relay: Relay, dead_relay: DeadRelay, row: Any) -> None:
    CHECKS[row.check](relay, dead_relay)


@pytest.mark.parametrize("stream", [True, False])
def test_n2_both_choices_intact_with_their_own_finish_reason(relay: Relay, stream: bool) -> None:
    sdk = OpenAI(base_url=relay.url + "/v1", api_key="client-key", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "colours fake.replay=n2"}]
    if stream:
        texts, finish = {0: "", 1: ""}, {}
        for chunk in sdk.chat.completions.create(model=MODEL, messages=messages, n=2, stream=True):  # type: ignore[call-overload]
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content or ""
                if choice.finish_reason:
                    finish[choice.index] = choice.finish_reason
    else:
        completion = sdk.chat.completions.create(model=MODEL, messages=messages, n=2)  # type: ignore[call-overload]
        texts = {c.index: c.message.content or "" for c in completion.choices}
        finish = {c.index: c.finish_reason for c in completion.choices}
    assert texts == {0: "Red apple.", 1: "Blue sky"}
    assert finish == {0: "stop", 1: "length"}


def test_negative_control_a_configured_model_list_refuses_the_adapter(relay: Relay) -> None:
    """The same request for the adapter model, against an app that differs only in
    UPSTREAM_MODELS (a fixed list instead of the upstream's): 404, and /v1/models shows the list."""
    _, url = relay.processes.app(env=app_env(relay.upstream.url, UPSTREAM_MODELS=MODEL))
    assert [m["id"] for m in httpx.get(url + "/v1/models", timeout=10).json()["data"]] == [MODEL]
    refused = httpx.post(url + "/v1/chat/completions", json={**body("refusal"), "model": ADAPTER}, timeout=30)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
    assert post(relay, {**body("refusal"), "model": ADAPTER}).status_code == 200
