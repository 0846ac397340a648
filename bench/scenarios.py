"""The five scenarios. Each starts its own servers, measures, stops them by PID and returns plain data."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.fakellm import load_record
from bench import litellm, profile, servers
from bench.loadgen import Stream, StreamResult, hold, http_request, release, run_streams, until
from bench.measure import median_of, percentile, repeat, stream_figures, timed
from bench.servers import Server
from streamkit.proxies import PROXIES
from streamkit.stalled_client import StalledClient

# What marks one token frame: a chat.completions chunk with non-empty content (the role-only first
# chunk has `"content":""`; SDK-dumped chunks put other keys first), and the `{"delta":...}` payload
# of the kit's /v1/chat/stream and of the peers.
CHUNK_MARKER = re.compile(rb'"content":"[^"]')
EVENT_MARKER = re.compile(rb'data: ?\{"delta": ?"')
# A worker counts as saturated when it is busy this share of the wall time...
SATURATED_UTIL = 0.9
# ...or when the median gap between tokens has grown past this multiple of the pace.
SATURATED_GAP_FACTOR = 1.5


@dataclass(frozen=True)
class Config:
    repeats: int = 3
    relay_levels: tuple[int, ...] = (1, 10, 100, 1000)
    relay_tokens: int = 125
    # Streams start evenly over this many seconds (arrivals as a steady service sees them, rather than
    # N requests in the same millisecond); with 125 tokens at 50/s all of them overlap for 2 s.
    ramp_seconds: float = 0.5
    relay_rate: float = 50.0
    relay_cap_seconds: float = 12.0  # a repetition stops here (a saturated peer would take minutes)
    ceiling_streams: int = 10
    ceiling_seconds: float = 3.0
    relay_peers: tuple[str, ...] = ("tutorial",)
    ceiling_targets: tuple[str, ...] = (
        "kit",
        "raw_asgi",
        "starlette_stream",
        "sse_starlette_bare",
        "fastapi_sse",
        "tutorial",
        "tutorial_task",
    )
    memory_levels: tuple[int, ...] = (1000, 5000, 10000)
    memory_peer_levels: tuple[int, ...] = (1000, 5000)
    # tutorial: FastAPI + sse-starlette without the kit's own parts (what the kit adds shows as the rest)
    memory_peers: tuple[str, ...] = ("raw_asgi", "sse_starlette_bare", "fastapi_sse", "tutorial")
    memory_cycles: int = 5
    cycle_streams: int = 1000
    cancel_trials: int = 20
    stalled_trials: int = 5
    send_timeout: float = 1.0
    # 20 × 50 tokens/s: the app alone stays far from saturation on 2 shared cores, so what a proxy
    # adds is not hidden in the app's own queueing (at 100 streams it was).
    proxy_streams: int = 20
    proxies: tuple[str, ...] = tuple(PROXIES)
    with_litellm: bool = True
    profile_level: int = 100  # the relay concurrency profiled with py-spy (one extra, uncounted run)


@dataclass
class Fleet:
    """Servers started for one scenario; all stopped by PID at the end."""

    workdir: Path
    started: list[Server] = field(default_factory=list)

    def add(self, server: Server) -> Server:
        self.started.append(server)
        return server


@contextlib.contextmanager
def fleet(workdir: Path) -> Iterator[Fleet]:
    running = Fleet(workdir)
    try:
        yield running
    finally:
        for server in reversed(running.started):
            server.stop()


def chat_body(prompt: str, model: str = servers.FAKE_MODEL) -> bytes:
    message = {"role": "user", "content": prompt}
    return json.dumps({"model": model, "stream": True, "messages": [message]}).encode()


def chat_request(server: Server, prompt: str, request_id: str, key: str = "", model: str = servers.FAKE_MODEL) -> bytes:
    headers = {"X-Request-ID": request_id}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = chat_body(prompt, model)
    return http_request("POST", f"{server.host}:{server.port}", "/v1/chat/completions", body, headers)


def get_request(server: Server, path: str) -> bytes:
    return http_request("GET", f"{server.host}:{server.port}", path)


def rid(what: str) -> str:
    return f"bench-{what}-{uuid.uuid4().hex[:12]}"


async def capped(work: asyncio.Future[list[StreamResult]] | Any, streams: list[Stream], seconds: float) -> Any:
    """Await `work`; past `seconds`, hang up every stream still open and keep what arrived."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        for stream in streams:
            stream.close()
    return await task


# --- 1. relay cost --------------------------------------------------------------------------------


async def relay(cfg: Config, workdir: Path, litellm_python: Path | None) -> dict[str, Any]:
    prompt = f"bench fake.tokens={cfg.relay_tokens} fake.tokens_per_second={cfg.relay_rate:g} fake.first_token_delay=0"
    pace_ms = 1000.0 / cfg.relay_rate
    out: dict[str, Any] = {"tokens": cfg.relay_tokens, "tokens_per_second": cfg.relay_rate, "targets": {}}
    with fleet(workdir / "relay") as running:
        upstream = running.add(servers.fake_upstream(running.workdir))
        env = servers.relay_env(upstream)
        targets: list[tuple[str, Server, str]] = [("direct", upstream, servers.FAKE_KEY)]
        targets.append(("kit", running.add(servers.kit(running.workdir, env)), ""))
        for peer in cfg.relay_peers:
            targets.append((peer, running.add(servers.peer(running.workdir, peer, env)), ""))
        if litellm_python is not None:
            try:
                proxy = running.add(litellm.start(running.workdir, litellm_python, upstream))
                targets.append(("litellm", proxy, litellm.MASTER_KEY))
            except (RuntimeError, TimeoutError) as exc:
                out["litellm_error"] = str(exc)[-2000:]
        for name, server, key in targets:
            warm = chat_request(server, "warm-up fake.tokens=3 fake.tokens_per_second=0", rid("warm"), key)
            await run_streams(server.host, server.port, [warm], CHUNK_MARKER)  # first-request set-up is not cost
            levels: dict[str, Any] = {}
            for level in cfg.relay_levels:

                async def once(server: Server = server, key: str = key, level: int = level) -> dict[str, Any]:
                    requests = [chat_request(server, prompt, rid("relay"), key) for _ in range(level)]
                    step = cfg.ramp_seconds / level
                    streams = [
                        Stream(server.host, server.port, r, CHUNK_MARKER, start_after=i * step)
                        for i, r in enumerate(requests)
                    ]
                    work = asyncio.gather(*(s.run() for s in streams))
                    results, timing = await timed([server], capped(work, streams, cfg.relay_cap_seconds))
                    figures = stream_figures(results, timing)
                    figures["cut"] = int(timing.wall >= cfg.relay_cap_seconds)
                    return figures

                figure = await repeat(cfg.repeats, once)
                util, gap = median_of(figure, "server_util"), median_of(figure, "gap_p50_ms")
                figure["saturated"] = bool(
                    (util or 0) >= SATURATED_UTIL
                    or (gap or 0) > SATURATED_GAP_FACTOR * pace_ms
                    or (median_of(figure, "cut") or 0) > 0
                )
                levels[str(level)] = figure
                print(f"  relay {name} x{level}: {_brief(figure)}", flush=True)
                profiles = out.setdefault("profiles", {})
                last = level == cfg.profile_level or figure["saturated"]
                if last and name in ("kit", "tutorial") and name not in profiles:
                    profiles[name] = await profiled(server, once, running.workdir / f"profile-{name}.raw")
                if figure["saturated"] and name != "direct":
                    break  # higher levels only take longer to say the same
            out["targets"][name] = levels
    out["added"] = _added(out["targets"])
    out["unsaturated_max"] = {
        name: max((int(k) for k, v in levels.items() if not v["saturated"]), default=0)
        for name, levels in out["targets"].items()
    }
    return out


async def profiled(server: Server, work: Any, raw: Path, seconds: float = 3.0) -> dict[str, Any]:
    """One extra, uncounted run of `work` with py-spy sampling the server's (first) measured process."""
    spy = asyncio.create_task(profile.record(server.measured[0], seconds, raw))
    await asyncio.sleep(0.3)  # py-spy attaches
    await work()
    error = await spy
    return {"error": error} if error else profile.summarize(raw)


def _brief(figure: dict[str, Any]) -> str:
    keys = ("server_cpu_us_per_token", "ttft_p50_ms", "gap_p99_ms", "server_util", "client_util", "failed")
    parts = [f"{k}={median_of(figure, k):.3g}" for k in keys if figure.get(k) is not None]
    return " ".join(parts) + (" SATURATED" if figure.get("saturated") else "")


def _added(targets: dict[str, Any]) -> dict[str, Any]:
    """Median TTFT and gap of each relay minus the direct path's, per concurrency."""
    direct = targets.get("direct", {})
    added: dict[str, Any] = {}
    for name, levels in targets.items():
        if name == "direct":
            continue
        added[name] = {}
        for level, figure in levels.items():
            base = direct.get(level)
            if base is None:
                continue
            row = {}
            for key in ("ttft_p50_ms", "ttft_p99_ms", "gap_p50_ms", "gap_p99_ms"):
                mine, theirs = median_of(figure, key), median_of(base, key)
                row[key] = None if mine is None or theirs is None else mine - theirs
            added[name][level] = row
    return added


# --- 2. ceiling -----------------------------------------------------------------------------------

# Tokens per stream; a stream that ends is re-opened until the time is up. Small enough that the fake
# LLM generating its token list up front (per stream, in every target) stays out of the figure.
CEILING_TOKENS = 5_000


async def ceiling(cfg: Config, workdir: Path) -> dict[str, Any]:
    query = f"prompt=bench&tokens={CEILING_TOKENS}&tokens_per_second=0&first_token_delay=0"
    out: dict[str, Any] = {"streams": cfg.ceiling_streams, "seconds": cfg.ceiling_seconds, "targets": {}}
    candidates: list[tuple[str, str, dict[str, str]]] = []
    for name in cfg.ceiling_targets:
        if name == "kit":
            candidates.append(("kit", "/v1/chat/stream?" + query, {}))
            continue
        module, env = ("tutorial", {"TUTORIAL_PRODUCER_TASK": "1"}) if name == "tutorial_task" else (name, {})
        candidates.append((name, "/stream?" + query, {"module": module, **env}))
    for name, path, spec in candidates:
        with fleet(workdir / "ceiling") as running:
            if name == "kit":
                server = running.add(servers.kit(running.workdir))
            else:
                module = spec.pop("module")
                server = running.add(servers.peer(running.workdir, module, spec, name=name))

            async def once(server: Server = server, path: str = path) -> dict[str, Any]:
                from bench.loadgen import run_for

                request = get_request(server, path)
                work = run_for(
                    server.host, server.port, request, EVENT_MARKER, cfg.ceiling_streams, cfg.ceiling_seconds
                )
                (results, _), timing = await timed([server], work)
                figures = stream_figures(results, timing)
                return {
                    "events_per_s": figures["tokens_per_s"],
                    "server_cpu_us_per_event": figures["server_cpu_us_per_token"],
                    "server_util": figures["server_util"],
                    "client_util": figures["client_util"],
                    "failed": figures["failed"],
                }

            figure = await repeat(cfg.repeats, once)
            out["targets"][name] = figure
            if name == "kit":
                out["profile"] = await profiled(server, once, running.workdir / "ceiling-kit.raw")
            print(f"  ceiling {name}: {median_of(figure, 'events_per_s'):.0f} events/s", flush=True)
    return out


# --- 3. memory ------------------------------------------------------------------------------------

IDLE_SETTLE = 1.0  # seconds after opening streams before RSS is read (allocations settle)
RELEASE_TIMEOUT = 15.0  # seconds for the server to close its side of released streams


async def _rss_after(server: Server) -> int:
    await asyncio.sleep(IDLE_SETTLE)
    return server.rss()


async def _fds_back(server: Server, baseline: int) -> bool:
    return await until(lambda: server.fds() <= baseline + 2, RELEASE_TIMEOUT)


async def memory(cfg: Config, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"targets": {}, "cycles": []}
    idle = "prompt=bench&tokens=1&first_token_delay=3600"
    candidates = [("kit", "/v1/chat/stream?" + idle, cfg.memory_levels)]
    candidates += [(name, "/stream?" + idle, cfg.memory_peer_levels) for name in cfg.memory_peers]
    for name, path, levels in candidates:
        with fleet(workdir / "memory") as running:
            server = running.add(servers.kit(running.workdir) if name == "kit" else servers.peer(running.workdir, name))
            request = get_request(server, path)
            warm, warm_tasks = await hold(server.host, server.port, request, min(100, levels[0]))
            await release(warm, warm_tasks)
            fds_base = server.fds()
            await _fds_back(server, fds_base)
            rss_base = await _rss_after(server)
            held: list[Stream] = []
            tasks: list[asyncio.Task[StreamResult]] = []
            rows: dict[str, Any] = {}
            try:
                for level in levels:
                    more, more_tasks = await hold(server.host, server.port, request, level - len(held))
                    held += more
                    tasks += more_tasks
                    failed = sum(1 for s in held if s.result.error or s.result.status != 200)
                    rss = await _rss_after(server)
                    rows[str(level)] = {
                        "rss_mb": rss / 2**20,
                        "kb_per_stream": (rss - rss_base) / level / 1024,
                        "fds": server.fds(),
                        "failed": failed,
                    }
                    print(f"  memory {name} x{level}: {rows[str(level)]}", flush=True)
            except OSError as exc:
                rows["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                await release(held, tasks)
            out["targets"][name] = {"baseline_rss_mb": rss_base / 2**20, "levels": rows}
            if name == "kit":
                out["cycles"] = await _cycles(cfg, server, request, fds_base)
    return out


async def _cycles(cfg: Config, server: Server, request: bytes, fds_base: int) -> list[dict[str, Any]]:
    """Open and close `cycle_streams` streams repeatedly: RSS and fds must come back, not climb."""
    await _fds_back(server, fds_base)
    rows = [{"cycle": 0, "open_rss_mb": None, "rss_mb": server.rss() / 2**20, "fds": server.fds()}]
    for cycle in range(1, cfg.memory_cycles + 1):
        streams, tasks = await hold(server.host, server.port, request, cfg.cycle_streams)
        open_rss, open_fds = await _rss_after(server), server.fds()
        await release(streams, tasks)
        await _fds_back(server, fds_base)
        rss = await _rss_after(server)
        rows.append(
            {
                "cycle": cycle,
                "open_rss_mb": open_rss / 2**20,
                "open_fds": open_fds,
                "rss_mb": rss / 2**20,
                "fds": server.fds(),
            }
        )
    return rows


# --- 4. cancellation ------------------------------------------------------------------------------

CANCEL_HOLD = 0.5  # seconds a first-token-window client waits after the headers (the upstream is open)
CANCEL_STAGGER = 0.05  # seconds between two trials' hang-ups
GOAL_CLOSE_MS = 50.0  # issue 9: upstream closed at most this long after the disconnect
CLOSE_WAIT = 5.0  # seconds to wait for the upstream's close before calling it "not closed"
STALL_QUIET = 0.5  # seconds without growth of the server's send queue: the server's send is blocked
STALL_DEADLINE = 20.0  # seconds for the send queue to fill


async def cancellation(cfg: Config, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trials": cfg.cancel_trials,
        "stalled_trials": cfg.stalled_trials,
        "send_timeout": cfg.send_timeout,
        "targets": {},
    }
    records = workdir / "cancel" / "records"
    records.mkdir(parents=True, exist_ok=True)
    with fleet(workdir / "cancel") as running:
        upstream = running.add(servers.fake_upstream(running.workdir, records))
        env = servers.relay_env(upstream)
        targets = [
            ("kit", running.add(servers.kit(running.workdir, {**env, "SEND_TIMEOUT": f"{cfg.send_timeout:g}"}))),
            ("tutorial", running.add(servers.peer(running.workdir, "tutorial", env))),
            (
                "tutorial_task",
                running.add(
                    servers.peer(running.workdir, "tutorial", {**env, "TUTORIAL_PRODUCER_TASK": "1"}, "tutorial_task")
                ),
            ),
        ]
        for name, server in targets:
            windows = {
                "first_token": await _window_first_token(cfg, server, records),
                "between_tokens": await _window_between(cfg, server, records),
                "stopped_reading": await _window_stalled(cfg, server, records),
            }
            out["targets"][name] = windows
            for window, row in windows.items():
                print(
                    f"  cancel {name} {window}: p50={row['p50_ms']} max={row['max_ms']} open={row['not_closed']}",
                    flush=True,
                )
    return out


def _latencies(trials: list[tuple[str, float | None]], records: Path, bound_ms: float) -> dict[str, Any]:
    """Upstream close time (the fake's own record) minus each trial's reference time, read now: a
    record still open (or closed for another reason, such as running to completion) is `not_closed`."""
    values: list[float] = []
    not_closed = 0
    for request_id, reference in trials:
        record = load_record(records, request_id)
        if reference is None or record is None or record.closed_at is None or record.close_reason != "client_closed":
            not_closed += 1
            continue
        values.append((record.closed_at - reference) * 1000)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "values_ms": [round(v, 2) for v in values],
        "p50_ms": rounded(percentile(values, 0.5)),
        "p95_ms": rounded(percentile(values, 0.95)),
        "max_ms": rounded(max(values) if values else None),
        "not_closed": not_closed,
        "bound_ms": bound_ms,
    }


def _recorded(records: Path, request_id: str) -> bool:
    return load_record(records, request_id) is not None


async def _await_records(trials: list[tuple[str, float | None]], records: Path) -> None:
    await until(lambda: all(_recorded(records, r) for r, _ in trials), CLOSE_WAIT, 0.05)


async def _window_first_token(cfg: Config, server: Server, records: Path) -> dict[str, Any]:
    """Each client hangs up CANCEL_HOLD after its headers, while the upstream holds back token 0;
    hang-ups are CANCEL_STAGGER apart (one disconnect at a time, not a burst)."""
    prompt = "cancel fake.tokens=10 fake.first_token_delay=30"
    opened = {}
    for _ in range(cfg.cancel_trials):
        request_id = rid("first")
        opened[request_id] = Stream(server.host, server.port, chat_request(server, prompt, request_id), CHUNK_MARKER)
    tasks = [asyncio.create_task(s.run()) for s in opened.values()]
    await asyncio.gather(*(s.headers_seen.wait() for s in opened.values()))
    await asyncio.sleep(CANCEL_HOLD)
    for stream in opened.values():
        stream.close()
        await asyncio.sleep(CANCEL_STAGGER)
    await asyncio.gather(*tasks)
    trials = [(r, s.closed_at) for r, s in opened.items()]
    await _await_records(trials, records)
    return _latencies(trials, records, GOAL_CLOSE_MS)


async def _window_between(cfg: Config, server: Server, records: Path) -> dict[str, Any]:
    """Each client hangs up right after its 3rd token (10 tokens/s); starts CANCEL_STAGGER apart."""
    prompt = "cancel fake.tokens=1000 fake.tokens_per_second=10 fake.first_token_delay=0"
    opened = {}
    for i in range(cfg.cancel_trials):
        request_id = rid("between")
        request = chat_request(server, prompt, request_id)
        opened[request_id] = Stream(server.host, server.port, request, CHUNK_MARKER, 3, i * CANCEL_STAGGER)
    await asyncio.gather(*(s.run() for s in opened.values()))
    trials = [(r, s.closed_at if len(s.result.token_times) >= 3 else None) for r, s in opened.items()]
    await _await_records(trials, records)
    return _latencies(trials, records, GOAL_CLOSE_MS)


async def _window_stalled(cfg: Config, server: Server, records: Path) -> dict[str, Any]:
    """The client stops reading but stays connected: only a send timeout can notice. The figure is
    the upstream's close time minus the moment the server's send queue stopped growing (its send is
    blocked from about then): SEND_TIMEOUT plus the reaction; the bound is SEND_TIMEOUT + 50 ms."""
    prompt = "cancel fake.tokens=1000000 fake.tokens_per_second=0 fake.first_token_delay=0 fake.obfuscation=16384"
    values: list[tuple[str, float | None]] = []
    for _ in range(cfg.stalled_trials):
        request_id = rid("stalled")
        client = await asyncio.to_thread(StalledClient, server.host, server.port, request_id)
        try:
            await asyncio.to_thread(client.sock.sendall, chat_request(server, prompt, request_id))
            full_at, last, quiet_since = time.time(), -1, time.monotonic()
            deadline = time.monotonic() + STALL_DEADLINE
            while not _recorded(records, request_id) and time.monotonic() < deadline:
                queued = client.server_send_queue() or 0
                if queued != last:
                    last, full_at, quiet_since = queued, time.time(), time.monotonic()
                elif queued > 0 and time.monotonic() - quiet_since >= STALL_QUIET:
                    break
                await asyncio.sleep(0.01)
            await until(functools.partial(_recorded, records, request_id), cfg.send_timeout + CLOSE_WAIT)
            values.append((request_id, full_at if _recorded(records, request_id) else None))
        finally:
            client.reset()
    return _latencies(values, records, cfg.send_timeout * 1000 + GOAL_CLOSE_MS)


# --- 5. proxies -----------------------------------------------------------------------------------


async def proxies(cfg: Config, workdir: Path) -> dict[str, Any]:
    pace = f"tokens={cfg.relay_tokens}&tokens_per_second={cfg.relay_rate:g}&first_token_delay=0"
    path = "/v1/chat/stream?prompt=bench&" + pace
    out: dict[str, Any] = {"streams": cfg.proxy_streams, "targets": {}, "errors": {}}
    with fleet(workdir / "proxies") as running:
        app = running.add(servers.kit(running.workdir))
        tls = servers.write_tls(running.workdir / "tls")

        async def once(server: Server) -> dict[str, Any]:
            requests = [get_request(server, path) for _ in range(cfg.proxy_streams)]
            work = run_streams(server.host, server.port, requests, EVENT_MARKER, cfg.ramp_seconds)
            results, timing = await timed([server], work)
            return stream_figures(results, timing)

        level = str(cfg.proxy_streams)
        await run_streams(app.host, app.port, [get_request(app, path)], EVENT_MARKER)  # warm-up
        out["targets"]["direct"] = {level: await repeat(cfg.repeats, lambda: once(app))}
        for name in cfg.proxies:
            try:
                hop = running.add(servers.proxy(running.workdir, name, app, tls))
            except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
                out["errors"][name] = str(exc)[-500:]
                continue
            figure = await repeat(cfg.repeats, lambda hop=hop: once(hop))  # type: ignore[misc]
            out["targets"][name] = {level: figure}
            hop.stop()
            print(f"  proxy {name}: {_brief(figure)}", flush=True)
    out["added"] = _added(out["targets"])
    return out
