"""Graceful drain on SIGTERM.

gunicorn's arbiter answers SIGTERM by closing its own listening sockets and sending SIGTERM to
each worker. A uvicorn worker would then stop accepting at once and wait, with no limit, for
open streams. Instead the worker keeps serving while it drains:

1. `/readyz` answers 503 so load balancers stop sending new work; new streams get 503;
2. open streams get `DRAIN_SECONDS` to finish; each stream's deadline is lowered to that;
3. streams still open then end with an `error` event of type `server_shutdown` (never cut);
4. once no stream is open, uvicorn's own exit handler runs and the worker exits, well before
   gunicorn's `graceful_timeout` (drain + 5 s) would kill it.

A second SIGTERM, or SIGINT, skips the window: streams end with `server_shutdown` now.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import anyio
from sse_starlette.sse import AppStatus

log = logging.getLogger("app.drain")

# The kit ends streams itself (with a terminal event) instead of sse-starlette's default of
# cancelling every stream on the first SIGTERM.
AppStatus.disable_automatic_graceful_drain()


class Drain:
    def __init__(self, window: float) -> None:
        self.window = window
        self.draining = False
        self.deadline: float | None = None  # anyio clock
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def open_streams(self) -> int:
        return len(self._scopes)

    def register(self, scope: anyio.CancelScope) -> None:
        if self.deadline is not None:
            scope.deadline = min(scope.deadline, self.deadline)
        self._scopes.add(scope)

    def unregister(self, scope: anyio.CancelScope) -> None:
        self._scopes.discard(scope)

    def begin(self, window: float) -> None:
        """Start draining: every open stream must end within `window` seconds."""
        deadline = anyio.current_time() + window
        self.draining = True
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)
        for scope in self._scopes:
            scope.deadline = min(scope.deadline, self.deadline)
        log.warning("draining: %d open stream(s), window %.1fs", len(self._scopes), window)

    async def wait_idle(self) -> None:
        while self._scopes:  # noqa: ASYNC110 (streams register from many tasks; polling is simplest)
            await anyio.sleep(0.02)


def install_signal_handlers(drain: Drain, on_drained: Callable[[], Any] | None = None) -> None:
    """Run inside the worker's event loop (lifespan startup), after uvicorn installed its handlers."""
    import asyncio

    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def exit_server(sig: int) -> None:
        handler = previous[sig]
        if callable(handler):
            handler(sig, None)

    async def drain_then_exit(sig: int, window: float) -> None:
        started = time.monotonic()
        drain.begin(window)
        await drain.wait_idle()
        # Let the terminal events leave the socket before uvicorn closes connections.
        await anyio.sleep(0.05)
        log.warning("drained in %.2fs; exiting", time.monotonic() - started)
        exit_server(sig)
        if on_drained is not None:
            on_drained()

    def handler(sig: int, frame: FrameType | None) -> None:
        window = drain.window if (sig == signal.SIGTERM and not drain.draining) else 0.0
        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit(sig, window)))

    for sig in previous:
        signal.signal(sig, handler)
