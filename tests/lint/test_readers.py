"""The small readers behind the rules: durations, nginx location choice, Traefik rules, HAProxy
sections, Terraform expressions (each rule's end-to-end behaviour is in test_negative_controls)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streamkit.lint import haproxy, traefik
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget
from streamkit.lint.nginx import Scope, check, select_location
from streamkit.lint.terraform import Module

BUDGET = Budget(ping=15, max_stream=3600, keepalive=75)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("60s", "s", 60.0),
        ("1m30s", "s", 90.0),
        ("3600", "s", 3600.0),  # nginx, ingress-nginx annotations: seconds
        ("5000", "ms", 5.0),  # HAProxy: milliseconds
        (60_000_000_000, "ns", 60.0),  # Caddy JSON: nanoseconds
        ({"seconds": 5, "nanos": 500_000_000}, "s", 5.5),  # Envoy proto JSON
        ("0s", "s", 0.0),
        ("-1ms", "s", -0.001),
        ("soon", "s", None),
        (True, "s", None),
    ],
)
def test_durations(value: object, unit: str, expected: float | None) -> None:
    result = seconds(value, unit)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def _location(args: list[str], *block: dict[str, object]) -> dict[str, object]:
    return {"directive": "location", "args": args, "block": list(block)}


def test_nginx_location_choice_follows_nginx_order() -> None:
    server = Scope(
        {
            "directive": "server",
            "args": [],
            "block": [
                _location(["/"]),
                _location(["~", r"\.php$"]),
                _location(["^~", "/metrics"]),
                _location(["=", "/v1/responses"]),
                _location(["/v1/"], _location(["~", "stream$"])),
            ],
        }
    )

    def chosen(path: str) -> list[str]:
        loc = select_location(server, path)
        assert loc is not None
        return list(loc.block["args"])

    assert chosen("/metrics") == ["^~", "/metrics"]  # ^~ stops the regex search
    assert chosen("/metrics.php") == ["^~", "/metrics"]
    assert chosen("/index.php") == ["~", r"\.php$"]  # a regex beats a plain prefix
    assert chosen("/v1/responses") == ["=", "/v1/responses"]
    assert chosen("/v1/chat/stream") == ["~", "stream$"]  # nested location
    assert chosen("/v1/chat/completions") == ["/v1/"]


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ("PathPrefix(`/`)", True),
        ("Host(`llm.example.com`)", True),
        ("PathPrefix(`/v1`)", False),
        ("PathPrefix(`/`) && !PathPrefix(`/metrics`)", False),
        ("Path(`/metrics`)", True),
        ("PathRegexp(`^/met`)", True),
    ],
)
def test_traefik_rule_matching(rule: str, matches: bool) -> None:
    assert traefik.rule_matches(rule, "/metrics") is matches


def test_haproxy_sections_inherit_from_the_last_defaults() -> None:
    sections = haproxy.read(
        "global\n    maxconn 100\ndefaults\n    timeout server 5s  # short\nbackend a\n    server s 1.2.3.4:80\n"
        "defaults\n    timeout server 1h\nbackend b\n    timeout server 2h\n"
    )
    a, b = (s for s in sections if s.kind == "backend")
    line_a, line_b = a.find("timeout", "server"), b.find("timeout", "server")
    assert line_a is not None and line_a.words == ["timeout", "server", "5s"]
    assert line_b is not None and line_b.words == ["timeout", "server", "2h"]


def test_terraform_numbers_follow_variables_and_locals() -> None:
    module = Module(
        {
            Path("main.tf"): {
                "variable": [{"idle": {"default": 300}}],
                "locals": [{"margin": 15, "app": "${max(var.idle, 600) + local.margin}", "loop": "${local.loop}"}],
            }
        },
        {Path("main.tf"): []},
    )
    assert module.number("${var.idle}") == 300
    assert module.number("${local.app}") == 615
    assert module.number("${local.loop}") is None  # a cycle is unknown, not a crash
    assert module.number("${aws_lb.x.arn}") is None


def test_nginx_checks_every_proxying_location_unless_told_the_streaming_paths(tmp_path: Path) -> None:
    """By default a buffered static location next to an unbuffered streaming one is a finding (lint
    cannot know it does not stream); with --stream-path /v1/ only the location serving /v1/ is
    checked, and a streaming prefix under another location moves the check there."""
    config = tmp_path / "site.conf"
    config.write_text(
        "server {\n"
        "  location ^~ /metrics { deny all; }\n"
        "  location /assets/ { proxy_pass http://127.0.0.1:9000; proxy_http_version 1.1; }\n"
        "  location / { proxy_pass http://127.0.0.1:8000; proxy_http_version 1.1; proxy_buffering off; }\n"
        "}\n"
    )
    assert [(f.rule.name, f.route) for f in check([config], BUDGET)] == [("buffering", "location /assets/")]
    streaming = Budget(ping=15, max_stream=3600, keepalive=75, stream_paths=("/v1/",))
    assert check([config], streaming) == []
    assert [f.route for f in check([config], replace(streaming, stream_paths=("/assets/live",)))] == [
        "location /assets/"
    ]
