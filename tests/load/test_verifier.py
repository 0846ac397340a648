"""The load client's verdicts: the controls that show a lost or damaged stream is caught.

Each case feeds `Verifier` (bench/loadcheck.py) the SSE bytes the app would send for a prompt (built
with the app's own encoder), changed in exactly one way.
"""

from __future__ import annotations

import pytest

from app.fakellm import fake_tokens
from app.upstreams.base import Chunk
from app.wire import ChatStreamEncoder
from bench.loadcheck import DAMAGED, ERROR, INTACT, LOST, StreamOutcome, Verifier, _Chunked

PROMPT, COUNT = "verify-me", 12


def frames(tokens: list[str], end: str | None = "done") -> list[bytes]:
    encoder = ChatStreamEncoder(request_id="r", model="m", emit_timestamps=False, retry_ms=3000)
    out = list(encoder.start())
    out += [encoder.token(Chunk(delta=token)) for token in tokens]
    if end == "done":
        out += encoder.done("stop", None)
    elif end == "error":
        out.append(encoder.error({"error": {"message": "x", "type": "server_shutdown", "param": None, "code": None}}))
    return out


def verdict(chunks: list[bytes]) -> StreamOutcome:
    verifier = Verifier(fake_tokens(PROMPT, COUNT), 0.0)
    for chunk in chunks:
        verifier.feed(chunk)
    return verifier.outcome(StreamOutcome())


EXPECTED = fake_tokens(PROMPT, COUNT)


def test_intact() -> None:
    outcome = verdict(frames(EXPECTED))
    assert outcome.kind == INTACT and outcome.checksum_ok


def test_error_event_after_a_prefix_is_an_error_not_damage() -> None:
    outcome = verdict(frames(EXPECTED[:5], end="error"))
    assert (outcome.kind, outcome.detail, outcome.tokens) == (ERROR, "server_shutdown", 5)


def test_no_terminal_event_is_lost() -> None:
    assert verdict(frames(EXPECTED[:7], end=None)).kind == LOST


@pytest.mark.parametrize(
    "tokens",
    [
        EXPECTED[:3] + EXPECTED[4:],  # missing
        EXPECTED[:4] + EXPECTED[3:],  # duplicated
        [*EXPECTED[:2], EXPECTED[3], EXPECTED[2], *EXPECTED[4:]],  # reordered
        EXPECTED[:-1],  # `done` one token short
    ],
    ids=["missing", "duplicated", "reordered", "short"],
)
def test_damaged_tokens(tokens: list[str]) -> None:
    assert verdict(frames(tokens)).kind == DAMAGED


def test_two_terminal_events_are_damage() -> None:
    assert verdict(frames(EXPECTED) + frames([], end="error")[1:]).kind == DAMAGED


def test_event_ids_out_of_order_are_damage() -> None:
    chunks = frames(EXPECTED)
    chunks[3], chunks[4] = chunks[4], chunks[3]
    assert verdict(chunks).kind == DAMAGED


def test_chunked_body_split_anywhere() -> None:
    body = b"".join(frames(EXPECTED))
    wire = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:77], body[77:])) + b"0\r\n\r\n"
    decoder = _Chunked()
    verifier = Verifier(EXPECTED, 0.0)
    for i in range(0, len(wire), 7):
        verifier.feed(decoder.feed(wire[i : i + 7]))
    assert decoder.finished
    assert verifier.outcome(StreamOutcome()).kind == INTACT
