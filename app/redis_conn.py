"""The one Redis connection helper: every feature that uses Redis (resumable streams, per-key
limits) gets its client here, from the one setting `REDIS_URL` (empty: no Redis, each feature
falls back to its in-process default).

One client (one connection pool) per worker process and event loop: gunicorn forks workers
before they serve, so a client is created lazily inside the worker, never inherited across a fork.
Docs: https://redis.readthedocs.io/en/stable/examples/asyncio_examples.html
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

_clients: dict[tuple[str, int], Redis] = {}


def redis_client(url: str) -> Redis:
    """The shared client for `url` in this process and event loop (bytes in, bytes out)."""
    key = (url, id(asyncio.get_running_loop()))
    client = _clients.get(key)
    if client is None:
        # health_check_interval: a pooled connection idle this long is PINGed before use, so a
        # Redis restart or a NAT that dropped the socket shows as a reconnect, not an error.
        client = Redis.from_url(url, health_check_interval=30)
        _clients[key] = client
    return client


async def close_clients() -> None:
    """Close every client of the running event loop (app shutdown)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _clients if k[1] == loop]:
        await _clients.pop(key).aclose()
