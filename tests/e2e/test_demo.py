"""`streamkit demo --once` (what `make demo` runs): app behind Caddy with the shipped config, the probe's
report, and the URLs. Run as a user would, in its own process, stopped by PID if it hangs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamkit.local import Process, free_port, wait_until
from streamkit.proxies import PROXIES
from tests.conftest import Processes
from tests.e2e.conftest import installed

DEMO_DEADLINE = 60.0  # seconds: app + proxy start, a ~6 s probed stream, a busy shared host

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]


@pytest.mark.parametrize("name", ["caddy"])  # the default of `make demo`; nginx runs the same code path
def test_demo_once_prints_a_passing_report_and_urls(name: str, processes: Processes, tmp_path: Path) -> None:
    installed(PROXIES[name])
    port, tls_port, app_port = free_port(), free_port(), free_port()
    argv = [sys.executable, "-m", "streamkit.cli", "demo", "--once", "--proxy", name]
    argv += ["--port", str(port), "--tls-port", str(tls_port), "--app-port", str(app_port)]
    demo = processes.add(Process(name=f"demo-{name}", argv=argv, log_path=tmp_path / "demo.log").start())
    wait_until(lambda: not demo.alive(), DEMO_DEADLINE, 0.1, "streamkit demo --once to finish")
    output = demo.logs(tail=400)
    assert demo.popen is not None and demo.popen.returncode == 0, output
    assert "STREAMS" in output, output
    assert f"Demo page:   http://127.0.0.1:{port}/" in output, output
    assert f"https://127.0.0.1:{tls_port}/" in output, output
