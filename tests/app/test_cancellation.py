"""A client that goes away closes the upstream at once, in every window (issue #2, acceptance 3).

Measured by the upstream's own record: the fake LLM writes when and why its generator was closed
(FAKE_RECORD_DIR), and the test compares that with the moment the client hung up.
"""

from __future__ import annotations

import time
import uuid

import httpx

from streamkit.stalled_client import StalledClient
from tests.app.conftest import SEND_TIMEOUT, RunningApp

# Client hang-up to upstream generator closed (loopback; the goal in bench/ is 50 ms).
MAX_CLOSE_DELAY = 0.100
# A send blocked on a client that stopped reading is abandoned after SEND_TIMEOUT; allow this
# much scheduling slack on top.
SEND_TIMEOUT_SLACK = 0.250
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


def test_disconnect_while_waiting_for_first_token(running_app: RunningApp) -> None:
    request_id = f"w1-{uuid.uuid4().hex[:8]}"
    hung_up = _open_and_hang_up(f"{running_app.url}/v1/chat/stream?prompt=a&first_token_delay=30", request_id, 1)
    record = running_app.record(request_id)
    assert record.close_reason == "client_disconnect"
    assert record.emitted == 0
    assert record.closed_at is not None and record.closed_at - hung_up <= MAX_CLOSE_DELAY


def test_disconnect_between_tokens(running_app: RunningApp) -> None:
    request_id = f"w2-{uuid.uuid4().hex[:8]}"
    url = f"{running_app.url}/v1/chat/stream?prompt=b&tokens=50&tokens_per_second=2&first_token_delay=0"
    hung_up = _open_and_hang_up(url, request_id, 3)  # start + 2 tokens
    record = running_app.record(request_id)
    assert record.close_reason == "client_disconnect"
    assert not record.completed and record.emitted < 50
    assert record.closed_at is not None and record.closed_at - hung_up <= MAX_CLOSE_DELAY


def test_disconnect_while_send_is_blocked(running_app: RunningApp) -> None:
    request_id = f"w3-{uuid.uuid4().hex[:8]}"
    client = StalledClient.flood(running_app.url, request_id)
    try:
        client.wait_until_blocked()
    finally:
        hung_up = client.reset()
    record = running_app.record(request_id)
    assert record.close_reason == "client_disconnect"
    assert not record.completed
    assert record.closed_at is not None and record.closed_at - hung_up <= MAX_CLOSE_DELAY


def test_client_that_stops_reading_hits_the_send_timeout(running_app: RunningApp) -> None:
    request_id = f"w4-{uuid.uuid4().hex[:8]}"
    client = StalledClient.flood(running_app.url, request_id)
    try:
        record = running_app.record(request_id, timeout=FILL_AND_TIMEOUT)
    finally:
        client.close()
    assert record.close_reason == "send_timeout"
    assert not record.completed
    assert record.closed_at is not None and record.last_emit_at is not None
    # The producer emits once more right after the consumer's send blocks, then waits with it.
    stuck_for = record.closed_at - record.last_emit_at
    assert SEND_TIMEOUT - SEND_TIMEOUT_SLACK <= stuck_for <= SEND_TIMEOUT + SEND_TIMEOUT_SLACK, stuck_for
