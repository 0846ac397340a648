"""Settings: environment names, the budget the rest of the kit relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import FAKE_MODEL, Settings


def test_defaults_hold_the_timeout_budget() -> None:
    s = Settings()
    assert s.uses_fake and s.model_name == FAKE_MODEL
    assert s.ping_interval < 60  # below the most common proxy idle timeout (nginx/ALB 60 s)
    assert s.keepalive > 60  # above the proxies' upstream keep-alive pools (60 s)
    assert s.drain_seconds < s.graceful_timeout


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PING_INTERVAL", "2.5")
    monkeypatch.setenv("UPSTREAM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("UPSTREAM_MODEL", "m")
    s = Settings()
    assert s.ping_interval == 2.5 and not s.uses_fake and s.model_name == "m"


def test_real_upstream_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ValidationError):
        Settings()


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(Settings())
