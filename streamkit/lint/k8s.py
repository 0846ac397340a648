"""Kubernetes manifests (multi-document YAML): ingress-nginx Ingresses and ConfigMap, Gateway API
HTTPRoutes, Envoy Gateway policies, GKE BackendConfig/GCPBackendPolicy, and the app Deployment.

All manifests of one lint run are read together: a Deployment's `KEEPALIVE` env is the app
keep-alive the proxies' pools are compared with (docs/timeouts.md and infra/k8s/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.migration import migration_hint
from streamkit.lint.yamlsource import LineDict, dig, line_at, load_documents, mappings

NAME = "kubernetes"
NGINX = "nginx.ingress.kubernetes.io/"
DOCS_INGRESS = "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/"
DOCS_CONFIGMAP = "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/"
DOCS_ROUTE = "https://gateway-api.sigs.k8s.io/api-types/httproute/#timeouts-optional"
DOCS_EG = "https://gateway.envoyproxy.io/docs/api/extension_types/"
DOCS_GKE = "https://cloud.google.com/kubernetes-engine/docs/how-to/ingress-configuration#timeout"
INGRESS_NGINX_POOL = 60.0  # upstream-keepalive-timeout default
ENVOY_GATEWAY_POOL = 3600.0  # BackendTrafficPolicy connectionIdleTimeout default
ENVOY_ROUTE_TIMEOUT = 15.0  # Envoy's route timeout when HTTPRoute timeouts.request is unset
GKE_BACKEND_TIMEOUT = 30.0
DEFAULT_GRACE_PERIOD = 30.0  # Kubernetes' terminationGracePeriodSeconds
GRACEFUL_MARGIN = 5.0  # gunicorn graceful_timeout = DRAIN_SECONDS + 5 (app/settings.py)
DOCS_GRACE = "https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination"


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".yaml", ".yml") and "apiVersion:" in text and "kind:" in text and not is_kustomization(path)


def is_kustomization(path: Path) -> bool:
    return path.name in ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass
class Doc:
    path: Path
    body: LineDict

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return f"{self.kind} {dig(self.body, 'metadata', 'name')}"


def _app_keepalive(docs: list[Doc], budget: Budget) -> Budget:
    """The smallest KEEPALIVE env of the app's Deployments, when the manifests set one."""
    found: list[tuple[float, str]] = []
    for doc in docs:
        if doc.kind not in ("Deployment", "StatefulSet"):
            continue
        for container in mappings(dig(doc.body, "spec", "template", "spec", "containers")):
            for env in mappings(container.get("env")):
                value = seconds(env.get("value"))
                if env.get("name") == "KEEPALIVE" and value is not None:
                    found.append((value, f"KEEPALIVE in {doc.path.name}:{env.line}"))
    return budget.with_keepalive(*min(found)) if found else budget


def _ingress(doc: Doc, report: Report, budget: Budget) -> None:
    notes = dig(doc.body, "metadata", "annotations") or {}
    ingress_class = dig(doc.body, "spec", "ingressClassName") or notes.get("kubernetes.io/ingress.class")
    if ingress_class not in (None, "nginx") and not any(k.startswith(NGINX) for k in notes):
        return  # another controller's Ingress (alb, gce, traefik...)

    def at(key: str) -> int:
        return line_at(doc.body, "metadata", "annotations", NGINX + key)

    paths = ingress_paths(doc.body)
    if not any(budget.streams(path, "exact" if kind == "Exact" else "elementwise") for path, kind in paths):
        return  # --stream-path: none of this Ingress's paths streams
    route = f"{doc.name} paths {', '.join(path for path, _ in paths)}"
    report = report.on_route(route)
    if str(notes.get(NGINX + "proxy-buffering", "off")) != "off":
        report.add(
            at("proxy-buffering"),
            rules.BUFFERING,
            f"{doc.name}: proxy-buffering is on",
            f'set `{NGINX}proxy-buffering: "off"` (ingress-nginx default)',
            f"{DOCS_INGRESS}#proxy-buffering",
        )
    # proxy-read-timeout is the gap allowed between two reads from the app (proxy-send-timeout
    # only covers sending the request, so pings do not concern it).
    read = NGINX + "proxy-read-timeout"
    what = f"{doc.name}: proxy-read-timeout" + ("" if read in notes else " (default 60 s)")
    problem = rules.idle_too_short(seconds(notes.get(read, "60")), budget.ping, what)
    if problem:
        report.add(
            at("proxy-read-timeout"),
            rules.IDLE_TIMEOUT,
            problem,
            f'set `{read}: "3600"`',
            f"{DOCS_INGRESS}#custom-timeouts",
        )
    protocol = str(notes.get(NGINX + "backend-protocol", "HTTP")).upper()
    version = str(notes.get(NGINX + "proxy-http-version", "1.1"))
    if protocol in ("GRPC", "GRPCS", "H2C") or version != "1.1":
        report.add(
            at("backend-protocol" if protocol != "HTTP" else "proxy-http-version"),
            rules.HTTP1,
            f"{doc.name}: backend-protocol {protocol}, proxy-http-version {version}; uvicorn speaks HTTP/1.1",
            f'use `{NGINX}backend-protocol: "HTTP"` and proxy-http-version "1.1"',
            f"{DOCS_INGRESS}#backend-protocol",
        )
    for rule in mappings(dig(doc.body, "spec", "rules")):
        for item in mappings(dig(rule, "http", "paths")):
            path, kind = str(item.get("path", "/")), item.get("pathType", "Prefix")
            hit = (
                path == rules.METRICS_PATH
                if kind == "Exact"
                else rules.prefix_matches(path, rules.METRICS_PATH, elementwise=True)
            )
            if hit:
                report.add(
                    item.line,
                    rules.METRICS,
                    f"{doc.name}: path {path} ({kind}) forwards {rules.METRICS_PATH} to the app: "
                    + rules.METRICS_EXPOSED,
                    "route only the API paths (/v1/, /healthz) and scrape /metrics inside the cluster",
                    "https://kubernetes.io/docs/concepts/services-networking/ingress/#path-types",
                )


def ingress_paths(body: LineDict) -> list[tuple[str, str]]:
    """(path, pathType) of every rule of an Ingress; a default backend only is `/`."""
    found = [
        (str(item.get("path", "/")), str(item.get("pathType", "Prefix")))
        for rule in mappings(dig(body, "spec", "rules"))
        for item in mappings(dig(rule, "http", "paths"))
    ]
    return found or [("/", "Prefix")]


def _ingress_configmap(doc: Doc, report: Report, budget: Budget) -> None:
    data = doc.body.get("data") or {}
    if not isinstance(data, LineDict) or not any(
        k.startswith(("upstream-keepalive", "proxy-", "use-gzip")) for k in data
    ):
        return
    value = seconds(data.get("upstream-keepalive-timeout", INGRESS_NGINX_POOL))
    problem = rules.pool_too_long(
        value, budget.keepalive, budget.keepalive_source, f"{doc.name}: upstream-keepalive-timeout"
    )
    if problem:
        report.add(
            data.line_of("upstream-keepalive-timeout"),
            rules.KEEPALIVE,
            problem,
            "lower upstream-keepalive-timeout" + rules.BELOW_APP_KEEPALIVE,
            f"{DOCS_CONFIGMAP}#upstream-keepalive-timeout",
        )
    if str(data.get("use-gzip", "false")) == "true" and rules.SSE_MEDIA_TYPE in str(data.get("gzip-types", "")):
        report.add(
            data.line_of("gzip-types"),
            rules.COMPRESSION,
            f"{doc.name}: gzip-types lists {rules.SSE_MEDIA_TYPE}",
            f"drop {rules.SSE_MEDIA_TYPE} from gzip-types",
            f"{DOCS_CONFIGMAP}#gzip-types",
        )
    if str(data.get("proxy-buffering", "off")) != "off":
        report.add(
            data.line_of("proxy-buffering"),
            rules.BUFFERING,
            f"{doc.name}: proxy-buffering is {data.get('proxy-buffering')} for every Ingress of this controller "
            "that does not set the annotation",
            f'set `proxy-buffering: "off"` (the default), or `{NGINX}proxy-buffering: "off"` on streaming Ingresses',
            f"{DOCS_CONFIGMAP}#proxy-buffering",
        )
    fix = 'set proxy-read-timeout: "3600"'
    _idle(doc, data, "proxy-read-timeout", report, budget, fix, f"{DOCS_CONFIGMAP}#proxy-read-timeout")


def _route_path_hit(match: Any, path: str) -> tuple[int, bool]:
    """(specificity, matches) of one HTTPRoute match for `path`."""
    spec = dig(match, "path") or {}
    kind, value = spec.get("type", "PathPrefix"), str(spec.get("value", "/"))
    if kind == "Exact":
        return 10_000, value == path
    if kind == "RegularExpression":
        return 5_000, rules.regex_matches(value, path)
    return len(value), rules.prefix_matches(value, path, elementwise=True)


def route_paths(rule: LineDict) -> list[tuple[str, str]]:
    """(value, type) of the path matches of one HTTPRoute rule (no match = every path)."""
    found = []
    for match in mappings(rule.get("matches")):
        spec = dig(match, "path") or {}
        found.append((str(spec.get("value", "/")), str(spec.get("type", "PathPrefix"))))
    return found or [("/", "PathPrefix")]


def _httproute(doc: Doc, report: Report, budget: Budget) -> None:
    best: tuple[int, LineDict] | None = None
    for rule in mappings(dig(doc.body, "spec", "rules")):
        timeouts = rule.get("timeouts") or {}
        paths = route_paths(rule)
        kinds = {"Exact": "exact", "RegularExpression": "regex"}
        if not any(budget.streams(value, kinds.get(kind, "elementwise")) for value, kind in paths):
            continue
        on_route = report.on_route(f"{doc.name} {', '.join(value for value, _ in paths)}")
        for key in ("request", "backendRequest"):
            if key == "backendRequest" and key not in timeouts:
                continue
            value = seconds(timeouts.get(key, ENVOY_ROUTE_TIMEOUT))
            what = f"{doc.name}: timeouts.{key}" + (
                "" if key in timeouts else " (unset: Envoy Gateway leaves Envoy's 15 s total route timeout)"
            )
            problem = rules.total_too_short(value, budget.max_stream, what)
            if problem:
                on_route.add(
                    line_at(rule, "timeouts", key),
                    rules.TOTAL_TIMEOUT,
                    problem + migration_hint(doc.body, key, value if key in timeouts else None),
                    f'set `timeouts: {{{key}: "0s"}}` and an idle guard (BackendTrafficPolicy streamIdleTimeout)',
                    DOCS_ROUTE,
                )
        for match in mappings(rule.get("matches")) or [LineDict()]:
            specificity, hit = _route_path_hit(match, rules.METRICS_PATH)
            if hit and (best is None or specificity > best[0]):
                best = (specificity, rule)
    if best is not None and best[1].get("backendRefs"):
        report.add(
            best[1].line,
            rules.METRICS,
            f"{doc.name}: a rule forwards {rules.METRICS_PATH} to the app: {rules.METRICS_EXPOSED}",
            "match only the API paths (PathPrefix /v1/, Exact /healthz) and scrape /metrics in-cluster",
            "https://gateway-api.sigs.k8s.io/api-types/httproute/#matches",
        )


def _idle(doc: Doc, mapping: LineDict, key: str, report: Report, budget: Budget, fix: str, docs: str) -> None:
    """SK3 on one idle timeout of a resource (`key` of `mapping`, a duration)."""
    problem = rules.idle_too_short(seconds(mapping.get(key)), budget.ping, f"{doc.name}: {key}")
    if problem:
        report.add(mapping.line_of(key), rules.IDLE_TIMEOUT, problem, fix, docs)


def _envoy_gateway_policy(doc: Doc, report: Report, budget: Budget) -> None:
    http = dig(doc.body, "spec", "timeout", "http") or LineDict()
    if doc.kind == "BackendTrafficPolicy":
        value = seconds(http.get("connectionIdleTimeout", ENVOY_GATEWAY_POOL))
        what = f"{doc.name}: timeout.http.connectionIdleTimeout" + (
            "" if "connectionIdleTimeout" in http else " (default 1 h)"
        )
        problem = rules.pool_too_long(value, budget.keepalive, budget.keepalive_source, what)
        if problem:
            report.add(
                line_at(doc.body, "spec", "timeout", "http", "connectionIdleTimeout"),
                rules.KEEPALIVE,
                problem,
                "set `timeout.http.connectionIdleTimeout: 60s`" + rules.BELOW_APP_KEEPALIVE,
                f"{DOCS_EG}#httptimeout",
            )
        for key in ("requestTimeout", "maxStreamDuration"):
            problem = rules.total_too_short(
                seconds(http.get(key)), budget.max_stream, f"{doc.name}: timeout.http.{key}"
            )
            if problem:
                report.add(
                    http.line_of(key),
                    rules.TOTAL_TIMEOUT,
                    problem,
                    f"set `{key}: 0s` or remove it",
                    f"{DOCS_EG}#httptimeout",
                )
    _idle(
        doc, http, "streamIdleTimeout", report, budget, "raise streamIdleTimeout (e.g. 120s)", f"{DOCS_EG}#httptimeout"
    )


def _gke(doc: Doc, report: Report, budget: Budget) -> None:
    keys = ("spec", "timeoutSec") if doc.kind == "BackendConfig" else ("spec", "default", "timeoutSec")
    value = seconds(dig(doc.body, *keys) or GKE_BACKEND_TIMEOUT)
    problem = rules.total_too_short(
        value, budget.max_stream, f"{doc.name}: timeoutSec" + ("" if dig(doc.body, *keys) else " (default 30 s)")
    )
    if problem:
        report.add(
            line_at(doc.body, *keys),
            rules.TOTAL_TIMEOUT,
            problem + " (the backend service timeout is a total response time for HTTP)",
            "set timeoutSec to the longest stream (e.g. 3600)",
            DOCS_GKE,
        )


def _pre_stop_seconds(container: LineDict) -> float:
    pre_stop = dig(container, "lifecycle", "preStop") or {}
    if "sleep" in pre_stop:
        return seconds(dig(pre_stop, "sleep", "seconds")) or 0.0
    command = list(dig(pre_stop, "exec", "command") or [])
    if command[:1] == ["sleep"] and len(command) == 2:
        return seconds(command[1]) or 0.0
    return 0.0


def _deployment(doc: Doc, report: Report, budget: Budget) -> None:
    """SK8: the pod's grace period covers the preStop delay plus gunicorn's graceful_timeout
    (DRAIN_SECONDS + 5), so open streams end with a terminal event before SIGKILL."""
    pod = dig(doc.body, "spec", "template", "spec") or LineDict()
    for container in mappings(pod.get("containers")):
        if "image" not in container:
            continue  # a kustomize patch, not a whole Deployment: judged in the rendered overlay
        env = {e.get("name"): e.get("value") for e in mappings(container.get("env"))}
        drain = seconds(env.get("DRAIN_SECONDS")) if "DRAIN_SECONDS" in env else budget.drain
        if not drain:
            continue
        grace = seconds(pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)) or 0.0
        needed = _pre_stop_seconds(container) + drain + GRACEFUL_MARGIN
        if grace <= needed:
            report.add(
                pod.line_of("terminationGracePeriodSeconds") if "terminationGracePeriodSeconds" in pod else pod.line,
                rules.DRAIN,
                f"{doc.name}: terminationGracePeriodSeconds ({grace:g} s) does not exceed preStop "
                f"({_pre_stop_seconds(container):g} s) + gunicorn graceful_timeout (DRAIN_SECONDS {drain:g} + "
                f"{GRACEFUL_MARGIN:g} s): the kubelet kills the app while streams are still draining",
                f"set terminationGracePeriodSeconds above {needed:g}",
                DOCS_GRACE,
            )


def _stream_idle_guard(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    """SK3: an HTTPRoute with `timeouts.request: 0s` also turns Envoy's route idle timeout off; a
    BackendTrafficPolicy on that route must re-arm it (timeout.http.streamIdleTimeout)."""
    guarded = {
        str(dig(ref, "name"))
        for doc in docs
        if doc.kind == "BackendTrafficPolicy"
        and "streamIdleTimeout" in (dig(doc.body, "spec", "timeout", "http") or {})
        for ref in mappings(dig(doc.body, "spec", "targetRefs"))
        if ref.get("kind") == "HTTPRoute"
    }
    for doc in docs:
        if doc.kind != "HTTPRoute" or str(dig(doc.body, "metadata", "name")) in guarded:
            continue
        for rule in mappings(dig(doc.body, "spec", "rules")):
            if seconds(dig(rule, "timeouts", "request")) == 0:
                reports[doc.path].add(
                    line_at(rule, "timeouts", "request"),
                    rules.IDLE_TIMEOUT,
                    f"{doc.name}: timeouts.request 0s also turns off Envoy's stream idle guard, and no "
                    "BackendTrafficPolicy on this route re-arms it: a stream whose upstream hangs never ends",
                    "add a BackendTrafficPolicy for this route with `timeout.http.streamIdleTimeout` "
                    f"(longer than two ping intervals, {2 * budget.ping:g} s)",
                    f"{DOCS_EG}#httptimeout",
                    # Only the kit depends on this guard: other apps (and the corpus's working
                    # routes) end a hung upstream themselves, so elsewhere it is a note.
                    app_only=True,
                )


CHECKS = {
    "Deployment": _deployment,
    "StatefulSet": _deployment,
    "Ingress": _ingress,
    "ConfigMap": _ingress_configmap,
    "HTTPRoute": _httproute,
    "BackendTrafficPolicy": _envoy_gateway_policy,
    "ClientTrafficPolicy": _envoy_gateway_policy,
    "BackendConfig": _gke,
    "GCPBackendPolicy": _gke,
}


def check_documents(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    from streamkit.lint.kinds import checkers  # more kinds, each in its own module

    app_budget = _app_keepalive(docs, budget)
    for doc in docs:
        if doc.kind in CHECKS:  # findings name the resource unless a check names a finer route
            CHECKS[doc.kind](doc, reports[doc.path].on_route(doc.name), app_budget)
    for check_kind in checkers():
        check_kind(docs, reports, app_budget)
    _stream_idle_guard(docs, reports, app_budget)


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    reports = {path: Report(path) for path in paths}
    docs: list[Doc] = []
    for path in paths:
        try:
            docs += [Doc(path, d) for d in load_documents(path.read_text(encoding="utf-8")) if isinstance(d, LineDict)]
        except yaml.YAMLError as exc:
            reports[path].error(f"YAML does not parse: {exc}")
    check_documents(docs, reports, budget)
    return [f for report in reports.values() for f in report.findings]
