"""Envoy bootstrap YAML (static_resources): HTTP connection managers, routes and clusters.

Missing fields fall back to Envoy's defaults (docs/timeouts.md, Envoy rows): route `timeout` 15 s TOTAL,
HCM `stream_idle_timeout` 5 min, upstream `common_http_protocol_options.idle_timeout` 1 h.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.yamlsource import LineDict, dig, line_at, load_documents, mappings

NAME = "envoy"
DOCS_ROUTE = "https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto"
DOCS_HCM = (
    "https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/"
    "http_connection_manager/v3/http_connection_manager.proto"
)
DOCS_PROTOCOL = (
    "https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/upstreams/http/v3/http_protocol_options.proto"
)
DOCS_COMPRESSOR = (
    "https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/compressor/v3/compressor.proto"
)
DOCS_SOCKET_OPTION = "https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/socket_option.proto"
HCM = "envoy.filters.network.http_connection_manager"
# A listener socket option that is TCP_USER_TIMEOUT (Linux: level IPPROTO_TCP 6, name 18; int_value
# in milliseconds). Set on the listening socket in any state, every accepted connection inherits it.
IPPROTO_TCP, TCP_USER_TIMEOUT = 6, 18
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DEFAULT_ROUTE_TIMEOUT = 15.0
DEFAULT_STREAM_IDLE = 300.0
DEFAULT_UPSTREAM_IDLE = 3600.0


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".yaml", ".yml") and "static_resources" in text


def _managers(doc: LineDict) -> Iterator[LineDict]:
    for listener in mappings(dig(doc, "static_resources", "listeners")):
        for chain in mappings(listener.get("filter_chains")):
            for flt in mappings(chain.get("filters")):
                config = flt.get("typed_config")
                is_hcm = flt.get("name") == HCM or "HttpConnectionManager" in str(dig(config, "@type"))
                if is_hcm and isinstance(config, LineDict):
                    yield config


def _route_match(match: LineDict, path: str) -> bool | None:
    if "prefix" in match:
        hit = rules.prefix_matches(str(match["prefix"]), path)
    elif "path" in match:
        hit = path == match["path"]
    elif "path_separated_prefix" in match:
        hit = rules.prefix_matches(str(match["path_separated_prefix"]), path, elementwise=True)
    elif "safe_regex" in match:
        hit = rules.regex_matches(f"^(?:{dig(match, 'safe_regex', 'regex')})$", path)
    else:
        return None
    if hit and (match.get("headers") or match.get("query_parameters")):
        return None
    return hit


def _pattern(match: dict[str, object]) -> tuple[str, str]:
    """(pattern, kind) of a route match, for --stream-path."""
    if "path" in match:
        return str(match["path"]), "exact"
    if "safe_regex" in match:
        return str(dig(match, "safe_regex", "regex")), "regex"
    if "path_separated_prefix" in match:
        return str(match["path_separated_prefix"]), "elementwise"
    return str(match.get("prefix", "/")), "prefix"


class _Checker:
    def __init__(self, report: Report, budget: Budget, clusters: dict[str, LineDict]) -> None:
        self.report, self.budget, self.clusters = report, budget, clusters
        self.used: set[str] = set()

    def manager(self, hcm: LineDict) -> None:
        idle = seconds(hcm.get("stream_idle_timeout", DEFAULT_STREAM_IDLE))
        problem = rules.idle_too_short(idle, self.budget.ping, "HTTP connection manager stream_idle_timeout")
        if problem:
            self.report.add(
                line_at(hcm, "stream_idle_timeout"),
                rules.IDLE_TIMEOUT,
                problem,
                "raise `stream_idle_timeout` (e.g. 300s)",
                f"{DOCS_HCM}#stream_idle_timeout",
            )
        for flt in mappings(hcm.get("http_filters")):
            self.compressor(flt)
            self.body_reader(flt)
        for host in mappings(dig(hcm, "route_config", "virtual_hosts")):
            self.virtual_host(host)

    def compressor(self, flt: LineDict) -> None:
        config = flt.get("typed_config")
        if "compressor" not in str(flt.get("name", "")) + str(dig(config, "@type")) or not isinstance(config, dict):
            return
        types = dig(config, "response_direction_config", "common_config", "content_type") or config.get("content_type")
        if types and rules.SSE_MEDIA_TYPE in types:
            self.report.add(
                getattr(types, "line", flt.line),
                rules.COMPRESSION,
                f"the compressor filter lists {rules.SSE_MEDIA_TYPE} in content_type",
                f"remove {rules.SSE_MEDIA_TYPE} from content_type (Envoy's default list omits it)",
                DOCS_COMPRESSOR,
            )

    def body_reader(self, flt: LineDict) -> None:
        """SK1: a Lua `envoy_on_response` that calls `:body()` makes Envoy buffer the whole response
        (body rewriting and logging snippets do; `:bodyChunks()` streams and is fine). The buffer
        filter holds requests only, so it is not a streaming hazard."""
        kind = str(flt.get("name", "")) + str(dig(flt, "typed_config", "@type"))
        source = str(dig(flt, "typed_config", "default_source_code", "inline_string") or "")
        source += str(dig(flt, "typed_config", "inline_code") or "")
        if "lua" in kind and "envoy_on_response" in source and re.search(r":body\(", source):
            self.report.add(
                flt.line,
                rules.BUFFERING,
                "a Lua filter reads the response body (`:body()`): Envoy buffers the whole response before "
                "the filter returns, so the headers and every event wait for the end of the stream",
                "read the body with `:bodyChunks()` (streams), or scope the filter away from the streaming routes "
                "(per-route `disabled: true`)",
                "https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/lua_filter#body",
            )

    def virtual_host(self, host: LineDict) -> None:
        routes = mappings(host.get("routes"))
        for route in routes:
            action = route.get("route")
            if not isinstance(action, LineDict):
                continue
            self.used.add(str(action.get("cluster", "")))
            match = route.get("match") or {}
            if not self.budget.streams(*_pattern(match)):
                continue  # --stream-path: this route does not stream
            where = f"route {dict(match)}"
            self.report.route = where
            timeout = seconds(action.get("timeout", DEFAULT_ROUTE_TIMEOUT))
            problem = rules.total_too_short(
                timeout,
                self.budget.max_stream,
                f"{where} timeout" + ("" if "timeout" in action else " (unset: Envoy's 15 s)"),
            )
            if problem:
                self.report.add(
                    line_at(action, "timeout"),
                    rules.TOTAL_TIMEOUT,
                    problem + "; the route timeout is a TOTAL deadline that resets streams after headers were sent",
                    "set `timeout: 0s` on the route (and keep an idle guard: `idle_timeout: 120s`)",
                    f"{DOCS_ROUTE}#envoy-v3-api-field-config-route-v3-routeaction-timeout",
                )
            problem = rules.idle_too_short(
                seconds(action.get("idle_timeout")), self.budget.ping, f"{where} idle_timeout"
            )
            if problem:
                self.report.add(
                    line_at(action, "idle_timeout"),
                    rules.IDLE_TIMEOUT,
                    problem,
                    "raise `idle_timeout`",
                    f"{DOCS_ROUTE}#envoy-v3-api-field-config-route-v3-routeaction-idle-timeout",
                )
            cap = seconds(dig(action, "max_stream_duration", "max_stream_duration"))
            problem = rules.total_too_short(cap, self.budget.max_stream, f"{where} max_stream_duration")
            if problem:
                self.report.add(
                    line_at(action, "max_stream_duration"),
                    rules.TOTAL_TIMEOUT,
                    problem,
                    "raise or remove max_stream_duration",
                    f"{DOCS_ROUTE}#config-route-v3-routeaction",
                )
        self.report.route = ""
        for route in routes:
            match = route.get("match")
            verdict = _route_match(match, rules.METRICS_PATH) if isinstance(match, LineDict) else False
            if verdict is False:
                continue
            if verdict and "route" in route:
                self.report.add(
                    route.line,
                    rules.METRICS,
                    f"route {dict(match or {})} forwards {rules.METRICS_PATH} to the app: {rules.METRICS_EXPOSED}",
                    f"add a route before it: `match: {{path: {rules.METRICS_PATH}}}` with "
                    "`direct_response: {status: 404}`",
                    f"{DOCS_ROUTE}#config-route-v3-route",
                )
                return
            if "direct_response" in route or "redirect" in route:
                return

    def cluster(self, cluster: LineDict) -> None:
        options = dig(cluster, "typed_extension_protocol_options", HTTP_OPTIONS)
        common = dig(options, "common_http_protocol_options") or cluster.get("common_http_protocol_options")
        idle = seconds(dig(common, "idle_timeout"))
        what = f"cluster {cluster.get('name')} upstream idle_timeout" + ("" if idle is not None else " (default 1 h)")
        problem = rules.pool_too_long(
            idle if idle is not None else DEFAULT_UPSTREAM_IDLE,
            self.budget.keepalive,
            self.budget.keepalive_source,
            what,
        )
        if problem:
            self.report.add(
                line_at(common, "idle_timeout") if common else cluster.line,
                rules.KEEPALIVE,
                problem,
                "set HttpProtocolOptions `common_http_protocol_options: {idle_timeout: 60s}`"
                + rules.BELOW_APP_KEEPALIVE,
                f"{DOCS_PROTOCOL}#extensions-upstreams-http-v3-httpprotocoloptions",
            )
        explicit = dig(options, "explicit_http_config") or {}
        if (
            "http2_protocol_options" in explicit
            or "http2_protocol_options" in cluster
            or "auto_config" in (options or {})
        ):
            self.report.add(
                line_at(options or cluster, "explicit_http_config"),
                rules.HTTP1,
                f"cluster {cluster.get('name')} may speak HTTP/2 upstream; uvicorn speaks HTTP/1.1 only",
                "use `explicit_http_config: {http_protocol_options: {}}`",
                DOCS_PROTOCOL,
            )


def _as_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _check_listener(listener: LineDict, report: Report, budget: Budget) -> None:
    """SK10: a client-facing TCP listener sets TCP_USER_TIMEOUT in its `socket_options`, short
    enough for the dead-peer budget. (HTTP/2 keepalive PINGs bound HTTP/2 clients only.)"""
    socket_address = dig(listener, "address", "socket_address")
    if (
        budget.dead_peer <= 0
        or not isinstance(socket_address, dict)
        or str(socket_address.get("protocol", "TCP")).upper() != "TCP"
        or "udp_listener_config" in listener
    ):
        return
    name = listener.get("name", "")
    options = [
        option
        for option in mappings(listener.get("socket_options"))
        if _as_int(option.get("level")) == IPPROTO_TCP and _as_int(option.get("name")) == TCP_USER_TIMEOUT
    ]
    suggested = round(rules.dead_peer_user_timeout(budget.ping, budget.dead_peer) * 1000)
    fix = (
        "add to the listener `socket_options: [{description: TCP_USER_TIMEOUT, level: 6, name: 18, "
        f"int_value: {suggested}, state: STATE_LISTENING}}]` (milliseconds; see {rules.DEAD_PEER_DOCS})"
    )
    if not options:
        report.add(
            line_at(listener, "socket_options") if "socket_options" in listener else listener.line,
            rules.DEAD_PEER,
            f"listener {name} sets no TCP_USER_TIMEOUT (`socket_options` level 6, name 18): "
            + rules.DEAD_PEER_UNBOUNDED,
            fix,
            DOCS_SOCKET_OPTION,
        )
        return
    option = options[-1]
    value = _as_int(option.get("int_value"))
    if value is None or value <= 0:
        report.add(
            line_at(option, "int_value"),
            rules.DEAD_PEER,
            f"listener {name}: the TCP_USER_TIMEOUT socket option has no positive `int_value` (milliseconds), so it "
            f"is off: {rules.DEAD_PEER_UNBOUNDED}",
            fix,
            DOCS_SOCKET_OPTION,
        )
        return
    problem = rules.dead_peer_too_long(
        value / 1000, budget.ping, budget.dead_peer, f"listener {name} TCP_USER_TIMEOUT socket option"
    )
    if problem:
        report.add(
            line_at(option, "int_value"),
            rules.DEAD_PEER,
            problem,
            f"lower `int_value` to {suggested}",
            DOCS_SOCKET_OPTION,
        )


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        report = Report(path)
        try:
            docs = load_documents(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            report.error(f"Envoy YAML does not parse: {exc}")
            findings.extend(report.findings)
            continue
        for doc in docs:
            clusters = {str(c.get("name")): c for c in mappings(dig(doc, "static_resources", "clusters"))}
            checker = _Checker(report, budget, clusters)
            for listener in mappings(dig(doc, "static_resources", "listeners")):
                _check_listener(listener, report, budget)
            for hcm in _managers(doc):
                checker.manager(hcm)
            for name in sorted(checker.used & clusters.keys()):
                checker.cluster(clusters[name])
        findings.extend(report.findings)
    return findings
