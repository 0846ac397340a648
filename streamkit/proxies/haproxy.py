"""HAProxy: the shipped `infra/haproxy/haproxy.cfg`, run in the foreground (`-db`).

HAProxy reads a certificate and its private key from ONE PEM file (`crt`), while the tests (and
most certificate tools) produce two. `write_configs` concatenates them into the work directory and
substitutes that file as `cert`; nothing else differs from the other proxies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from streamkit.proxies.base import CAPABILITIES, Launch, ProxyDef
from streamkit.proxies.substitute import Value


@dataclass(frozen=True)
class HAProxyDef(ProxyDef):
    def write_configs(
        self,
        workdir: Path,
        values: Mapping[str, Value],
        config_override: Path | Mapping[str, Path] | None = None,
    ) -> dict[str, Path]:
        wanted = dict(values)
        key = wanted.pop("key", None)
        if key is not None and "cert" in wanted:
            workdir.mkdir(parents=True, exist_ok=True)
            pem = workdir / "streamkit.pem"
            pem.write_text(Path(str(wanted["cert"])).read_text() + Path(str(key)).read_text())
            wanted["cert"] = str(pem)
        return super().write_configs(workdir, wanted, config_override)


# Why the generic disconnect checks skip HAProxy; tests/e2e/test_haproxy_specific.py measures both sides.
DISCONNECT_NOTE = (
    "HAProxy 2.6 does not watch a client connection while it relays a response: a client that left is "
    "noticed at the app's second write after it (with pings: within 2 x PING_INTERVAL; with a silent "
    "upstream and no pings: only when tokens flow again), see tests/e2e/test_haproxy_specific.py"
)


def command(launch: Launch) -> list[str]:
    return [launch.binary, "-db", "-f", str(launch.config)]


PROXY = HAProxyDef(
    name="haproxy",
    binary="haproxy",
    configs=("haproxy.cfg",),
    capabilities=CAPABILITIES - {"disconnect_silent"},  # see DISCONNECT_NOTE
    command=command,
    version_args=("-v",),
    notes={"disconnect_silent": DISCONNECT_NOTE},
)
