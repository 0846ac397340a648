"""`streamkit demo --once` (what `make demo` runs): app behind Caddy with the shipped config, the probe's
report, and the URLs. Run as a user would, in its own process, stopped by PID if it hangs; every
distribution it imports lies within what `make demo` installs (`.[check,demo]`: no dev extra)."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from streamkit.local import Process, free_port, wait_until
from streamkit.proxies import PROXIES
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.test_packaging import demo_install

DEMO_DEADLINE = 60.0  # seconds: app + proxy start, a ~6 s probed stream, a busy shared host

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]


@pytest.mark.parametrize("name", ["caddy"])  # the default of `make demo`; nginx runs the same code path
def test_demo_once_prints_a_passing_report_and_urls(name: str, processes: Processes, tmp_path: Path) -> None:
    installed(PROXIES[name])
    port, tls_port, app_port = free_port(), free_port(), free_port()
    # The modules the demo's process imported (not those the interpreter's start-up brought, such as
    # a .pth file's).
    imported = tmp_path / "imported.json"
    record = (
        "import atexit, json, sys; before = set(sys.modules); from streamkit.cli import main; "
        f"atexit.register(lambda: open({str(imported)!r}, 'w').write(json.dumps(sorted(set(sys.modules) - before)))); "
        "sys.exit(main())"
    )
    argv = [sys.executable, "-c", record, "demo", "--once", "--proxy", name]
    argv += ["--port", str(port), "--tls-port", str(tls_port), "--app-port", str(app_port)]
    demo = processes.add(Process(name=f"demo-{name}", argv=argv, log_path=tmp_path / "demo.log").start())
    wait_until(lambda: not demo.alive(), DEMO_DEADLINE, 0.1, "streamkit demo --once to finish")
    output = demo.logs(tail=400)
    assert demo.popen is not None and demo.popen.returncode == 0, output
    assert "STREAMS" in output, output
    assert f"Demo page:   http://127.0.0.1:{port}/" in output, output
    assert f"https://127.0.0.1:{tls_port}/" in output, output
    # Every distribution the demo imported is in `make demo`'s install (none from the dev extra).
    distributions = importlib.metadata.packages_distributions()
    used = {
        dist.lower().replace("_", "-")
        for module in json.loads(imported.read_text())
        for dist in distributions.get(module.split(".")[0], [])
    }
    assert used, "no third-party import seen: the record is broken"
    assert used - {"streamkit"} <= demo_install(), sorted(used - {"streamkit"} - demo_install())
