"""Load scenarios: thousands of verified streams through a shipped proxy config, with rolling
restarts, proxy reloads, upstream faults and a soak (docs/capacity.md; `make load`).

A `Stack` is two app instances (`streamkit serve`, two workers each) behind one proxy that runs its
shipped config with both instances as backends (`streamkit/proxies/backends.py`). `hold` keeps N
streams open (each slot opens its next stream when one ends) for a bounded time while `Sampler`
records active streams, RSS, open file descriptors, threads and CPU of the apps and the proxy once
a second. Every stream is verified by `bench/loadcheck.py`. Everything runs on 127.0.0.1, every
count and duration is capped, and every process is stopped by its PID.

The scenario functions return plain dicts; `bench/load_run.py` (`make load`) runs them at full
scale and writes JSON and plots, `tests/load/` runs them small in `make test`.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import re
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from bench.loadcheck import (
    ERROR,
    INTACT,
    MAX_SECONDS,
    MAX_STREAMS,
    STREAM_DEADLINE,
    StreamOutcome,
    StreamSpec,
    run_stream,
    summarize,
)
from streamkit.demo import write_certificates
from streamkit.local import Process, free_port, metrics_url, start_app, start_fake_upstream, wait_until
from streamkit.proxies import PROXIES
from streamkit.proxies.backends import backend_overrides
from streamkit.proxies.base import ProxyDef
from streamkit.proxies.reload import RELOADS

APP_WORKERS = 2  # per instance, as the scenarios ask
NOFILE_WANTED = 65536  # 2,000 streams need ~2,000 fds in the client, ~4,000 in the proxy


def raise_nofile(wanted: int = NOFILE_WANTED) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Stack:
    """App instances behind one proxy, all on 127.0.0.1 free ports."""

    proxy: ProxyDef
    workdir: Path
    app_env: dict[str, str] = field(default_factory=dict)
    instances: int = 2
    relay: bool = False  # apps relay to a `streamkit fake-upstream` (fault knobs) instead of the built-in fake
    workers: int = APP_WORKERS
    owner: Stack | None = None  # the stack whose apps these are (it stops them)
    apps: list[Process] = field(default_factory=list)
    app_ports: list[int] = field(default_factory=list)
    proxy_proc: Process | None = None
    port: int = 0
    upstream: Process | None = None
    _started: list[Process] = field(default_factory=list)

    def start(self) -> Stack:
        raise_nofile()
        env = dict(self.app_env)
        if self.relay:
            self.upstream, base_url = start_fake_upstream(self.workdir)
            self._started.append(self.upstream)
            env |= {"UPSTREAM_BASE_URL": base_url, "UPSTREAM_MODEL": "fake-upstream", "ALLOW_ANONYMOUS": "true"}
        self.app_env = env
        for _ in range(self.instances):
            self.app_ports.append(free_port())
            self.apps.append(self._start_app(self.app_ports[-1]))
        self._start_proxy()
        return self

    def _start_proxy(self, sources: Mapping[str, Path] | None = None, label: str = "") -> None:
        self.port = free_port()
        addresses = [f"127.0.0.1:{port}" for port in self.app_ports]
        workdir = self.workdir / (self.proxy.name + (f"-{label}" if label else ""))
        overrides = backend_overrides(self.proxy, workdir, addresses, sources)
        certificates = write_certificates(self.workdir / "tls")  # the shipped TLS listener needs one
        if certificates is None:
            raise RuntimeError("openssl is needed for the proxies' TLS listener (Debian package openssl)")
        cert, key, _ = certificates
        values = {"listen": f"127.0.0.1:{self.port}", "tls_listen": f"127.0.0.1:{free_port()}"}
        self.proxy_proc = self.proxy.start(
            workdir, values | {"cert": str(cert), "key": str(key)}, config_override=overrides, label=label
        )
        self._started.append(self.proxy_proc)

    def with_proxy(self, proxy: ProxyDef, sources: Mapping[str, Path] | None = None, label: str = "") -> Stack:
        """Another proxy in front of the same app instances (a negative control's config);
        stopping it stops only that proxy."""
        other = Stack(proxy, self.workdir, dict(self.app_env), self.instances, self.relay, self.workers, self)
        other.apps, other.app_ports = self.apps, self.app_ports
        other._start_proxy(sources, label)
        return other

    def _start_app(self, port: int) -> Process:
        proc, _ = start_app(self.workdir, env=self.app_env, workers=self.workers, port=port, timeout=60)
        (self.owner or self)._started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self._started):
            proc.stop()

    def restart_app(self, index: int, timeout: float) -> dict[str, float]:
        """SIGTERM instance `index` (it drains), wait until it exits, start a new one on its port."""
        old = self.apps[index]
        began = time.monotonic()
        old.signal(signal.SIGTERM)
        wait_until(lambda: not old.alive(), timeout, 0.1, f"app on {self.app_ports[index]} to drain and exit")
        exited = time.monotonic() - began
        self.apps[index] = self._start_app(self.app_ports[index])
        return {"exited_after_s": round(exited, 2), "replaced_after_s": round(time.monotonic() - began, 2)}

    def reload_proxy(self) -> None:
        assert self.proxy_proc is not None
        RELOADS[self.proxy.name].run(self.proxy_proc, self.workdir / self.proxy.name)

    def app_pids(self) -> list[int]:
        return [proc.pid for proc in self.apps if proc.alive()]


@contextmanager
def stack(proxy: str | ProxyDef, workdir: Path, **kwargs: Any) -> Iterator[Stack]:
    definition = PROXIES[proxy] if isinstance(proxy, str) else proxy
    if "reload" in kwargs:  # the variant that can reload (HAProxy in master-worker mode)
        kwargs.pop("reload")
        definition = RELOADS[definition.name].proxy
    running = Stack(definition, workdir, **kwargs)
    try:
        yield running.start()
    finally:
        running.stop()


# --- measuring --------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def usage(pids: list[int]) -> dict[str, float]:
    """RSS (MiB), open fds, threads and CPU seconds of the processes and their children."""
    rss = fds = threads = 0
    cpu = 0.0
    for pid in pids:
        for proc in _tree(pid):
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    fds += proc.num_fds()
                    threads += proc.num_threads()
                    times = proc.cpu_times()
                    cpu += times.user + times.system
            except psutil.NoSuchProcess:
                continue
    return {"rss_mib": round(rss / 2**20, 1), "fds": fds, "threads": threads, "cpu_s": round(cpu, 2)}


class Sampler:
    """Samples the stack once every `interval` seconds in a thread (psutil blocks)."""

    def __init__(self, running: Stack, active: Callable[[], int], interval: float = 1.0) -> None:
        self.running, self.active, self.interval = running, active, interval
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        proxy = self.running.proxy_proc
        self.samples.append(
            {
                "t": round(time.monotonic() - self._t0, 2),
                "active": self.active(),
                "app": usage(self.running.app_pids()),
                "proxy": usage([proxy.pid] if proxy is not None and proxy.alive() else []),
                "load1": os.getloadavg()[0],
            }
        )

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def cpu_used(samples: list[dict[str, Any]], who: str) -> dict[str, float]:
    """CPU seconds used by `who` (app / proxy) between the first and the last sample, and in cores.
    A process replaced mid-run (a rolling restart) restarts its counter: only rises are summed."""
    total = 0.0
    for a, b in itertools.pairwise(samples):
        total += max(0.0, b[who]["cpu_s"] - a[who]["cpu_s"])
    span = samples[-1]["t"] - samples[0]["t"] if len(samples) > 1 else 0.0
    return {"cpu_s": round(total, 1), "cores": round(total / span, 2) if span else 0.0}


# --- driving load -----------------------------------------------------------------------------


@dataclass
class Load:
    """`slots` streams kept open for `seconds` (a slot starts its next stream when one ends)."""

    name: str
    slots: int
    seconds: float
    tokens: int = 60
    tokens_per_second: float = 10.0
    ramp: float = 5.0  # seconds over which the slots open their first stream
    relay: bool = False
    # slot, sequence -> extra fake knobs for that stream (faults); None: a plain stream
    knobs: Callable[[int, int], dict[str, Any] | None] = lambda slot, seq: None

    def __post_init__(self) -> None:
        if not 0 < self.slots <= MAX_STREAMS:
            raise ValueError(f"slots must be 1..{MAX_STREAMS}")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be at most {MAX_SECONDS}")

    def spec(self, slot: int, seq: int) -> StreamSpec:
        return StreamSpec(
            prompt=f"{self.name}-{slot}-{seq}",
            tokens=self.tokens,
            tokens_per_second=self.tokens_per_second,
            query=self.knobs(slot, seq) or {},
            relay=self.relay,
        )


@dataclass
class Tagged:
    outcome: StreamOutcome
    knobs: dict[str, Any]


CLIENT_STREAMS_PER_PROCESS = 500  # one client process (one event loop) per this many slots
RETRY_AFTER = 1.0  # seconds a slot waits after a stream that did not end intact
GAPS_KEPT = 200_000  # gaps each client process sends back (a uniform sample) for the percentiles


class Counter:
    """Streams open right now (response headers seen, not yet ended) over every client process,
    and the most at once."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._lock = context.Lock()
        self._value = context.Value("i", 0, lock=False)
        self._peak = context.Value("i", 0, lock=False)

    @property
    def value(self) -> int:
        return int(self._value.value)

    @property
    def peak(self) -> int:
        return int(self._peak.value)

    def add(self, delta: int) -> None:
        with self._lock:
            self._value.value += delta
            if self._value.value > self._peak.value:
                self._peak.value = self._value.value


async def _slots(port: int, load: Load, indices: range, deadline: float, open_streams: Counter) -> list[Tagged]:
    results: list[Tagged] = []

    async def slot(index: int) -> None:
        await asyncio.sleep(load.ramp * index / load.slots)
        seq = 0
        while time.monotonic() < deadline:
            spec = load.spec(index, seq)
            outcome = await run_stream(port, spec, open_streams.add)
            results.append(Tagged(outcome, spec.query))
            seq += 1
            if outcome.kind != INTACT and not spec.query:
                # A real client waits before it retries (EventSource: the `retry:` hint, 3 s);
                # without a pause a slot whose requests fail at once would spin.
                await asyncio.sleep(RETRY_AFTER)

    await asyncio.gather(*(slot(i) for i in indices))
    return results


def _client(port: int, load: Load, indices: range, deadline: float, open_streams: Counter, queue: Any) -> None:
    """One client process: its share of the slots; sends back outcomes and a sample of the gaps."""
    raise_nofile()
    results = asyncio.run(_slots(port, load, indices, deadline, open_streams))
    gaps: list[float] = []
    for tagged in results:
        gaps += tagged.outcome.gaps
        tagged.outcome.gaps = []
    top = max(gaps, default=0.0)
    if len(gaps) > GAPS_KEPT:
        gaps = random.sample(gaps, GAPS_KEPT)
    queue.put((results, gaps, top))


async def hold(
    port: int, load: Load, open_streams: Counter, during: Callable[[], Any] | None = None
) -> tuple[list[Tagged], list[float]]:
    """Run `load` through 127.0.0.1:port from client processes of up to CLIENT_STREAMS_PER_PROCESS
    slots each (one Python event loop cannot verify 20,000 events a second); `during` (a coroutine
    function: a restart, a reload) runs alongside in this process. Returns the outcomes and a
    sample of the inter-token gaps (its largest value included)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    deadline = time.monotonic() + load.seconds
    shards = max(1, -(-load.slots // CLIENT_STREAMS_PER_PROCESS))
    clients = [
        context.Process(
            target=_client, args=(port, load, range(n, load.slots, shards), deadline, open_streams, queue), daemon=True
        )
        for n in range(shards)
    ]
    for client in clients:
        client.start()
    try:
        if during is not None:
            await during()
        parts = [await asyncio.to_thread(queue.get, True, load.seconds + STREAM_DEADLINE + 60) for _ in clients]
    finally:
        for client in clients:
            client.join(5)
            if client.is_alive():
                client.kill()
    results = [tagged for part in parts for tagged in part[0]]
    gaps = [gap for part in parts for gap in part[1]] + [part[2] for part in parts]
    return results, gaps


def run_load(
    running: Stack, load: Load, during: Callable[[], Any] | None = None, interval: float = 1.0
) -> tuple[list[Tagged], list[dict[str, Any]], list[float]]:
    """`hold` under a Sampler; returns the tagged outcomes, the samples and the gap sample."""
    active = Counter()
    with Sampler(running, lambda: active.value, interval) as sampler:
        results, gaps = asyncio.run(hold(running.port, load, active, during))
    sampler.samples[-1]["peak_active"] = active.peak
    return results, sampler.samples, gaps


def report(
    load: Load, running: Stack, results: list[Tagged], samples: list[dict[str, Any]], gaps: list[float]
) -> dict[str, Any]:
    out = summarize([r.outcome for r in results], gaps)
    out |= {
        "scenario": load.name,
        "proxy": running.proxy.name,
        "slots": load.slots,
        "seconds": load.seconds,
        "tokens": load.tokens,
        "tokens_per_second": load.tokens_per_second,
        "peak_active": samples[-1].get("peak_active", 0) if samples else 0,
        "app_cpu": cpu_used(samples, "app"),
        "proxy_cpu": cpu_used(samples, "proxy"),
        "load1_max": max((s["load1"] for s in samples), default=0.0),
    }
    return out


# --- scenarios --------------------------------------------------------------------------------


def concurrency(running: Stack, load: Load) -> dict[str, Any]:
    results, samples, gaps = run_load(running, load)
    return report(load, running, results, samples, gaps) | {"samples": samples}


_STATUS = re.compile(rb'"(?:GET|POST) /v1/[^"]*" (\d{3})\b')  # stream requests, not health checks


def _statuses(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        text = log.read_bytes()
    except FileNotFoundError:
        return counts
    for match in _STATUS.finditer(text):
        counts[match[1].decode()] = counts.get(match[1].decode(), 0) + 1
    return counts


def rolling_restart(running: Stack, load: Load, first_after: float, drain_timeout: float) -> dict[str, Any]:
    """Replace each app instance in turn under load (SIGTERM, drain, exit, start on the same port).

    Streams on a draining instance must end with `done` or `server_shutdown`; new requests must get
    no 5xx (the proxy retries a draining instance's 503 or stops choosing it). The draining
    instance's own access log shows how many new requests the proxy still sent it (each answered
    503 and retried elsewhere, if the proxy retries)."""
    rolls: list[dict[str, Any]] = []

    ends = time.monotonic() + load.seconds  # no stream starts after this: stop waiting for one

    async def roll() -> None:
        await asyncio.sleep(first_after)
        for index in range(len(running.apps)):
            log = running.apps[index].log_path
            before = _statuses(log)
            # In this thread, not a worker thread: the app is started with PR_SET_PDEATHSIG, which
            # fires when the starting THREAD ends (the client processes keep streaming meanwhile).
            step = running.restart_app(index, drain_timeout)
            after = _statuses(log)
            refused = after.get("503", 0) - before.get("503", 0)
            # As an operator's rollout waits for readiness: the next instance drains only once the
            # proxy sends this one streams again. Passive nginx needs fail_timeout (10 s) for that;
            # draining the other instance sooner leaves nginx no live upstream (502 to everything).
            began = time.monotonic()
            while _statuses(log).get("200", 0) <= after.get("200", 0) and time.monotonic() < min(began + 60, ends):  # noqa: ASYNC110 (polls another process's log)
                await asyncio.sleep(0.2)
            step["back_in_rotation_after_s"] = round(time.monotonic() - began, 2)
            rolls.append({"instance": index, **step, "new_requests_answered_503_while_draining": refused})

    results, samples, gaps = run_load(running, load, roll)
    out = report(load, running, results, samples, gaps)
    five = sum(1 for r in results if r.outcome.kind == ERROR and r.outcome.detail.startswith("http_5"))
    return out | {"rolls": rolls, "http_5xx": five, "samples": samples}


def proxy_reload(running: Stack, load: Load, reloads: int, every: float) -> dict[str, Any]:
    """Reload the proxy `reloads` times, `every` seconds apart, under load."""
    done: list[float] = []

    async def reload() -> None:
        for _ in range(reloads):
            await asyncio.sleep(every)
            running.reload_proxy()
            done.append(time.monotonic())

    results, samples, gaps = run_load(running, load, reload)
    out = report(load, running, results, samples, gaps)
    five = sum(1 for r in results if r.outcome.kind == ERROR and r.outcome.detail.startswith("http_5"))
    return out | {"reloads": len(done), "reload_how": RELOADS[running.proxy.name].how, "http_5xx": five}


def fault_knobs(share: int, drop_at: int) -> Callable[[int, int], dict[str, Any] | None]:
    """Every `share`-th stream a fault: alternately the upstream drops mid-stream or answers 429."""

    def knobs(slot: int, seq: int) -> dict[str, Any] | None:
        number = slot * 7919 + seq
        if number % share:
            return None
        return {"drop_at": drop_at} if (number // share) % 2 else {"status": 429}

    return knobs


def faults(running: Stack, load: Load) -> dict[str, Any]:
    """Exactly the faulted streams end with an error (event or 429); every other stream is intact."""
    results, samples, gaps = run_load(running, load)
    out = report(load, running, results, samples, gaps)
    wrong: dict[str, int] = {}
    faulted = {"drop_at": 0, "status": 0}
    for r in results:
        o = r.outcome
        if not r.knobs:
            ok = o.kind == INTACT
            label = "plain"
        elif "status" in r.knobs:
            faulted["status"] += 1
            ok = o.kind == ERROR and o.detail == "http_429"
            label = "status"
        else:
            faulted["drop_at"] += 1
            ok = o.kind == ERROR and o.tokens == r.knobs["drop_at"]
            label = "drop"
        if not ok:
            key = f"{label}->{o.kind}:{o.detail}"
            wrong[key] = wrong.get(key, 0) + 1
    return out | {"faulted": faulted, "unexpected": wrong}


def growth(samples: list[dict[str, Any]], who: str, metric: str, warmup: float, until: float) -> float:
    """Percent growth of `metric` (medians) from the first tenth of the steady part (after warm-up,
    before `until`, when slots stop opening streams and the load winds down) to its last tenth."""
    after = [s for s in samples if warmup <= s["t"] <= until and s[who][metric]]
    if len(after) < 4:
        return 0.0
    window = max(2, len(after) // 10)
    first = sorted(s[who][metric] for s in after[:window])[window // 2]
    last = sorted(s[who][metric] for s in after[-window:])[window // 2]
    return round(100.0 * (last - first) / first, 2)


def soak(running: Stack, load: Load, warmup: float, interval: float = 5.0) -> dict[str, Any]:
    """A long steady load: RSS and fds of app and proxy must stay flat after warm-up."""
    results, samples, gaps = run_load(running, load, interval=interval)
    # Once the load is gone, the app holds no stream (no task left behind).
    settled = wait_until(lambda: _idle(running), 30, 0.5, "app streams to drop to 0") is not None
    out = report(load, running, results, samples, gaps)
    flat = {
        f"{who}_{metric}_growth_pct": growth(samples, who, metric, warmup, load.seconds)
        for who in ("app", "proxy")
        for metric in ("rss_mib", "fds", "threads")
    }
    return out | flat | {"warmup_s": warmup, "app_idle_after": settled, "samples": samples}


def _idle(running: Stack) -> bool:
    """The app's own gauge of open streams (`streamkit_active_streams`, from the app's metrics listener) is
    0 on every instance. An instance whose metrics show no such gauge is not idle: the check must
    never pass for want of a reading."""
    import httpx

    for port in running.app_ports:
        try:
            text = httpx.get(metrics_url(f"http://127.0.0.1:{port}"), timeout=2).text
        except httpx.HTTPError:
            return False
        values = [
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("streamkit_active_streams{")
        ]
        if not values or sum(values) != 0:
            return False
    return True


__all__ = [
    "Load",
    "Stack",
    "concurrency",
    "fault_knobs",
    "faults",
    "proxy_reload",
    "raise_nofile",
    "replace",
    "rolling_restart",
    "soak",
    "stack",
]
