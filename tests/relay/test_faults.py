"""Every fault of the upstream becomes its documented status (before the first byte) or exactly
one in-band `error` event (after it), `type` telling `upstream_error` from `upstream_timeout`;
nothing hangs past its configured timeout; only connect errors are retried, and boundedly
(issue #3, acceptance 2)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from app.upstreams.openai_compat import RETRY_BACKOFF_SECONDS as RETRY_BACKOFF
from streamkit.local import Process
from streamkit.probe.observe import Observation, observe
from tests.relay.conftest import CONNECT_RETRIES, CONNECT_TIMEOUT, MODEL, READ_TIMEOUT, DeadRelay, Relay, rid

# Slack on top of a configured timeout before a request counts as hanging (2 shared cores).
HANG_SLACK = 1.5
FAST = "fake.tokens_per_second=0 fake.first_token_delay=0"
TERMINAL = {"done", "error"}


def stream(relay_url: str, prompt: str, request_id: str) -> Observation:
    url = f"{relay_url}/v1/chat/stream?prompt={quote(prompt)}"
    return observe(url, headers={"X-Request-ID": request_id}, timeout=30)


def assert_one_terminal_error(obs: Observation, type_: str) -> dict[str, object]:
    names = [e.event for e in obs.events]
    assert [n for n in names if n in TERMINAL] == ["error"], names
    assert names[-1] == "error" and obs.error is None
    error = obs.events[-1].json()["error"]
    assert error["type"] == type_, error
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


@pytest.mark.parametrize("status", [401, 404, 429, 500, 503])
def test_http_error_before_streaming_keeps_its_status(relay: Relay, status: int) -> None:
    request_id = rid()
    obs = stream(relay.url, f"hi fake.status={status}", request_id)
    assert obs.status == status, obs.body
    assert obs.headers["content-type"] == "application/json"
    body = json.loads(obs.body)
    assert body["error"]["type"] == "upstream_error"
    assert body["error"]["code"] == f"fake_{status}"
    # Statuses are never retried: fake-upstream saw exactly one request.
    assert relay.upstream.requests_for(request_id) == 1


def test_upstream_silent_before_headers_is_504_upstream_timeout(relay: Relay) -> None:
    request_id = rid()
    obs = stream(relay.url, f"hi fake.header_delay={READ_TIMEOUT * 3}", request_id)
    assert obs.status == 504, obs.body
    assert '"type":"upstream_timeout"' in obs.body
    assert obs.ended_at is not None and obs.ended_at <= READ_TIMEOUT + HANG_SLACK
    assert relay.upstream.requests_for(request_id) == 1  # read timeouts are not retried


def test_in_stream_error_object_is_one_error_event(relay: Relay) -> None:
    obs = stream(relay.url, f"hi fake.tokens=5 fake.fail_at=2 {FAST}", rid())
    assert [e.event for e in obs.events] == ["start", "token", "token", "error"]
    assert_one_terminal_error(obs, "upstream_error")


def test_dropped_connection_is_one_error_event(relay: Relay) -> None:
    request_id = rid()
    obs = stream(relay.url, f"hi fake.tokens=5 fake.drop_at=3 {FAST}", request_id)
    assert [e.event for e in obs.events] == ["start", "token", "token", "token", "error"]
    assert_one_terminal_error(obs, "upstream_error")
    assert relay.upstream.record(request_id).close_reason == "dropped"


def test_stall_mid_stream_is_one_upstream_timeout_event_within_the_read_timeout(relay: Relay) -> None:
    request_id = rid()
    obs = stream(relay.url, f"hi fake.tokens=5 fake.stall_at=2 fake.stall_seconds=30 {FAST}", request_id)
    assert [e.event for e in obs.events] == ["start", "token", "token", "error"]
    assert_one_terminal_error(obs, "upstream_timeout")
    token_at = obs.events[2].arrival
    assert obs.events[-1].arrival - token_at <= READ_TIMEOUT + HANG_SLACK
    # The app closed the silent upstream itself (fake-upstream saw the client go).
    assert relay.upstream.record(request_id).close_reason == "client_closed"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "X"}]}),
        ("/v1/responses", {"model": MODEL, "stream": True, "input": "X"}),
    ],
)
def test_in_band_error_shape_on_openai_endpoints(relay: Relay, path: str, body: dict[str, object]) -> None:
    prompt = f"hi fake.tokens=5 fake.fail_at=2 {FAST}"
    if "messages" in body:
        body = {**body, "messages": [{"role": "user", "content": prompt}]}
    else:
        body = {**body, "input": prompt}
    obs = observe(relay.url + path, method="POST", json_body=body, timeout=30)
    last = obs.events[-1].json()
    if path == "/v1/chat/completions":
        # The upstream's `data: {"error": ...}` chunk as it sent it (its type and code; the key
        # redacted), then the `[DONE]` that ends every relayed stream (vLLM sends one too).
        errors = [e.json() for e in obs.events if "error" in (e.json() or {})]
        assert len(errors) == 1 and errors[0]["error"]["type"] == "upstream_error"
        assert errors[0]["error"]["code"] == "fake_failure" and "[redacted]" in errors[0]["error"]["message"]
        assert [e.data for e in obs.events].count("[DONE]") == 1 and obs.events[-1].data == "[DONE]"
    else:
        assert obs.events[-1].event == "error" and last["error"]["type"] == "upstream_error"
        assert not [e for e in obs.events if e.event == "response.completed"]


def _retry_lines(app: Process, request_id: str) -> int:
    return sum(1 for line in app.logs(tail=10_000).splitlines() if "retry" in line and request_id in line)


@pytest.mark.parametrize(
    ("mode", "status", "type_", "attempt_seconds"),
    [
        ("refuse", 502, "upstream_error", 0.0),  # connection refused: fails at once
        ("blackhole", 504, "upstream_timeout", CONNECT_TIMEOUT),  # connect timeout: each attempt waits
    ],
)
def test_connect_errors_are_retried_boundedly_then_a_status(
    dead_relay: DeadRelay, mode: str, status: int, type_: str, attempt_seconds: float
) -> None:
    getattr(dead_relay.upstream, mode)()
    request_id = rid()
    started = time.monotonic()
    obs = stream(dead_relay.url, "hi", request_id)
    elapsed = time.monotonic() - started
    assert obs.status == status, obs.body
    assert json.loads(obs.body)["error"]["type"] == type_
    assert _retry_lines(dead_relay.app, request_id) == CONNECT_RETRIES
    budget = (CONNECT_RETRIES + 1) * attempt_seconds + CONNECT_RETRIES * RETRY_BACKOFF
    assert elapsed <= budget + HANG_SLACK
