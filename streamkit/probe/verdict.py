"""The probe's verdict: judge one `Observation` against the streaming contract.

Each check says in one line what was seen and, when it failed, what to change (with a link).
`assess()` is pure (no I/O), so the CLI, the e2e suite and the demo judge a stream the same way.

The buffering verdict (`incremental`) uses the server's emit timestamps when events carry
`emitted_at` (unix seconds): an event that reaches us more than `max_lag` after it was written
was held back on the way. Without timestamps it falls back to burst detection: most of the
stream arriving in one burst looks like a buffer flush (a heuristic: a server that really writes
everything at once looks the same, so add `emitted_at` to be sure).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from streamkit.probe.observe import Event, Observation

CHECK_NAMES = (
    "status",
    "headers_first",
    "incremental",
    "uncompressed",
    "cache_control",
    "x_accel_buffering",
    "heartbeats",
    "terminal_event",
    "http_version",
)

DOCS = "docs/probe.md"
NGINX_PROXY = "https://nginx.org/en/docs/http/ngx_http_proxy_module.html"
NGINX_GZIP = "https://nginx.org/en/docs/http/ngx_http_gzip_module.html#gzip_types"
CADDY_ENCODE = "https://caddyserver.com/docs/caddyfile/directives/encode"
CADDY_FLUSH = "https://caddyserver.com/docs/caddyfile/directives/reverse_proxy#flush_interval"
SSE_SPEC = "https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation"

# Events that end a stream: the reference app's `done`/`error`, OpenAI's `data: [DONE]`, and the
# Responses API's final events.
TERMINAL_EVENTS = frozenset({"done", "error", "response.completed", "response.failed", "response.incomplete"})
TOKEN_EVENTS = frozenset({"token", "response.output_text.delta"})
# Heartbeats: with a known ping interval P, the longest silence allowed is P * SLACK + GRACE, and a
# wait for the first token of at least WAIT_INTERVALS * P must itself hold heartbeats: at least
# floor(wait / P) - 1 of them (one interval of the wait may pass before the first ping is due).
# The count does not lean on GRACE, so it holds for any P (with P = 0.5 s the silence limit is
# 1.25 s; a first token 1.5 s late must come after >= 2 pings, and 0 pings fails on both counts).
HEARTBEAT_SLACK = 1.5  # a ping may arrive up to half an interval late on a busy host
HEARTBEAT_GRACE = 0.5  # seconds added to the limit for scheduling noise
HEARTBEAT_WAIT_INTERVALS = 2  # a wait at least this many intervals long must show heartbeats
MIN_EVENTS_FOR_BURSTS = 3  # fewer events cannot show a burst pattern
BURST_SHARE = 0.5  # without timestamps: a burst holding at least this share of events = buffered


@dataclass
class Check:
    name: str  # one of CHECK_NAMES
    ok: bool | None  # None = could not be judged (detail says why)
    detail: str  # one line a newcomer understands
    fix: str = ""  # what to change when not ok (directive + link)
    # Advice (header hygiene, e.g. Cache-Control without no-transform): reported when not ok, but
    # it does not fail the run: the headline verdict is about whether events arrive as sent.
    advice: bool = False

    @property
    def fails(self) -> bool:
        return self.ok is False and not self.advice


@dataclass(frozen=True)
class Expectations:
    max_lag: float = 0.25  # per-event lag limit when emitted_at is present
    burst_window: float = 0.05  # without timestamps: events arriving within this = one burst
    ping_interval: float | None = None  # when known, heartbeats must show at about this period
    http_version: str | None = None  # e.g. "HTTP/2": when given, the stream must use it
    # Require `X-Accel-Buffering: no` on the response. Off by default: nginx does not pass X-Accel-*
    # headers on, so behind a correct nginx it is absent; absent is then reported, not failed.
    x_accel_buffering: bool = False
    # How the stream ends (docs/probe.md, "How a stream ends"): "auto" tells the protocol from the
    # events (the kit's, OpenAI chat, Responses: a terminal event is required; anything else is a
    # generic stream that may end by closing), "close" = a generic stream, any other value = the
    # event name or data line that ends the stream.
    terminal: str = "auto"
    expect_seconds: float | None = None  # a generic stream closing cleanly before this was cut
    expect_events: int | None = None  # ... or with fewer events than this


@dataclass
class Report:
    observation: Observation
    checks: list[Check]
    stats: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every check that could be judged passed (advice aside)."""
        return not any(c.fails for c in self.checks)

    @property
    def connected(self) -> bool:
        return self.observation.status is not None

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed(self) -> list[Check]:
        """Failing checks, most important first (the order of HEADLINES)."""
        return sorted((c for c in self.checks if c.fails), key=lambda c: list(HEADLINES).index(c.name))

    @property
    def advice(self) -> list[Check]:
        """Advice checks that were not met (reported, not failed)."""
        return [c for c in self.checks if c.advice and c.ok is False]

    @property
    def headline(self) -> str:
        """One word for the verdict, from the most important failing check."""
        if self.ok:
            return "STREAMS"
        return HEADLINES[self.failed[0].name]

    @property
    def summary(self) -> str:
        """The verdict in one sentence: 'BUFFERED: all 20 events arrived together ...'."""
        if self.ok:
            return f"STREAMS: {self.check('incremental').detail}"
        first = self.failed[0]
        return f"{self.headline}: {first.detail}"

    def to_json(self) -> dict[str, Any]:
        obs = self.observation
        return {
            "url": obs.url,
            "ok": self.ok,
            "verdict": self.headline,
            "summary": self.summary,
            "status": obs.status,
            "http_version": obs.http_version,
            "headers": {k: obs.headers[k] for k in REPORTED_HEADERS if k in obs.headers},
            "error": obs.error,
            "checks": [asdict(c) for c in self.checks],
            "advice": [c.name for c in self.advice],
            "stats": self.stats,
            "events": [
                {"arrival": round(e.arrival, 6), "event": e.event, "id": e.id, "emitted_at": e.emitted_at, "lag": e.lag}
                for e in obs.events
            ],
            "pings": [round(p, 6) for p in obs.pings],
        }


# Order = priority for the headline (the first failing check names the verdict).
HEADLINES = {
    "status": "NO STREAM",
    "incremental": "BUFFERED",
    "headers_first": "HEADERS HELD",
    "terminal_event": "CUT",
    "uncompressed": "COMPRESSED",
    "heartbeats": "NO HEARTBEATS",
    "cache_control": "HEADERS MISSING",
    "x_accel_buffering": "HEADERS MISSING",
    "http_version": "WRONG PROTOCOL",
}
REPORTED_HEADERS = ("content-type", "content-encoding", "cache-control", "x-accel-buffering", "transfer-encoding")


def milliseconds(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def error_of(event: Event) -> dict[str, Any] | None:
    """The OpenAI-style error an in-band error event carries (`{"error": {...}}`), if any."""
    payload = event.json()
    inner = payload.get("error") if isinstance(payload, dict) else None
    return inner if isinstance(inner, dict) else None


def is_terminal(event: Event) -> bool:
    if event.data.strip() == "[DONE]" or event.event in TERMINAL_EVENTS or error_of(event) is not None:
        return True
    payload = event.json()
    return isinstance(payload, dict) and payload.get("type") in TERMINAL_EVENTS


def is_token(event: Event) -> bool:
    """An event that carries generated text: a `token`, a Responses delta, or a chat chunk with content."""
    if event.event in TOKEN_EVENTS:
        return True
    payload = event.json()
    if not isinstance(payload, dict):
        return False
    if payload.get("type") in TOKEN_EVENTS:
        return True
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        return isinstance(delta, dict) and bool(delta.get("content"))
    return False


def is_event_stream(obs: Observation) -> bool:
    return "text/event-stream" in obs.headers.get("content-type", "")


def bursts(arrivals: list[float], window: float) -> list[list[float]]:
    """Group arrival times: consecutive arrivals closer than `window` belong to one burst."""
    groups: list[list[float]] = []
    for t in arrivals:
        if groups and t - groups[-1][-1] < window:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def longest_silence(obs: Observation) -> float | None:
    """Longest time with nothing at all arriving (no event, no comment), from headers to the end."""
    if obs.time_to_headers is None:
        return None
    points = sorted([obs.time_to_headers, *(e.arrival for e in obs.events), *obs.pings])
    end = obs.events[-1].arrival if obs.closed_early and obs.events else obs.ended_at
    if end is not None:
        points.append(end)
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def stats_of(obs: Observation) -> dict[str, float | None]:
    arrivals = [e.arrival for e in obs.events]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    lags = [lag for e in obs.events if (lag := e.lag) is not None]
    tokens = [e for e in obs.events if is_token(e)]
    return {
        "time_to_headers": obs.time_to_headers,
        "time_to_first_event": arrivals[0] if arrivals else None,
        "time_to_first_token": tokens[0].arrival if tokens else None,
        "duration": obs.ended_at,
        "gap_p50": percentile(gaps, 50),
        "gap_p99": percentile(gaps, 99),
        "gap_max": max(gaps, default=None),
        "lag_p50": percentile(lags, 50),
        "lag_max": max(lags, default=None),
        "longest_silence": longest_silence(obs),
        "events": float(len(obs.events)),
        "tokens": float(len(tokens)),
        "pings": float(len(obs.pings)),
    }


# --- the checks -------------------------------------------------------------------------------


def check_status(obs: Observation) -> Check:
    if obs.status is None:
        return Check(
            "status",
            False,
            f"could not connect: {obs.error or 'no response'}",
            "check the URL, that the server is running, and TLS options (--cacert for a private CA)",
        )
    ctype = obs.headers.get("content-type", "(none)")
    if not 200 <= obs.status < 300:
        body = " ".join(obs.body.split())[:160]
        return Check(
            "status",
            False,
            f"the server answered HTTP {obs.status} ({ctype}): {body}",
            "send a request the endpoint accepts (method, --json body, headers) and check the URL",
        )
    if not is_event_stream(obs):
        return Check(
            "status",
            False,
            f"HTTP {obs.status} but Content-Type is {ctype}, not text/event-stream",
            'ask for a stream (e.g. "stream": true in the --json body) or point at the streaming endpoint',
        )
    return Check("status", True, f"HTTP {obs.status}, text/event-stream")


def lag_verdict(timed: list[Event], expect: Expectations) -> Check:
    lags = [e.lag for e in timed if e.lag is not None]
    skew_note = ""
    if min(lags) < -expect.max_lag:
        # Arrived before it was sent: the server's clock is ahead of ours. Judge lag relative to
        # the fastest event instead (a constant clock offset cancels out).
        offset = min(lags)
        lags = [lag - offset for lag in lags]
        skew_note = f" (server clock {-offset:.2f} s ahead; lag measured relative to the fastest event)"
    worst = max(lags)
    late = [lag for lag in lags if lag > expect.max_lag]
    n = len(lags)
    if not late:
        return Check(
            "incremental",
            True,
            f"each of {n} events arrived within {milliseconds(worst)} of being sent{skew_note}",
        )
    groups = bursts([e.arrival for e in timed], expect.burst_window)
    biggest = max(groups, key=len)
    if len(biggest) == n:
        detail = (
            f"all {n} events arrived together at {biggest[0]:.2f} s, up to {worst:.2f} s after they were sent"
            f"{skew_note}"
        )
    else:
        detail = (
            f"{len(late)} of {n} events arrived late, the worst {worst:.2f} s after it was sent "
            f"(limit {expect.max_lag:.2f} s; largest burst: {len(biggest)} events){skew_note}"
        )
    return Check("incremental", False, detail, BUFFERING_FIX)


BUFFERING_FIX = (
    "A proxy is holding the response back. nginx: `proxy_buffering off;` in the location "
    f"({NGINX_PROXY}#proxy_buffering); Caddy: `flush_interval -1` ({CADDY_FLUSH}); "
    f"HAProxy: `option http-no-delay`; no compression of text/event-stream. See {DOCS}#incremental"
)


def check_incremental(obs: Observation, expect: Expectations) -> Check:
    if not is_event_stream(obs):
        return Check("incremental", None, "no event stream to judge")
    if not obs.events:
        return Check("incremental", None, "no events arrived")
    timed = [e for e in obs.events if e.emitted_at is not None]
    if timed:
        return lag_verdict(timed, expect)
    n = len(obs.events)
    if n < MIN_EVENTS_FOR_BURSTS:
        return Check("incremental", None, f"only {n} events and no emitted_at timestamps: too few to judge")
    groups = bursts([e.arrival for e in obs.events], expect.burst_window)
    biggest = max(groups, key=len)
    spread = obs.events[-1].arrival - obs.events[0].arrival
    note = " (no emitted_at timestamps: judged by arrival pattern only)"
    if len(biggest) >= max(MIN_EVENTS_FOR_BURSTS, BURST_SHARE * n):
        what = f"all {n} events" if len(biggest) == n else f"{len(biggest)} of {n} events"
        return Check(
            "incremental",
            False,
            f"{what} arrived together in one burst at {biggest[0]:.2f} s{note}",
            BUFFERING_FIX,
        )
    return Check(
        "incremental",
        True,
        f"{n} events arrived spread over {spread:.2f} s, largest burst {len(biggest)}{note}",
    )


def check_headers_first(obs: Observation, expect: Expectations) -> Check:
    if not is_event_stream(obs) or obs.time_to_headers is None:
        return Check("headers_first", None, "no event stream to judge")
    tokens = [e for e in obs.events if is_token(e)]
    if not tokens:
        return Check("headers_first", None, "no token events arrived")
    first = tokens[0]
    emitted, headers_unix = first.emitted_at, obs.headers_unix
    if emitted is not None and headers_unix is not None:
        held = headers_unix - emitted
        if held <= expect.max_lag:
            when = f"{-held:.2f} s before the first token was sent" if held <= 0 else "with the first token"
            return Check("headers_first", True, f"headers arrived at {obs.time_to_headers:.2f} s, {when}")
        return Check(
            "headers_first",
            False,
            f"headers arrived {held:.2f} s after the first token was sent: the client could not even "
            "see the response start (EventSource.onopen waits)",
            BUFFERING_FIX,
        )
    before = first.arrival - obs.time_to_headers
    if before > expect.burst_window:
        return Check(
            "headers_first",
            True,
            f"headers arrived at {obs.time_to_headers:.2f} s, {before:.2f} s before the first token",
        )
    return Check(
        "headers_first",
        None,
        f"headers and the first token arrived together at {first.arrival:.2f} s; without emitted_at "
        "it is unknown whether the server had the token ready",
    )


def check_uncompressed(obs: Observation) -> Check:
    if not is_event_stream(obs):
        return Check("uncompressed", None, "no event stream to judge")
    encoding = obs.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return Check("uncompressed", True, "no Content-Encoding on the event stream")
    return Check(
        "uncompressed",
        False,
        f"the event stream was compressed (Content-Encoding: {encoding}); a compressor on the path may "
        "hold events back until its buffer fills",
        f"leave text/event-stream out of compression: nginx `gzip off;` in the SSE location or drop it from "
        f"gzip_types ({NGINX_GZIP}); Caddy: an `encode` `match` without text/event-stream ({CADDY_ENCODE})",
    )


def check_cache_control(obs: Observation) -> Check:
    if not is_event_stream(obs):
        return Check("cache_control", None, "no event stream to judge")
    value = obs.headers.get("cache-control", "")
    directives = {d.strip().split("=")[0].lower() for d in value.split(",") if d.strip()}
    if "no-store" in directives:
        directives.add("no-cache")  # no-store is stricter: nothing is cached at all
    missing = [d for d in ("no-cache", "no-transform") if d not in directives]
    if not missing:
        return Check("cache_control", True, f"Cache-Control: {value}")
    return Check(
        "cache_control",
        False,
        f"Cache-Control is {value or 'absent'}; missing {', '.join(missing)} (advice: caches and CDNs may store "
        "or re-encode the stream; the events themselves arrived as measured above)",
        "send `Cache-Control: no-cache, no-transform` from the app (https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2)",
        advice=True,
    )


def check_x_accel_buffering(obs: Observation, expect: Expectations) -> Check:
    if not is_event_stream(obs):
        return Check("x_accel_buffering", None, "no event stream to judge")
    value = obs.headers.get("x-accel-buffering")
    fix = (
        "send `X-Accel-Buffering: no` from the app (sse-starlette does) or the edge (nginx: "
        f"`add_header X-Accel-Buffering no;`) ({NGINX_PROXY}#proxy_buffering)"
    )
    if value is None:
        detail = (
            "X-Accel-Buffering is absent (nginx never passes X-Accel-* on); an nginx in front of this URL "
            "would buffer the stream unless it sets `proxy_buffering off;` itself"
        )
        return Check("x_accel_buffering", False if expect.x_accel_buffering else None, detail, fix)
    if value.strip().lower() == "no":
        return Check("x_accel_buffering", True, "X-Accel-Buffering: no")
    return Check(
        "x_accel_buffering", False, f"X-Accel-Buffering: {value} asks an nginx in front to buffer the stream", fix
    )


HEARTBEAT_FIX = (
    "send an SSE comment (`: ping`) every ping interval from the moment headers go out (sse-starlette "
    f"`ping=`), shorter than every hop's idle timeout ({SSE_SPEC}); see docs/timeouts.md"
)


def pings_before_first_token(obs: Observation) -> tuple[float, int] | None:
    """(seconds from the headers to the first token, heartbeats in that wait); None without a token."""
    tokens = [e.arrival for e in obs.events if is_token(e)]
    if obs.time_to_headers is None or not tokens:
        return None
    start, first = obs.time_to_headers, tokens[0]
    return first - start, sum(1 for p in obs.pings if start <= p < first)


def check_heartbeats(obs: Observation, expect: Expectations) -> Check:
    if not is_event_stream(obs):
        return Check("heartbeats", None, "no event stream to judge")
    silence = longest_silence(obs) or 0.0
    n = len(obs.pings)
    seen = f"{n} heartbeat{'s' if n != 1 else ''} seen, longest silence {silence:.2f} s"
    if expect.ping_interval is None:
        if n:
            return Check("heartbeats", True, seen)
        return Check(
            "heartbeats",
            None,
            f"no heartbeat comments seen (longest silence {silence:.2f} s); give --ping-interval to judge",
        )
    interval = expect.ping_interval
    limit = interval * HEARTBEAT_SLACK + HEARTBEAT_GRACE
    wait = pings_before_first_token(obs)
    waited = ""
    if wait is not None and wait[0] >= HEARTBEAT_WAIT_INTERVALS * interval:
        seconds, during = wait
        needed = max(1, math.floor(seconds / interval) - 1)
        waited = f", {during} during the {seconds:.2f} s wait for the first token (at least {needed})"
        if during < needed:
            return Check(
                "heartbeats",
                False,
                f"the first token came {seconds:.2f} s after the headers with {during} heartbeat"
                f"{'s' if during != 1 else ''} in between (expected at least {needed}: a comment every "
                f"{interval:g} s from the moment headers are sent); a proxy idle timeout will cut such a stream",
                HEARTBEAT_FIX,
            )
    if silence <= limit:
        return Check("heartbeats", True, f"{seen}{waited} (silence limit {limit:.2f} s)")
    return Check(
        "heartbeats",
        False,
        f"the stream went silent for {silence:.2f} s with {'no' if not n else 'too few'} heartbeats "
        f"(expected a comment every {interval:g} s, silence limit {limit:.2f} s); a proxy idle timeout will "
        "cut such a stream",
        HEARTBEAT_FIX,
    )


KIT_EVENTS = frozenset({"token", "done", "error"})
CUT_FIX = (
    "a timeout or a crash on the path ended it: compare every hop's read/idle and total timeouts with the "
    "stream length (nginx proxy_read_timeout 60 s, Envoy route timeout 15 s); see docs/timeouts.md"
)


def protocol_of(obs: Observation) -> str:
    """'kit', 'openai', 'responses' (protocols with a terminal event) or 'generic' (ends by closing)."""
    for event in obs.events:
        payload = event.json()
        kind = payload.get("type") if isinstance(payload, dict) else None
        if isinstance(kind, str) and kind.startswith("response."):
            return "responses"
        if isinstance(payload, dict) and (payload.get("object") == "chat.completion.chunk" or "choices" in payload):
            return "openai"
        if event.data.strip() == "[DONE]":
            return "openai"
        if event.event in KIT_EVENTS:
            return "kit"
    return "generic"


def _ends(event: Event, terminal: str) -> bool:
    return is_terminal(event) if terminal == "auto" else terminal in (event.event, event.data.strip())


def check_terminal_event(obs: Observation, expect: Expectations = Expectations()) -> Check:
    """A protocol with a terminal event must end with it; a generic stream may end by closing,
    unless the transport broke (incomplete chunked body, reset) or it closed before
    --expect-seconds / with fewer than --expect-events events (a hop's timeout cut it)."""
    if not is_event_stream(obs):
        return Check("terminal_event", None, "no event stream to judge")
    if obs.closed_early:
        return Check("terminal_event", None, "the probe closed the stream early on purpose")
    terminal = next((e for e in obs.events if _ends(e, expect.terminal)), None)
    if terminal is not None:
        at = f"at {terminal.arrival:.2f} s"
        error = error_of(terminal)
        if error is not None:
            # The transport contract held (the stream ended with its terminal event), but the
            # generation failed: say so plainly.
            return Check("terminal_event", True, f"the stream ended with an in-band error {at}: {error.get('message')}")
        name = "[DONE]" if terminal.data.strip() == "[DONE]" else terminal.event
        if name == "message":
            payload = terminal.json()
            name = str(payload.get("type")) if isinstance(payload, dict) and "type" in payload else "the end event"
        return Check("terminal_event", True, f"the stream ended with `{name}` {at}")
    how = f" ({obs.error})" if obs.error else ""
    at = f"{obs.ended_at:.2f} s" if obs.ended_at is not None else "the end"
    if obs.error and obs.error.startswith("ReadTimeout"):
        how = " (nothing arrived for the probe's read timeout, --timeout; the server or a hop went silent)"
    n = len(obs.events)
    if obs.error:
        return Check(
            "terminal_event",
            False,
            f"the stream was cut at {at} after {n} events, without a terminal event{how}",
            CUT_FIX,
        )
    protocol = "generic" if expect.terminal == "close" else protocol_of(obs) if expect.terminal == "auto" else ""
    if protocol != "generic":
        wanted = f"`{expect.terminal}`" if not protocol else f"a terminal event ({protocol} stream)"
        return Check(
            "terminal_event",
            False,
            f"the stream closed at {at} after {n} events without {wanted}; a hop or the server ended it early",
            CUT_FIX,
        )
    if not n:
        return Check(
            "terminal_event",
            False,
            f"the stream closed at {at} without a single event: nothing was delivered",
            CUT_FIX,
        )
    short = []
    if expect.expect_seconds is not None and obs.ended_at is not None and obs.ended_at < expect.expect_seconds:
        short.append(f"before the expected {expect.expect_seconds:g} s (--expect-seconds)")
    if expect.expect_events is not None and n < expect.expect_events:
        short.append(f"with {n} of the expected {expect.expect_events} events (--expect-events)")
    if short:
        return Check(
            "terminal_event",
            False,
            f"the generic stream closed at {at}, {' and '.join(short)}: a hop's timeout cut it",
            CUT_FIX,
        )
    unjudged = "" if expect.expect_seconds or expect.expect_events else " (give --expect-seconds to judge its length)"
    return Check(
        "terminal_event",
        True,
        f"a generic stream (no terminal event in its protocol) closed cleanly at {at} after {n} events{unjudged}",
    )


def check_http_version(obs: Observation, expect: Expectations) -> Check:
    version = obs.http_version or "unknown"
    if expect.http_version is None or obs.status is None:
        return Check("http_version", None, f"{version} (informational)")
    if version.upper() == expect.http_version.upper():
        return Check("http_version", True, version)
    return Check(
        "http_version",
        False,
        f"the stream used {version}, expected {expect.http_version}",
        "enable HTTP/2 at the edge (nginx `listen ... ssl http2;` or `http2 on;` 1.25+; Caddy serves it over TLS)",
    )


def assess(obs: Observation, expect: Expectations = Expectations()) -> Report:
    """Judge one observed stream against the streaming contract."""
    checks = [
        check_status(obs),
        check_headers_first(obs, expect),
        check_incremental(obs, expect),
        check_uncompressed(obs),
        check_cache_control(obs),
        check_x_accel_buffering(obs, expect),
        check_heartbeats(obs, expect),
        check_terminal_event(obs, expect),
        check_http_version(obs, expect),
    ]
    return Report(observation=obs, checks=checks, stats=stats_of(obs))
