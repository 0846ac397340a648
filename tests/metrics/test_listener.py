"""Metrics on their own listener (issue 21, acceptance 4): the public port answers 404 for /metrics,
and the metrics listener (METRICS_PORT) is one endpoint, owned by gunicorn's arbiter, whose scrape
is the sum over every worker (tests/metrics/test_mix.py proves the sum with an exact traffic mix;
its negative control without the multiprocess directory sees one worker only)."""

from __future__ import annotations

import httpx
import psutil

from streamkit.local import metrics_url
from tests.app.conftest import RunningApp
from tests.metrics.conftest import WORKERS, workers_of


def test_the_public_port_has_no_metrics(metrics_app: RunningApp) -> None:
    stream = httpx.get(f"{metrics_app.url}/v1/chat/stream?prompt=m&tokens=1&first_token_delay=0", timeout=10)
    assert stream.status_code == 200 and "event: done" in stream.text
    public = httpx.get(f"{metrics_app.url}/metrics", timeout=5)
    assert public.status_code == 404, public.text[:200]
    assert "streamkit_" not in public.text
    # Negative control: the same path on the metrics listener answers with the exposition.
    listener = httpx.get(metrics_url(metrics_app.url), timeout=5)
    assert listener.status_code == 200 and "streamkit_tokens_streamed_total" in listener.text, listener.text[:500]


def test_one_listener_owned_by_the_arbiter(metrics_app: RunningApp) -> None:
    port = int(metrics_url(metrics_app.url).rsplit(":", 1)[1].split("/")[0])
    arbiter = psutil.Process(metrics_app.proc.pid)
    workers = workers_of(metrics_app)
    assert len(workers) == WORKERS
    listening = [c for c in arbiter.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening, f"the arbiter (pid {arbiter.pid}) does not listen on the metrics port {port}"
