"""The verifying load client: raw asyncio sockets, every stream checked against the fake's text.

`bench/loadgen.py` counts token frames and stays cheap; this client parses each stream fully,
because here the question is not how fast but whether anything was lost. Every stream asks
`GET /v1/chat/stream` for a prompt of its own; the fake LLM's text is a function of the prompt
(`app.fakellm.fake_tokens`), so the client knows every token it must receive, in order, and that
exactly one terminal event (`done` or `error`) must end the stream. Each stream is classified:

* `intact`   every token, in order, then `done`;
* `error`    a prefix of the tokens, then one `error` event (its type is kept: `server_shutdown`,
             `upstream_error`, ...); or an HTTP error status before the stream began (`http_429`);
* `lost`     the connection ended without a terminal event (the tokens so far were right);
* `damaged`  a token missing, duplicated or reordered, an event id out of order, a second terminal
             event, or anything after the terminal event.

The client targets 127.0.0.1 only, and every count and duration is capped (`MAX_STREAMS`,
`MAX_SECONDS`): a load run always stops by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.fakellm import fake_tokens

HOST = "127.0.0.1"  # the only target a load run may have
MAX_STREAMS = 5000  # concurrent streams one run may hold
MAX_SECONDS = 900.0  # longest phase of a run
READ_SIZE = 65536
STREAM_DEADLINE = 600.0  # one stream may not last longer than this (then: lost)

INTACT, ERROR, LOST, DAMAGED = "intact", "error", "lost", "damaged"


@dataclass
class StreamSpec:
    """What one stream asks for, and so what it must receive."""

    prompt: str
    tokens: int
    tokens_per_second: float
    first_token_delay: float = 0.2
    query: dict[str, Any] = field(default_factory=dict)  # more fake knobs (fail_at, ...)
    relay: bool = False  # the app relays to `streamkit fake-upstream`: knobs travel in the prompt

    def path(self) -> str:
        if self.relay:
            return "/v1/chat/stream?" + urllib.parse.urlencode({"prompt": self.full_prompt()})
        params = {
            "prompt": self.prompt,
            "tokens": self.tokens,
            "tokens_per_second": self.tokens_per_second,
            "first_token_delay": self.first_token_delay,
            **self.query,
        }
        return "/v1/chat/stream?" + urllib.parse.urlencode(params)

    def full_prompt(self) -> str:
        """The prompt the fake generates from (with the relay, knobs are words in the prompt)."""
        if not self.relay:
            return self.prompt
        knobs = {
            "tokens": self.tokens,
            "tokens_per_second": self.tokens_per_second,
            "first_token_delay": self.first_token_delay,
            **self.query,
        }
        return self.prompt + "".join(f" fake.{name}={value}" for name, value in knobs.items())

    def expected(self) -> list[str]:
        return fake_tokens(self.full_prompt(), self.tokens)


@dataclass
class StreamOutcome:
    kind: str = LOST
    detail: str = ""  # error type, HTTP status or what was damaged
    status: int = 0
    tokens: int = 0
    checksum_ok: bool = False
    started: float = 0.0  # time.time()
    ended: float = 0.0
    ttft: float | None = None  # seconds from request to first token
    gaps: list[float] = field(default_factory=list)


class _Chunked:
    """Incremental decoder of a chunked HTTP/1.1 body."""

    def __init__(self) -> None:
        self.buffer = b""
        self.need = -1  # bytes left in the current chunk; -1: a size line comes next
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = bytearray()
        while not self.finished:
            if self.need < 0:
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(self.buffer[:line_end].split(b";")[0], 16)
                self.buffer = self.buffer[line_end + 2 :]
                if size == 0:
                    self.finished = True
                    break
                self.need = size
            if len(self.buffer) < self.need + 2:
                break
            out += self.buffer[: self.need]
            self.buffer = self.buffer[self.need + 2 :]
            self.need = -1
        return bytes(out)


class Verifier:
    """Feeds SSE bytes in, checks every event against the expected tokens as it arrives."""

    def __init__(self, expected: list[str], sent_at: float) -> None:
        self.expected = expected
        self.sent_at = sent_at
        self.received: list[str] = []
        self.buffer = b""
        self.next_id = 0
        self.terminal: str | None = None
        self.error_type = ""
        self.damage = ""
        self.token_times: list[float] = []

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            self._event(block.decode())

    def _event(self, block: str) -> None:
        name, data, event_id = "message", "", None
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue  # a ping comment
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data = value
            elif key == "id":
                event_id = int(value)
        if name == "message" and not data:
            return  # comments only
        if self.terminal is not None:
            self._damaged(f"event '{name}' after the terminal event")
            return
        if event_id is not None:
            if event_id != self.next_id:
                self._damaged(f"event id {event_id}, expected {self.next_id}")
            self.next_id = event_id + 1
        if name == "token":
            delta = json.loads(data)["delta"]
            index = len(self.received)
            if index >= len(self.expected) or delta != self.expected[index]:
                self._damaged(f"token {index} is {delta!r}")
            self.received.append(delta)
            self.token_times.append(time.perf_counter())
        elif name in ("done", "error"):
            self.terminal = name
            if name == "error":
                self.error_type = json.loads(data)["error"]["type"]

    def _damaged(self, why: str) -> None:
        if not self.damage:
            self.damage = why

    def outcome(self, outcome: StreamOutcome) -> StreamOutcome:
        received, expected = self.received, self.expected
        outcome.tokens = len(received)
        digest = hashlib.sha256("".join(received).encode()).hexdigest()
        outcome.checksum_ok = digest == hashlib.sha256("".join(expected).encode()).hexdigest()
        times = self.token_times
        outcome.ttft = times[0] - self.sent_at if times else None
        outcome.gaps = [b - a for a, b in itertools.pairwise(times)]
        if self.damage:
            outcome.kind, outcome.detail = DAMAGED, self.damage
        elif self.terminal == "done":
            if outcome.checksum_ok:
                outcome.kind = INTACT
            else:
                outcome.kind, outcome.detail = DAMAGED, f"done after {len(received)} of {len(expected)} tokens"
        elif self.terminal == "error":
            outcome.kind, outcome.detail = ERROR, self.error_type
        else:
            outcome.kind, outcome.detail = LOST, f"no terminal event after {len(received)} tokens"
        return outcome


def request(path: str, port: int) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: text/event-stream", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def run_stream(port: int, spec: StreamSpec, on_open: Callable[[int], None] | None = None) -> StreamOutcome:
    """One stream through 127.0.0.1:port, read to its end and classified."""
    outcome = StreamOutcome(started=time.time())
    writer: asyncio.StreamWriter | None = None
    verifier: Verifier | None = None
    try:
        async with asyncio.timeout(STREAM_DEADLINE):
            reader, writer = await asyncio.open_connection(HOST, port)
            sent_at = time.perf_counter()
            writer.write(request(spec.path(), port))
            head = b""
            while b"\r\n\r\n" not in head:
                data = await reader.read(READ_SIZE)
                if not data:
                    outcome.kind, outcome.detail = LOST, "closed before response headers"
                    return outcome
                head += data
            head, body = head.split(b"\r\n\r\n", 1)
            outcome.status = int(head[9:12])
            if outcome.status != 200:
                outcome.kind, outcome.detail = ERROR, f"http_{outcome.status}"
                return outcome
            if on_open is not None:
                on_open(1)
            chunked = b"transfer-encoding: chunked" in head.lower()
            decoder = _Chunked() if chunked else None
            verifier = Verifier(spec.expected(), sent_at)
            try:
                while True:
                    if body:
                        verifier.feed(decoder.feed(body) if decoder else body)
                        if decoder is not None and decoder.finished:
                            break
                    body = await reader.read(READ_SIZE)
                    if not body:
                        break
            finally:
                if on_open is not None:
                    on_open(-1)
    except (OSError, TimeoutError, ValueError) as exc:
        if verifier is None:
            outcome.kind, outcome.detail = LOST, f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
        outcome.ended = time.time()
    if verifier is not None:
        verifier.outcome(outcome)
    return outcome


def summarize(outcomes: list[StreamOutcome], gaps: list[float] | None = None) -> dict[str, Any]:
    """Counts by kind and by detail, and TTFT / gap percentiles (milliseconds); `gaps` replaces
    the outcomes' own (a sample gathered from several client processes)."""
    kinds = Counter(o.kind for o in outcomes)
    details = Counter(f"{o.kind}:{o.detail}" for o in outcomes if o.kind != INTACT)
    ttfts = sorted(o.ttft for o in outcomes if o.ttft is not None)
    gaps = sorted(gaps if gaps is not None else (g for o in outcomes for g in o.gaps))
    return {
        "started": len(outcomes),
        "intact": kinds[INTACT],
        "error": kinds[ERROR],
        "lost": kinds[LOST],
        "damaged": kinds[DAMAGED],
        "why": dict(details.most_common(12)),
        "ttft_ms": percentiles(ttfts),
        "gap_ms": percentiles(gaps),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of sorted seconds, in milliseconds."""
    if not values:
        return {}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(values[-1] * 1000, 1)}
