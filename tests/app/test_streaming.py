"""The streaming contract straight from the app (no proxy): issue #2, acceptance 1, 2, 6, 7."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from app.fakellm import fake_text
from app.routes import STREAM_COOKIE
from streamkit.probe.observe import Observation, observe
from tests.app.conftest import RunningApp
from tests.bounds import MIN_TRIALS, assert_p95

# An event may arrive at most this long after the app wrote it (loopback, no proxy): p95 over the
# tokens of concurrent streams (tests/bounds.py).
MAX_LAG = 0.050
# Headers must arrive this soon, even when the first token takes seconds: p95 over TRIALS streams.
MAX_TIME_TO_HEADERS = 0.200
# Streams observed at once for each bound (each a trial).
TRIALS = MIN_TRIALS


def _chat_stream(url: str, content: str, knobs: dict[str, Any]) -> Observation:
    """POST /v1/chat/completions, streamed, one user message, these fake knobs."""
    body = {"model": "streamkit-fake", "stream": True, "messages": [{"role": "user", "content": content}]}
    return observe(url + "/v1/chat/completions", method="POST", json_body={**body, "fake": knobs})


def rid() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def test_events_arrive_incrementally(running_app: RunningApp) -> None:
    url = f"{running_app.url}/v1/chat/stream?prompt=incremental&tokens=20&tokens_per_second=20&first_token_delay=0.3"
    with ThreadPoolExecutor(2) as pool:
        observations = list(pool.map(lambda _: observe(url), range(2)))
    lags = []
    for obs in observations:
        tokens = [e for e in obs.events if e.event == "token"]
        assert len(tokens) == 20
        assert all(e.lag is not None for e in tokens)
        lags += [e.lag for e in tokens if e.lag is not None]
        # Spread over about a second (19 gaps of 50 ms), not delivered in one burst.
        assert tokens[-1].arrival - tokens[0].arrival > 0.8
        assert "".join(e.json()["delta"] for e in tokens) == fake_text("incremental", 20)
    assert_p95(lags, MAX_LAG, "lag of each token, straight from the app")


def test_headers_first_and_heartbeats_during_first_token_wait(running_app: RunningApp) -> None:
    url = f"{running_app.url}/v1/chat/stream?prompt=slow&tokens=2&first_token_delay=3"
    obs = observe(url)
    first_token = next(e.arrival for e in obs.events if e.event == "token")
    assert first_token >= 2.9
    assert len([p for p in obs.pings if p < first_token]) >= 2, obs.pings
    # Time to headers, one trial after the other (concurrent ones would measure the accept queue);
    # each hangs up after the `start` event, long before its first token.
    trials = [observe(url, close_after_events=1) for _ in range(TRIALS)]
    to_headers = [t.time_to_headers for t in trials if t.time_to_headers is not None]
    assert len(to_headers) == TRIALS and obs.time_to_headers is not None
    assert_p95(
        [*to_headers, obs.time_to_headers], MAX_TIME_TO_HEADERS, "time to headers while the first token takes 3 s"
    )


def test_stream_headers_and_cookie(running_app: RunningApp) -> None:
    request_id = rid()
    obs = observe(
        f"{running_app.url}/v1/chat/stream?prompt=h&tokens=1&first_token_delay=0", headers={"X-Request-ID": request_id}
    )
    assert obs.headers["content-type"].startswith("text/event-stream")
    assert obs.headers["cache-control"] == "no-cache, no-transform"
    assert obs.headers["x-accel-buffering"] == "no"
    assert obs.headers["x-request-id"] == request_id
    assert f"{STREAM_COOKIE}={request_id}" in obs.headers["set-cookie"]
    for path, body in (
        (
            "/v1/chat/completions",
            {"model": "streamkit-fake", "stream": True, "messages": [{"role": "user", "content": "h"}]},
        ),
        ("/v1/responses", {"model": "streamkit-fake", "stream": True, "input": "h"}),
    ):
        post = observe(running_app.url + path, method="POST", json_body={**body, "fake": {"tokens": 1}})
        assert post.headers["cache-control"] == "no-cache, no-transform", path
        assert post.headers["x-accel-buffering"] == "no", path
        assert STREAM_COOKIE in post.headers["set-cookie"], path


def test_event_ids_retry_and_exactly_one_terminal_event(running_app: RunningApp) -> None:
    obs = observe(f"{running_app.url}/v1/chat/stream?prompt=ids&tokens=5&tokens_per_second=0&first_token_delay=0")
    names = [e.event for e in obs.events]
    assert names == ["start"] + ["token"] * 5 + ["done"]
    assert [e.id for e in obs.events] == [str(i) for i in range(7)]
    assert obs.events[0].retry == 3000
    assert obs.events[-1].json()["usage"]["completion_tokens"] == 5


def test_failure_after_first_byte_is_one_in_band_error_event(running_app: RunningApp) -> None:
    obs = observe(
        f"{running_app.url}/v1/chat/stream?prompt=f&tokens=5&fail_at=2&tokens_per_second=0&first_token_delay=0"
    )
    assert obs.status == 200
    assert [e.event for e in obs.events] == ["start", "token", "token", "error"]
    error = obs.events[-1].json()["error"]
    assert error["type"] == "upstream_error" and error["message"]
    assert set(error) == {"message", "type", "param", "code"}

    chat = _chat_stream(running_app.url, "f", {"tokens": 5, "fail_at": 1, "first_token_delay": 0})
    datas = [e.data for e in chat.events]
    assert "[DONE]" not in datas
    assert json.loads(datas[-1])["error"]["type"] == "upstream_error"


def test_prompt_cannot_inject_events(running_app: RunningApp) -> None:
    evil = 'x\n\ndata: {"delta":"INJECTED"}\n\nevent: done\ndata: {}\n\n'
    url = httpx.URL(
        f"{running_app.url}/v1/chat/stream",
        params={"prompt": evil, "tokens": 4, "tokens_per_second": 0, "first_token_delay": 0},
    )
    obs = observe(str(url))
    assert [e.event for e in obs.events] == ["start"] + ["token"] * 4 + ["done"]
    assert "".join(e.json()["delta"] for e in obs.events[1:-1]) == fake_text(evil, 4)

    chat = _chat_stream(running_app.url, evil, {"tokens": 4, "tokens_per_second": 0, "first_token_delay": 0})
    assert len(chat.events) == 1 + 4 + 1 + 1  # role chunk, tokens, finish chunk, [DONE]
    assert all("INJECTED" not in e.data for e in chat.events)
