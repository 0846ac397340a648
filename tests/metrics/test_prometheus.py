"""A real Prometheus (Debian's binary) scrapes the app with the kit's rules loaded, and the TTFT
recording rule yields a value (issue #4, acceptance 5).

The shipped infra/observability/prometheus/prometheus.yml is used with three substitutions only:
the target address, the two intervals (1 s instead of 15 s, so rate() sees two scrapes within
seconds) and absolute rule file paths (the copy lives in a temporary directory). Negative control:
a second Prometheus with the same configuration minus the rule files receives the same data but
must not have the recorded series.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import yaml

from streamkit.local import Process, free_port, metrics_url, wait_until
from streamkit.probe.observe import observe
from tests.app.conftest import RunningApp
from tests.conftest import Processes, require_binary
from tests.metrics.conftest import PROMETHEUS_DIR, RULE_FILES
from tests.metrics.promql import recorded_names

INTERVAL = "1s"
# Prometheus starts, scrapes twice around new streams and evaluates the rules: seconds, but
# allow for 2 busy cores.
DEADLINE = 60.0
TTFT_RAW = 'streamkit_time_to_first_token_seconds_count{job="streamkit", route="chat_stream"}'
TTFT_P95 = 'job_route:streamkit_time_to_first_token_seconds:p95_rate5m{job="streamkit", route="chat_stream"}'


def _config(target: str, directory: Path, with_rules: bool = True) -> Path:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=INTERVAL, evaluation_interval=INTERVAL)
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]] if with_rules else []
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(processes: Processes, config: Path) -> str:
    port = free_port()
    processes.add(
        Process(
            name=f"prometheus-{config.parent.name}",
            argv=[
                require_binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={config.parent / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            log_path=config.parent / "prometheus.log",
        ).start()
    )
    return f"http://127.0.0.1:{port}"


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _query(api: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _value(api: str, expr: str) -> float:
    result = _query(api, expr)
    return float(result[0]["value"][1]) if result else math.nan


def test_prometheus_records_time_to_first_token(metrics_app: RunningApp, processes: Processes, tmp_path: Path) -> None:
    # The metrics listener (METRICS_PORT), not the public port.
    target = metrics_url(metrics_app.url).removeprefix("http://").removesuffix("/metrics")
    api = _start(processes, _config(target, tmp_path / "kit"))
    # Negative control: the same configuration without the kit's rule files.
    bare = _start(processes, _config(target, tmp_path / "without-rules", with_rules=False))
    wait_until(lambda: _ready(api) and _ready(bare), DEADLINE, 0.2, "both Prometheus servers ready")

    def ttft_recorded() -> bool:
        # One short stream per poll: rate() needs the TTFT histogram to grow between two scrapes.
        observe(f"{metrics_app.url}/v1/chat/stream?prompt=prom&tokens=2&tokens_per_second=0&first_token_delay=0.05")
        raw = f"rate({TTFT_RAW}[5m])"
        return math.isfinite(_value(api, TTFT_P95)) and _value(bare, raw) > 0

    wait_until(ttft_recorded, DEADLINE, 0.5, "a TTFT p95 recorded by Prometheus")
    assert _value(api, TTFT_P95) > 0
    # Without the rules the same data arrives, but nothing records the quantile.
    assert _query(bare, TTFT_P95) == []

    # Every rule of the kit was loaded and evaluates without error against real data.
    groups = httpx.get(f"{api}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert recorded_names(RULE_FILES[0]) <= set(rules)
    assert all(rule["health"] == "ok" for rule in rules.values()), {n: r.get("lastError") for n, r in rules.items()}
    alerts = yaml.safe_load(RULE_FILES[1].read_text())["groups"][0]["rules"]
    assert {rule["alert"] for rule in alerts} == {n for n, r in rules.items() if r["type"] == "alerting"}
