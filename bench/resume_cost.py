"""What a resumable stream costs (issue 19): added latency and CPU per token of the per-stream log,
in memory and in Redis Streams, against the same stream without a log.

    .venv/bin/python -m bench.resume_cost [--streams 20] [--tokens 200] [--rate 50] [--repeats 3] [--out DIR]

Three apps (one gunicorn worker each, pinned to the server core, the built-in fake LLM with
`EMIT_TIMESTAMPS=true`) and one redis-server (pinned to the same core):

* `no log`: `GET /v1/chat/stream` as today (cancel on disconnect);
* `memory`: the same with `resumable=1` (the default in-memory log);
* `redis`: the same with `REDIS_URL` set (the reader on the producing worker follows its memory;
  every event also goes to Redis, coalesced per worker);
* `redis, other replica`: the stream is started on one app and followed on a second one sharing the
  Redis (XREAD BLOCK): what a reconnect to another replica sees. CPU: both apps and redis-server.

Each token event carries `emitted_at`, stamped when the producer framed it (before the log), so
"delivery lag" = client receive time - emitted_at is the latency the log path adds on top of the
socket; "gap" is the client-side time between tokens. CPU per token is the worker's CPU (plus
redis-server's for `redis`) over the tokens delivered. A measurement, not a test: figures depend
on the machine and on what else runs on it. `make bench` writes bench/results/resume/<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from bench import servers
from bench.loadgen import http_request
from bench.measure import percentile
from bench.servers import SERVER_CORE, Server, pin
from streamkit.local import Process, free_port, wait_until

RESULTS = Path(__file__).parent / "results" / "resume"
EMITTED = re.compile(rb'"emitted_at":([0-9.]+)')


async def _one(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> list[tuple[float, float]]:
    """One stream: (received at, emitted at) per token event."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(http_request("GET", f"{host}:{port}", path, headers=headers))
    await writer.drain()
    out: list[tuple[float, float]] = []
    tail = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        now = time.time()
        data = tail + data
        cut = data.rfind(b"\n\n") + 2  # whole events only; the rest waits for the next read
        whole, tail = data[:cut], data[cut:]
        out.extend((now, float(m.group(1))) for m in EMITTED.finditer(whole))
    writer.close()
    return out


async def _on_other_replica(a: Server, b: Server, path: str) -> list[tuple[float, float]]:
    """Start the stream on A, hang up right after its headers, follow it on B (from Redis)."""
    reader, writer = await asyncio.open_connection(a.host, a.port)
    writer.write(http_request("GET", f"{a.host}:{a.port}", path))
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    writer.close()
    sid = re.search(r"(?im)^streamkit-stream-id: *(\S+)", head)
    token = re.search(r"(?im)^set-cookie: *streamkit_resume=([^;\s]+)", head)
    assert sid and token, head
    return await _one(b.host, b.port, f"/v1/streams/{sid.group(1)}", {"Cookie": f"streamkit_resume={token.group(1)}"})


async def _load(
    measured: list[Server], streams: int, one: Callable[[int], Awaitable[list[tuple[float, float]]]]
) -> tuple[list[list[tuple[float, float]]], float, float]:
    before = sum(server.cpu() for server in measured)
    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(streams)))
    return list(results), time.perf_counter() - started, sum(server.cpu() for server in measured) - before


def _figures(results: list[list[tuple[float, float]]], cpu: float) -> dict[str, Any]:
    lags = [received - emitted for stream in results for received, emitted in stream]
    gaps = [b[0] - a[0] for stream in results for a, b in itertools.pairwise(stream)]
    tokens = len(lags)
    ms = 1000.0
    return {
        "tokens": tokens,
        "lag_p50_ms": (percentile(lags, 0.5) or 0) * ms,
        "lag_p99_ms": (percentile(lags, 0.99) or 0) * ms,
        "gap_p50_ms": (percentile(gaps, 0.5) or 0) * ms,
        "gap_p99_ms": (percentile(gaps, 0.99) or 0) * ms,
        "cpu_us_per_token": cpu / tokens * 1e6 if tokens else None,
    }


class _Redis:
    """redis-server on a free port, pinned to the server core; its CPU counts toward `redis`."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.process = Process(
            name="redis",
            argv=["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(workdir)],
            log_path=workdir / "redis.log",
        ).start()
        pin(self.process.pid, SERVER_CORE)
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                                          check=False).stdout.strip() == b"PONG", 10, what="redis-server")

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)


async def run(streams: int, tokens: int, rate: float, repeats: int, workdir: Path) -> dict[str, Any]:
    base = {"EMIT_TIMESTAMPS": "true", "FAKE_TOKENS": str(tokens), "FAKE_TOKENS_PER_SECOND": f"{rate:g}",
            "FAKE_FIRST_TOKEN_DELAY": "0"}
    redis = _Redis(workdir)
    started: list[Server] = []
    try:
        plain = "/v1/chat/stream?prompt=bench"
        resumable = plain + "&resumable=1"
        no_log, memory = servers.kit(workdir, base), servers.kit(workdir, base)
        redis_env = {**base, "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0"}
        redis_a, redis_b = servers.kit(workdir, redis_env), servers.kit(workdir, redis_env)
        started = [no_log, memory, redis_a, redis_b]

        def direct(server: Server, path: str) -> Callable[[int], Awaitable[list[tuple[float, float]]]]:
            return lambda i: _one(server.host, server.port, f"{path}&n={i}")

        targets: dict[str, tuple[list[Server], Callable[[int], Awaitable[list[tuple[float, float]]]]]] = {
            "no log": ([no_log], direct(no_log, plain)),
            "memory": ([memory], direct(memory, resumable)),
            "redis": ([redis_a], direct(redis_a, resumable)),
            # The reader on another replica: every event goes producer -> Redis -> the other app.
            "redis, other replica": ([redis_a, redis_b],
                                     lambda i: _on_other_replica(redis_a, redis_b, f"{resumable}&n={i}")),
        }
        out: dict[str, Any] = {}
        for name, (measured, one) in targets.items():
            await _load(measured, 2, one)  # warm-up: imports, first connections
            samples = []
            for _ in range(repeats):
                redis_before = redis.cpu()
                results, _wall, cpu = await _load(measured, streams, one)
                redis_cpu = redis.cpu() - redis_before if name.startswith("redis") else 0.0
                figures = _figures(results, cpu + redis_cpu)
                figures["redis_cpu_us_per_token"] = redis_cpu / figures["tokens"] * 1e6 if figures["tokens"] else 0.0
                samples.append(figures)
                await asyncio.sleep(0.3)
            out[name] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
            out[name]["samples"] = samples
            print(_line(name, out[name]), flush=True)
        return out
    finally:
        for server in started:
            server.stop()
        redis.process.stop()


def _line(name: str, f: dict[str, Any]) -> str:
    return (f"{name:<21} tokens {f['tokens']:>7.0f}  lag p50 {f['lag_p50_ms']:6.2f} ms  p99 {f['lag_p99_ms']:6.2f} ms"
            f"  gap p50 {f['gap_p50_ms']:6.2f} ms  p99 {f['gap_p99_ms']:6.2f} ms"
            f"  CPU {f['cpu_us_per_token']:6.1f} µs/token")


def markdown(meta: dict[str, Any], figures: dict[str, Any]) -> str:
    base = figures["no log"]
    rows = [
        "| Log | Delivery lag p50 / p99 (ms) | Added lag p50 / p99 (ms) | Gap p50 / p99 (ms) "
        "| CPU per token (µs) | Added CPU per token (µs) |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        cpu = f"{f['cpu_us_per_token']:.1f}"
        if name.startswith("redis"):
            cpu += f" (redis-server {f['redis_cpu_us_per_token']:.1f})"
        added_lag = added_cpu = "—"
        if name != "no log":
            added_lag = f"{f['lag_p50_ms'] - base['lag_p50_ms']:+.2f} / {f['lag_p99_ms'] - base['lag_p99_ms']:+.2f}"
            added_cpu = f"{f['cpu_us_per_token'] - base['cpu_us_per_token']:+.1f}"
        rows.append(f"| {name} | {f['lag_p50_ms']:.2f} / {f['lag_p99_ms']:.2f} | {added_lag} "
                    f"| {f['gap_p50_ms']:.2f} / {f['gap_p99_ms']:.2f} | {cpu} | {added_cpu} |")
    return (
        f"# Resumable streams: cost of the log ({meta['date']})\n\n"
        f"`python -m bench.resume_cost` at commit `{meta['commit']}`: {meta['streams']} concurrent streams x "
        f"{meta['tokens']} tokens at {meta['rate']:g} tokens/s, one gunicorn worker per app, median of "
        f"{meta['repeats']} repetitions, load average {meta['load_average_1m']} on {meta['cores']} cores at the "
        f"end. Lag = client receive time - the producer's `emitted_at`.\n\n"
        + "\n".join(rows) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second per stream")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write <date>.json and .md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="streamkit-resume-cost-") as tmp:
        figures = asyncio.run(run(args.streams, args.tokens, args.rate, args.repeats, Path(tmp)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    meta = {"date": datetime.date.today().isoformat(), "commit": commit, "streams": args.streams,
            "tokens": args.tokens, "rate": args.rate, "repeats": args.repeats,
            "load_average_1m": round(os.getloadavg()[0], 1), "cores": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{meta['date']}.json").write_text(json.dumps({"meta": meta, "figures": figures}, indent=2) + "\n")
    (args.out / f"{meta['date']}.md").write_text(markdown(meta, figures))
    print(markdown(meta, figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
