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

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report

NAME = "nginx"
DOCS = "https://nginx.org/en/docs/http/ngx_http_proxy_module.html"
_BLOCK_START = re.compile(r"^\s*(http|server|location|upstream)\b[^;{]*\{", re.MULTILINE)

Directive = dict[str, Any]


# Debian/Ubuntu keep sites as extension-less files in these directories.
SITE_DIRS = ("sites-available", "sites-enabled", "conf.d", "nginx", "http.d", "vhosts.d")


def detect(path: Path, text: str) -> bool:
    named = path.suffix == ".conf" or "nginx" in path.name or path.parent.name in SITE_DIRS
    extensionless_site = not path.suffix and bool(re.search(r"^\s*server\s*\{", text, re.MULTILINE))
    return (named or extensionless_site) and bool(_BLOCK_START.search(text))


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


def location_args(location: Directive) -> tuple[str, str]:
    """(modifier, pattern) of a location; nginx also reads a modifier glued to the pattern
    (`location ~/api`, `location =/x`), as a regex or exact match, not a prefix."""
    args = location["args"]
    if len(args) > 1:
        return args[0], args[1]
    pattern = args[0] if args else ""
    for modifier in ("^~", "~*", "~", "=", "@"):
        if pattern.startswith(modifier) and len(pattern) > len(modifier):
            return modifier, pattern[len(modifier) :]
    return "", pattern


def _location_matches(location: Directive, path: str) -> tuple[str, bool]:
    """(kind, matches) with kind one of '=', '^~', '', '~' (regex)."""
    modifier, pattern = location_args(location)
    if modifier == "=":
        return "=", path == pattern
    if modifier in ("~", "~*"):
        return "~", rules.regex_matches(pattern, path, ignore_case=modifier == "~*")
    if modifier == "@":
        return "@", False
    return modifier, rules.prefix_matches(pattern, path)


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
            length = len(location_args(loc.block)[1])
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
        self.current = ""  # the route being checked

    def add(self, d: Directive, rule: rules.Rule, message: str, fix: str, anchor: str) -> None:
        """A finding at directive `d` on the current route; `anchor` is a proxy-module directive or a
        full docs URL."""
        docs = anchor if anchor.startswith("https://") else f"{DOCS}#{anchor}"
        self.report.add(_line(d), rule, message, fix, docs, _file(d, self.report.path), self.current)

    def route(self, loc: Scope) -> None:
        where = self.current = route_name(loc)
        buffering = loc.find("proxy_buffering")
        if loc.value("proxy_buffering", "on") != "off":
            self.add(
                buffering or loc.block,
                rules.BUFFERING,
                f"{where}: proxy_buffering is {'on' if buffering else 'not set (default: on)'}, so nginx holds events "
                "back until its buffer fills, unless the app's `X-Accel-Buffering: no` header reaches it intact",
                "add `proxy_buffering off;` to this location",
                "proxy_buffering",
            )
        gzip_types = loc.value("gzip_types", "text/html").split()
        if loc.value("gzip", "off") == "on" and (rules.SSE_MEDIA_TYPE in gzip_types or "*" in gzip_types):
            self.add(
                loc.find("gzip_types") or loc.block,
                rules.COMPRESSION,
                f"{where}: gzip is on and gzip_types includes {rules.SSE_MEDIA_TYPE}, so streams are compressed",
                f"add `gzip off;` to this location (or drop {rules.SSE_MEDIA_TYPE} from gzip_types)",
                "https://nginx.org/en/docs/http/ngx_http_gzip_module.html#gzip_types",
            )
        read = loc.find("proxy_read_timeout")
        problem = rules.idle_too_short(
            seconds(loc.value("proxy_read_timeout", "60s")),
            self.budget.ping,
            where + " proxy_read_timeout" + ("" if read else " (default 60 s)"),
        )
        if problem:
            self.add(
                read or loc.block,
                rules.IDLE_TIMEOUT,
                problem,
                "raise it, e.g. `proxy_read_timeout 3600s;` (it is the gap allowed between two reads)",
                "proxy_read_timeout",
            )
        version = loc.find("proxy_http_version")
        value = loc.value("proxy_http_version", "1.0")
        if value != "1.1":
            self.add(
                version or loc.block,
                rules.HTTP1,
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
        problem = rules.pool_too_long(value, self.budget.keepalive, self.budget.keepalive_source, what)
        if problem:
            self.report.add(
                _line(timeout or up.block),
                rules.KEEPALIVE,
                problem,
                "lower `keepalive_timeout` in the upstream block" + rules.BELOW_APP_KEEPALIVE,
                "https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout",
                _file(timeout or up.block, self.report.path),
            )

    def metrics(self, server: Scope) -> None:
        loc = select_location(server, rules.METRICS_PATH)
        if loc is not None and _proxies(loc) and not _restricted(loc):
            self.current = route_name(loc)
            self.add(
                loc.block,
                rules.METRICS,
                f"location {' '.join(loc.block['args'])} forwards {rules.METRICS_PATH} to the app: "
                + rules.METRICS_EXPOSED,
                f"add `location ^~ {rules.METRICS_PATH} {{ deny all; }}` (or allow only your Prometheus' addresses)",
                "proxy_pass",
            )


def route_name(loc: Scope) -> str:
    """`location /v1/` (with the server_name when the server has one)."""
    servers = [scope for scope in loc.chain() if scope.block["directive"] == "server"]
    names = [" ".join(d["args"]) for scope in servers for d in scope.own("server_name")]
    where = f"location {' '.join(loc.block['args'])}"
    return f"server {names[0]} {where}" if names and names[0] not in ("_", "") else where


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


_ABSENT_INCLUDE = re.compile(r"No such file or directory: '([^']*)'")


def _parse(path: Path) -> dict[str, Any]:
    """crossplane's payload; a crash of crossplane itself becomes an error with its message."""
    try:
        result: dict[str, Any] = crossplane.parse(
            str(path), combine=True, catch_errors=True, check_ctx=False, check_args=False
        )
    except Exception as exc:  # crossplane raises its own and Python's errors on odd input
        return {"errors": [{"file": str(path), "line": 1, "error": f"{type(exc).__name__}: {exc}"}], "config": []}
    return result


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    parsed = {path: _parse(path) for path in paths}
    included = {file for path, result in parsed.items() for file in _included_files(result) if file != path.resolve()}
    findings: list[Finding] = []
    for path, result in parsed.items():
        if path.resolve() in included:
            continue
        report = Report(path)
        for error in result["errors"]:
            message = str(error.get("error") or "").strip()
            absent = _ABSENT_INCLUDE.search(message)
            line, where = int(error.get("line") or 1), str(error.get("file") or path)
            if absent:
                report.warn(
                    f"include {absent.group(1)} is absent here, so the directives it holds were not checked; "
                    "the rest of the file was (findings it would settle may show)",
                    "lint the directory the include lives in too (e.g. /etc/nginx), or copy the file next to this one",
                    line=line,
                    path=where,
                )
            else:
                report.error(
                    f"nginx config does not parse (crossplane): {message or 'no message'}", line=line, path=where
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
        for loc in streaming_routes(server, proxied, budget.stream_paths):
            checker.route(loc)
        if proxied:
            checker.metrics(server)


def streaming_routes(server: Scope, proxied: list[Scope], stream_paths: tuple[str, ...]) -> list[Scope]:
    """Every proxying location clients reach; with --stream-path, the ones nginx picks for a
    streaming path and the ones under a streaming prefix."""
    if not stream_paths:
        # Internal and named locations answer subrequests (auth_request, error_page), not clients.
        return [loc for loc in proxied if not loc.own("internal") and location_args(loc.block)[0] != "@"]
    chosen = [c for c in (select_location(server, path) for path in stream_paths) if c is not None]
    routes = []
    for loc in proxied:
        modifier, pattern = location_args(loc.block)
        regex = modifier in ("~", "~*")
        under = any(
            rules.regex_matches(pattern, path, ignore_case=modifier == "~*") if regex else pattern.startswith(path)
            for path in stream_paths
        )
        if under or any(loc.block is c.block for c in chosen):
            routes.append(loc)
    return routes
