"""The fake LLM generator: deterministic text, pacing knobs, failures and its own close record."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from app.fakellm import FakeFailure, FakeKnobs, FakeLLM, fake_text, fake_tokens, load_record
from tests.bounds import MIN_TRIALS, assert_p95

# How late a paced stream may end: p95 over TRIALS fakes run side by side (tests/bounds.py); never early.
PACING_SLACK = 0.08
TRIALS = MIN_TRIALS
EARLY = 0.01  # timer granularity


def collect(llm: FakeLLM) -> tuple[list[str], float]:
    async def run() -> list[str]:
        return [t async for t in llm.deltas()]

    started = time.monotonic()
    tokens = anyio.run(run)
    return tokens, time.monotonic() - started


def durations(make: Callable[[], FakeLLM]) -> list[float]:
    """TRIALS fakes from `make`, run concurrently in one event loop: how long each took."""
    took: list[float] = []

    async def one() -> None:
        started = time.monotonic()
        assert [t async for t in make().deltas()]
        took.append(time.monotonic() - started)

    async def run() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(TRIALS):
                group.start_soon(one)

    anyio.run(run)
    return took


def assert_paced(took: list[float], expected: float, what: str) -> None:
    assert min(took) >= expected - EARLY, f"{what}: ended before {expected:g} s: {sorted(took)}"
    assert_p95([t - expected for t in took], PACING_SLACK, f"{what}: late by")


def test_text_is_deterministic_and_depends_on_the_prompt() -> None:
    assert fake_text("same", 30) == fake_text("same", 30)
    assert fake_text("same", 30) != fake_text("other", 30)
    tokens = fake_tokens("p", 5)
    assert not tokens[0].startswith(" ") and all(t.startswith(" ") for t in tokens[1:])
    assert fake_text("p", 3) == "".join(fake_tokens("p", 5)[:3])


def test_pacing_and_first_token_delay() -> None:
    knobs = FakeKnobs(tokens=5, tokens_per_second=20, first_token_delay=0.2)
    tokens, _ = collect(FakeLLM("x", knobs, "r"))
    assert tokens == fake_tokens("x", 5)
    assert_paced(durations(lambda: FakeLLM("x", knobs, "r")), 0.2 + 4 / 20, "5 tokens at 20/s after 0.2 s")


def test_stall_adds_silence_before_the_given_token() -> None:
    knobs = FakeKnobs(tokens=3, tokens_per_second=0, first_token_delay=0, stall_at=1, stall_seconds=0.3)
    assert_paced(durations(lambda: FakeLLM("x", knobs, "r")), 0.3, "a 0.3 s stall")


def test_fail_at_raises_after_the_tokens_before_it() -> None:
    llm = FakeLLM("x", FakeKnobs(tokens=5, tokens_per_second=0, first_token_delay=0, fail_at=2), "r")
    got: list[str] = []

    async def run() -> None:
        async for token in llm.deltas():
            got.append(token)

    with pytest.raises(FakeFailure):
        anyio.run(run)
    assert got == fake_tokens("x", 2)


def test_close_writes_one_record_and_first_reason_wins(tmp_path: Path) -> None:
    llm = FakeLLM("x", FakeKnobs(tokens=2, tokens_per_second=0, first_token_delay=0), "req/1", str(tmp_path))
    collect(llm)
    llm.close("completed")
    llm.close("client_disconnect")
    record = load_record(tmp_path, "req/1")
    assert record is not None
    assert record.close_reason == "completed" and record.completed and record.emitted == 2
    assert record.first_emit_at is not None and record.closed_at is not None
    assert load_record(tmp_path, "missing") is None
