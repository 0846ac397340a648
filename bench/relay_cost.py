"""Relay CPU cost per token: the app's gunicorn worker relaying `streamkit fake-upstream`.

    .venv/bin/python -m bench.relay_cost [--streams 100] [--rate 50] [--seconds 10] [--routes /v1/chat/completions]

Starts fake-upstream and the app (one worker) on 127.0.0.1, opens `--streams` concurrent streams
of `--rate` tokens per second for `--seconds`, and divides the worker's CPU time by the tokens
delivered. It runs the same load against the app's built-in fake LLM as a baseline, so "relay"
minus "built-in fake" is what relaying costs on top of the streaming core. Per-request work
(opening the upstream request) is included, amortized over the stream's tokens. The issue's budget
is at most 40 µs of CPU per relayed token. The full comparison (peers, concurrency levels,
repetitions, pinned cores) is `make bench`; this is the quick look, with the same harness.

A measurement, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from app.settings import FAKE_MODEL
from bench import servers
from bench.loadgen import http_request, run_streams
from bench.measure import stream_figures, timed
from bench.scenarios import CHUNK_MARKER, EVENT_MARKER, chat_request, fleet, rid
from bench.servers import Server

ROUTES = ("/v1/chat/completions", "/v1/chat/stream")


async def measure(label: str, server: Server, route: str, streams: int, prompt: str, model: str) -> str:
    def request() -> bytes:
        if route == "/v1/chat/completions":
            return chat_request(server, prompt, rid("cost"), model=model)
        return http_request("GET", f"{server.host}:{server.port}", f"{route}?{urlencode({'prompt': prompt})}")

    marker = CHUNK_MARKER if route == "/v1/chat/completions" else EVENT_MARKER
    await run_streams(server.host, server.port, [request()], marker)  # warm-up: imports, first connections
    work = run_streams(server.host, server.port, [request() for _ in range(streams)], marker)
    results, timing = await timed([server], work)
    figures = stream_figures(results, timing)
    per_token = figures["server_cpu_us_per_token"] or float("nan")
    return (
        f"{label:<14} {route:<22} tokens {figures['tokens']:>7}  worker CPU {timing.server_cpu:6.2f} s"
        f"  = {per_token:6.1f} µs/token  ({figures['tokens_per_s']:,.0f} tokens/s)"
    )


async def run(streams: int, rate: float, seconds: float, workdir: Path, routes: tuple[str, ...] = ROUTES) -> None:
    tokens = int(rate * seconds)
    knobs = f"fake.tokens={tokens} fake.tokens_per_second={rate:g} fake.first_token_delay=0"
    with fleet(workdir) as running:
        upstream = running.add(servers.fake_upstream(workdir))
        relay = running.add(servers.kit(workdir, servers.relay_env(upstream)))
        fake_env = {"FAKE_TOKENS": str(tokens), "FAKE_TOKENS_PER_SECOND": f"{rate:g}", "FAKE_FIRST_TOKEN_DELAY": "0"}
        builtin = running.add(servers.kit(workdir, fake_env))
        print(
            f"{streams} concurrent streams x {tokens} tokens at {rate:g} tokens/s "
            f"({streams * rate:,.0f} tokens/s offered), one gunicorn worker each"
        )
        for route in routes:
            print(await measure("relay", relay, route, streams, f"bench {knobs}", servers.FAKE_MODEL), flush=True)
            print(await measure("built-in fake", builtin, route, streams, "bench", FAKE_MODEL), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second per stream")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each stream")
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated routes to measure")
    args = parser.parse_args(argv)
    routes = tuple(route for route in args.routes.split(",") if route)
    with tempfile.TemporaryDirectory(prefix="streamkit-relay-cost-") as tmp:
        asyncio.run(run(args.streams, args.rate, args.seconds, Path(tmp), routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
