"""Graceful drain on SIGTERM with 20 open streams (issue #2, acceptance 5)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from app.settings import Settings
from streamkit.local import metrics_url, wait_until
from streamkit.probe.observe import Observation, observe
from tests.app.conftest import start
from tests.conftest import Processes

DRAIN_SECONDS = 3.0
GRACEFUL_TIMEOUT = Settings(drain_seconds=DRAIN_SECONDS).graceful_timeout
SHORT = "tokens=20&tokens_per_second=10&first_token_delay=0"  # ~2 s: ends inside the drain window
LONG = "tokens=1000&tokens_per_second=10&first_token_delay=0"  # ~100 s: outlives it


def test_sigterm_drains_open_streams(processes: Processes, tmp_path: Path) -> None:
    app = start(processes, tmp_path, workers=2, DRAIN_SECONDS=str(DRAIN_SECONDS))
    results: dict[int, Observation] = {}

    def client(i: int) -> None:
        query = SHORT if i % 2 else LONG
        results[i] = observe(f"{app.url}/v1/chat/stream?prompt=drain{i}&{query}", timeout=30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    # All 20 streams open: the active-streams gauge is summed over both workers.
    wait_until(lambda: _open_streams(app.url) == 20, 10, what="20 open streams")

    sent_at = time.monotonic()
    app.proc.signal(signal.SIGTERM)
    ready = wait_until(lambda: _readyz_status(app.url) == 503, 2.0, what="/readyz 503 during the drain")
    assert ready
    for thread in threads:
        thread.join(timeout=GRACEFUL_TIMEOUT + 5)
    wait_until(lambda: not app.proc.alive(), GRACEFUL_TIMEOUT + 2, what="gunicorn to exit")
    exited_after = time.monotonic() - sent_at

    assert len(results) == 20
    for i, obs in results.items():
        terminal = [e for e in obs.events if e.event in ("done", "error")]
        assert len(terminal) == 1, (i, obs.error, [e.event for e in obs.events[-3:]])
        if i % 2:
            assert terminal[0].event == "done", i
        else:
            assert terminal[0].event == "error" and terminal[0].json()["error"]["type"] == "server_shutdown", i
    assert exited_after < GRACEFUL_TIMEOUT, exited_after
    assert app.proc.popen is not None and app.proc.popen.returncode == 0


def _readyz_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code
    except httpx.HTTPError:
        return None


def _open_streams(url: str) -> int:
    body = httpx.get(metrics_url(url), timeout=2).text
    return int(
        sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith("streamkit_active_streams{"))
    )
