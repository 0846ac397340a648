"""Processes for the probe tests: the reference app and the naive SSE server (negative controls)."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import httpx
import pytest
import trustme

from streamkit.local import Process, free_port, wait_until
from tests.conftest import Processes

# Settings the app runs with here (the documented substitution: environment variables).
APP_PING_INTERVAL = 0.5
# The naive server's default heartbeat period (its `pings=` query parameter).
NAIVE_PING_INTERVAL = 0.3
# A paced stream without emitted_at, judged by burst detection. Events 0.2 s apart: only a stall
# of the probe itself longer than 0.6 s (4 of 7 events bunched) could make it look buffered.
PACED_NO_STAMPS = "stamps=0&n=6&interval=0.2"
START_TIMEOUT = 20.0  # generous: two cores shared by several test runs


def start_naive(processes: Processes, log_dir: Path, tls: tuple[Path, Path, Path] | None = None) -> str:
    """Start the naive SSE server (https when `tls` = (ca, cert, key) is given); return its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.probe.naive_server", str(port), *(str(p) for p in (tls or ())[1:])]
    proc = processes.add(Process("naive-sse", argv, log_dir / f"naive-{port}.log").start())
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True

    def ready() -> bool:
        try:
            return httpx.get(url + "/healthz", verify=verify, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(lambda: not proc.alive() or ready(), START_TIMEOUT, what="naive SSE server")
    assert proc.alive(), proc.logs()
    return url


@pytest.fixture(scope="module")
def app_url(module_processes: Processes) -> str:
    _, url = module_processes.app(env={"EMIT_TIMESTAMPS": "true", "PING_INTERVAL": str(APP_PING_INTERVAL)})
    return url


@pytest.fixture(scope="module")
def naive_url(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> str:
    return start_naive(module_processes, tmp_path_factory.mktemp("naive"))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A test CA (trustme) and a server certificate for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1")
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    authority.cert_pem.write_to_path(str(ca_pem))
    server.cert_chain_pems[0].write_to_path(str(cert_pem))
    server.private_key_pem.write_to_path(str(key_pem))
    return ca_pem, cert_pem, key_pem


@pytest.fixture(scope="module")
def naive_tls_url(module_processes: Processes, ca: tuple[Path, Path, Path]) -> str:
    return start_naive(module_processes, ca[0].parent, tls=ca)
