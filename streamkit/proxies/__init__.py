"""Proxies the kit ships configs for, and how to run each real binary with its shipped config.

`PROXIES` is the registry the e2e suite and `streamkit demo` iterate over: adding a proxy is one module
defining `PROXY = ProxyDef(...)` plus one line here.
"""

from __future__ import annotations

from streamkit.proxies import caddy, envoy, haproxy, nginx, traefik
from streamkit.proxies.base import ProxyDef

PROXIES: dict[str, ProxyDef] = {
    "nginx": nginx.PROXY,
    "caddy": caddy.PROXY,
    "envoy": envoy.PROXY,
    "traefik": traefik.PROXY,
    "haproxy": haproxy.PROXY,
}
