"""The relay's lean SSE splitter agrees with the openai SDK's own decoder (the oracle) on every
way a body can be framed and cut into reads."""

from __future__ import annotations

import random

import pytest
from openai._streaming import SSEDecoder

from app.upstreams.openai_compat import EventSplitter

BODIES = {
    "openai": b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    "crlf (sse-starlette default)": b'data: {"a":1}\r\n\r\n: ping\r\n\r\ndata: {"b":2}\r\n\r\n',
    "cr": b'data: {"a":1}\r\rdata: {"b":2}\r\r',
    "comments and fields": b': hello\n\nevent: x\ndata: {"a":1}\nretry: 10\n\n: ping\n\n',
    "multi-line data": b'data: {"a":\ndata: 1}\n\ndata:no-space\n\ndata\n\n',
    "mixed": b'data: one\r\n\r\ndata: two\n\ndata: three\r\rdata: {"x":"\xc3\xa9"}\n\n',
}


def sdk_events(body: bytes) -> list[bytes]:
    """The oracle: the data of every event the SDK's decoder dispatches (every block in BODIES
    that is not a comment has a data line, so the relay must dispatch the same ones)."""
    return [event.data.encode() for event in SSEDecoder().iter_bytes(iter([body]))]


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    splitter = EventSplitter()
    out: list[bytes] = []
    start = 0
    for cut in [*cuts, len(body)]:
        out.extend(splitter(body[start:cut]))
        start = cut
    return out


@pytest.mark.parametrize("name", list(BODIES))
def test_whole_body_matches_the_sdk(name: str) -> None:
    body = BODIES[name]
    assert split(body, []) == sdk_events(body)


def test_a_comment_after_an_id_dispatches_nothing() -> None:
    # The SSE spec dispatches no event for a block without data; the SDK's decoder does once an
    # id was seen (it keeps the last id), so this case is checked against the spec instead.
    assert split(b'id: 7\ndata: {"a":1}\n\n: ping\n\n', []) == [b'{"a":1}']


@pytest.mark.parametrize("name", list(BODIES))
def test_any_read_boundaries_give_the_same_events(name: str) -> None:
    body = BODIES[name]
    whole = split(body, [])
    assert split(body, list(range(1, len(body)))) == whole  # one byte per read
    rng = random.Random(name)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), k=rng.randint(1, min(8, len(body) - 1))))
        assert split(body, cuts) == whole, cuts
