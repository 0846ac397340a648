"""How each proxy reloads its config while streams are open (measured by `make load`, see each
`infra/<proxy>/README.md` and docs/capacity.md).

`RELOADS[name].proxy` is the definition to run when a reload will be asked for (HAProxy runs in
master-worker mode, as its systemd unit does), `run(proc, workdir)` performs one reload.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from streamkit.local import Process
from streamkit.proxies import caddy, envoy, haproxy, nginx, traefik
from streamkit.proxies.base import Launch, ProxyDef


@dataclass(frozen=True)
class Reload:
    how: str  # what `run` does, as an operator would do it
    proxy: ProxyDef
    run: Callable[[Process, Path], None]


def _signal(sig: int) -> Callable[[Process, Path], None]:
    def run(proc: Process, workdir: Path) -> None:
        proc.signal(sig)

    return run


def haproxy_master_worker(launch: Launch) -> list[str]:
    """`-W`: a master that re-executes itself on SIGUSR2 and keeps old workers for their streams."""
    return [launch.binary, "-W", "-db", "-f", str(launch.config)]


def caddy_watch(launch: Launch) -> list[str]:
    """`--watch`: Caddy reloads its config when the file changes (the shipped file keeps the admin
    API off, so `caddy reload`, which posts to it, cannot be used)."""
    return [*caddy.command(launch), "--watch"]


def _touch(name: str) -> Callable[[Process, Path], None]:
    """Rewrite a watched config file (a comment line appended: same routes, a new version),
    atomically: written beside it, then renamed over it. An in-place write lets the watcher read a
    truncated file: Traefik then drops every route and answers 404 until the next change (seen
    under load: 4,122 of 4,272 requests)."""

    def run(proc: Process, workdir: Path) -> None:
        path = workdir / name
        staged = path.with_name(path.name + ".new")
        staged.write_text(path.read_text() + "# reloaded\n")
        os.replace(staged, path)

    return run


def _no_reload(proc: Process, workdir: Path) -> None:
    raise NotImplementedError(ENVOY_NO_RELOAD)


ENVOY_NO_RELOAD = (
    "Envoy applies a changed static file only by a hot restart (a second envoy with --restart-epoch "
    "that takes the sockets over through shared memory, driven by a wrapper such as hot-restarter.py); "
    "the runner starts Envoy with --disable-hot-restart so that several run side by side. Production "
    "Envoy changes routes and clusters through xDS without a restart; not measured here."
)

RELOADS: dict[str, Reload] = {
    "nginx": Reload("nginx -s reload (SIGHUP to the master)", nginx.PROXY, _signal(signal.SIGHUP)),
    "haproxy": Reload(
        "master-worker reload (haproxy -W, SIGUSR2 to the master)",
        replace(haproxy.PROXY, command=haproxy_master_worker),
        _signal(signal.SIGUSR2),
    ),
    "caddy": Reload(
        "caddy run --watch, Caddyfile rewritten", replace(caddy.PROXY, command=caddy_watch), _touch("Caddyfile")
    ),
    "traefik": Reload("file provider with watch: true, dynamic.yml rewritten", traefik.PROXY, _touch("dynamic.yml")),
    "envoy": Reload("not measured: " + ENVOY_NO_RELOAD, envoy.PROXY, _no_reload),
}
