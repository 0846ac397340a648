"""Graceful drain on SIGTERM.

gunicorn's arbiter answers SIGTERM by closing its own listening sockets and sending SIGTERM to
each worker. A uvicorn worker would then stop accepting at once and wait, with no limit, for
open streams. Instead the worker keeps serving while it drains:

1. `/readyz` answers 503 so load balancers stop sending new work; new streams get 503;
2. open streams get `DRAIN_SECONDS` to finish; each stream's deadline is lowered to that;
3. streams still open then end with an `error` event of type `server_shutdown` (never cut);
4. once no stream is open, uvicorn's own exit handler runs and the worker exits, well before
   gunicorn's `graceful_timeout` (drain + 5 s) would kill it.

A second SIGTERM, SIGINT, or SIGQUIT (gunicorn's quick shutdown: the arbiter sends it to its
workers on SIGINT/SIGQUIT) skips the window: streams end with `server_shutdown` now. A second
SIGTERM to the arbiter reaches the workers too (app/gunicorn_conf.py `_forward_repeated_signals`).

A client that stopped reading (its send blocked at the signal) gets its terminal event queued behind
the bytes it has not read: it receives it once it reads again. One that never does is dropped by
its send timeout (SEND_TIMEOUT after the send blocked; earlier, by the kernel, with the dead-peer
options), like any stalled client; the response then ended without its terminal event, and
uvicorn's close waits for the unsent bytes to leave a socket nobody reads, so the worker would
wait until the arbiter's SIGKILL at graceful_timeout. `abort_abandoned` drops such a connection
during the shutdown, and the worker exits right after its last stream ends.

A worker whose arbiter is gone (killed by a supervisor that signals only the main PID) would keep
serving for ever and share its port with the next instance. `watch_arbiter` polls the parent PID:
an orphan stops listening at once (the port is free within a second) and drains as on SIGTERM.
Bounds and the tests that prove them: docs/timeouts.md ("Signals").
"""

from __future__ import annotations

import contextlib
import logging
import os
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


# How often a worker checks that its arbiter is still there (the orphan bound is this plus the
# time to stop listening: well under a second).
ARBITER_POLL_SECONDS = 0.2


def install_signal_handlers(drain: Drain, on_drained: Callable[[], Any] | None = None) -> None:
    """Run inside the worker's event loop (lifespan startup), after uvicorn installed its handlers."""
    import asyncio

    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    # SIGQUIT: uvicorn-worker only marks the gunicorn worker as not alive (uvicorn never sees it), so
    # streams would run on until the arbiter's SIGKILL. Here it is a quick shutdown, like SIGINT.
    previous[signal.SIGQUIT] = previous[signal.SIGINT]
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGQUIT)

    reaping: list[Any] = []  # the one abort_abandoned task (keeps it referenced)

    def exit_server(sig: int) -> None:
        handler = previous[sig]
        if callable(handler):
            handler(signal.SIGTERM if sig == signal.SIGQUIT else sig, None)
        # uvicorn's handler is a bound method of its Server: its connections, during the shutdown.
        server = getattr(handler, "__self__", None)
        if server is not None and not reaping:
            reaping.append(loop.create_task(abort_abandoned(server)))

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

    arbiter = os.environ.get("STREAMKIT_ARBITER_PID")
    if arbiter:
        watcher = loop.create_task(watch_arbiter(int(arbiter), lambda: handler(signal.SIGTERM, None)))
        _background.add(watcher)


_background: set[Any] = set()  # keeps the watcher task referenced

# How often the shutdown looks for connections the app has abandoned.
ABANDONED_POLL_SECONDS = 0.1


async def abort_abandoned(server: Any) -> None:
    """While uvicorn waits for its connections to close: abort each one whose response the app
    ended without completing (a send timeout: the client stopped reading). uvicorn closed it, and
    asyncio's close waits until the unsent bytes leave: for a client that never reads, for ever.
    Nothing is left to deliver on it (its stream is over), so it is reset instead. A connection
    whose response completed is left to flush: its client is reading its terminal event."""
    while True:
        for connection in list(getattr(getattr(server, "server_state", None), "connections", ())):
            transport = getattr(connection, "transport", None)
            cycle = getattr(connection, "cycle", None)
            if transport is None or cycle is None or not transport.is_closing() or cycle.response_complete:
                continue
            log.warning("aborting a connection whose stream ended without its terminal event (client not reading)")
            transport.abort()
        await anyio.sleep(ABANDONED_POLL_SECONDS)


async def watch_arbiter(arbiter_pid: int, drain_now: Callable[[], Any]) -> None:
    """Orphaned (the arbiter died): stop accepting at once, then drain as on SIGTERM."""
    import asyncio

    from app.sockets import listening_fds, stop_listening

    while os.getppid() == arbiter_pid:  # noqa: ASYNC110 (a parent change has no event to wait on)
        await anyio.sleep(ARBITER_POLL_SECONDS)
    fds = listening_fds()
    stop_listening(fds, asyncio.get_running_loop().remove_reader)
    log.warning("arbiter %d is gone: stopped listening (%d socket(s)); draining", arbiter_pid, len(fds))
    drain_now()
