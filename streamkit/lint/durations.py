"""Durations as every config format writes them, in seconds: the kit's one duration parser
(lint's readers and the static tests of Kubernetes manifests and compose files use it)."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)?")


def seconds(value: object, unit: str = "s") -> float | None:
    """A duration in seconds: `90`, `"1m30s"`, `"3600s"`, `"500ms"`, `{"seconds": 5}` (Envoy).
    Unit-less numbers are in `unit` (nginx/Traefik seconds, HAProxy milliseconds, Caddy JSON ns).
    None when the value is not a duration."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) * _UNITS[unit]
    if isinstance(value, dict):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) * 1e-9
    text = str(value).strip().strip('"').lower()
    negative = text.startswith("-")
    text = text.lstrip("+-")
    if not text or _PART.sub("", text):
        return None
    total = sum(float(num) * _UNITS[u or unit] for num, u in _PART.findall(text))
    return -total if negative else total


def required_seconds(value: object, unit: str = "s") -> float:
    """Like `seconds`, but a value that is not a duration raises ValueError (naming it)."""
    result = seconds(value, unit)
    if result is None:
        raise ValueError(f"not a duration: {value!r}")
    return result


def show(value: float) -> str:
    """A duration for humans: 15 s, 60 s, 2 min, 1 h."""
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 120 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"
