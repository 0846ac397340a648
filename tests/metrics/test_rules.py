"""Static checks of infra/observability (issue #4, acceptance 3 and the dashboard's structure).

promtool checks and unit-tests the rules; the alerts carry what an on-call person needs; every
alert's test looks at the moment just before its `for:` window ends and at it; the dashboard has
the panels the issue asks for and every query parses. Each check also runs against a naive file
(tests/metrics/negative/ or a mutated copy) and must catch it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary
from tests.metrics.conftest import DASHBOARD, OBSERVABILITY, PROMETHEUS_DIR, RULE_FILES
from tests.metrics.promql import PromQLError, dashboard_queries, grafana_query_names, metric_names

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yaml"))
ALERTS = PROMETHEUS_DIR / "alerts.yaml"
RUNBOOK = OBSERVABILITY / "runbook.md"
NEGATIVE = Path(__file__).parent / "negative"
# Severities defined in infra/observability/README.md.
SEVERITIES = {"critical", "warning", "info"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, timeout=60)


def _alerts(path: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)([smhd])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"cannot read duration {duration!r}"
    return sum(int(n) * units[u] for n, u in parts)


# --- promtool --------------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    config = _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no promtool test files"
    result = _promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_negative_control_promtool_tests_catch_alerts_without_for_window(tmp_path: Path) -> None:
    """The same rule tests against the alerts with every `for:` removed: each alert then fires
    at once, so each "just before the window" case must fail."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path, dirs_exist_ok=True)
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = _promtool("test", "rules", str(tmp_path / "tests" / "alerts.test.yaml"))
    assert result.returncode != 0
    for alert in _alerts(ALERTS):
        assert f"alertname: {alert['alert']}" in result.stdout + result.stderr, alert["alert"]


# --- alerts carry severity, summary, description with labels, runbook anchor ----------------------


def runbook_anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercased, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", path.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def alert_problems(alerts: list[dict[str, Any]], anchors: set[str]) -> list[str]:
    problems = []
    for rule in alerts:
        name = rule["alert"]
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity {labels.get('severity')!r} is not one of {sorted(SEVERITIES)}")
        if "for" not in rule:
            problems.append(f"{name}: no for: window (one bad scrape would page)")
        if not annotations.get("summary"):
            problems.append(f"{name}: no summary")
        if "{{ $labels." not in annotations.get("description", ""):
            problems.append(f"{name}: the description does not name the labels of the firing series")
        link = re.search(r"/runbook\.md#([\w-]+)$", annotations.get("runbook_url", ""))
        if link is None or link.group(1) != name.lower() or link.group(1) not in anchors:
            problems.append(f"{name}: runbook_url does not point at its own heading in runbook.md")
    return problems


def test_alerts_are_documented() -> None:
    alerts = _alerts(ALERTS)
    assert len(alerts) >= 5
    assert not alert_problems(alerts, runbook_anchors(RUNBOOK)), alert_problems(alerts, runbook_anchors(RUNBOOK))


def test_negative_control_undocumented_alerts_are_caught() -> None:
    problems = alert_problems(_alerts(NEGATIVE / "naive_alerts.yaml"), runbook_anchors(RUNBOOK))
    assert problems == [
        "NaiveStreamsSlow: severity None is not one of ['critical', 'info', 'warning']",
        "NaiveStreamsSlow: no for: window (one bad scrape would page)",
        "NaiveStreamsSlow: no summary",
        "NaiveStreamsSlow: the description does not name the labels of the firing series",
        "NaiveStreamsSlow: runbook_url does not point at its own heading in runbook.md",
        "NaiveErrors: severity 'page' is not one of ['critical', 'info', 'warning']",
        "NaiveErrors: runbook_url does not point at its own heading in runbook.md",
    ], problems


# --- every alert is tested just before and at its for: window ----------------------------------


def untested_windows(alerts: list[dict[str, Any]], rule_tests: list[Path]) -> list[str]:
    """Alerts without a promtool case expecting nothing when the window has not yet elapsed and
    the alert when it has. The kit's series start at 0 and every alert expression uses rate(),
    which first has a value one sample interval in: the window elapses at for + interval."""
    cases: set[tuple[int, str, int, bool]] = set()  # (interval, alert, eval time, fires)
    for path in rule_tests:
        for test in yaml.safe_load(path.read_text())["tests"]:
            interval = _seconds(test.get("interval", "1m"))
            for case in test.get("alert_rule_test", []):
                fires = bool(case.get("exp_alerts"))
                cases.add((interval, case["alertname"], _seconds(case["eval_time"]), fires))
    problems = []
    for rule in alerts:
        name, window = rule["alert"], _seconds(rule.get("for", "0s"))
        if window == 0:
            problems.append(f"{name}: no for: window to test")
            continue
        intervals = {interval for interval, alert, _, _ in cases if alert == name}
        if not any({(i, name, window, False), (i, name, window + i, True)} <= cases for i in intervals):
            problems.append(f"{name}: not tested just before (for = {rule['for']}) and at its for: window")
    return problems


def test_every_alert_is_tested_before_and_at_its_for_window() -> None:
    problems = untested_windows(_alerts(ALERTS), RULE_TESTS)
    assert not problems, problems


def test_negative_control_untested_windows_are_caught() -> None:
    problems = untested_windows(_alerts(NEGATIVE / "naive_alerts.yaml"), RULE_TESTS)
    assert problems == [
        "NaiveStreamsSlow: no for: window to test",
        "NaiveErrors: not tested just before (for = 5m) and at its for: window",
    ], problems


# --- the dashboard --------------------------------------------------------------------------------

# Panels the issue asks for, found by (case-insensitive) title.
REQUIRED_PANELS = (
    "time to first byte",
    "time to first token",
    "inter-token gap",
    "active streams",
    "cancellations per second by reason",
    "stream outcomes",
    "tokens streamed per second",
)


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    problems = []
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append("dashboard: no uid or title")
    variables = dashboard.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in variables):
        problems.append("dashboard: no Prometheus data source variable")
    panels = [p for p in dashboard.get("panels", []) if p.get("type") != "row"]
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        problems.append(f"dashboard: panel ids repeat: {ids}")
    titles = [p.get("title", "").lower() for p in panels]
    problems += [f"dashboard: no panel {want!r}" for want in REQUIRED_PANELS if not any(want in t for t in titles)]
    for panel in panels:
        title = panel.get("title") or f"panel {panel.get('id')}"
        if set(panel.get("gridPos", {})) != {"h", "w", "x", "y"}:
            problems.append(f"{title}: no gridPos")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{title}: data source is not the dashboard's variable")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{title}: no unit")
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"{title}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{title}: refIds repeat")
        for target in targets:
            expr = target.get("expr", "")
            try:
                if not metric_names(expr):
                    problems.append(f"{title}: query {target.get('refId')} selects no metric")
            except PromQLError as exc:
                problems.append(f"{title}: query {target.get('refId')} does not parse: {exc}")
            # Grafana picks a window that always holds two scrapes ($__rate_interval).
            if re.search(r"\[(?!\$__rate_interval\])[^\]]*\]", expr):
                problems.append(f"{title}: query {target.get('refId')} has a fixed range, not $__rate_interval")
    return problems


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    problems = dashboard_problems(dashboard)
    assert not problems, problems
    for query in dashboard_queries(dashboard):
        assert grafana_query_names(query), query


def test_negative_control_naive_dashboard_is_caught() -> None:
    problems = dashboard_problems(json.loads((NEGATIVE / "naive_dashboard.json").read_text()))
    assert problems == [
        "dashboard: no Prometheus data source variable",
        "dashboard: no panel 'time to first byte'",
        "dashboard: no panel 'inter-token gap'",
        "dashboard: no panel 'active streams'",
        "dashboard: no panel 'cancellations per second by reason'",
        "dashboard: no panel 'stream outcomes'",
        "dashboard: no panel 'tokens streamed per second'",
        "Time to first token: data source is not the dashboard's variable",
        "Time to first token: no unit",
        "Time to first token: query A has a fixed range, not $__rate_interval",
        "Time to first token: query B does not parse: cannot read '; down' at 3 in 'up ; down'",
        "Tokens: no gridPos",
        "Tokens: no targets",
    ], problems


# --- the PromQL name extractor the cross-check relies on -----------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "histogram_quantile(0.95, sum by (job, route, le) (rate(streamkit_ttft_seconds_bucket[5m])))",
            {"streamkit_ttft_seconds_bucket"},
        ),
        (
            'sum(rate(a_total{job=~"$job", route=~"x|y"}[$__rate_interval])) by (route)'
            " / ignoring(reason) group_left sum without (x) (b_count offset 5m)",
            {"a_total", "b_count"},
        ),
        ('level:family:ratio{reason="client_disconnect"} > 0.25', {"level:family:ratio"}),
        ('{__name__="up"} == 0 and on (job) absent(c) # a comment\n', {"up", "c"}),
        ('label_replace(m, "dst", "${1}", "src", "(.*)") > bool 1e3', {"m"}),
        ("count by (le) (x) unless y or Inf > NaN", {"x", "y"}),
    ],
)
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_metric_names_of_grafana_template_queries() -> None:
    assert grafana_query_names('label_values(s_count{job=~"$job"}, route)') == {"s_count"}
    assert grafana_query_names("label_values(job)") == set()


@pytest.mark.parametrize("expr", ["sum(rate(x[5m])", "x{a='b'", "x ; y", 'x{a="b}'])
def test_promql_that_cannot_be_read_is_an_error(expr: str) -> None:
    with pytest.raises(PromQLError):
        metric_names(expr)
