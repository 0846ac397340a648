"""DEAD_PEER_TIMEOUT: its default, its validation, and the socket options it turns into."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from app.settings import Settings
from app.sockets import dead_peer_options


def test_default_is_twice_the_ping_interval() -> None:
    s = Settings()
    assert s.dead_peer_budget == 2 * s.ping_interval == 30
    assert s.tcp_user_timeout == (30 - 15) / 2


def test_options_follow_the_budget() -> None:
    options = dict(((level, name), value) for level, name, value in dead_peer_options(Settings(dead_peer_timeout=20)))
    assert options[(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)] == int((20 - 15) / 2 * 1000)
    assert options[(socket.SOL_SOCKET, socket.SO_KEEPALIVE)] == 1
    idle, interval, count = (
        options[(socket.IPPROTO_TCP, getattr(socket, o))] for o in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")
    )
    assert idle + interval * count <= 20


def test_zero_turns_the_options_off() -> None:
    assert dead_peer_options(Settings(dead_peer_timeout=0)) == []


def test_a_budget_not_above_the_ping_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="DEAD_PEER_TIMEOUT must exceed PING_INTERVAL"):
        Settings(ping_interval=15, dead_peer_timeout=10)
