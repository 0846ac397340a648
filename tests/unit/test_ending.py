"""One vocabulary for how a stream ended (app/ending.py): every `Ending` names one terminal event and
one metric label; the error types (app/errors.py) and the metric labels (app/metrics.py) are taken
from it; the label values are the ones the alerts, recording rules, promtool tests and dashboard
match; and the streaming core carries the ending from the producer to the terminal event, the
upstream's close and the metrics, which it records once per stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY

from app import errors, metrics
from app.drain import Drain
from app.ending import DONE, LABELS, Ending
from app.resume import core as resume
from app.settings import Settings
from app.streaming import Stream
from app.upstreams.base import Chunk, UpstreamError
from app.wire import ChatStreamEncoder

REPO = Path(__file__).resolve().parents[2]

# Changing any of these breaks dashboards, alerts and clients: a change here must be deliberate.
LABEL_VALUES = (
    "completed",
    "client_disconnect",
    "send_timeout",
    "upstream_error",
    "upstream_timeout",
    "shutdown",
    "token_budget",
    "client_cancel",
    "grace_expired",
    "log_lost",
)
ERROR_TYPES = {"upstream_error", "upstream_timeout", "server_error", "server_shutdown", "tokens", "stream_cancelled"}


def test_every_ending_has_one_terminal_event_and_one_label() -> None:
    for ending in Ending:
        assert ending.event is None or ending.event == DONE or ending.event in ERROR_TYPES, ending
        assert ending.label in LABEL_VALUES, ending
        assert Ending(ending.value) is ending  # no alias: each name is one ending
    assert LABELS == LABEL_VALUES
    assert {e.event for e in Ending} - {None, DONE} == ERROR_TYPES
    assert [e for e in Ending if e.event == DONE] == [Ending.COMPLETED]
    assert {e for e in Ending if e.event is None} == {Ending.CLIENT_DISCONNECT, Ending.SEND_TIMEOUT}
    with pytest.raises(ValueError):
        _ = Ending.COMPLETED.error_type


def test_error_types_and_outcomes_derive_from_the_endings() -> None:
    assert Ending.UPSTREAM_ERROR.error_type == errors.UPSTREAM_ERROR
    assert Ending.UPSTREAM_TIMEOUT.error_type == errors.UPSTREAM_TIMEOUT
    assert Ending.SHUTDOWN.error_type == errors.SERVER_SHUTDOWN
    assert Ending.SERVER_ERROR.error_type == errors.SERVER_ERROR
    assert Ending.CLIENT_CANCEL.error_type == resume.CANCELLED
    # An upstream failure counts under its error type; nothing else does.
    assert {e.error_type for e in Ending if e.upstream_error} == {"upstream_error", "upstream_timeout", "server_error"}


def _label_values_in(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = set()
    for series in ("streamkit_stream_duration_seconds", "streamkit_streams_cancelled"):
        for match in re.finditer(series + r"[a-z_:0-9]*\{([^}]*)\}", text):
            found |= set(re.findall(r'(?:outcome|reason)\s*=~?\s*\\?"([a-z_|]+)\\?"', match.group(1)))
    return {value for values in found for value in values.split("|")}


def test_the_label_values_infra_matches_are_the_endings_labels() -> None:
    files = [
        *sorted((REPO / "infra").rglob("*.yaml")),
        *sorted((REPO / "infra").rglob("*.json")),
    ]
    used = set().union(*(_label_values_in(path) for path in files))
    assert used, "no outcome/reason values found in infra/: the pattern above is stale"
    assert used <= set(LABELS), used - set(LABELS)


def test_negative_control_an_unknown_label_in_a_rule_is_found(tmp_path: Path) -> None:
    rule = tmp_path / "alerts.yaml"
    rule.write_text('expr: rate(streamkit_streams_cancelled_total{reason="client_gone"}[5m]) > 0\n')
    assert _label_values_in(rule) - set(LABELS) == {"client_gone"}


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("ending", list(Ending))
def test_record_ending_writes_each_series_once(ending: Ending) -> None:
    route = f"unit_{ending.value}"
    metrics.record_ending(route, ending, close_delay=0.01, duration=2.0, tokens=3)
    assert _value("streamkit_stream_duration_seconds_count", route=route, outcome=ending.label) == 1
    assert _value("streamkit_tokens_streamed_total", route=route) == 3
    cancelled = _value("streamkit_streams_cancelled_total", route=route, reason=ending.label)
    assert cancelled == (0 if ending is Ending.COMPLETED else 1)
    upstream_errors = sum(_value("streamkit_upstream_errors_total", route=route, type=t) for t in ERROR_TYPES)
    assert upstream_errors == (1 if ending.upstream_error else 0)
    if ending.upstream_error:
        assert _value("streamkit_upstream_errors_total", route=route, type=ending.error_type) == 1
    assert _value("streamkit_upstream_close_after_disconnect_seconds_count", route=route) == 1


@pytest.mark.parametrize("ending", [Ending.CLIENT_DISCONNECT, Ending.UPSTREAM_ERROR, Ending.UPSTREAM_TIMEOUT])
def test_a_request_that_ended_before_its_stream_is_a_cancellation_only_when_its_client_left(ending: Ending) -> None:
    route = f"unit_request_{ending.value}"
    metrics.record_ending(route, ending)
    assert _value("streamkit_stream_duration_seconds_count", route=route, outcome=ending.label) == 0
    cancelled = _value("streamkit_streams_cancelled_total", route=route, reason=ending.label)
    assert cancelled == (1 if ending is Ending.CLIENT_DISCONNECT else 0)
    assert _value("streamkit_upstream_errors_total", route=route, type=ending.value) == ending.upstream_error


# --- the streaming core carries it ------------------------------------------------------------------
class Scripted:
    """An upstream stream: these chunks, then `failure` raised (if any); records its close."""

    def __init__(self, chunks: list[Chunk], failure: BaseException | None = None) -> None:
        self.chunks, self.failure = chunks, failure
        self.closed_with: list[Ending] = []

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        for chunk in self.chunks:
            await anyio.lowlevel.checkpoint()
            yield chunk
        if self.failure is not None:
            raise self.failure

    async def aclose(self, ending: Ending) -> None:
        self.closed_with.append(ending)


def _stream(route: str, upstream: Scripted) -> Stream:
    return Stream(
        route=route,
        upstream=upstream,
        encoder=ChatStreamEncoder(request_id="r", model="m", emit_timestamps=False, retry_ms=0),
        settings=Settings(),
        drain=Drain(1.0),
        received_at=0.0,
        prompt_tokens=1,
    )


def _run(route: str, upstream: Scripted) -> tuple[Stream, bytes]:
    stream = _stream(route, upstream)

    async def run() -> bytes:
        frames = []
        async with anyio.create_task_group() as group:
            group.start_soon(stream.produce)
            async for frame in stream.events():
                frames.append(frame)
        return b"".join(frames)

    return stream, anyio.run(run)


@pytest.mark.parametrize(
    ("failure", "ending", "event"),
    [
        (None, Ending.COMPLETED, b"event: done"),
        (UpstreamError("gone"), Ending.UPSTREAM_ERROR, b'"type":"upstream_error"'),
        (UpstreamError("slow", Ending.UPSTREAM_TIMEOUT, 504), Ending.UPSTREAM_TIMEOUT, b'"type":"upstream_timeout"'),
        (UpstreamError("no", Ending.UPSTREAM_ERROR, 429, type="rate_limit_error"), Ending.UPSTREAM_ERROR,
         b'"type":"rate_limit_error"'),
        (RuntimeError("bug"), Ending.SERVER_ERROR, b'"type":"server_error"'),
    ],
)
def test_the_ending_goes_from_the_producer_to_the_event_the_close_and_the_metrics(
    failure: BaseException | None, ending: Ending, event: bytes, request: pytest.FixtureRequest
) -> None:
    route = "unit_core_" + re.sub(r"\W", "_", request.node.name)
    upstream = Scripted([Chunk(delta="a"), Chunk(delta="b")], failure)
    stream, body = _run(route, upstream)
    assert stream.ending is ending and stream.wrote_terminal
    assert upstream.closed_with == [ending]
    assert body.count(b"event: done") + body.count(b"event: error") == 1  # exactly one terminal event
    assert event in body
    assert _value("streamkit_stream_duration_seconds_count", route=route, outcome=ending.label) == 1
    assert _value("streamkit_tokens_streamed_total", route=route) == 2


def test_a_consumer_gone_without_a_word_is_a_send_timeout() -> None:
    """The consumer stops (as when its send timed out): the producer's next hand-over fails, and the
    upstream is closed as `send_timeout`, never as a server error."""
    route = "unit_core_consumer_gone"
    upstream = Scripted([Chunk(delta="x")] * 100)
    stream = _stream(route, upstream)

    async def run() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(stream.produce)
            frames = stream.events()
            await frames.__anext__()  # the start event
            await frames.__anext__()  # a token
            await frames.aclose()

    anyio.run(run)
    assert upstream.closed_with == [Ending.SEND_TIMEOUT]
    assert stream.ending is Ending.SEND_TIMEOUT and not stream.wrote_terminal
    assert _value("streamkit_streams_cancelled_total", route=route, reason="send_timeout") == 1
