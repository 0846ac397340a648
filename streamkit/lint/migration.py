"""ingress2gateway (kubernetes-sigs/ingress2gateway 1.x): what its ingress-nginx conversion does to
timeouts, so an HTTPRoute it wrote is explained in the terms of the Ingress it came from.

Its common emitter turns the largest of an Ingress's `proxy-connect/read/send-timeout`
annotations into `timeouts.request` = 10 × that value (`tcpTimeoutMultiplier = 10`,
pkg/i2gw/emitters/common_emitter): ingress-nginx's idle timer between two reads becomes a TOTAL
deadline for the whole response, so `proxy-read-timeout: "60"` caps every stream at 10 minutes.
An Ingress without those annotations gets no `timeouts` at all, and Envoy Gateway then applies
Envoy's 15 s route timeout. Both fall under SK4 (total-timeout); this adds the why and the fix.
"""

from __future__ import annotations

from typing import Any

from streamkit.lint.durations import show
from streamkit.lint.yamlsource import dig

MULTIPLIER = 10
GENERATOR_MARKS = ("ingress2gateway", "i2gw")


def from_ingress2gateway(body: Any) -> bool:
    """The route says it was written by ingress2gateway (an annotation or label naming it)."""
    meta = dig(body, "metadata") or {}
    words = " ".join(f"{k} {v}" for part in ("annotations", "labels") for k, v in (meta.get(part) or {}).items())
    return any(mark in words.lower() for mark in GENERATOR_MARKS)


def migration_hint(body: Any, key: str, value: float | None) -> str:
    """Why an HTTPRoute's total timeout looks the way it does after an ingress2gateway conversion."""
    generated = from_ingress2gateway(body)
    if value is None:
        if not generated:
            return ""
        return (
            "; ingress2gateway wrote no timeouts because the Ingress had no proxy-*-timeout annotation, so "
            "Envoy Gateway's 15 s default applies"
        )
    looks_converted = key == "request" and value % MULTIPLIER == 0 and value >= 10 * MULTIPLIER
    if not (generated or looks_converted):
        return ""
    source = show(value / MULTIPLIER)
    return (
        f"; this looks like ingress2gateway's conversion of an ingress-nginx timeout ({source} × {MULTIPLIER}): "
        f"proxy-read-timeout ({source}) was an idle timer between two reads, timeouts.request is a TOTAL "
        "deadline, so every longer stream is cut"
    )
