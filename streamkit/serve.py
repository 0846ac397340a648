"""`streamkit serve`: run the reference app under gunicorn with uvicorn workers."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HELP = "run the reference app under gunicorn with uvicorn workers"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (env WORKERS, default 2)")
    parser.add_argument("--metrics-port", type=int, help="the metrics listener's port (env METRICS_PORT, default 9464)")


def gunicorn_argv(
    host: str | None = None, port: int | None = None, workers: int | None = None, metrics_port: int | None = None
) -> list[str]:
    """Prepare the environment for gunicorn and return its argv (flags override the environment)."""
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers), ("METRICS_PORT", metrics_port)):
        if value is not None:
            os.environ[key] = str(value)
    # prometheus_client picks multiprocess mode when this is set before it is first imported;
    # gunicorn_conf.on_starting wipes the directory.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="streamkit-metrics-")
    return [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_conf", "app.main:create_app()"]


def run(args: argparse.Namespace) -> int:
    from app.auth import startup_problem  # issue #20: refuse an open relay with a clear message
    from app.settings import Settings

    problem = startup_problem(Settings())
    if problem:
        print(f"streamkit serve: {problem}", file=sys.stderr)
        return 2
    argv = gunicorn_argv(args.host, args.port, args.workers, args.metrics_port)
    # Replace this process, so the PID a supervisor signals (SIGTERM) is gunicorn's arbiter.
    os.execv(argv[0], argv)
    return 0  # not reached
