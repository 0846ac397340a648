"""SK10 dead-peer (issue 16; docs/timeouts.md "Dead peers"): a client whose network vanishes is
given up within the app's dead-peer budget on the proxy's client side, where the config can say
so (HAProxy `tcp-ut` on client-facing binds, Envoy listener `socket_options` TCP_USER_TIMEOUT);
nginx, Caddy and Traefik cannot, and get a note (never a finding) naming the host setting instead.

Each check has a control that differs from the shipped file in the one setting checked (its removal,
or a budget it no longer fits). The end-to-end bound these settings give is measured in
tests/netns/test_dead_client_proxies.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.lint.helpers import NEGATIVE, REPO, lint_json, rule_names

INFRA = REPO / "infra"
HAPROXY = INFRA / "haproxy" / "haproxy.cfg"
ENVOY = INFRA / "envoy" / "envoy.yaml"
DEFAULTS = Settings()
# The shipped files set (DEAD_PEER_TIMEOUT - PING_INTERVAL) / 2 = 7.5 s: a bound of exactly 30 s.
TIGHTER_BUDGET = str(DEFAULTS.dead_peer_budget - 1)
# Naive copies: the shipped file with only the client-side setting removed.
NAIVE = {
    "haproxy": (HAPROXY, lambda text: text.replace(" tcp-ut 7500ms", "")),
    "envoy": (ENVOY, lambda text: _without_envoy_socket_options(text)),
}


def _without_envoy_socket_options(text: str) -> str:
    start = text.index("    socket_options: &dead_peer_socket_options")
    end = text.index("    filter_chains:", start)
    text = text[:start] + text[end:]
    assert text.count("socket_options: *dead_peer_socket_options") == 1
    return text.replace("    socket_options: *dead_peer_socket_options\n", "")


def dead_peer(report: dict[str, object]) -> list[dict[str, object]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["rule"]["name"] == "dead-peer"]


@pytest.mark.parametrize("proxy", ["haproxy", "envoy"])
def test_shipped_config_passes_and_its_naive_copy_is_caught(
    proxy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped, strip = NAIVE[proxy]
    code, report = lint_json(capsys, "--app", "streamkit", str(shipped))
    assert code == 0 and report["findings"] == [] and report["notes"] == []
    naive = tmp_path / shipped.name
    naive.write_text(strip(shipped.read_text()))
    code, report = lint_json(capsys, "--app", "streamkit", str(naive))
    assert code == 1 and rule_names(report) == {"dead-peer"}
    # Both client-facing listeners (plain and TLS), each on its own line.
    assert len({f["line"] for f in dead_peer(report)}) == 2, report["findings"]
    assert all("about 15 min" in str(f["message"]) and "TCP_USER_TIMEOUT" in str(f["fix"]) for f in dead_peer(report))


@pytest.mark.parametrize("proxy", ["haproxy", "envoy"])
def test_a_budget_the_setting_does_not_fit_is_caught(proxy: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same shipped file, judged against a budget one second shorter: 15 s + 2 x 7.5 s is over it."""
    shipped, _ = NAIVE[proxy]
    code, report = lint_json(capsys, "--app", "streamkit", "--dead-peer", TIGHTER_BUDGET, str(shipped))
    assert code == 1 and rule_names(report) == {"dead-peer"}
    assert all("over the app's dead-peer budget" in str(f["message"]) for f in dead_peer(report))
    code, report = lint_json(capsys, "--app", "streamkit", "--dead-peer", "0", str(shipped))  # 0: not checked
    assert code == 0 and report["findings"] == []


def test_is_an_app_rule_a_note_for_another_app(capsys: pytest.CaptureFixture[str]) -> None:
    control = NEGATIVE / "lint" / "haproxy" / "dead-peer.cfg"
    code, report = lint_json(capsys, "--app", "other", str(control))
    assert code == 0 and [(f["rule"]["id"], f["severity"]) for f in report["findings"]] == [("SK10", "note")]


HAPROXY_SECTIONS = """defaults
    mode http
    timeout client 1h
    timeout server 1h
frontend web
    bind 127.0.0.1:8080 tcp-ut 7500ms
    bind /run/haproxy/local.sock
    bind quic4@127.0.0.1:8443 ssl crt /etc/haproxy/tls/streamkit.pem
    http-request return status 404 if { path_beg /metrics }
    default_backend app
backend app
    server app 127.0.0.1:8000
"""


def test_only_client_facing_tcp_binds_are_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A backend has no binds; UNIX sockets and QUIC binds carry no TCP_USER_TIMEOUT. The control:
    the same file with the TCP bind's tcp-ut removed."""
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_SECTIONS)
    assert dead_peer(lint_json(capsys, "--app", "streamkit", str(config))[1]) == []
    config.write_text(HAPROXY_SECTIONS.replace(" tcp-ut 7500ms", ""))
    assert [f["line"] for f in dead_peer(lint_json(capsys, "--app", "streamkit", str(config))[1])] == [6]


def test_envoy_counts_only_the_tcp_user_timeout_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another TCP option (TCP_KEEPIDLE, name 4) on the listener is not a bound; name 18 is."""
    control = (NEGATIVE / "lint" / "envoy" / "keepalive.yaml").read_text()
    assert "name: 18, int_value: 7500" in control
    other = tmp_path / "envoy.yaml"
    other.write_text(control.replace("name: 18, int_value: 7500", "name: 4, int_value: 7500"))
    code, report = lint_json(capsys, "--app", "streamkit", str(other))
    assert "dead-peer" in rule_names(report) and code == 1


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (INFRA / "nginx" / "streamkit.conf", "nginx"),
        (INFRA / "caddy" / "Caddyfile", "caddy"),
        (INFRA / "traefik", "traefik"),
    ],
)
def test_formats_that_cannot_express_it_get_a_note_not_a_finding(
    path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = lint_json(capsys, "--app", "streamkit", str(path))
    assert code == 0 and report["findings"] == []
    (note,) = report["notes"]
    assert note["rule"]["id"] == "SK10" and note["format"] == fmt
    assert "net.ipv4.tcp_retries2" in note["message"] and note["docs"] == "docs/timeouts.md#dead-peers"
    # The control: with the rule off (--dead-peer 0) there is nothing to say.
    code, report = lint_json(capsys, "--app", "streamkit", "--dead-peer", "0", str(path))
    assert code == 0 and report["notes"] == []
