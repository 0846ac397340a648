"""Stream budgets (issue #20, acceptance 2 and 5, and the token budget): a refused request gets its
status before any upstream cost; the open streams are not slowed by the refusals."""

from __future__ import annotations

import json
import statistics
import threading
import time
from itertools import pairwise

import httpx
import pytest

from streamkit.local import metrics_url
from tests.app.conftest import start
from tests.auth.conftest import (
    MAX_STREAMS_PER_KEY,
    MODEL,
    TOKENS_PER_MINUTE,
    KeyedRelay,
    auth,
    error_of,
    open_stream,
    rid,
    wait_for_window_room,
)
from tests.bounds import MIN_TRIALS, assert_p95, assert_ratio, p95
from tests.conftest import Processes


def test_third_stream_of_a_key_is_429_and_never_reaches_the_upstream(
    keyed_relay: KeyedRelay, client: httpx.Client
) -> None:
    held = [open_stream(client, keyed_relay.url, "alpha") for _ in range(MAX_STREAMS_PER_KEY)]
    try:
        assert [s.status for s in held] == [200] * MAX_STREAMS_PER_KEY
        assert all(s.first_event() for s in held)
        third = open_stream(client, keyed_relay.url, "alpha", "third")
        assert third.status == 429
        assert int(third.response.headers["retry-after"]) >= 1
        error = error_of(third.response)
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
        # Another key is unaffected.
        other = open_stream(client, keyed_relay.url, "beta", "other")
        assert other.status == 200 and other.first_event()
        other.close()
        upstream = keyed_relay.upstream
        assert all(upstream.requests_for(s.request_id) == 1 for s in held)
        assert upstream.saw(other.request_id)
        assert upstream.requests_for(third.request_id) == 0
        assert all(s.first_event() for s in held)  # both were streaming the whole time
    finally:
        for s in held:
            s.close()
    # The slots come back when the streams end: the same request now streams.
    again = None
    for _ in range(40):
        again = open_stream(client, keyed_relay.url, "alpha", "again")
        if again.status == 200:
            break
        again.close()
        time.sleep(0.05)
    assert again is not None and again.status == 200
    again.close()


def test_token_budget_ends_the_stream_with_an_error_event_then_429(keyed_relay: KeyedRelay) -> None:
    wait_for_window_room(10)
    content = f"budget fake.tokens={TOKENS_PER_MINUTE + 100} fake.tokens_per_second=0 fake.first_token_delay=0"
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": content}]}
    response = httpx.post(keyed_relay.url + "/v1/chat/completions", json=body, headers=auth("gamma"), timeout=30)
    assert response.status_code == 200
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data: {")]
    tokens = [e for e in events if e.get("choices") and e["choices"][0]["delta"].get("content")]
    assert len(tokens) == TOKENS_PER_MINUTE
    assert events[-1]["error"]["code"] == "rate_limit_exceeded" and events[-1]["error"]["type"] == "tokens"
    refused = httpx.post(keyed_relay.url + "/v1/chat/completions", json=body, headers=auth("gamma"), timeout=30)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert error_of(refused)["type"] == "tokens"
    # Control: the same stream for another key (its own window) is not cut.
    short = content.replace(f"fake.tokens={TOKENS_PER_MINUTE + 100}", f"fake.tokens={TOKENS_PER_MINUTE // 2}")
    body["messages"] = [{"role": "user", "content": short}]
    whole = httpx.post(keyed_relay.url + "/v1/chat/completions", json=body, headers=auth("delta"), timeout=30)
    assert whole.status_code == 200 and "data: [DONE]" in whole.text and "rate_limit_exceeded" not in whole.text
    # Non-streaming: checked when it starts, its `usage` counted when it ends. delta has used 200 of 400:
    # a 250-token completion is served whole, and then the window is spent.
    answer = content.replace(f"fake.tokens={TOKENS_PER_MINUTE + 100}", "fake.tokens=250")
    body = {"model": MODEL, "messages": [{"role": "user", "content": answer}]}
    completion = httpx.post(keyed_relay.url + "/v1/chat/completions", json=body, headers=auth("delta"), timeout=30)
    assert completion.status_code == 200 and completion.json()["usage"]["completion_tokens"] == 250
    after = httpx.post(keyed_relay.url + "/v1/chat/completions", json=body, headers=auth("delta"), timeout=30)
    assert after.status_code == 429 and error_of(after)["type"] == "tokens"


# --- overload: MAX_STREAMS_PER_WORKER (acceptance 5) ----------------------------------------------------
OPEN = 4  # N streams open; N+1 is refused
RATE = 20  # tokens/s of each open stream: a 50 ms gap
PHASE = 1.5  # seconds each phase (baseline, refusals) is watched


class Reader(threading.Thread):
    """Reads one long stream and records when each token event arrives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.arrivals: list[float] = []
        self.status = 0
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        path = f"/v1/chat/stream?prompt=load&tokens=100000&tokens_per_second={RATE}&first_token_delay=0"
        with httpx.Client(timeout=30) as client, client.stream("GET", self.url + path) as response:
            self.status = response.status_code
            self.ready.set()
            for line in response.iter_lines():
                if line == "event: token":
                    self.arrivals.append(time.perf_counter())
                if self.stop.is_set():
                    return

    def gaps(self, start: float, end: float) -> list[float]:
        times = [t for t in self.arrivals if start <= t <= end]
        return [b - a for a, b in pairwise(times)]


def _close(readers: list[Reader]) -> None:
    """End the open streams before the app stops (else its drain waits for them)."""
    for reader in readers:
        reader.stop.set()
    for reader in readers:
        reader.join(5)


@pytest.fixture(scope="module")
def ceiling_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An app (fake LLM, one worker) with MAX_STREAMS_PER_WORKER=OPEN."""
    return start(module_processes, tmp_path_factory.mktemp("ceiling"), MAX_STREAMS_PER_WORKER=str(OPEN)).url


def _open_readers(url: str) -> list[Reader]:
    readers = [Reader(url) for _ in range(OPEN)]
    for reader in readers:
        reader.start()
        assert reader.ready.wait(10) and reader.status == 200
    return readers


def test_stream_beyond_the_worker_ceiling_is_refused_fast_without_slowing_the_open_ones(
    ceiling_app: str,
) -> None:
    url = ceiling_app
    readers = _open_readers(url)
    try:
        time.sleep(0.3)  # past the first tokens
        baseline_start = time.perf_counter()
        time.sleep(PHASE)
        refusals_start = time.perf_counter()
        latencies = []
        with httpx.Client(timeout=10) as client:
            client.get(url + "/healthz")  # a warm connection: the refusal is measured, not a TCP handshake
            while len(latencies) < MIN_TRIALS or time.perf_counter() - refusals_start < PHASE:
                begin = time.perf_counter()
                response = client.get(url + "/v1/chat/stream", params={"prompt": "one more", "tokens": 5})
                latencies.append(time.perf_counter() - begin)
                assert response.status_code == 503, response.text
                assert error_of(response)["code"] == "server_overloaded" and response.headers["retry-after"] == "1"
                time.sleep(0.05)
        refusals_end = time.perf_counter()
        assert_p95(latencies, 0.050, f"refusal of stream {OPEN + 1} with MAX_STREAMS_PER_WORKER={OPEN}")
        before = [g for r in readers for g in r.gaps(baseline_start, refusals_start)]
        during = [g for r in readers for g in r.gaps(refusals_start, refusals_end)]
        assert len(before) > OPEN * RATE and len(during) > OPEN * RATE
        assert_ratio(p95(during), p95(before), 1.5, "token gap p95 of the open streams, refusals vs before")
        assert_ratio(statistics.median(during), statistics.median(before), 1.2, "token gap p50, refusals vs before")
        metrics = httpx.get(metrics_url(url), timeout=5).text
        assert f'streamkit_requests_rejected_total{{reason="overload"}} {float(len(latencies))}' in metrics
        assert f"streamkit_stream_slots_in_use {float(OPEN)}" in metrics
    finally:
        _close(readers)


def test_control_without_the_ceiling_stream_n_plus_1_streams(plain_app: str) -> None:
    url = plain_app
    readers = _open_readers(url)
    try:
        response = httpx.get(url + "/v1/chat/stream", params={"prompt": "one more", "tokens": 3,
                                                               "tokens_per_second": 0}, timeout=10,
                             headers={"X-Request-ID": rid("extra")})
        assert response.status_code == 200 and "event: done" in response.text
    finally:
        _close(readers)
