"""One measurement = one run of the load client against a server, with both sides' CPU.

`Sample` is what one repetition yields; `summary()` turns repetitions into min and median per
figure. Percentiles are nearest-rank on the sorted values.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bench.loadgen import StreamResult
from bench.servers import Server

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timed:
    wall: float
    server_cpu: float
    client_cpu: float


async def timed(servers: Sequence[Server], work: Awaitable[T]) -> tuple[T, Timed]:
    """Run `work` and read the CPU the servers and this client spent on it."""
    server_before = sum(server.cpu() for server in servers)
    client_before, started = client_cpu(), time.perf_counter()
    value = await work
    wall = time.perf_counter() - started
    server_after = sum(server.cpu() for server in servers)
    return value, Timed(wall, server_after - server_before, client_cpu() - client_before)


def stream_figures(results: Sequence[StreamResult], timing: Timed) -> dict[str, Any]:
    """Latency and cost figures of one repetition (times in ms, CPU in µs per token)."""
    ttfts = [r.ttft for r in results if r.ttft is not None]
    gaps = [gap for r in results for gap in r.gaps()]
    tokens = sum(len(r.token_times) for r in results)
    ms = 1000.0

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * ms

    return {
        "streams": len(results),
        "failed": sum(1 for r in results if r.error or r.status != 200),
        "tokens": tokens,
        "ttft_p50_ms": scaled(percentile(ttfts, 0.5)),
        "ttft_p99_ms": scaled(percentile(ttfts, 0.99)),
        "gap_p50_ms": scaled(percentile(gaps, 0.5)),
        "gap_p99_ms": scaled(percentile(gaps, 0.99)),
        "server_cpu_us_per_token": timing.server_cpu / tokens * 1e6 if tokens else None,
        "server_util": timing.server_cpu / timing.wall,
        "client_util": timing.client_cpu / timing.wall,
        "tokens_per_s": tokens / timing.wall,
        "wall_s": timing.wall,
    }


def summary(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """min and median over repetitions of every numeric figure."""
    keys = [key for key, value in samples[0].items() if isinstance(value, int | float)]
    out: dict[str, Any] = {"repeats": len(samples)}
    for key in keys:
        values = [s[key] for s in samples if s.get(key) is not None]
        out[key] = {"min": min(values), "median": statistics.median(values)} if values else None
    return out


def median_of(figure: dict[str, Any], key: str) -> float | None:
    value = figure.get(key)
    return None if value is None else float(value["median"])


async def repeat(times: int, once: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    samples = []
    for _ in range(times):
        samples.append(await once())
        await asyncio.sleep(0.2)  # let closed connections settle between repetitions
    result = summary(samples)
    result["samples"] = samples
    return result
