"""A client that goes away closes the upstream at once, in every window (issue #2, acceptance 3).

Measured by the upstream's own record: the fake LLM writes when and why its generator was closed
(FAKE_RECORD_DIR), and the test compares that with the moment the client hung up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from streamkit.stalled_client import StalledClient
from tests.app.conftest import SEND_TIMEOUT, RunningApp, start
from tests.bounds import MIN_TRIALS, SCHEDULER_SLACK, assert_p95
from tests.conftest import Processes

# Client hang-up to upstream generator closed (loopback; the goal in bench/ is 50 ms): p95 over
# TRIALS hang-ups per window, PARALLEL at a time (tests/bounds.py).
MAX_CLOSE_DELAY = 0.100
TRIALS = MIN_TRIALS
PARALLEL = 10
# The send timeout of the app the hang-up trials run on.
PATIENT_SEND_TIMEOUT = 60.0
# A send blocked on a client that stopped reading is abandoned after SEND_TIMEOUT (not before it:
# a lower bound), and late by at most this much (p95 over TRIALS stalled clients).
SEND_TIMEOUT_LATE = 0.250
# Filling the kernel's send buffer (up to 4 MiB) with fast tokens, then the send timeout.
FILL_AND_TIMEOUT = 60.0


def _open_and_hang_up(url: str, request_id: str, events_before_close: int) -> float:
    """Stream with httpx, close after N events; return the unix time of the hang-up."""
    with httpx.Client(timeout=30) as client, client.stream("GET", url, headers={"X-Request-ID": request_id}) as resp:
        seen = 0
        for line in resp.iter_lines():
            if line.startswith("event:"):
                seen += 1
            if seen >= events_before_close and line == "":
                closed_at = time.time()
                resp.close()
                return closed_at
    raise AssertionError("stream ended before the client could hang up")


@pytest.fixture(scope="module")
def patient_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    """The app with a send timeout far beyond any trial: a hang-up while a send is blocked is then
    always the client's (with SEND_TIMEOUT = 1 s, a slow detection of the block would race it)."""
    # Two workers: the floods that fill its send buffers are CPU-bound, one core each.
    return start(
        module_processes, tmp_path_factory.mktemp("patient"), workers=2, SEND_TIMEOUT=str(PATIENT_SEND_TIMEOUT)
    )


def close_delays(app: RunningApp, window: str, hang_up: Callable[[str], float]) -> list[float]:
    """TRIALS times: `hang_up(request_id)` returns when the client hung up; each record must show the
    upstream closed for that reason, not completed; return the close delays (seconds)."""

    def trial(number: int) -> float:
        request_id = f"{window}-{number}-{uuid.uuid4().hex[:8]}"
        hung_up = hang_up(request_id)
        record = app.record(request_id)
        assert record.close_reason == "client_disconnect", (request_id, record.close_reason)
        assert not record.completed and record.closed_at is not None
        return record.closed_at - hung_up

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(trial, range(TRIALS)))


def test_disconnect_while_waiting_for_first_token(running_app: RunningApp) -> None:
    url = f"{running_app.url}/v1/chat/stream?prompt=a&first_token_delay=30"
    delays = close_delays(running_app, "w1", lambda rid: _open_and_hang_up(url, rid, 1))
    assert_p95(delays, MAX_CLOSE_DELAY, "hang-up while waiting for the first token -> upstream closed")


def test_disconnect_between_tokens(running_app: RunningApp) -> None:
    url = f"{running_app.url}/v1/chat/stream?prompt=b&tokens=50&tokens_per_second=5&first_token_delay=0"
    delays = close_delays(running_app, "w2", lambda rid: _open_and_hang_up(url, rid, 3))  # start + 2 tokens
    assert_p95(delays, MAX_CLOSE_DELAY, "hang-up between tokens -> upstream closed")


def test_disconnect_while_send_is_blocked(patient_app: RunningApp) -> None:
    def hang_up(request_id: str) -> float:
        client = StalledClient.flood(patient_app.url, request_id)
        try:
            client.wait_until_blocked()
        finally:
            hung_up = client.reset()
        return hung_up

    delays = close_delays(patient_app, "w3", hang_up)
    assert_p95(delays, MAX_CLOSE_DELAY, "hang-up while a send is blocked -> upstream closed")


def test_client_that_stops_reading_hits_the_send_timeout(running_app: RunningApp) -> None:
    def stuck_for(number: int) -> float:
        request_id = f"w4-{number}-{uuid.uuid4().hex[:8]}"
        client = StalledClient.flood(running_app.url, request_id)
        try:
            record = running_app.record(request_id, timeout=FILL_AND_TIMEOUT)
        finally:
            client.close()
        assert record.close_reason == "send_timeout"
        assert not record.completed
        assert record.closed_at is not None and record.last_emit_at is not None
        # The producer emits once more right after the consumer's send blocks, then waits with it.
        return record.closed_at - record.last_emit_at

    with ThreadPoolExecutor(PARALLEL) as pool:
        stuck = list(pool.map(stuck_for, range(TRIALS)))
    assert min(stuck) >= SEND_TIMEOUT - SCHEDULER_SLACK, f"dropped before SEND_TIMEOUT: {sorted(stuck)}"
    assert_p95([s - SEND_TIMEOUT for s in stuck], SEND_TIMEOUT_LATE, "send timeout fired late by")
