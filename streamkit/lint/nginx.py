"""nginx (plain, or a site file): parsed with crossplane, includes followed.

Every `location` with `proxy_pass` is treated as a route that may carry SSE (exact-match
locations for other paths aside); directives inherit http -> server -> location, and an absent
directive means nginx's default applies (docs/timeouts.md, nginx rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.rules import (
    BELOW_APP_KEEPALIVE,
    BUFFERING,
    COMPRESSION,
    HTTP1,
    IDLE_TIMEOUT,
    KEEPALIVE,
    METRICS,
    METRICS_PATH,
    SSE_MEDIA_TYPE,
    SSE_PATHS,
    Rule,
    idle_too_short,
    pool_too_long,
    prefix_matches,
    regex_matches,
)

NAME = "nginx"
DOCS = "https://nginx.org/en/docs/http/ngx_http_proxy_module.html"
_BLOCK_START = re.compile(r"^\s*(http|server|location|upstream)\b[^;{]*\{", re.MULTILINE)

Directive = dict[str, Any]


def detect(path: Path, text: str) -> bool:
    return (path.suffix == ".conf" or "nginx" in path.name) and bool(_BLOCK_START.search(text))


@dataclass
class Scope:
    """A block (http, server, location) with its parents, for inherited directive lookup."""

    block: Directive
    parent: Scope | None = None

    def own(self, name: str) -> list[Directive]:
        return [d for d in self.block.get("block", []) if d["directive"] == name]

    def find(self, name: str) -> Directive | None:
        """The directive in effect here: the nearest scope that sets it."""
        scope: Scope | None = self
        while scope is not None:
            found = scope.own(name)
            if found:
                return found[-1]
            scope = scope.parent
        return None

    def value(self, name: str, default: str) -> str:
        found = self.find(name)
        return " ".join(found["args"]) if found else default

    def chain(self) -> Iterator[Scope]:
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


def _children(scope: Scope, name: str) -> list[Scope]:
    return [Scope(d, scope) for d in scope.own(name)]


def _servers(scope: Scope) -> Iterator[Scope]:
    for child in scope.block.get("block", []):
        if child["directive"] == "server" and "block" in child:
            yield Scope(child, scope)
        elif child["directive"] in ("http", "events") or (child["directive"] == "include" and "block" in child):
            yield from _servers(Scope(child, scope))


def _location_matches(location: Directive, path: str) -> tuple[str, bool]:
    """(kind, matches) with kind one of '=', '^~', '', '~' (regex)."""
    args = location["args"]
    modifier, pattern = (args[0], args[1]) if len(args) > 1 else ("", args[0] if args else "")
    if modifier == "=":
        return "=", path == pattern
    if modifier in ("~", "~*"):
        return "~", regex_matches(pattern, path, ignore_case=modifier == "~*")
    if modifier == "@":
        return "@", False
    return modifier, prefix_matches(pattern, path)


def select_location(scope: Scope, path: str) -> Scope | None:
    """The location nginx picks for `path` (exact, longest prefix, ^~, then regexes in order)."""
    locations = _children(scope, "location")
    best: tuple[int, Scope, str] | None = None
    for loc in locations:
        kind, matched = _location_matches(loc.block, path)
        if not matched:
            continue
        if kind == "=":
            return loc
        if kind in ("", "^~"):
            length = len(loc.block["args"][-1])
            if best is None or length > best[0]:
                best = (length, loc, kind)
    chosen: Scope | None = best[1] if best else None
    if best is None or best[2] != "^~":
        for loc in locations:
            kind, matched = _location_matches(loc.block, path)
            if kind == "~" and matched:
                chosen = loc
                break
    if chosen is not None:
        nested = select_location(chosen, path)
        return nested or chosen
    return None


def _all_locations(scope: Scope) -> Iterator[Scope]:
    for loc in _children(scope, "location"):
        yield loc
        yield from _all_locations(loc)


def _proxies(loc: Scope) -> bool:
    return bool(loc.own("proxy_pass"))


def _restricted(loc: Scope) -> bool:
    """Access to this location is denied or limited (deny, return 4xx, internal, auth)."""
    for scope in loc.chain():
        if scope.block["directive"] not in ("location", "server"):
            break
        for d in scope.block.get("block", []):
            name, args = d["directive"], d["args"]
            if name == "deny" or name == "internal" or name == "auth_request":
                return True
            if name == "auth_basic" and args and args[0] != "off":
                return True
            if name == "return" and args and args[0].isdigit() and int(args[0]) >= 400:
                return True
    return False


def _line(d: Directive) -> int:
    return int(d.get("line", 1))


def _file(d: Directive, default: Path) -> str:
    return str(d.get("file") or default)


class _Checker:
    def __init__(self, report: Report, budget: Budget, upstreams: dict[str, Scope]) -> None:
        self.report, self.budget, self.upstreams = report, budget, upstreams

    def add(self, d: Directive, rule: Rule, message: str, fix: str, anchor: str) -> None:
        """A finding at directive `d`; `anchor` is a proxy-module directive or a full docs URL."""
        docs = anchor if anchor.startswith("https://") else f"{DOCS}#{anchor}"
        self.report.add(_line(d), rule, message, fix, docs, _file(d, self.report.path))

    def route(self, loc: Scope) -> None:
        where = f"location {' '.join(loc.block['args'])}"
        buffering = loc.find("proxy_buffering")
        if loc.value("proxy_buffering", "on") != "off":
            self.add(
                buffering or loc.block,
                BUFFERING,
                f"{where}: proxy_buffering is {'on' if buffering else 'not set (default: on)'}, so nginx holds events "
                "back until its buffer fills, unless the app's `X-Accel-Buffering: no` header reaches it intact",
                "add `proxy_buffering off;` to this location",
                "proxy_buffering",
            )
        gzip_types = loc.value("gzip_types", "text/html").split()
        if loc.value("gzip", "off") == "on" and (SSE_MEDIA_TYPE in gzip_types or "*" in gzip_types):
            self.add(
                loc.find("gzip_types") or loc.block,
                COMPRESSION,
                f"{where}: gzip is on and gzip_types includes {SSE_MEDIA_TYPE}, so streams are compressed",
                f"add `gzip off;` to this location (or drop {SSE_MEDIA_TYPE} from gzip_types)",
                "https://nginx.org/en/docs/http/ngx_http_gzip_module.html#gzip_types",
            )
        read = loc.find("proxy_read_timeout")
        problem = idle_too_short(
            seconds(loc.value("proxy_read_timeout", "60s")),
            self.budget.ping,
            where + " proxy_read_timeout" + ("" if read else " (default 60 s)"),
        )
        if problem:
            self.add(
                read or loc.block,
                IDLE_TIMEOUT,
                problem,
                "raise it, e.g. `proxy_read_timeout 3600s;` (it is the gap allowed between two reads)",
                "proxy_read_timeout",
            )
        version = loc.find("proxy_http_version")
        value = loc.value("proxy_http_version", "1.0")
        if value != "1.1":
            self.add(
                version or loc.block,
                HTTP1,
                f"{where}: proxy_http_version is "
                + (" ".join(version["args"]) if version else "not set (nginx uses 1.0 before 1.29.7)")
                + "; uvicorn speaks HTTP/1.1 only"
                + (", and 1.0 opens a new connection for every request" if value == "1.0" else ""),
                'add `proxy_http_version 1.1;` and `proxy_set_header Connection "";`',
                "proxy_http_version",
            )
        target = loc.own("proxy_pass")[0]["args"][0] if loc.own("proxy_pass") else ""
        name = re.sub(r"^\w+://", "", target).split("/")[0]
        if name in self.upstreams:
            self.upstream(self.upstreams.pop(name))

    def upstream(self, up: Scope) -> None:
        timeout = up.find("keepalive_timeout")
        value = seconds(" ".join(timeout["args"])) if timeout else 60.0
        what = f"upstream {' '.join(up.block['args'])} keepalive_timeout" + ("" if timeout else " (default 60 s)")
        problem = pool_too_long(value, self.budget.keepalive, self.budget.keepalive_source, what)
        if problem:
            self.report.add(
                _line(timeout or up.block),
                KEEPALIVE,
                problem,
                "lower `keepalive_timeout` in the upstream block" + BELOW_APP_KEEPALIVE,
                "https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout",
                _file(timeout or up.block, self.report.path),
            )

    def metrics(self, server: Scope) -> None:
        loc = select_location(server, METRICS_PATH)
        if loc is not None and _proxies(loc) and not _restricted(loc):
            self.add(
                loc.block,
                METRICS,
                f"location {' '.join(loc.block['args'])} forwards {METRICS_PATH} to the app, so anyone can read it",
                f"add `location ^~ {METRICS_PATH} {{ deny all; }}` (or allow only your Prometheus' addresses)",
                "proxy_pass",
            )


def _included_files(parsed: dict[str, Any]) -> set[Path]:
    files: set[Path] = set()

    def walk(block: list[Directive]) -> None:
        for d in block:
            if d.get("file"):
                files.add(Path(d["file"]).resolve())
            walk(d.get("block", []))

    for config in parsed["config"]:
        walk(config["parsed"])
    return files


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    parsed = {
        path: crossplane.parse(str(path), combine=True, catch_errors=True, check_ctx=False, check_args=False)
        for path in paths
    }
    included = {file for path, result in parsed.items() for file in _included_files(result) if file != path.resolve()}
    findings: list[Finding] = []
    for path, result in parsed.items():
        if path.resolve() in included:
            continue
        report = Report(path)
        for error in result["errors"]:
            report.error(
                f"nginx config does not parse: {error['error']}",
                line=error.get("line") or 1,
                path=error.get("file") or path,
            )
        root = (
            Scope({"directive": "main", "args": [], "block": result["config"][0]["parsed"]})
            if result["config"]
            else None
        )
        if root is not None:
            _check_tree(root, report, budget)
        findings.extend(report.findings)
    return findings


def _check_tree(root: Scope, report: Report, budget: Budget) -> None:
    upstreams: dict[str, Scope] = {}

    def collect(scope: Scope) -> None:
        for up in _children(scope, "upstream"):
            upstreams[up.block["args"][0]] = up
        for child in ("http", "include"):
            for sub in _children(scope, child):
                collect(sub)

    collect(root)
    checker = _Checker(report, budget, upstreams)
    for server in _servers(root):
        proxied = [loc for loc in _all_locations(server) if _proxies(loc)]
        for loc in _sse_routes(server, proxied):
            checker.route(loc)
        if proxied:
            checker.metrics(server)


def _sse_routes(server: Scope, proxied: list[Scope]) -> list[Scope]:
    """The proxying locations nginx picks for the app's streaming paths; when none does (the app
    is mounted under another prefix), every proxying location but exact-match ones."""
    chosen = [select_location(server, path) for path in SSE_PATHS]
    routes = [loc for loc in proxied if any(loc.block is c.block for c in chosen if c is not None)]
    return routes or [loc for loc in proxied if loc.block["args"][:1] != ["="]]
