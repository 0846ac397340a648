"""Resumable streams on one instance with the default in-memory log (issue 19, acceptance 3-5).

Every check has its negative control: the same request without `resumable=1` regenerates (or is
cancelled at once), the owner's cookie attaches where a stranger's does not.
"""

from __future__ import annotations

import secrets
import time

from app.resume.core import OWNER_COOKIE
from tests.app.conftest import RunningApp
from tests.resume.conftest import (
    GRACE,
    TTL,
    expected_text,
    metric,
    owner_client,
    read,
    records_of,
    request_id,
    stranger,
    stream_path,
)


def test_reconnect_resumes_exactly(memory_app: RunningApp) -> None:
    prompt, tokens = "resume-memory", 30
    expected = expected_text(memory_app.url, prompt, tokens)
    rid = request_id("mem-resume")
    before = records_of(memory_app.records)
    with owner_client(memory_app.url) as client:
        first = read(client, stream_path(prompt, tokens), stop_after_tokens=7, **{"X-Request-ID": rid})
        assert first.status == 200 and first.stream_id and first.last_id.startswith(first.stream_id + ":")
        assert client.cookies.get(OWNER_COOKIE)
        rest = read(client, stream_path(prompt, tokens), **{"Last-Event-ID": first.last_id})
    assert rest.status == 200
    assert first.text + rest.text == expected  # no token missing or repeated
    assert [e.event for e in rest.terminal] == ["done"]
    offsets = [int(e.id.rsplit(":", 1)[1]) for e in first.events + rest.events]
    assert offsets == list(range(len(offsets)))
    # The upstream saw one generation: the rejoin did not open another.
    assert memory_app.record(rid).completed
    assert records_of(memory_app.records) - before == {rid}


def test_without_resumable_a_reconnect_regenerates(memory_app: RunningApp) -> None:
    """Negative control: Last-Event-ID on a non-resumable stream is ignored, as before issue 19."""
    prompt, tokens = "resume-control", 10
    before = records_of(memory_app.records)
    with owner_client(memory_app.url) as client:
        first = read(client, stream_path(prompt, tokens, resumable=False), stop_after_tokens=3)
        again = read(client, stream_path(prompt, tokens, resumable=False), **{"Last-Event-ID": first.last_id})
    assert again.text == expected_text(memory_app.url, prompt, tokens)  # the whole answer again
    assert len(records_of(memory_app.records) - before) >= 2


def test_after_the_end_unknown_and_expired_get_204(memory_app: RunningApp) -> None:
    with owner_client(memory_app.url) as client:
        whole = read(client, stream_path("resume-ended", 5))
        assert [e.event for e in whole.terminal] == ["done"]
        path = stream_path("resume-ended", 5)
        # The terminal event stays in the log: a rejoin from before it still ends cleanly.
        late = read(client, path, **{"Last-Event-ID": f"{whole.stream_id}:2"})
        assert late.status == 200 and [e.event for e in late.terminal] == ["done"]
        assert read(client, path, **{"Last-Event-ID": whole.last_id}).status == 204  # after the end
        unknown = f"{secrets.token_urlsafe(18)}:3"
        assert read(client, path, **{"Last-Event-ID": unknown}).status == 204
        assert client.get(f"/v1/streams/{unknown.split(':')[0]}").status_code == 204
        time.sleep(TTL + 0.5)
        expired = read(client, path, **{"Last-Event-ID": f"{whole.stream_id}:2"})
        assert expired.status == 204
        bad = client.get(path, headers={"Last-Event-ID": "7"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "Last-Event-ID"


def test_another_client_cannot_attach_or_cancel(memory_app: RunningApp) -> None:
    rid = request_id("mem-owner")
    with owner_client(memory_app.url) as owner, stranger(memory_app.url) as other:
        first = read(owner, stream_path("resume-owner", 40, 10), stop_after_tokens=2, **{"X-Request-ID": rid})
        sid = first.stream_id
        attach = other.get(stream_path("resume-owner", 40, 10), headers={"Last-Event-ID": first.last_id})
        assert attach.status_code == 404 and attach.json()["error"]["code"] == "stream_not_found"
        assert other.get(f"/v1/streams/{sid}").status_code == 404
        assert other.post(f"/v1/streams/{sid}/cancel").status_code == 404
        # Control: the owner's cookie attaches and cancels.
        assert read(owner, f"/v1/streams/{sid}", stop_after_tokens=1).status == 200
        cancel = owner.post(f"/v1/streams/{sid}/cancel")
        assert cancel.status_code == 200 and cancel.json()["status"] == "cancelling"
    record = memory_app.record(rid)
    assert record.close_reason == "client_cancel" and not record.completed


def test_abandoned_generation_stops_after_the_grace(memory_app: RunningApp) -> None:
    rid = request_id("mem-grace")
    with owner_client(memory_app.url) as client:
        read(client, stream_path("resume-grace", 200, 10), stop_after_tokens=2, **{"X-Request-ID": rid})
        hung_up = time.time()
    record = memory_app.record(rid, timeout=GRACE + 5)
    assert record.close_reason == "grace_expired" and not record.completed
    assert record.closed_at is not None
    assert GRACE - 0.1 <= record.closed_at - hung_up <= GRACE + 1.0
    assert metric(memory_app.url, "streamkit_resume_grace_expiries_total") >= 1


def test_rejoin_within_the_grace_keeps_it_going(memory_app: RunningApp) -> None:
    """Control for the grace: a reader back before it expires keeps the generation alive."""
    rid = request_id("mem-rejoin")
    prompt, tokens = "resume-grace-rejoin", 25
    with owner_client(memory_app.url) as client:
        first = read(client, stream_path(prompt, tokens, 10), stop_after_tokens=2, **{"X-Request-ID": rid})
        time.sleep(GRACE / 2)
        rest = read(client, f"/v1/streams/{first.stream_id}", **{"Last-Event-ID": first.last_id})
    assert [e.event for e in rest.terminal] == ["done"]
    assert first.text + rest.text == expected_text(memory_app.url, prompt, tokens)
    assert memory_app.record(rid).completed
