"""The probe's heartbeats verdict on synthetic streams: a first-token wait of at least
HEARTBEAT_WAIT_INTERVALS intervals must hold pings, even where the silence limit (which adds a fixed
grace) would let a stream without any pass. The e2e controls (`no-heartbeats.control`) show the same
through every proxy."""

from __future__ import annotations

import pytest

from streamkit.probe.observe import Event, Observation
from streamkit.probe.verdict import Expectations, check_heartbeats


def stream(first_token: float, pings: list[float]) -> Observation:
    token = Event(arrival=first_token, arrival_unix=first_token, event="token", data='{"delta":"x"}')
    done = Event(arrival=first_token + 0.1, arrival_unix=first_token + 0.1, event="done", data="{}")
    return Observation(
        url="synthetic",
        status=200,
        headers={"content-type": "text/event-stream"},
        time_to_headers=0.0,
        events=[token, done],
        pings=pings,
        ended_at=first_token + 0.1,
    )


@pytest.mark.parametrize(
    ("interval", "first_token", "pings", "ok"),
    [
        (0.5, 1.5, [0.5, 1.0], True),  # the e2e stream: 2 pings during a 3-interval wait
        (0.5, 1.5, [], False),  # no pings: fails (also on silence, 1.5 s > 1.25 s)
        (0.5, 1.5, [1.0], False),  # one ping where two were due
        (0.2, 0.6, [], False),  # 3 intervals, no pings: the silence limit (0.8 s) alone would pass it
        (0.2, 0.6, [0.2, 0.4], True),
        (15.0, 0.3, [], True),  # a short wait cannot show pings: judged by silence only
    ],
)
def test_wait_for_the_first_token_must_hold_heartbeats(
    interval: float, first_token: float, pings: list[float], ok: bool
) -> None:
    check = check_heartbeats(stream(first_token, pings), Expectations(ping_interval=interval))
    assert check.ok is ok, check.detail
