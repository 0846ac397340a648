"""The gate in front of every /v1/ request: client auth, then stream budgets (issue #20, docs/auth.md).

A pure ASGI middleware (BaseHTTPMiddleware would buffer streams). In order, before any upstream cost:

1. auth: a Bearer key from API_KEYS_FILE, or a single-use stream token for GET /v1/chat/stream
   (app.auth); else 401 `invalid_api_key`.
2. for a generation (a chat stream, a chat completion, a response), three budgets:
   - per worker, MAX_STREAMS_PER_WORKER open generations: over it, a fast 503 (`server_overloaded`),
     so overload sheds new work instead of slowing every open stream;
   - per key, TOKENS_PER_MINUTE content tokens in the current one-minute window: spent, a 429;
   - per key, MAX_STREAMS_PER_KEY concurrent generations: over it, a 429.
   A 429 has `Retry-After` and the OpenAI body (code `rate_limit_exceeded`).
3. the slot is held for the whole ASGI call, i.e. until the stream ended, however it ended.

Across replicas (REDIS_URL): a key's open streams are leases in a Redis sorted set (member: lease id,
score: expiry on Redis's clock), renewed every third of LEASE_TTL_SECONDS while the stream runs and
removed when it ends; a replica that dies (even SIGKILL) stops renewing, so its slots free themselves
within the TTL. Token windows are Redis counters. Without REDIS_URL everything is counted in each
worker process (the README says so: a limit of N then allows N per worker per replica).

Mid-stream token budget: the streaming core asks `STREAM_BUDGET` before each token (a context
variable set here, so the core needs no reference to this module's objects) and ends the stream with
an `error` event when the key's window is spent. With Redis, spends are added up locally and flushed
every FLUSH_INTERVAL, so replicas may overshoot a window by what they stream in that interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics as m
from app import store
from app.auth import (
    ANONYMOUS,
    TOKEN_PARAM,
    TOKEN_PATH,
    KeyRing,
    Principal,
    UsedTokens,
    bearer,
    redeem_token,
    unauthenticated,
)
from app.errors import SERVER_ERROR, APIError, error_body, error_response
from app.settings import Settings

log = logging.getLogger("app.limits")

# Requests that start a generation (an upstream cost): these take a slot.
GENERATIONS = frozenset(
    {
        ("GET", "/v1/chat/stream"),
        ("HEAD", "/v1/chat/stream"),  # Starlette runs GET routes for HEAD too
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/responses"),
    }
)
RATE_LIMITED = "rate_limit_exceeded"
WINDOW_SECONDS = 60
# With Redis: how often a stream adds its spent tokens to the shared window.
FLUSH_INTERVAL = 0.5


class Rejected(Exception):
    def __init__(self, status: int, message: str, type: str, code: str, reason: str, retry_after: int) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type, code
        self.reason, self.retry_after = reason, retry_after


def _window(now: float | None = None) -> int:
    return int((now or time.time()) // WINDOW_SECONDS)


def _window_left(now: float | None = None) -> int:
    now = now or time.time()
    return max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))


# --- concurrent streams per key ---------------------------------------------------------------------
class LocalSlots:
    """Per-key open generations counted in this worker process."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def acquire(self, name: str, limit: int) -> str | None:
        held = self.counts.get(name, 0)
        if held >= limit:
            return None
        self.counts[name] = held + 1
        return name

    async def renew(self, name: str, lease: str) -> None:
        return None

    async def release(self, name: str, lease: str) -> None:
        self.counts[name] -= 1
        if not self.counts[name]:
            del self.counts[name]


# KEYS[1] leases of one key; ARGV: limit, ttl seconds, lease id. Expired leases are dropped first;
# times are Redis's own clock, so replicas' clocks do not matter.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
return 1
"""
# KEYS[1] leases of one key; ARGV: ttl seconds, lease id.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000))
return 1
"""


class RedisSlots:
    """Per-key open generations as leases shared by every replica (see the module docstring)."""

    def __init__(self, redis: Redis, ttl: float) -> None:
        self.redis, self.ttl = redis, ttl
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)

    async def acquire(self, name: str, limit: int) -> str | None:
        lease = uuid.uuid4().hex
        ok = await self._acquire(keys=[store.key("leases", name)], args=[limit, self.ttl, lease])
        return lease if ok else None

    async def renew(self, name: str, lease: str) -> None:
        await self._renew(keys=[store.key("leases", name)], args=[self.ttl, lease])

    async def release(self, name: str, lease: str) -> None:
        await self.redis.zrem(store.key("leases", name), lease)


# --- tokens per minute per key ----------------------------------------------------------------------
class LocalWindows:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    async def used(self, name: str) -> int:
        return self.counts.get((name, _window()), 0)

    async def add(self, name: str, window: int, n: int) -> int:
        if len(self.counts) > 4096:  # drop past windows
            current = _window()
            self.counts = {k: v for k, v in self.counts.items() if k[1] >= current}
        total = self.counts.get((name, window), 0) + n
        self.counts[(name, window)] = total
        return total


class RedisWindows:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def used(self, name: str) -> int:
        return int(await self.redis.get(store.key("tpm", name, str(_window()))) or 0)

    async def add(self, name: str, window: int, n: int) -> int:
        key = store.key("tpm", name, str(window))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, n)
            pipe.expire(key, 2 * WINDOW_SECONDS)
            total, _ = await pipe.execute()
        return int(total)


class TokenBudget:
    """One stream's view of its key's token window. `spend` is synchronous (called per token)."""

    def __init__(self, windows: LocalWindows | RedisWindows, name: str, limit: int, used: int) -> None:
        self.windows, self.name, self.limit = windows, name, limit
        self.window = _window()
        self.known = used  # the window's total when last seen
        self.pending = 0  # spent here, not yet added to the window

    def spend(self, n: int = 1) -> bool:
        """Spend `n` tokens; False when the window is already spent (the token must not go out)."""
        self._roll()
        if self.known + self.pending + n > self.limit:
            return False
        self._add(n)
        return True

    def charge(self, n: int) -> None:
        """Count tokens already delivered (a non-streaming answer's usage), whatever the budget says."""
        if n > 0:
            self._roll()
            self._add(n)

    def _roll(self) -> None:
        window = _window()
        if window != self.window:
            self.window, self.known = window, 0

    def _add(self, n: int) -> None:
        if isinstance(self.windows, LocalWindows):
            counts, key = self.windows.counts, (self.name, self.window)
            self.known = counts[key] = counts.get(key, 0) + n
        else:
            self.pending += n

    async def flush(self) -> None:
        if self.pending:
            n, self.pending = self.pending, 0
            self.known = await self.windows.add(self.name, self.window, n) - self.pending

    def error(self) -> dict[str, Any]:
        return error_body(
            f"This key's budget of {self.limit} tokens per minute is spent; the stream ends here. "
            f"Retry in {_window_left()} s.",
            "tokens",
            None,
            RATE_LIMITED,
        )


class _JsonUsage:
    """Wraps `send` to read the `usage` of a non-streaming JSON answer (streams spend per token instead)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.json = False
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            self.json = message["status"] == 200 and headers.get(b"content-type", b"").startswith(b"application/json")
        elif message["type"] == "http.response.body" and self.json:
            self.body.append(message.get("body", b""))
        await self._send(message)

    def tokens(self) -> int:
        if not self.json:
            return 0
        try:
            usage = json.loads(b"".join(self.body)).get("usage") or {}
            return int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        except (ValueError, AttributeError, TypeError):
            return 0


# The running stream's budget, read by the streaming core before each token (None: no budget).
STREAM_BUDGET: ContextVar[TokenBudget | None] = ContextVar("streamkit_stream_budget", default=None)


def within_budget() -> bool:
    budget = STREAM_BUDGET.get()
    return budget is None or budget.spend(1)


def budget_error() -> dict[str, Any]:
    budget = STREAM_BUDGET.get()
    assert budget is not None
    return budget.error()


# --- the middleware ---------------------------------------------------------------------------------
class Gate:
    def __init__(self, app: ASGIApp, settings: Settings, ring: KeyRing | None, redis: Redis | None) -> None:
        self.app = app
        self.settings = settings
        self.ring = ring
        self.redis = redis
        self.used_tokens = UsedTokens(redis)
        self.slots: LocalSlots | RedisSlots = (
            RedisSlots(redis, settings.lease_ttl_seconds) if redis is not None else LocalSlots()
        )
        self.windows: LocalWindows | RedisWindows = RedisWindows(redis) if redis is not None else LocalWindows()
        self.open_here = 0  # generations open in this worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except APIError as exc:
            m.REQUESTS_REJECTED.labels(m.UNAUTHENTICATED).inc()
            headers = {"WWW-Authenticate": "Bearer"}
            await error_response(exc.status, exc.message, exc.type, exc.param, exc.code, headers)(scope, receive, send)
            return
        except (RedisError, OSError):
            await self._unavailable(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        if (scope["method"], scope["path"]) not in GENERATIONS:
            await self.app(scope, receive, send)
            return
        await self._generation(principal, scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal:
        token = _pop_token(scope)
        if self.ring is None:
            return ANONYMOUS
        key = bearer(scope.get("headers", []))
        if key is not None:
            principal = self.ring.lookup(key)
            if principal is None:
                raise unauthenticated("Incorrect API key provided.")
            return principal
        if token is not None and scope["method"] == "GET" and scope["path"] == TOKEN_PATH:
            return await redeem_token(token, self.ring, self.used_tokens)
        raise unauthenticated(
            "You didn't provide an API key. Send it as `Authorization: Bearer KEY` "
            f"(browsers: a stream token from POST /v1/stream-tokens as `{TOKEN_PARAM}`)."
        )

    async def _generation(self, principal: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        per_worker = settings.max_streams_per_worker
        if per_worker and self.open_here >= per_worker:
            await self._reject(
                Rejected(503, "The server is at its stream capacity; retry shortly.", SERVER_ERROR,
                         "server_overloaded", m.OVERLOAD, 1),
                scope, receive, send,
            )
            return
        self.open_here += 1
        m.STREAM_SLOTS.inc()
        lease: str | None = None
        try:
            try:
                budget = await self._budget(principal)
                if settings.max_streams_per_key:
                    lease = await self.slots.acquire(principal.name, settings.max_streams_per_key)
                    if lease is None:
                        raise Rejected(
                            429,
                            f"This key already has {settings.max_streams_per_key} streams open "
                            "(MAX_STREAMS_PER_KEY); retry when one ends.",
                            "requests", RATE_LIMITED, m.CONCURRENCY, 1,
                        )
            except Rejected as rejected:
                await self._reject(rejected, scope, receive, send)
                return
            except (RedisError, OSError):
                await self._unavailable(scope, receive, send)
                return
            await self._run(principal, lease, budget, scope, receive, send)
        finally:
            if lease is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.slots.release(principal.name, lease)
                    except (RedisError, OSError):
                        log.warning("could not release a stream lease; it expires within LEASE_TTL_SECONDS")
            self.open_here -= 1
            m.STREAM_SLOTS.dec()

    async def _budget(self, principal: Principal) -> TokenBudget | None:
        limit = self.settings.tokens_per_minute
        if not limit:
            return None
        used = await self.windows.used(principal.name)
        if used >= limit:
            left = _window_left()
            raise Rejected(
                429, f"This key's budget of {limit} tokens per minute is spent; retry in {left} s.",
                "tokens", RATE_LIMITED, m.TOKENS, left,
            )
        return TokenBudget(self.windows, principal.name, limit, used)

    async def _run(
        self, principal: Principal, lease: str | None, budget: TokenBudget | None,
        scope: Scope, receive: Receive, send: Send,
    ) -> None:
        shared = self.redis is not None and (lease is not None or budget is not None)
        keeper = asyncio.create_task(self._keep(principal, lease, budget)) if shared else None
        reset = STREAM_BUDGET.set(budget)
        counted = _JsonUsage(send) if budget is not None else None
        try:
            await self.app(scope, receive, counted.send if counted is not None else send)
        finally:
            STREAM_BUDGET.reset(reset)
            if counted is not None and budget is not None:
                budget.charge(counted.tokens())
            if keeper is not None:
                keeper.cancel()
            if budget is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        await budget.flush()
                    except (RedisError, OSError):
                        log.warning("could not add a stream's tokens to its key's window")

    async def _keep(self, principal: Principal, lease: str | None, budget: TokenBudget | None) -> None:
        """While a stream runs (Redis only): renew its lease, add its tokens to the shared window."""
        renew_every = self.settings.lease_ttl_seconds / 3
        tick = min(renew_every, FLUSH_INTERVAL) if budget is not None else renew_every
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                if budget is not None:
                    await budget.flush()
                if lease is not None and time.monotonic() - renewed >= renew_every - tick / 2:
                    await self.slots.renew(principal.name, lease)
                    renewed = time.monotonic()
            except (RedisError, OSError) as exc:
                log.warning("Redis: %s while renewing a stream lease", type(exc).__name__)

    async def _reject(self, rejected: Rejected, scope: Scope, receive: Receive, send: Send) -> None:
        m.REQUESTS_REJECTED.labels(rejected.reason).inc()
        response = error_response(
            rejected.status, rejected.message, rejected.type, None, rejected.code,
            {"Retry-After": str(rejected.retry_after)},
        )
        await response(scope, receive, send)

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("Redis (REDIS_URL) did not answer: request refused")
        await self._reject(
            Rejected(503, "The limits store is unavailable; retry shortly.", SERVER_ERROR, "limits_unavailable",
                     m.STORE_UNAVAILABLE, 1),
            scope, receive, send,
        )


def _is_api(path: str) -> bool:
    while "//" in path:
        path = path.replace("//", "/")
    return path == "/v1" or path.startswith("/v1/")


def _pop_token(scope: Scope) -> str | None:
    """Take the stream token out of the query string, in place: neither the route nor the app's
    access log (which reads this scope) ever sees it."""
    raw: bytes = scope.get("query_string", b"")
    if TOKEN_PARAM.encode() not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = next((value for key, value in pairs if key == TOKEN_PARAM), None)
    scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != TOKEN_PARAM]).encode("latin-1")
    return token
