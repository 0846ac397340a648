"""Resumable streams on one instance with the default in-memory log (issue 19, acceptance 3-5).

Every check has its negative control: the same request without `resumable=1` regenerates (or is
cancelled at once), the owner's cookie attaches where a stranger's does not.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from openai import NotFoundError, OpenAI

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


def _chat_body(prompt: str, tokens: int, rate: float = 20) -> dict[str, object]:
    return {"model": "streamkit-fake", "messages": [{"role": "user", "content": prompt}], "stream": True,
            "fake": {"tokens": tokens, "tokens_per_second": rate, "first_token_delay": 0}}


def _content(events: list[ServerSentEvent]) -> str:
    text = ""
    for event in events:
        if event.data != "[DONE]":
            text += "".join(c["delta"].get("content") or "" for c in event.json()["choices"])
    return text


def test_chat_completions_resume_with_the_header(memory_app: RunningApp) -> None:
    """POST /v1/chat/completions + `Streamkit-Resumable: 1`, rejoined by GET /v1/streams/{id} with the
    token header (no cookie jar). Control: a wrong token gets 404."""
    prompt, tokens = "resume-post", 30
    rid = request_id("mem-post")
    before = records_of(memory_app.records)
    headers = {"Streamkit-Resumable": "1", "X-Request-ID": rid}
    body = _chat_body(prompt, tokens)
    first: list[ServerSentEvent] = []
    with httpx.Client(base_url=memory_app.url, timeout=30) as client, \
            connect_sse(client, "POST", "/v1/chat/completions", json=body, headers=headers) as source:
        sid, token = source.response.headers["streamkit-stream-id"], source.response.headers["streamkit-resume-token"]
        for event in source.iter_sse():
            first.append(event)
            if len(first) == 6:
                break
    assert all(not e.id for e in first)  # the OpenAI wire: no `id:` lines
    rejoin = f"/v1/streams/{sid}?after={len(first) - 1}"
    with httpx.Client(base_url=memory_app.url, timeout=30) as client:
        wrong = client.get(rejoin, headers={"Streamkit-Resume-Token": secrets.token_urlsafe(24)})
        assert wrong.status_code == 404
        with connect_sse(client, "GET", rejoin, headers={"Streamkit-Resume-Token": token}) as source:
            rest = [e for e in source.iter_sse() if e.data]
    assert rest[-1].data == "[DONE]"
    with httpx.Client(base_url=memory_app.url, timeout=30) as client:
        plain = client.post("/v1/chat/completions", json={**_chat_body(prompt, tokens, rate=0), "stream": False})
    assert _content(first) + _content(rest) == plain.json()["choices"][0]["message"]["content"]
    assert records_of(memory_app.records) - before - {plain.headers["x-request-id"]} == {rid}


def test_responses_background_resume_with_the_openai_sdk(memory_app: RunningApp) -> None:
    """OpenAI's own client: `background: true` streaming, then `retrieve(stream=True, starting_after=N)`."""
    token = secrets.token_urlsafe(24)  # chosen by the client, sent on every request
    headers = {"Streamkit-Resume-Token": token}
    client = OpenAI(base_url=memory_app.url + "/v1", api_key="unused", default_headers=headers)
    fake = {"fake": {"tokens": 30, "tokens_per_second": 20, "first_token_delay": 0}}
    seen: list[int] = []
    text = ""
    with client.responses.create(model="streamkit-fake", input="resume-background", stream=True, background=True,
                                 extra_body=fake) as stream:
        for event in stream:
            seen.append(event.sequence_number)
            if event.type == "response.created":
                response_id = event.response.id
            if event.type == "response.output_text.delta":
                text += event.delta
            if len(seen) == 10:
                break
    # Control: another client's token cannot resume it (while it runs: a finished log expires after TTL).
    other = OpenAI(base_url=memory_app.url + "/v1", api_key="unused",
                   default_headers={"Streamkit-Resume-Token": secrets.token_urlsafe(24)})
    with pytest.raises(NotFoundError):
        other.responses.retrieve(response_id, stream=True, starting_after=0)
    with client.responses.retrieve(response_id, stream=True, starting_after=seen[-1]) as rest:
        for event in rest:
            seen.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                final = event.response.output_text
    assert seen == list(range(len(seen)))  # nothing missing or repeated
    assert text == final and final
    fast = {"fake": {**fake["fake"], "tokens_per_second": 0}}
    plain = client.responses.create(model="streamkit-fake", input="resume-background", extra_body=fast)
    assert text == plain.output_text
