"""Client keys (API_KEYS_FILE) and short-lived stream tokens for browsers (issue #20, docs/auth.md).

Keys file: one `name  sha256-hex-of-key` per line, `#` starts a comment. The app stores and compares
only digests: the presented key is hashed and compared with every stored digest in constant time
(`hmac.compare_digest`, no early exit), so neither timing nor the file reveals a key. Keys are never
logged, labelled or echoed; a request is known by its key's NAME only.

Stream tokens: `EventSource` cannot send an Authorization header, so a page first trades its key for
a token (`POST /v1/stream-tokens` with the Bearer key) and opens `GET /v1/chat/stream?...&stream_token=T`.
A token is `name.expiry.nonce.signature`, signed with HMAC-SHA256 keyed by the key's stored digest
(every worker and replica holding the same keys file can verify it; revoking the key revokes its
tokens), good for STREAM_TOKEN_TTL_SECONDS and for ONE stream: its nonce is burnt on first use (in
Redis when REDIS_URL is set, so across replicas; else per worker process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from redis.asyncio import Redis

from app import store
from app.errors import INVALID_REQUEST, APIError
from app.settings import OPEN_RELAY, Settings

log = logging.getLogger("app.auth")

# Query parameter that carries a stream token (stripped from the request before the app or any log sees it).
TOKEN_PARAM = "stream_token"
# The one path a stream token opens.
TOKEN_PATH = "/v1/chat/stream"
# How often the keys file's mtime is checked (a rotated Secret applies within about this long).
RELOAD_INTERVAL = 1.0
INVALID_KEY = "invalid_api_key"


class KeysFileError(ValueError):
    """The keys file cannot be used (missing, unreadable, or a malformed line)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the key's name (never the key)."""

    name: str
    digest: bytes  # sha256 of the key; signs its stream tokens


ANONYMOUS = Principal("anonymous", b"")


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_keys(text: str, source: str = "API_KEYS_FILE") -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[1]) != 64:
            raise KeysFileError(f"{source} line {number}: expected `name  sha256-hex-of-key` (64 hex digits)")
        name, hex_digest = parts
        try:
            digest = bytes.fromhex(hex_digest)
        except ValueError:
            raise KeysFileError(f"{source} line {number}: the digest is not hex") from None
        if name in keys:
            raise KeysFileError(f"{source} line {number}: the name {name!r} appears twice")
        keys[name] = digest
    if not keys:
        raise KeysFileError(f"{source}: no keys (an empty file would lock every client out)")
    return keys


class KeyRing:
    """The keys file, re-read when its mtime changes (checked at most once per RELOAD_INTERVAL).

    A file that turns bad while the app runs (a half-written rotation) keeps the last good keys
    and logs the reason; at start a bad file stops the app (see `load`)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.keys: dict[str, bytes] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self.load()

    def load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
            keys = parse_keys(self.path.read_text(), f"API_KEYS_FILE {self.path}")
        except OSError as exc:
            raise KeysFileError(f"API_KEYS_FILE {self.path}: {exc.strerror}") from None
        self.keys, self._mtime = keys, mtime

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_INTERVAL:
            return
        self._checked = now
        try:
            if self.path.stat().st_mtime != self._mtime:
                self.load()
                log.info("reloaded API_KEYS_FILE: %d keys", len(self.keys))
        except KeysFileError as exc:
            log.warning("keeping the previous keys: %s", exc)
        except OSError as exc:
            log.warning("keeping the previous keys: API_KEYS_FILE %s: %s", self.path, exc.strerror)

    def lookup(self, key: str) -> Principal | None:
        """The principal whose key this is, compared in constant time against every stored digest."""
        self._maybe_reload()
        presented = digest_of(key)
        found: Principal | None = None
        for name, digest in self.keys.items():
            if hmac.compare_digest(presented, digest) and found is None:
                found = Principal(name, digest)
        return found

    def principal(self, name: str) -> Principal | None:
        self._maybe_reload()
        digest = self.keys.get(name)
        return Principal(name, digest) if digest is not None else None


def startup_problem(settings: Settings) -> str | None:
    """Why the app must not start (an open relay, an unusable keys file), or None."""
    if settings.api_keys_file:
        try:
            KeyRing(settings.api_keys_file)
        except KeysFileError as exc:
            return str(exc)
    elif settings.upstream_base_url and not settings.allow_anonymous:
        return OPEN_RELAY
    return None


def unauthenticated(message: str) -> APIError:
    return APIError(401, message, INVALID_REQUEST, code=INVALID_KEY)


def bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
            return None
    return None


# --- stream tokens ----------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(digest: bytes, payload: str) -> str:
    return _b64(hmac.new(digest, payload.encode(), hashlib.sha256).digest())


def issue_token(principal: Principal, ttl: float, now: float | None = None) -> tuple[str, int]:
    """A signed single-stream token for `principal` and its expiry (unix milliseconds)."""
    expires = int(((now or time.time()) + ttl) * 1000)
    payload = f"{_b64(principal.name.encode())}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_sign(principal.digest, payload)}", expires


class UsedTokens:
    """Nonces of stream tokens already used: in Redis (across replicas) or in this process."""

    def __init__(self, redis: Redis | None) -> None:
        self.redis = redis
        self._local: dict[str, float] = {}

    async def first_use(self, nonce: str, expires: int) -> bool:
        ttl_ms = max(1, expires - int(time.time() * 1000) + 1000)
        if self.redis is not None:
            return bool(await self.redis.set(store.key("stream-token", nonce), b"1", nx=True, px=ttl_ms))
        now = time.time()
        if len(self._local) > 1024:
            self._local = {n: e for n, e in self._local.items() if e > now}
        if nonce in self._local:
            return False
        self._local[nonce] = expires / 1000 + 1
        return True


async def redeem_token(token: str, ring: KeyRing, used: UsedTokens) -> Principal:
    """The principal a stream token acts for; 401 if it is malformed, forged, expired or used."""
    refused = unauthenticated("The stream token is invalid, expired or already used; request a new one.")
    try:
        name_b64, expires_text, nonce, signature = token.split(".")
        name, expires = _unb64(name_b64).decode(), int(expires_text)
    except ValueError:
        raise refused from None
    principal = ring.principal(name)
    if principal is None:
        raise refused
    expected = _sign(principal.digest, f"{name_b64}.{expires_text}.{nonce}")
    if not hmac.compare_digest(expected.encode(), signature.encode()) or expires < time.time() * 1000:
        raise refused
    if not await used.first_use(nonce, expires):
        raise refused
    return principal


router = APIRouter()


@router.post("/v1/stream-tokens")
async def stream_token(request: Request) -> dict[str, Any]:
    """Trade the Bearer key (checked by the gate middleware) for a single-stream token for EventSource."""
    principal: Principal = request.state.principal
    if principal is ANONYMOUS:
        raise APIError(400, "Client keys are not enabled (API_KEYS_FILE): streams need no token.", INVALID_REQUEST)
    ttl = request.app.state.settings.stream_token_ttl_seconds
    token, expires = issue_token(principal, ttl)
    return {"object": "stream_token", "token": token, "expires_at": expires / 1000, "param": TOKEN_PARAM,
            "path": TOKEN_PATH}


@router.get("/v1/auth")
async def check(request: Request) -> Response:
    """For auth at the proxy (nginx auth_request, Envoy ext_authz, Traefik forwardAuth): 204 with the key's
    name for a good Bearer key; the gate middleware already answered 401 for anything else."""
    principal: Principal = request.state.principal
    return Response(status_code=204, headers={"X-Streamkit-Key": principal.name})


def random_key() -> str:
    """A new client key and nothing else (docs/auth.md: `python -m app.auth NAME` prints a key and its line)."""
    return "sk-" + secrets.token_urlsafe(32)


if __name__ == "__main__":  # pragma: no cover - a helper for operators
    import sys

    name = sys.argv[1] if len(sys.argv) > 1 else "client"
    new = random_key()
    print(f"key (give to the client, store nowhere else): {new}", file=sys.stderr)
    print(f"{name}  {digest_of(new).hex()}")
