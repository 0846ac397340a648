"""Caddy: the shipped `infra/caddy/Caddyfile`, run with `caddy run` (admin API off in the file).

Caddy keeps certificates and state under $HOME / $XDG_*; each run gets its own under the work
directory so nothing is written to the user's home.
"""

from __future__ import annotations

from streamkit.proxies.base import Launch, ProxyDef


def command(launch: Launch) -> list[str]:
    return [launch.binary, "run", "--config", str(launch.config), "--adapter", "caddyfile"]


def env(launch: Launch) -> dict[str, str]:
    home = launch.workdir / "home"
    return {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}


PROXY = ProxyDef(
    name="caddy",
    binary="caddy",
    configs=("Caddyfile",),
    command=command,
    version_args=("version",),
    env=env,
)
