"""The deterministic fake LLM: one generator behind both the in-process fake upstream and
`streamkit fake-upstream`.

Tokens are derived from the prompt alone (same prompt, same text), paced on an absolute
schedule so that a slow consumer never makes the fake drift, and every stream can leave a
record of its own (when each token was produced, when and why it was closed): that record is
the "upstream's own view" that the cancellation tests measure against.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio

_VOCABULARY = [
    "stream",
    "token",
    "event",
    "proxy",
    "buffer",
    "latency",
    "heartbeat",
    "model",
    "answer",
    "socket",
    "client",
    "server",
    "header",
    "chunk",
    "flush",
    "gateway",
    "timeout",
    "idle",
    "route",
    "upstream",
    "downstream",
    "byte",
    "frame",
    "reader",
    "writer",
    "signal",
    "drain",
    "worker",
    "budget",
    "cancel",
    "ping",
    "delta",
    "signal",
    "window",
    "browser",
    "gzip",
    "kernel",
]


class FakeFailure(Exception):
    """Raised by the fake at `fail_at`: an upstream failure after streaming began."""


@dataclass(frozen=True)
class FakeKnobs:
    """Per-request knobs of the fake LLM (tests and demos only)."""

    tokens: int = 48
    tokens_per_second: float = 20.0  # 0 means as fast as possible
    first_token_delay: float = 0.3
    stall_at: int | None = None  # before token N (0-based) ...
    stall_seconds: float = 0.0  # ... stay silent this long
    fail_at: int | None = None  # raise FakeFailure before token N
    word_repeat: int = 1  # each token's word this many times over (fills a stalled client's buffers fast)


# The answer to a prompt that is not plain ASCII: words from several scripts, each given as the
# tokens it is split into, at code-point boundaries that are not character boundaries, so that a
# hop that splits or re-encodes UTF-8 per event shows: CJK, a ZWJ emoji sequence, a flag (two
# regional indicators), combining marks after their base letter, right-to-left Arabic, Hangul, and a
# character outside the Basic Multilingual Plane (4 UTF-8 bytes).
UNICODE_WORDS: list[tuple[str, ...]] = [
    ("流", "式"),
    ("传", "输"),
    ("トー", "クン"),
    ("\U0001f469", "\u200d", "\U0001f4bb"),  # woman, zero-width joiner, laptop: one emoji
    ("\U0001f1e9", "\U0001f1ea"),  # regional indicators D, E: one flag
    ("e", "\u0301", "te"),  # é as e + combining acute accent
    ("n", "a", "\u0308", "ive"),  # ä as a + combining diaeresis
    ("مر", "حبا"),
    ("한", "국어"),
    ("\U0001d11e",),  # musical symbol G clef
]


def iter_fake_tokens(prompt: str, count: int) -> Iterator[str]:
    """The deterministic tokens for a prompt, one at a time (a million-token stream must not be
    built up front on the event loop): a leading space before every word but the first. A prompt
    that is not ASCII is answered with UNICODE_WORDS, split into their tokens."""
    rng = random.Random(int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big"))
    produced = 0
    while produced < count:
        word = rng.choice(_VOCABULARY) if prompt.isascii() else rng.choice(UNICODE_WORDS)
        for index, piece in enumerate((word,) if isinstance(word, str) else word):
            if produced == count:
                return
            yield (" " if produced and index == 0 else "") + piece
            produced += 1


def fake_tokens(prompt: str, count: int) -> list[str]:
    return list(iter_fake_tokens(prompt, count))


def fake_text(prompt: str, count: int) -> str:
    return "".join(fake_tokens(prompt, count))


@dataclass
class FakeRecord:
    """What the fake saw of one stream. Times are unix seconds (comparable across processes)."""

    request_id: str
    started_at: float = field(default_factory=time.time)
    emitted: int = 0
    first_emit_at: float | None = None
    last_emit_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    completed: bool = False

    def save(self, directory: str) -> None:
        if not directory:
            return
        path = Path(directory) / f"{_safe_name(self.request_id)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


def load_record(directory: str | Path, request_id: str) -> FakeRecord | None:
    path = Path(directory) / f"{_safe_name(request_id)}.json"
    try:
        return FakeRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _safe_name(request_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in request_id)[:128]


class FakeLLM:
    """One fake generation. Iterate it for text deltas; `close(reason)` ends it and writes the record."""

    def __init__(self, prompt: str, knobs: FakeKnobs, request_id: str, record_dir: str = "") -> None:
        tokens = iter_fake_tokens(prompt, knobs.tokens)
        self._tokens = tokens if knobs.word_repeat == 1 else (token * knobs.word_repeat for token in tokens)
        self._knobs = knobs
        self._record_dir = record_dir
        self.record = FakeRecord(request_id=request_id)

    async def deltas(self) -> AsyncGenerator[str, None]:
        knobs = self._knobs
        period = 1.0 / knobs.tokens_per_second if knobs.tokens_per_second > 0 else 0.0
        due = time.monotonic() + knobs.first_token_delay
        for index, token in enumerate(self._tokens):
            if knobs.stall_at == index:
                due += knobs.stall_seconds
            if knobs.fail_at == index:
                await _sleep_until(due)
                raise FakeFailure(f"fake upstream failure at token {index}")
            await _sleep_until(due)
            now = time.time()
            record = self.record
            record.emitted += 1
            record.last_emit_at = now
            if record.first_emit_at is None:
                record.first_emit_at = now
            yield token
            due += period
        self.record.completed = True

    def close(self, reason: str) -> None:
        """Record why and when the stream ended. Idempotent: the first reason wins."""
        if self.record.closed_at is None:
            self.record.closed_at = time.time()
            self.record.close_reason = reason
            self.record.save(self._record_dir)


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await anyio.sleep(delay)
    else:
        await anyio.lowlevel.checkpoint()
