"""AWS Load Balancer Controller annotations: the ALB (Ingress) and NLB/CLB (Service) idle timeout.

An ALB closes a connection on which no byte moved for `idle_timeout.timeout_seconds` (default
60 s), set through `alb.ingress.kubernetes.io/load-balancer-attributes`; a Classic LB through
`service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout` (default 60 s). Both are
idle timers, so pings must come more often.
"""

from __future__ import annotations

from pathlib import Path

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Report
from streamkit.lint.k8s import Doc
from streamkit.lint.rules import IDLE_TIMEOUT, idle_too_short
from streamkit.lint.yamlsource import dig, line_at

ALB_ATTRIBUTES = "alb.ingress.kubernetes.io/load-balancer-attributes"
CLB_IDLE = "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"
ALB_DEFAULT_IDLE = 60.0  # idle_timeout.timeout_seconds when the Ingress does not set it
DOCS_ALB = "https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#load-balancer-attributes"
DOCS_CLB = "https://kubernetes.io/docs/reference/labels-annotations-taints/#service-beta-kubernetes-io-aws-load-balancer-connection-idle-timeout"


def _alb_idle(value: str) -> float | None:
    for item in value.split(","):
        key, _, number = item.strip().partition("=")
        if key.strip() == "idle_timeout.timeout_seconds":
            return seconds(number.strip())
    return None


def check_documents(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    for doc in docs:
        notes = dig(doc.body, "metadata", "annotations") or {}
        alb = "alb" in (dig(doc.body, "spec", "ingressClassName"), notes.get("kubernetes.io/ingress.class"))
        if doc.kind == "Ingress" and (alb or ALB_ATTRIBUTES in notes):
            key, docs_url = ALB_ATTRIBUTES, DOCS_ALB
            value = _alb_idle(str(notes.get(ALB_ATTRIBUTES, "")))
            if value is None:
                value, key = ALB_DEFAULT_IDLE, f"{ALB_ATTRIBUTES} unset: default 60 s"
            fix = f"raise it: `{ALB_ATTRIBUTES}: idle_timeout.timeout_seconds=3600` (up to 4000)"
        elif doc.kind == "Service" and CLB_IDLE in notes:
            key, value, docs_url = CLB_IDLE, seconds(str(notes[CLB_IDLE])), DOCS_CLB
            fix = f'raise it: `{CLB_IDLE}: "3600"`'
        else:
            continue
        problem = idle_too_short(value, budget.ping, f"{doc.name}: load balancer idle timeout ({key})")
        if problem:
            reports[doc.path].on_route(doc.name).add(
                line_at(doc.body, "metadata", "annotations", key.split(" ")[0]), IDLE_TIMEOUT, problem, fix, docs_url
            )
