"""Istio `VirtualService` route timeouts and `DestinationRule` connection pools.

`http[].timeout` is the total time allowed for a response (disabled by default); Envoy resets a
stream that outlives it. A DestinationRule's `connectionPool.http.idleTimeout` (default 1 h) is
the upstream pool's idle time, and `h2UpgradePolicy: UPGRADE` speaks HTTP/2 to the app.
Defaults as reported: route timeouts disabled (istio.io VirtualService reference, quoted in
SeldonIO/seldon-core#2727); pool idle timeout one hour (istio/istio#40619).
"""

from __future__ import annotations

from pathlib import Path

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Report
from streamkit.lint.k8s import Doc
from streamkit.lint.rules import (
    BELOW_APP_KEEPALIVE,
    HTTP1,
    KEEPALIVE,
    TOTAL_TIMEOUT,
    pool_too_long,
    total_too_short,
)
from streamkit.lint.yamlsource import dig, line_at, mappings

DOCS_VS = "https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute"
DOCS_DR = (
    "https://istio.io/latest/docs/reference/config/networking/destination-rule/#ConnectionPoolSettings-HTTPSettings"
)
DEFAULT_POOL_IDLE = 3600.0


def _uris(route: dict[str, object]) -> list[tuple[str, str]]:
    found = []
    for match in mappings(route.get("match")):
        uri = match.get("uri") or {}
        for kind in ("prefix", "exact", "regex"):
            if kind in uri:
                found.append((str(uri[kind]), kind))
    return found or [("/", "prefix")]


def check_documents(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    for doc in docs:
        if "istio.io" not in str(doc.body.get("apiVersion", "")):
            continue
        report = reports[doc.path]
        if doc.kind == "VirtualService":
            for route in mappings(dig(doc.body, "spec", "http")):
                uris = _uris(route)
                if not any(budget.streams(value, kind) for value, kind in uris):
                    continue
                name = f"{doc.name} http {route.get('name') or ', '.join(v for v, _ in uris)}"
                problem = total_too_short(seconds(route.get("timeout")), budget.max_stream, f"{name} timeout")
                if problem:
                    report.on_route(name).add(
                        route.line_of("timeout"),
                        TOTAL_TIMEOUT,
                        problem + " (a total response deadline: the stream is reset when it passes)",
                        "remove `timeout` from this route (disabled by default) or set it above the longest stream",
                        DOCS_VS,
                    )
        elif doc.kind == "DestinationRule":
            http = dig(doc.body, "spec", "trafficPolicy", "connectionPool", "http") or {}
            value = seconds(http.get("idleTimeout")) if "idleTimeout" in http else DEFAULT_POOL_IDLE
            what = f"{doc.name}: connectionPool.http.idleTimeout" + ("" if "idleTimeout" in http else " (default 1 h)")
            problem = pool_too_long(value, budget.keepalive, budget.keepalive_source, what)
            at = line_at(doc.body, "spec", "trafficPolicy", "connectionPool", "http", "idleTimeout")
            if problem:
                report.add(at, KEEPALIVE, problem, "set `idleTimeout: 60s`" + BELOW_APP_KEEPALIVE, DOCS_DR)
            if str(http.get("h2UpgradePolicy", "")) == "UPGRADE":
                report.add(
                    line_at(doc.body, "spec", "trafficPolicy", "connectionPool", "http", "h2UpgradePolicy"),
                    HTTP1,
                    f"{doc.name}: h2UpgradePolicy UPGRADE speaks HTTP/2 to the app; uvicorn speaks HTTP/1.1 only",
                    "use `h2UpgradePolicy: DO_NOT_UPGRADE` (or leave it unset)",
                    DOCS_DR,
                )
