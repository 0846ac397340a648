"""Traefik: the shipped static `infra/traefik/traefik.yml` and dynamic `dynamic.yml`.

The static file names the dynamic one by path (`# streamkit: dynamic_file`); `prepare` points it at
the substituted copy in the work directory, through the same substitution as every other value.
Traefik opens its ports before its file provider has loaded the routes, so it is `ready` once a
request is routed (anything but Traefik's own "404 page not found").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from streamkit.proxies.base import CAPABILITIES, Launch, ProxyDef
from streamkit.proxies.substitute import Value, substitute_file

UNROUTED = "404 page not found"


def point_at_dynamic(launch: Launch) -> Path:
    static = launch.files["traefik.yml"]
    return substitute_file(static, static, {"dynamic_file": str(launch.files["dynamic.yml"])})


def command(launch: Launch) -> list[str]:
    return [launch.binary, f"--configFile={launch.config}"]


def routed(values: Mapping[str, Value]) -> bool:
    try:
        response = httpx.get(f"http://{values['listen']}/healthz", timeout=1.0)
    except httpx.HTTPError:
        return False
    return not (response.status_code == 404 and response.text.strip() == UNROUTED)


PROXY = ProxyDef(
    name="traefik",
    binary="traefik",
    configs=("traefik.yml", "dynamic.yml"),
    capabilities=CAPABILITIES,  # every check of the contract
    command=command,
    version_args=("version",),
    prepare=point_at_dynamic,
    ready=routed,
)
