"""gunicorn configuration for the reference app (used by `streamkit serve`).

Every value comes from app.settings (environment variables), so the timeout budget has one
source. Docs: https://docs.gunicorn.org/en/stable/settings.html
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from typing import Any

from app.settings import get_settings

_settings = get_settings()

# Where to listen. Default: 127.0.0.1:8000 (gunicorn's own default is also 127.0.0.1:8000).
bind = [f"{_settings.host}:{_settings.port}"]

# Number of worker processes; each is one uvicorn event loop serving many streams.
# One or two per core: streams are I/O-bound. gunicorn default: 1.
workers = _settings.workers

# uvicorn inside gunicorn (the `uvicorn-worker` package; uvicorn.workers is deprecated).
# gunicorn default: sync (one request per worker: useless for streams).
worker_class = "uvicorn_worker.UvicornWorker"

# Idle keep-alive seconds; uvicorn-worker passes this to uvicorn's timeout_keep_alive (uvicorn's
# own --timeout-keep-alive flag is NOT read under gunicorn). Must exceed every proxy's upstream
# keep-alive pool (nginx keepalive_timeout 60 s, Envoy/Traefik idle 60 s in the kit, AWS ALB 60 s)
# so the proxy closes first; else a POST can land on a socket the app is closing: a 502.
# gunicorn default: 2 s (uvicorn default: 5 s). Kit default: 75 s.
keepalive = _settings.keepalive

# Seconds a worker may be silent before the arbiter kills it. With async workers this only trips
# when the event loop is blocked; long streams do not trip it (uvicorn notifies every tick), so
# do not set 0 "for streams". gunicorn default: 30 s.
timeout = 30

# After SIGTERM, how long the arbiter waits for workers before SIGKILL. The app drains within
# DRAIN_SECONDS (open streams finish or end with a `server_shutdown` event), so this is the drain
# window plus 5 s to write terminal events and exit. Kubernetes terminationGracePeriodSeconds
# must exceed preStop delay + this. gunicorn default: 30 s.
graceful_timeout = _settings.graceful_timeout

# gunicorn 23+ opens a runtime control socket in the home directory by default; several app
# instances on one host (tests, sidecars) would share its path. The kit does not use it.
# gunicorn default: enabled (~/.gunicorn/gunicorn.ctl).
control_socket_disable = True

# Log to stderr; access log lines show status and duration of every stream.
accesslog = "-"
errorlog = "-"
# gunicorn default: no access log.


def on_starting(server: Any) -> None:
    """Wipe the prometheus multiprocess directory: files from a previous run would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (active streams) from the aggregate."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# --- i21: metrics on their own listener (METRICS_PORT) -------------------------------------------
def _serve_metrics(where: str) -> None:
    """Start the metrics listener on HOST:METRICS_PORT. With the multiprocess directory (always
    under `streamkit serve`) the arbiter serves the sum over all workers, started once when it is
    ready; without it each worker has only its own numbers, and the first worker to bind serves
    them (the others log that the port is taken)."""
    from app.metrics import serve_metrics

    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if (where == "arbiter") != multiprocess:
        return
    try:
        serve_metrics(_settings.host, _settings.metrics_port)
    except OSError as exc:
        logging.getLogger("gunicorn.error").warning(
            "metrics listener %s:%s not started in the %s: %s", _settings.host, _settings.metrics_port, where, exc
        )


def post_worker_init(worker: Any) -> None:
    _serve_metrics("worker")


# --- dead peers and signals (issue 16; app/sockets.py, app/drain.py, docs/timeouts.md) ----------


def when_ready(server: Any) -> None:
    """In the arbiter, once its listening sockets exist and before any worker is forked."""
    _dead_peer_listeners(server)
    _forward_repeated_signals(server)
    _serve_metrics("arbiter")


def _dead_peer_listeners(server: Any) -> None:
    """TCP_USER_TIMEOUT + keepalive on the listeners: every accepted connection inherits them
    (DEAD_PEER_TIMEOUT; app/sockets.py explains the mechanism)."""
    from app.sockets import apply_to_listeners

    options = apply_to_listeners([listener.sock for listener in server.LISTENERS], _settings)
    server.log.info("dead-peer socket options on listeners: %s", options or "off (DEAD_PEER_TIMEOUT=0)")


def _forward_repeated_signals(server: Any) -> None:
    """A second SIGTERM to the arbiter ends every stream now.

    gunicorn's arbiter handles SIGTERM by sending SIGTERM to every worker and then waiting up to
    graceful_timeout in a loop that reads only SIGINT/SIGQUIT from its queue: a second SIGTERM
    would be dropped. Here it goes straight to the workers, whose drain handler (app/drain.py)
    treats a repeated SIGTERM as "no window": every open stream ends with `server_shutdown`.
    """
    import signal

    queue_signal = server.signal
    seen = {"term": 0}

    def on_term(sig: int, frame: Any) -> None:
        seen["term"] += 1
        if seen["term"] > 1:
            for pid in list(server.WORKERS):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        queue_signal(sig, frame)

    signal.signal(signal.SIGTERM, on_term)


def post_fork(server: Any, worker: Any) -> None:
    """In each new worker: remember the arbiter, so the worker notices when it is gone (an
    orphan stops accepting at once and drains: app/drain.py `watch_arbiter`)."""
    os.environ["STREAMKIT_ARBITER_PID"] = str(server.pid)
