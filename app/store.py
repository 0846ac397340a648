"""The kit's one Redis connection: `REDIS_URL`, shared by every feature that needs state across replicas
(stream leases, token windows and used stream tokens of issue #20; resumable streams reuse it).

`connect(settings)` returns an asyncio client (redis-py) or None when REDIS_URL is empty. The client
connects lazily, on the event loop of the worker that first uses it, with short timeouts: a Redis that
does not answer must turn into a fast error, never a request that hangs. Keys are namespaced
`streamkit:<feature>:...` so other users of the same Redis database do not collide.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from app.settings import Settings

PREFIX = "streamkit"
# Seconds to connect to Redis and to wait for one answer. A limit check is on every stream's path.
TIMEOUT = 1.0


def connect(settings: Settings) -> Redis | None:
    if not url(settings):
        return None
    return Redis.from_url(
        url(settings), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, health_check_interval=30
    )


def url(settings: Settings) -> str:
    """REDIS_URL ('' when unset)."""
    return settings.redis_url.get_secret_value()


_followers: dict[tuple[str, int], Redis] = {}


def follower(settings: Settings) -> Redis:
    """A client for blocking reads (resumable streams' `XREAD BLOCK`, issue 19): no socket timeout,
    since a blocking read waits on purpose; one per worker process and event loop, created lazily
    inside the worker (never inherited across gunicorn's fork). health_check_interval: a pooled
    connection idle this long is PINGed before use, so a Redis restart shows as a reconnect."""
    key_ = (url(settings), id(asyncio.get_running_loop()))
    client = _followers.get(key_)
    if client is None:
        client = _followers[key_] = Redis.from_url(key_[0], health_check_interval=30)
    return client


def key(*parts: str) -> str:
    """A namespaced key: key("leases", "team-a") -> "streamkit:leases:team-a"."""
    return ":".join((PREFIX, *parts))


async def aclose(client: Redis | None) -> None:
    if client is not None:
        await client.aclose()
