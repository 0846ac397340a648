"""Envoy AI Gateway `AIGatewayRoute` (aigateway.envoyproxy.io): each rule becomes an Envoy Gateway
HTTPRoute rule whose `timeouts.request` is a TOTAL deadline, 60 s when the rule sets none.

Default: `DefaultRequestTimeout = "60s"` (envoyproxy/ai-gateway#795, #796, "Changed from Envoy
Gateway's default of 15s to 60s for AI workloads"). A public report shows streamed generations cut
at exactly 61 s, three out of three (nicolerenee/infra#2078); another, SSE `unexpected EOF` at
~60 s (defilantech/LLMKube#734).
"""

from __future__ import annotations

from pathlib import Path

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Report
from streamkit.lint.k8s import Doc
from streamkit.lint.rules import TOTAL_TIMEOUT, total_too_short
from streamkit.lint.yamlsource import dig, line_at, mappings

DEFAULT_REQUEST_TIMEOUT = 60.0
DOCS = "https://aigateway.envoyproxy.io/docs/api/#aigatewayrouterule"
FIX = (
    'set `timeouts: {request: "0s"}` (or at least the longest stream) on the rule, and guard idle streams '
    "with a ClientTrafficPolicy `timeout.http.streamIdleTimeout` (e.g. 300s)"
)


def check_documents(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    for doc in docs:
        if doc.kind != "AIGatewayRoute" or "aigateway.envoyproxy.io" not in str(doc.body.get("apiVersion", "")):
            continue
        for number, rule in enumerate(mappings(dig(doc.body, "spec", "rules"))):
            timeouts = rule.get("timeouts") or {}
            unset = "request" not in timeouts
            value = DEFAULT_REQUEST_TIMEOUT if unset else seconds(timeouts.get("request"))
            what = f"{doc.name} rule {number} timeouts.request" + (
                " (unset: AI Gateway's implicit 60 s total timeout; streams are cut at 60 s)" if unset else ""
            )
            problem = total_too_short(value, budget.max_stream, what)
            if problem:
                reports[doc.path].on_route(f"{doc.name} rule {number}").add(
                    line_at(rule, "timeouts", "request") if not unset else rule.line,
                    TOTAL_TIMEOUT,
                    problem,
                    FIX,
                    DOCS,
                )
