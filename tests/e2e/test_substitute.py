"""The one documented way tests (and users) change a shipped config: `# streamkit: KEY` marks."""

from __future__ import annotations

import pytest

from streamkit.proxies import PROXIES
from streamkit.proxies.substitute import SubstitutionError, marked_keys, substitute

CONFIG = """\
listen 127.0.0.1:8080;  # streamkit: listen
proxy_read_timeout 3600s;  # streamkit: read_timeout
server 127.0.0.1:8000 max_fails=3;  # streamkit: upstream
tls /etc/caddy/cert.pem /etc/caddy/key.pem # streamkit: cert, key
url: http://127.0.0.1:8000  # streamkit: backend
port_value: 8000  # streamkit: upstream_port
http://:8080 { # streamkit: tls_listen
idle_timeout = 3600  # streamkit: idle
keepalive_timeout 60s;
"""


def test_replaces_exactly_the_marked_tokens() -> None:
    out = substitute(
        CONFIG,
        {
            "listen": "127.0.0.1:18080",
            "read_timeout": "2s",
            "upstream": "127.0.0.1:18000",
            "key": "/srv/tls/k.pem",
            "upstream_port": 18000,
            "tls_listen": "127.0.0.1:18443",
            "idle": 2,
        },
    ).splitlines()
    assert out[0] == "listen 127.0.0.1:18080;  # streamkit: listen"
    assert out[1] == "proxy_read_timeout 2s;  # streamkit: read_timeout"
    assert out[2] == "server 127.0.0.1:18000 max_fails=3;  # streamkit: upstream"
    assert out[3] == "tls /etc/caddy/cert.pem /srv/tls/k.pem # streamkit: cert, key"
    assert out[5] == "port_value: 18000  # streamkit: upstream_port"
    assert out[6] == "http://:18443 { # streamkit: tls_listen"  # a host-less address stays host-less
    assert out[7] == "idle_timeout = 2  # streamkit: idle"  # a unitless duration stays unitless
    assert out[8] == "keepalive_timeout 60s;"  # unmarked lines never change


def test_numbers_become_durations_in_the_token_style() -> None:
    assert substitute("t 60s; # streamkit: t\n", {"t": 0.5}) == "t 500ms; # streamkit: t\n"
    assert substitute("t 60s; # streamkit: t\n", {"t": 3}) == "t 3s; # streamkit: t\n"


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("listen 8080;\n", {"listen": "127.0.0.1:1"}, "marks no line"),
        ("keepalive_timeout 65s 60s;  # streamkit: ka\n", {"ka": "1s"}, "2 candidate duration"),
        ("proxy_read_timeout off;  # streamkit: rt\n", {"rt": "1s"}, "0 candidate duration"),
        ("port_value: 80  # streamkit: upstream_port\n", {"upstream_port": "x"}, "must be an integer"),
    ],
)
def test_ambiguity_is_an_error_never_a_silent_no_op(text: str, values: dict[str, str], message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        substitute(text, values)


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_shipped_configs_mark_what_their_capabilities_need(name: str) -> None:
    proxy = PROXIES[name]
    marked = set().union(*(marked_keys(path.read_text()) for path in proxy.config_paths))
    needed = {"listen", "upstream"}
    if "idle_timeout" in proxy.capabilities:
        needed.add("read_timeout")
    if "tls_http2" in proxy.capabilities:
        needed |= {"tls_listen", "cert"}  # `key` too, unless the proxy reads both from one PEM (HAProxy)
    assert needed <= marked, f"{name}: unmarked {sorted(needed - marked)}"
