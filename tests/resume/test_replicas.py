"""Two app instances behind nginx sharing Redis (issue 19, acceptance 2-4): a stream started on one
resumes exactly on the other; a SIGKILLed producer ends the stream with an `error` event within the
lease TTL + 1 s; an abandoned stream stops after the grace; a cancel through the other instance
stops it within 100 ms (p95 of 20); unknown ids get 204; another client's cookie gets 404.
"""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from httpx_sse import connect_sse

from app.fakellm import load_record
from streamkit.local import wait_until
from tests.app.conftest import RunningApp, start
from tests.bounds import MIN_TRIALS, assert_p95
from tests.conftest import Processes
from tests.resume.conftest import (
    GRACE,
    LEASE,
    Pair,
    app_env,
    expected_text,
    metric,
    owner_client,
    read,
    records_of,
    request_id,
    stranger,
    stream_path,
)

# Explicit cancel through the other instance -> upstream closed (acceptance 3).
CANCEL_BOUND = 0.100


def test_started_on_one_resumes_exactly_on_the_other(pair: Pair) -> None:
    prompt, tokens = "resume-replicas", 30
    expected = expected_text(pair.a.url, prompt, tokens)
    rid = request_id("pair-resume")
    before = records_of(pair.a.records)
    rejoins_before = metric(pair.b.url, "streamkit_resume_rejoins_total", replica="other")
    with owner_client(pair.url) as client:
        first = read(client, stream_path(prompt, tokens), 6, **{"X-Replica": "a", "X-Request-ID": rid})
        rest = read(client, stream_path(prompt, tokens), **{"X-Replica": "b", "Last-Event-ID": first.last_id})
    assert first.status == rest.status == 200
    assert first.text + rest.text == expected  # no token missing or repeated
    assert [e.event for e in rest.terminal] == ["done"]
    # Served by the other instance, and the upstream saw exactly one generation.
    assert metric(pair.b.url, "streamkit_resume_rejoins_total", replica="other") == rejoins_before + 1
    assert load_record(pair.a.records, rid) is not None and pair.a.record(rid).completed
    assert records_of(pair.a.records) - before == {rid}


def test_unknown_id_gets_204_and_a_stranger_gets_404(pair: Pair) -> None:
    with owner_client(pair.url, **{"X-Replica": "a"}) as owner, stranger(pair.url, **{"X-Replica": "b"}) as other:
        first = read(owner, stream_path("resume-stranger", 20, 40), stop_after_tokens=1)
        sid = first.stream_id
        attach = other.get(stream_path("resume-stranger", 20, 40), headers={"Last-Event-ID": first.last_id})
        assert attach.status_code == 404
        assert other.post(f"/v1/streams/{sid}/cancel").status_code == 404
        unknown = secrets.token_urlsafe(18)
        assert other.get(stream_path("x", 1), headers={"Last-Event-ID": f"{unknown}:0"}).status_code == 204
        # Control: the owner's cookie attaches through the other instance.
        owner.headers["X-Replica"] = "b"
        assert [e.event for e in read(owner, f"/v1/streams/{sid}").terminal] == ["done"]


def test_no_rejoin_stops_the_upstream_within_the_grace(pair: Pair) -> None:
    rid = request_id("pair-grace")
    with owner_client(pair.url) as client:
        read(client, stream_path("resume-pair-grace", 200, 10), 2, **{"X-Replica": "a", "X-Request-ID": rid})
        hung_up = time.time()
    record = pair.a.record(rid, timeout=GRACE + 5)
    assert record.close_reason == "grace_expired"
    assert record.closed_at is not None and GRACE - 0.1 <= record.closed_at - hung_up <= GRACE + 1.0


def test_cancel_from_the_other_instance_within_100ms(pair: Pair) -> None:
    delays = []
    with owner_client(pair.url) as client:
        for _ in range(MIN_TRIALS):
            rid = request_id("pair-cancel")
            # Attached reader on A keeps the generation alive; the cancel goes through B.
            with client.stream("GET", stream_path("resume-cancel", 400, 20),
                               headers={"X-Replica": "a", "X-Request-ID": rid}) as response:
                sid = response.headers["streamkit-stream-id"]
                sent = time.time()
                answer = client.post(f"/v1/streams/{sid}/cancel", headers={"X-Replica": "b"})
                assert answer.status_code == 200, answer.text
                record = pair.a.record(rid)
            assert record.close_reason == "client_cancel" and record.closed_at is not None
            delays.append(record.closed_at - sent)
    worst = assert_p95(delays, CANCEL_BOUND, "cancel through the other instance -> upstream closed")
    print(f"cancel -> upstream closed: p95 {worst * 1000:.1f} ms")


def test_reader_sees_cancel_as_the_terminal_event(pair: Pair) -> None:
    with owner_client(pair.url) as client:
        first = read(client, stream_path("resume-cancel-end", 400, 20), stop_after_tokens=1, **{"X-Replica": "a"})
        assert client.post(f"/v1/streams/{first.stream_id}/cancel", headers={"X-Replica": "b"}).status_code == 200
        rest = read(client, f"/v1/streams/{first.stream_id}", **{"X-Replica": "b", "Last-Event-ID": first.last_id})
    assert [e.event for e in rest.terminal] == ["error"], (rest.status, [e.event for e in rest.events])
    assert rest.terminal[0].json()["error"]["code"] == "client_cancel"


def _kill_instance(app: RunningApp) -> None:
    """SIGKILL gunicorn and its workers, each by PID: nothing runs a finally or a drain."""
    procs = [psutil.Process(app.proc.pid), *psutil.Process(app.proc.pid).children(recursive=True)]
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=5)


DRAIN = 1.0  # DRAIN_SECONDS of instance A (tests/resume/conftest.py)


@pytest.mark.parametrize("end", ["alive", "sigkill", "sigterm"], ids=["control_alive", "producer_killed",
                                                                    "producer_drained"])
def test_producer_gone_ends_the_stream_with_an_error(
    pair: Pair, processes: Processes, tmp_path: Path, end: str
) -> None:
    """Another instance produces; a reader on B follows. SIGKILL: the reader ends with `error`
    (producer_lost) within LEASE + 1 s. SIGTERM: the drain ends the log with `server_shutdown`
    within DRAIN_SECONDS + 1 s. Control: with the producer alive, every token and `done`."""
    # SIGKILL: an instance of its own. Otherwise A (the SIGTERM case runs after every test using A).
    producer = start(processes, tmp_path, **app_env(REDIS_URL=pair.redis.url)) if end == "sigkill" else pair.a
    tokens = 40
    with owner_client(producer.url) as client:
        first = read(client, stream_path("resume-kill", tokens, 20), stop_after_tokens=2)
    received: list[str] = []
    killed_at = ended_at = 0.0
    body: dict[str, Any] = {}
    with owner_client(pair.url, **{"X-Replica": "b", "Last-Event-ID": first.last_id}) as rejoin:
        rejoin.cookies = client.cookies
        with connect_sse(rejoin, "GET", f"/v1/streams/{first.stream_id}") as source:
            for event in source.iter_sse():
                if not event.data:
                    continue
                received.append(event.event)
                if len(received) == 3 and end != "alive":
                    if end == "sigkill":
                        _kill_instance(producer)
                    else:
                        producer.proc.signal(signal.SIGTERM)
                    killed_at = time.monotonic()
                if event.event in ("done", "error"):
                    ended_at = time.monotonic()
                    body = event.json()
                    break
    if end == "sigkill":
        assert received[-1] == "error" and body["error"]["code"] == "producer_lost", received
        assert ended_at - killed_at <= LEASE + 1.0
    elif end == "sigterm":
        assert received[-1] == "error" and body["error"]["type"] == "server_shutdown", received
        assert ended_at - killed_at <= DRAIN + 1.0
        wait_until(lambda: not producer.proc.alive(), DRAIN + 10, what="the drained instance to exit")
    else:
        assert received[-1] == "done" and received.count("token") == tokens - 2


def test_redis_unreachable_is_a_clear_503(pair: Pair) -> None:
    """Never a 500: with Redis gone (stopped: the last test of this module) a resumable request
    gets 503 with an OpenAI-style body, and a rejoin too. Control: B still serves a non-resumable stream."""
    pair.redis.proc.stop()
    with owner_client(pair.b.url) as client:
        refused = client.get(stream_path("resume-no-redis", 3))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "resume_unavailable"
        rejoin = client.get(f"/v1/streams/{secrets.token_urlsafe(18)}")
        assert rejoin.status_code == 503 and rejoin.json()["error"]["code"] == "resume_unavailable"
        plain = read(client, stream_path("resume-no-redis", 3, resumable=False))
    assert [e.event for e in plain.terminal] == ["done"]
