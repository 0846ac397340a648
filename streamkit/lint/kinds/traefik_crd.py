"""Traefik's Kubernetes CRDs (traefik.io, formerly traefik.containo.us): `Middleware` (compress,
buffering), `ServersTransport` (forwarding timeouts) and `IngressRoute` (routes and the
middlewares they use). Their `spec` has the same fields as the file provider's dynamic
configuration, so they are checked by `streamkit.lint.traefik` as if they were one.
"""

from __future__ import annotations

from pathlib import Path

from streamkit.lint import traefik
from streamkit.lint.findings import Budget, Report
from streamkit.lint.k8s import Doc
from streamkit.lint.yamlsource import LineDict, dig, mappings

GROUPS = ("traefik.io", "traefik.containo.us")


def check_documents(docs: list[Doc], reports: dict[Path, Report], budget: Budget) -> None:
    config = traefik.Config()
    found = False
    for doc in docs:
        if not any(group in str(doc.body.get("apiVersion", "")) for group in GROUPS):
            continue
        name, spec = str(dig(doc.body, "metadata", "name")), doc.body.get("spec")
        if not isinstance(spec, LineDict):
            continue
        found = True
        if doc.kind == "Middleware":
            config.middlewares[name] = (doc.path, spec)
        elif doc.kind == "ServersTransport":
            config.transports[name] = (doc.path, spec)
        elif doc.kind == "IngressRoute":
            for number, route in enumerate(mappings(spec.get("routes"))):
                router = LineDict()
                router.line = route.line
                router.update(
                    rule=route.get("match", ""), middlewares=[m.get("name") for m in mappings(route.get("middlewares"))]
                )
                config.routers.append((doc.path, router, f"{name} route {number}"))
    if found:
        traefik.check_config(config, reports, budget)
