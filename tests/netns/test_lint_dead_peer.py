"""The proposed dead-peer lint rule (streamkit/lint/dead_peer.py): the shipped HAProxy config
passes, and each naive variant is caught (no `tcp-ut`; a `tcp-ut` too long for the budget)."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from streamkit.lint.dead_peer import check_haproxy

SHIPPED = Path(__file__).resolve().parents[2] / "infra" / "haproxy" / "haproxy.cfg"
DEFAULTS = Settings()
PING, BUDGET = DEFAULTS.ping_interval, DEFAULTS.dead_peer_budget


def test_shipped_haproxy_config_bounds_a_vanished_client() -> None:
    assert check_haproxy(SHIPPED.read_text(), PING, BUDGET) == []


def test_bind_without_tcp_ut_is_caught() -> None:
    naive = SHIPPED.read_text().replace(" tcp-ut 7500ms", "")
    problems = check_haproxy(naive, PING, BUDGET)
    assert len(problems) == 2 and all("has no tcp-ut" in message for _, message in problems)


def test_tcp_ut_over_the_budget_is_caught() -> None:
    long = SHIPPED.read_text().replace("tcp-ut 7500ms", "tcp-ut 60s")
    problems = check_haproxy(long, PING, BUDGET)
    assert len(problems) == 2 and all("over DEAD_PEER_TIMEOUT" in message for _, message in problems)


def test_backend_sections_are_not_client_facing() -> None:
    text = "backend b\n    server app 127.0.0.1:8000\nfrontend f\n    bind :8080 tcp-ut 5s\n"
    assert check_haproxy(text, PING, BUDGET) == []
