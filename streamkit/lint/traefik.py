"""Traefik v3 YAML, static (entryPoints) and dynamic (http routers/middlewares/services) files.

All Traefik files of one lint run are read together: a dynamic service's default transport can be
set in the static file. Defaults (docs/timeouts.md, Traefik rows): `idleConnTimeout` 90 s; `compress` does
not exclude text/event-stream; entryPoint `writeTimeout` 0 (when set it cuts every longer stream).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.yamlsource import LineDict, dig, line_at, load_documents, mappings

NAME = "traefik"
DOCS = "https://doc.traefik.io/traefik"
DEFAULT_IDLE_CONN = 90.0
ACCESS_MIDDLEWARES = ("ipAllowList", "ipWhiteList", "basicAuth", "digestAuth", "forwardAuth")
_MATCHER = re.compile(r"(!?)\s*(PathPrefix|PathRegexp|Path)\(\s*`([^`]*)`")


def detect(path: Path, text: str) -> bool:
    return (
        path.suffix in (".yaml", ".yml")
        and bool(
            re.search(r"^entryPoints:|^http:\s*$|^\s+(routers|middlewares|serversTransports):", text, re.MULTILINE)
        )
        and "apiVersion:" not in text
        and "static_resources" not in text
    )


def rule_matches(rule: str, path: str) -> bool:
    """Whether a router rule can match `path` (Host and other matchers are ignored)."""
    positives = []
    for negated, kind, value in _MATCHER.findall(rule):
        if kind == "PathRegexp":
            hit = rules.regex_matches(value, path)
        elif kind == "PathPrefix":
            hit = rules.prefix_matches(value, path)
        else:
            hit = path == value
        if negated and hit:
            return False
        if not negated:
            positives.append(hit)
    return any(positives) if positives else True


class Config:
    def __init__(self) -> None:
        self.entry_points: list[tuple[Path, LineDict, str]] = []
        self.routers: list[tuple[Path, LineDict, str]] = []
        self.middlewares: dict[str, tuple[Path, LineDict]] = {}
        self.services: dict[str, tuple[Path, LineDict]] = {}
        self.transports: dict[str, tuple[Path, LineDict]] = {}
        self.default_transport: tuple[Path, LineDict] | None = None

    def read(self, path: Path, doc: LineDict) -> None:
        for name, ep in (doc.get("entryPoints") or {}).items():
            if isinstance(ep, LineDict):
                self.entry_points.append((path, ep, str(name)))
        if isinstance(doc.get("serversTransport"), LineDict):
            self.default_transport = (path, doc["serversTransport"])
        http = doc.get("http") or {}
        for name, router in (http.get("routers") or {}).items():
            self.routers.append((path, router, str(name)))
        for section, target in (
            ("middlewares", self.middlewares),
            ("services", self.services),
            ("serversTransports", self.transports),
        ):
            for name, item in (http.get(section) or {}).items():
                target[str(name)] = (path, item)


def _middleware(config: Config, name: str) -> tuple[Path, LineDict] | None:
    return config.middlewares.get(name.split("@")[0])


def check_config(config: Config, reports: dict[Path, Report], budget: Budget) -> None:
    for path, ep, name in config.entry_points:
        # writeTimeout caps the whole response. readTimeout (default 60 s) only bounds reading the
        # request: an 8 s stream passed `readTimeout: 3s` and was cut by `writeTimeout: 3s` (measured
        # with Traefik 3.7.15, GET and POST).
        value = seconds(dig(ep, "transport", "respondingTimeouts", "writeTimeout"))
        problem = rules.total_too_short(value, budget.max_stream, f"entryPoint {name} respondingTimeouts.writeTimeout")
        if problem:
            reports[path].add(
                line_at(ep, "transport", "respondingTimeouts", "writeTimeout"),
                rules.TOTAL_TIMEOUT,
                problem + " (it bounds writing the whole response)",
                "set `transport.respondingTimeouts.writeTimeout: 0s` on this entryPoint",
                f"{DOCS}/reference/install-configuration/entrypoints/",
            )
    for name, (path, transport) in config.transports.items():
        read = seconds(dig(transport, "forwardingTimeouts", "readTimeout"))
        problem = rules.idle_too_short(read, budget.ping, f"serversTransport {name} forwardingTimeouts.readTimeout")
        if problem:
            reports[path].add(
                line_at(transport, "forwardingTimeouts", "readTimeout"),
                rules.IDLE_TIMEOUT,
                problem,
                "raise `forwardingTimeouts.readTimeout` (e.g. 3600s) or leave it unset",
                f"{DOCS}/reference/routing-configuration/http/load-balancing/serverstransport/",
            )
    for name, (path, mw) in config.middlewares.items():
        if budget.stream_paths and name not in streaming_middlewares(config, budget):
            continue  # --stream-path: no streaming router uses it
        users = [router for _, r, router in config.routers if name in _used_middlewares(r)]
        route = f"middleware {name}" + (f" (routers {', '.join(users)})" if users else "")
        compress = mw.get("compress") if isinstance(mw, LineDict) else None
        if compress is not None:
            included = dig(compress, "includedContentTypes")
            excluded = dig(compress, "excludedContentTypes") or []
            if (included and rules.SSE_MEDIA_TYPE in included) or (
                not included and rules.SSE_MEDIA_TYPE not in excluded
            ):
                misplaced = (
                    " (excludedContentTypes is set beside `compress`, not inside it, so it is ignored)"
                    if "excludedContentTypes" in mw
                    else ""
                )
                reports[path].on_route(route).add(
                    line_at(mw, "compress"),
                    rules.COMPRESSION,
                    f"middleware {name}: compress does not exclude {rules.SSE_MEDIA_TYPE} "
                    "(only application/grpc by default)" + misplaced,
                    f"add `excludedContentTypes: [{rules.SSE_MEDIA_TYPE}]`",
                    f"{DOCS}/reference/routing-configuration/http/middlewares/compress/",
                )
        if isinstance(mw, LineDict) and "buffering" in mw:
            reports[path].on_route(route).add(
                line_at(mw, "buffering"),
                rules.BUFFERING,
                f"middleware {name}: buffering holds whole responses",
                "do not attach the buffering middleware to streaming routes",
                f"{DOCS}/reference/routing-configuration/http/middlewares/buffering/",
            )
    for name, (path, service) in config.services.items():
        lb = service.get("loadBalancer") if isinstance(service, LineDict) else None
        if not isinstance(lb, LineDict):
            continue
        for server in mappings(lb.get("servers")):
            if str(server.get("url", "")).startswith("h2c://"):
                reports[path].add(
                    server.line,
                    rules.HTTP1,
                    f"service {name}: h2c:// upstream; uvicorn speaks HTTP/1.1 only",
                    "use an http:// server URL",
                    f"{DOCS}/reference/routing-configuration/http/load-balancing/service/",
                )
        _check_pool(config, reports, budget, name, path, lb)
    _check_metrics(config, reports)


def _used_middlewares(router: LineDict) -> list[str]:
    used = router.get("middlewares") or []
    return [str(m).split("@")[0] for m in (used if isinstance(used, list) else [used])]


def streaming_middlewares(config: Config, budget: Budget) -> set[str]:
    """Middlewares attached to a router whose rule can match a streaming path."""
    return {
        used
        for _, router, _ in config.routers
        if any(rule_matches(str(router.get("rule", "")), path) for path in budget.stream_paths)
        for used in _used_middlewares(router)
    }


def _check_pool(
    config: Config, reports: dict[Path, Report], budget: Budget, name: str, path: Path, lb: LineDict
) -> None:
    transport_name = str(lb.get("serversTransport", "")).split("@")[0]
    where: tuple[Path, Any] | None = (
        config.transports.get(transport_name) if transport_name else config.default_transport
    )
    value = seconds(dig(where[1] if where else None, "forwardingTimeouts", "idleConnTimeout"))
    what = f"service {name}: transport {transport_name or 'default'} idleConnTimeout" + (
        "" if value is not None else " (default 90 s)"
    )
    problem = rules.pool_too_long(
        value if value is not None else DEFAULT_IDLE_CONN, budget.keepalive, budget.keepalive_source, what
    )
    if problem:
        at_path, line = (
            (where[0], line_at(where[1], "forwardingTimeouts", "idleConnTimeout")) if where else (path, lb.line)
        )
        reports[at_path].add(
            line,
            rules.KEEPALIVE,
            problem,
            "set `forwardingTimeouts.idleConnTimeout: 60s` on the serversTransport" + rules.BELOW_APP_KEEPALIVE,
            f"{DOCS}/reference/routing-configuration/http/load-balancing/serverstransport/",
        )


def _check_metrics(config: Config, reports: dict[Path, Report]) -> None:
    candidates = []
    for path, router, name in config.routers:
        rule = str(router.get("rule", ""))
        if rule_matches(rule, rules.METRICS_PATH):
            candidates.append((int(router.get("priority") or len(rule)), path, router, name))
    for _, path, router, name in sorted(candidates, key=lambda c: -c[0])[:1]:
        service = str(router.get("service", "")).split("@")[0]
        guarded = any(
            isinstance(mw, tuple) and any(key in mw[1] for key in ACCESS_MIDDLEWARES)
            for mw in (_middleware(config, m) for m in router.get("middlewares") or [])
        )
        if service in config.services and "loadBalancer" in config.services[service][1] and not guarded:
            reports[path].add(
                router.line,
                rules.METRICS,
                f"router {name} ({router.get('rule')}) forwards {rules.METRICS_PATH} to the app: "
                + rules.METRICS_EXPOSED,
                f"add ``&& !PathPrefix(`{rules.METRICS_PATH}`)`` to the rule, or a router for it with an "
                "ipAllowList middleware",
                f"{DOCS}/reference/routing-configuration/http/routing/rules-and-priority/",
            )


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    reports = {path: Report(path) for path in paths}
    config = Config()
    for path in paths:
        try:
            for doc in load_documents(path.read_text(encoding="utf-8")):
                if isinstance(doc, LineDict):
                    config.read(path, doc)
        except yaml.YAMLError as exc:
            reports[path].error(f"Traefik YAML does not parse: {exc}")
    check_config(config, reports, budget)
    return [f for report in reports.values() for f in report.findings]
