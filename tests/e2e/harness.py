"""The streaming contract as checks over a running proxy, shared by the contract suite and the
negative controls (a control passes only if the very check that proves a shipped config fails).

Each check returns the probe's own `Check` (name, ok, one-line detail): `ok is None` means the
check could not judge (e.g. the proxy answered 502), which neither proves a config nor counts as
a control being caught.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from openai import OpenAI

from app.fakellm import fake_text
from streamkit.local import Process, free_port
from streamkit.probe.observe import observe
from streamkit.probe.verdict import Check, Expectations, Report, assess, is_token
from streamkit.proxies import PROXIES
from streamkit.proxies.base import ProxyDef
from streamkit.proxies.substitute import Value, marked_keys
from tests.app.conftest import RunningApp
from tests.bounds import MIN_TRIALS, p95_within

# --- timings (named; the host is shared by several test runs on 2 cores: generous, still meaningful)

# The pinged app sends an SSE comment this often (the kit's default is 15 s).
PING_INTERVAL = 0.5
# "Pings off": the second app's interval is longer than any test.
NO_PINGS = 600.0
# Every proxy's read/idle timeout, shortened from the shipped 3600 s through `# streamkit: read_timeout`.
READ_TIMEOUT = 2.0
# The silent gap the timeout tests put in a stream: well beyond READ_TIMEOUT.
SILENCE = 2 * READ_TIMEOUT
# A cut counts as "at the timeout" from this much before it (timer granularity) ...
CUT_EARLY = 0.3
# ... to this much after it (timer granularity plus a busy host).
CUT_LATE = 2.0
# The contract: the upstream is closed within 300 ms of the client going away (p95 over
# DISCONNECT_TRIALS hang-ups, DISCONNECT_PARALLEL at a time through the same proxy).
DISCONNECT_BUDGET = 0.3
DISCONNECT_TRIALS = MIN_TRIALS
DISCONNECT_PARALLEL = DISCONNECT_TRIALS
# Per-event lag allowed through a proxy (the probe's default is 0.25 s; a busy shared host needs
# headroom). A buffering proxy holds events for about the stream's length (2 s here), far above it.
MAX_LAG = 0.5
# JSON responses at least this large are compressed by the shipped configs (nginx gzip_min_length
# is 20 bytes, Caddy's minimum_length 512).
JSON_TOKENS = 400

EXPECT = Expectations(max_lag=MAX_LAG, ping_interval=PING_INTERVAL)

# The first token of every contract stream comes this long after the headers: long enough that the
# heartbeats check needs pings during the wait (a stream without any fails it: see
# streamkit/probe/verdict.py HEARTBEAT_* and the `no-heartbeats` controls).
FIRST_TOKEN_WAIT = 3 * PING_INTERVAL

# One stream for the core checks: >= 2 pings before the first token, then 10 tokens over 1 s.
CONTRACT_STREAM: dict[str, Value] = {
    "prompt": "contract",
    "tokens": 10,
    "tokens_per_second": 10,
    "first_token_delay": FIRST_TOKEN_WAIT,
}


@dataclass
class Endpoint:
    """Where checks send requests: all a check needs unless it reads the fake upstream's records
    (a deployed target, e.g. the kind cluster, is only an Endpoint)."""

    url: str  # plain HTTP base URL
    tls_url: str | None = None
    ca: Path | None = None
    reports: dict[str, Report] = field(default_factory=dict)

    def report(self, key: str, make: Callable[[], Report]) -> Report:
        """One observation shared by several checks of the same target."""
        if key not in self.reports:
            self.reports[key] = make()
        return self.reports[key]


@dataclass(kw_only=True)
class Target(Endpoint):
    """A running proxy (shipped config or a control) in front of a running app."""

    proxy: ProxyDef
    process: Process
    app: RunningApp


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    ca: Path


def proxy_values(
    proxy: ProxyDef, upstream: str, tls: Tls, override: Path | Mapping[str, Path] | None = None
) -> dict[str, Value]:
    """The values a test substitutes: free ports, the app's address, test certificates, the short timeout.

    The shipped config must mark every value its capabilities need (else the substitution raises);
    a control config gets only the values it marks.
    """
    values: dict[str, Value] = {"listen": f"127.0.0.1:{free_port()}", "upstream": upstream}
    if "idle_timeout" in proxy.capabilities:
        values["read_timeout"] = f"{READ_TIMEOUT:g}s"
    if "tls_http2" in proxy.capabilities:
        values.update(tls_listen=f"127.0.0.1:{free_port()}", cert=str(tls.cert), key=str(tls.key))
    if override is None:
        return values
    overrides = {proxy.configs[0]: override} if isinstance(override, Path) else dict(override)
    files = [overrides.get(name, path) for name, path in zip(proxy.configs, proxy.config_paths, strict=True)]
    marked = set().union(*(marked_keys(path.read_text()) for path in files))
    # HAProxy marks only `cert`: its runner joins cert and key into one PEM (streamkit/proxies/haproxy.py).
    return {key: value for key, value in values.items() if key in marked or (key == "key" and "cert" in marked)}


def start_target(
    proxy: ProxyDef,
    workdir: Path,
    app: RunningApp,
    tls: Tls,
    upstream: str | None = None,
    override: Path | Mapping[str, Path] | None = None,
    label: str = "",
    settings: Mapping[str, Value] | None = None,
) -> Target:
    """Start `proxy` (shipped config, or `override`) in front of `upstream` (default: the app);
    `settings` replace marked values (a control that differs from the shipped config in one value)."""
    values = proxy_values(proxy, upstream or app.url.removeprefix("http://"), tls, override)
    values.update(settings or {})
    process = proxy.start(workdir, values, override, label=label)
    tls_url = f"https://{values['tls_listen']}" if "tls_listen" in values else None
    return Target(proxy=proxy, process=process, app=app, url=f"http://{values['listen']}", tls_url=tls_url, ca=tls.ca)


# Test-harness hops (run by nginx) that play an app without streaming hints: no X-Accel-Buffering,
# no `no-transform`; the second one also without chunked framing.
STRIP_HINTS = "strip-hints"
STRIP_HINTS_UNCHUNKED = "strip-hints-unchunked"
HOPS = {name: Path(__file__).with_name(f"{name}.conf") for name in (STRIP_HINTS, STRIP_HINTS_UNCHUNKED)}


def start_hop(name: str, workdir: Path, app: RunningApp, tls: Tls) -> Target:
    """A hop between a proxy under test and the app: a proxy's shipped config, or one of HOPS."""
    if name in HOPS:
        return start_target(PROXIES["nginx"], workdir, app, tls, override=HOPS[name], label=name)
    return start_target(PROXIES[name], workdir, app, tls, label="hop")


def stream_path(**knobs: Value) -> str:
    return "/v1/chat/stream?" + urlencode(knobs)


def request_id(what: str) -> str:
    return f"e2e-{what}-{uuid.uuid4().hex[:12]}"


# --- the probe's checks on the contract stream ------------------------------------------------


def contract_report(target: Endpoint) -> Report:
    return target.report("contract", lambda: assess(observe(target.url + stream_path(**CONTRACT_STREAM)), EXPECT))


def probe_check(name: str) -> Callable[[Endpoint], Check]:
    """A check the probe judges on the contract stream; unjudgeable unless the stream was served."""

    def check(target: Endpoint) -> Check:
        report = contract_report(target)
        status = report.check("status")
        if not status.ok:
            return Check(name, None, f"no stream to judge: {status.detail}")
        return report.check(name)

    check.__name__ = f"check_{name}"
    return check


# --- compression: JSON yes, text/event-stream no, on the same route ---------------------------


def completion_body(stream: bool, tokens: int, prompt: str = "compression") -> dict[str, object]:
    return {
        "model": "streamkit-fake",
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
        "fake": {"tokens": tokens, "tokens_per_second": 0, "first_token_delay": 0},
    }


def check_compression(target: Endpoint) -> Check:
    """POST /v1/chat/completions: the JSON answer (stream=false) is compressed, the stream is not."""
    headers = {"Accept-Encoding": "gzip"}
    with httpx.Client(timeout=30) as client:
        json_response = client.post(
            target.url + "/v1/chat/completions", json=completion_body(False, JSON_TOKENS), headers=headers
        )
    stream = observe(target.url + "/v1/chat/completions", method="POST", json_body=completion_body(True, 20))
    if json_response.status_code != 200 or stream.status != 200:
        return Check("compression", None, f"HTTP {json_response.status_code} (JSON) / {stream.status} (stream)")
    json_encoding = json_response.headers.get("content-encoding", "identity")
    sse_encoding = stream.headers.get("content-encoding", "identity")
    detail = (
        f"JSON ({len(json_response.content)} bytes): Content-Encoding {json_encoding}; "
        f"text/event-stream: Content-Encoding {sse_encoding}"
    )
    return Check("compression", json_encoding != "identity" and sse_encoding == "identity", detail)


# --- idle timeout, from both sides --------------------------------------------------------------


def silence_report(target: Endpoint) -> Report:
    """A stream whose upstream goes silent for SILENCE seconds after two tokens."""
    knobs: dict[str, Value] = {
        "prompt": "silence",
        "tokens": 4,
        "tokens_per_second": 10,
        "first_token_delay": 0,
        "stall_at": 2,
        "stall_seconds": SILENCE,
    }
    return target.report("silence", lambda: assess(observe(target.url + stream_path(**knobs), timeout=30), EXPECT))


def check_survives_silence(target: Endpoint) -> Check:
    """With pings, a silent upstream outlives the proxy's read timeout: every token and the end arrive."""
    report = silence_report(target)
    obs = report.observation
    if obs.status != 200:
        return Check("survives_silence", None, f"HTTP {obs.status}: {obs.error or obs.body[:120]}")
    tokens = sum(1 for e in obs.events if is_token(e))
    ended = report.check("terminal_event")
    ok = tokens == 4 and bool(ended.ok) and obs.error is None
    detail = f"{SILENCE:g} s of upstream silence against a {READ_TIMEOUT:g} s read timeout: {tokens}/4 tokens, "
    detail += f"{len(obs.pings)} pings, {ended.detail}" + (f", error {obs.error}" if obs.error else "")
    return Check("survives_silence", ok, detail)


def check_cut_at_timeout(target: Endpoint) -> Check:
    """Without pings the same stream is cut, READ_TIMEOUT after the last byte (not earlier, not much later)."""
    report = silence_report(target)
    obs = report.observation
    if obs.status != 200 or obs.ended_at is None:
        return Check("cut_at_timeout", None, f"HTTP {obs.status}: {obs.error or obs.body[:120]}")
    last_byte = max([obs.time_to_headers or 0.0, *(e.arrival for e in obs.events), *obs.pings])
    silent_for = obs.ended_at - last_byte
    cut = report.check("terminal_event").ok is False
    in_window = READ_TIMEOUT - CUT_EARLY <= silent_for <= READ_TIMEOUT + CUT_LATE
    detail = (
        f"{'cut' if cut else 'not cut'} {silent_for:.2f} s after the last byte "
        f"(read timeout {READ_TIMEOUT:g} s, window -{CUT_EARLY:g}/+{CUT_LATE:g} s)"
    )
    return Check("cut_at_timeout", cut and in_window, detail)


# --- cancellation -------------------------------------------------------------------------------


def check_disconnect(target: Target, silent: bool = False) -> Check:
    """DISCONNECT_TRIALS clients hang up after two tokens each; the fake upstream must be closed
    within DISCONNECT_BUDGET (p95, tests/bounds.py) and never run to completion.

    `silent`: the upstream is silent at that moment (a stall right after the second token), so
    only the proxy's own watch on the client connection can notice.
    """
    knobs: dict[str, Value] = {"prompt": "disconnect", "tokens": 30, "tokens_per_second": 10, "first_token_delay": 0}
    if silent:
        knobs.update(stall_at=2, stall_seconds=SILENCE)

    def trial(_: int) -> tuple[float, bool] | str:
        rid = request_id("disconnect")
        obs = observe(target.url + stream_path(**knobs), headers={"X-Request-ID": rid}, close_after_events=3)
        if obs.status != 200 or not obs.closed_early or obs.started_unix is None or obs.ended_at is None:
            return f"HTTP {obs.status}, closed early: {obs.closed_early}, error {obs.error}"
        record = target.app.record(rid, timeout=15)
        assert record.closed_at is not None
        return record.closed_at - (obs.started_unix + obs.ended_at), record.completed

    with ThreadPoolExecutor(DISCONNECT_PARALLEL) as pool:
        trials = list(pool.map(trial, range(DISCONNECT_TRIALS)))
    unjudged = [t for t in trials if isinstance(t, str)]
    if unjudged:
        return Check("disconnect", None, unjudged[0])
    measured = [t for t in trials if not isinstance(t, str)]
    window = "upstream silent" if silent else "tokens flowing"
    ok, detail = p95_within(
        [delay for delay, _ in measured], DISCONNECT_BUDGET, f"{window}: hang-up -> upstream closed"
    )
    completed = sum(done for _, done in measured)
    return Check("disconnect", ok and not completed, detail + (f"; {completed} ran to completion" if completed else ""))


def check_disconnect_silent(target: Target) -> Check:
    return check_disconnect(target, silent=True)


# --- real clients -------------------------------------------------------------------------------


def check_openai_sdk(target: Endpoint) -> Check:
    """The official SDK streams a chat completion through the proxy and gets the whole text."""
    client = OpenAI(base_url=target.url + "/v1", api_key="unused", max_retries=0, timeout=30)
    prompt, tokens = "openai through a proxy", 25
    try:
        stream = client.chat.completions.create(
            model="streamkit-fake",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            extra_body={"fake": {"tokens": tokens, "tokens_per_second": 50, "first_token_delay": 0}},
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    except Exception as exc:  # the SDK's errors: report, do not crash the check
        return Check("openai_sdk", False, f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
    expected = fake_text(prompt, tokens)
    return Check("openai_sdk", text == expected, f"received {len(text)} of {len(expected)} characters")


def check_tls_http2(target: Endpoint) -> Check:
    """TLS at the edge with HTTP/2 (httpx http2=True, trusting the test CA); still incremental."""
    if target.tls_url is None or target.ca is None:
        return Check("tls_http2", None, "the config has no TLS listener")
    expect = Expectations(max_lag=MAX_LAG, ping_interval=PING_INTERVAL, http_version="HTTP/2")
    report = assess(observe(target.tls_url + stream_path(**CONTRACT_STREAM), http2=True, verify=str(target.ca)), expect)
    if not report.check("status").ok:
        return Check("tls_http2", None, report.check("status").detail)
    version, incremental = report.check("http_version"), report.check("incremental")
    return Check("tls_http2", bool(version.ok and incremental.ok), f"{version.detail}; {incremental.detail}")


# Paths that must not reach the app's /metrics (nginx and Caddy normalise them before matching).
METRICS_PATHS = ("/metrics", "/metrics/", "//metrics", "/v1/../metrics", "/%6Detrics", "/metrics?format=text")
PROMETHEUS_TEXT = re.compile(r"^# TYPE ", re.MULTILINE)


def check_hides_metrics(target: Endpoint) -> Check:
    """No spelling of /metrics is forwarded to the app. The app serves its metrics on a listener of
    its own (METRICS_PORT) and answers 404 for /metrics on the public port, so the exposition can no
    longer leak through a proxy; the templates' guard stays as defence in depth, and this check
    tells a forwarded request by the app's echo of our own X-Request-ID (a proxy's own answer never
    carries it)."""
    reached = []
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        for path in METRICS_PATHS:
            marker = request_id("hides-metrics")
            response = client.get(target.url + path, headers={"X-Request-ID": marker})
            served = response.status_code == 200 and PROMETHEUS_TEXT.search(response.text)
            if served or response.headers.get("x-request-id") == marker:
                reached.append(path)
    if reached:
        return Check("hides_metrics", False, f"forwarded to the app: {', '.join(reached)}")
    return Check("hides_metrics", True, f"none of {len(METRICS_PATHS)} spellings of /metrics reached the app")


# The contract checks run on every proxy's shipped config (tests/e2e/test_contract.py), each with the
# capability a proxy must declare for it (None: every proxy). A check a proxy does not support skips
# with the proxy's reason. The support matrix counts exactly these, and every (check, proxy) needs a
# negative control or a stated "n/a" (tests/e2e/test_negative.py).
CONTRACT: dict[str, str | None] = {
    "incremental": "incremental",  # each event arrives within MAX_LAG of being written
    "headers_first": "headers_first",  # headers before the first token
    "heartbeats": "heartbeats",  # pings during the wait for the first token pass through
    "uncompressed": "compress_json",  # text/event-stream is not compressed ...
    "compression": "compress_json",  # ... while JSON on the same route is
    "survives_silence": "idle_timeout",  # with pings, a silent upstream outlives the read timeout
    "disconnect": "disconnect",  # a client that leaves closes the upstream within 300 ms
    "disconnect_silent": "disconnect_silent",  # ... also while the upstream is silent (pings off)
    "openai_sdk": None,  # the official SDK streams the full text through the proxy
    "tls_http2": "tls_http2",  # TLS + HTTP/2 at the edge, still incremental
    "hides_metrics": "hides_metrics",  # /metrics is not reachable through the proxy
}

# The checks a negative control may name in its `# catches:` header.
CHECKS: dict[str, Callable[[Target], Check] | Callable[[Endpoint], Check]] = {
    **{name: probe_check(name) for name in ("incremental", "headers_first", "heartbeats", "uncompressed")},
    "compression": check_compression,
    "survives_silence": check_survives_silence,
    "disconnect": check_disconnect,
    "disconnect_silent": check_disconnect_silent,
    "openai_sdk": check_openai_sdk,
    "tls_http2": check_tls_http2,
    "hides_metrics": check_hides_metrics,
}
