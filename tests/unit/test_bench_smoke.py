"""The benchmark harness runs end to end on tiny sizes, so it cannot rot between `make bench` runs.

Real processes (fake-upstream, the app under gunicorn, a uvicorn peer) on 127.0.0.1; nothing here
judges performance (that is `make bench`'s job): only that every part produced its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Seconds for the smoke run; it takes a few seconds, generous for 2 busy cores.
SMOKE_TIMEOUT = 120


def test_bench_harness_smoke(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path), "--only", "relay,ceiling"],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [document] = tmp_path.glob("*.json")
    doc = json.loads(document.read_text())
    assert doc["meta"]["smoke"] and doc["meta"]["commit"]
    for name in ("direct", "kit"):
        [figure] = doc["relay"]["targets"][name].values()
        assert figure["tokens"]["min"] > 0 and figure["failed"]["median"] == 0
        assert figure["server_cpu_us_per_token"]["median"] > 0
    assert doc["ceiling"]["targets"]["raw_asgi"]["events_per_s"]["median"] > 0
    table = document.with_suffix(".md").read_text()
    assert "## Goals" in table and "## 1. Relay cost" in table and "## 2. Ceiling" in table
    assert sorted(p.name.split("-", 3)[-1] for p in tmp_path.glob("*.png")) == [
        "ceiling.png",
        "relay_cpu.png",
        "relay_gap.png",
    ]
