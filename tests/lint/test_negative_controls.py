"""Every negative control is caught by the rule it violates, and only by that rule.

tests/negative/lint/<format>/<rule-name>[-detail].<ext>: a config that is correct except for ONE
violation, named after the rule it violates (the checks cannot pass by flagging everything).
They are the kit's own controls, so they are linted with `--app streamkit` (app rules are findings),
except the controls of advice (SK7 metrics, streamkit/lint/rules.py): linted with `--app other`
they are caught as notes (exit 0), and the same file with `--app streamkit` reports no SK7 at all.
The e2e negative controls other suites keep in tests/negative/<proxy>/ must each be flagged too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.lint.rules import ADVICE_RULES, RULES
from tests.lint.helpers import NEGATIVE, lint_json, rule_names

LINT_CONTROLS = sorted(p for p in (NEGATIVE / "lint").rglob("*") if p.is_file())
SINGLE_RULE_CONTROLS = [p for p in LINT_CONTROLS if not p.name.startswith("debian-")]
# Formats where a rule has nothing to check (the proxy has no such setting, docs/timeouts.md):
# nginx and HAProxy have no total-duration timeout; Envoy and HAProxy never buffer responses;
# the kit's Terraform resources set no compression.
NOT_APPLICABLE = {
    ("nginx", "total-timeout"),
    ("haproxy", "total-timeout"),
    ("haproxy", "buffering"),
    ("envoy", "buffering"),
    ("terraform", "compression"),
    ("terraform", "metrics"),
    # i21: SK8 drain is checked on cloud load balancers (Terraform) and Kubernetes pods; SK9 cache
    # on Cloudflare (Terraform) only so far.
    *((fmt, "drain") for fmt in ("nginx", "caddy", "envoy", "traefik", "haproxy")),
    *((fmt, "cache") for fmt in ("nginx", "caddy", "envoy", "traefik", "haproxy", "k8s")),
    # Issue 16: SK10 dead-peer is a setting of HAProxy and Envoy only; nginx, Caddy and Traefik cannot
    # express it (a note, tests/lint/test_dead_peer.py); Kubernetes and Terraform resources carry no
    # client-side TCP option.
    *((fmt, "dead-peer") for fmt in ("nginx", "caddy", "traefik", "k8s", "terraform")),
}
# The e2e suites' negative controls name the contract checks they fail (`# catches: a, b`); these
# are the lint rules that cover each check. Checks with no entry (JSON *is* compressed, HTTP/2 at
# the TLS edge, disconnect while silent) are not static config properties.
RULES_FOR_CHECK = {
    "incremental": {"buffering"},
    "headers_first": {"buffering"},
    "uncompressed": {"compression"},
    "hides_metrics": {"metrics"},  # advice: a note with --app other (see ADVICE)
    "survives_silence": {"idle-timeout", "total-timeout"},
}
ADVICE = {rule.name for rule in ADVICE_RULES}
# `# app: silent` controls run with pings off (PING_INTERVAL above the timeout): lint them so.
SILENT_APP_PING = 86400.0
# Static suites' controls (kustomize overlays; Terraform's are lint controls) carry no markers: the rule each
# must trip, or None with the reason it is outside lint's rules.
STATIC_CONTROLS: dict[str, str | None] = {
    "k8s/btp-pool-outlives-app-keepalive": "keepalive",
    "k8s/httproute-without-timeouts": "total-timeout",
    "k8s/btp-without-stream-idle": "idle-timeout",
    "k8s/drain-raised-without-grace": "drain",
    "k8s/grace-period-shorter-than-drain": "drain",
    # Outside lint's rules: schema checks.
    "k8s/btp-misspelt-field": None,
    "k8s/deployment-unknown-field": None,
    "k8s/httproute-bad-duration": None,
    # Outside lint's rules: the app's start-up (client keys) and how the keys Secret is mounted.
    "k8s/relay-without-client-keys": None,
    "k8s/client-keys-subpath": None,
}


def expected_rule(control: Path) -> str:
    """The rule a control is named after: the longest rule name its file name starts with."""
    names = [rule.name for rule in RULES if control.name.startswith(rule.name)]
    assert names, f"{control.name} is not named after a rule ({', '.join(r.name for r in RULES)})"
    return max(names, key=len)


@pytest.mark.parametrize("control", SINGLE_RULE_CONTROLS, ids=lambda p: str(p.relative_to(NEGATIVE / "lint")))
def test_lint_catches_negative_control(control: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = expected_rule(control)
    app = "other" if rule in ADVICE else "streamkit"
    code, report = lint_json(capsys, "--app", app, str(control))
    assert sum(len(files) for files in report["checked"].values()) == 1, "the control was not read as a config"
    assert rule_names(report) == {rule}, report["findings"]
    if rule in ADVICE:  # a note, never a finding
        assert {f["severity"] for f in report["findings"]} == {"note"} and code == 0
    else:
        assert code == 1


ADVICE_CONTROLS = [p for p in SINGLE_RULE_CONTROLS if expected_rule(p) in ADVICE]


@pytest.mark.parametrize("control", ADVICE_CONTROLS, ids=lambda p: str(p.relative_to(NEGATIVE / "lint")))
def test_advice_is_not_reported_for_the_kits_app(control: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same control with `--app streamkit`: the kit's app answers 404 for /metrics on its public
    port (tests/metrics/test_listener.py::test_the_public_port_has_no_metrics), so a config that
    forwards it publishes nothing; the file is otherwise correct, so the run is clean."""
    code, report = lint_json(capsys, "--app", "streamkit", str(control))
    assert sum(len(files) for files in report["checked"].values()) == 1, "the control was not read as a config"
    assert report["findings"] == [] and code == 0


def test_advice_controls_exist() -> None:
    """The two tests above run on something: a control per format that has the advice."""
    assert {p.parent.name for p in ADVICE_CONTROLS} == {p.parent.name for p in SINGLE_RULE_CONTROLS} - {"terraform"}


def test_every_rule_has_a_control_per_relevant_format() -> None:
    formats = {p.parent.name for p in SINGLE_RULE_CONTROLS}
    covered = {(p.parent.name, expected_rule(p)) for p in SINGLE_RULE_CONTROLS}
    missing = {(fmt, rule.name) for fmt in formats for rule in RULES} - covered - NOT_APPLICABLE
    assert not missing, f"rules without a negative control: {sorted(missing)}"


def test_realistic_debian_site_reads_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    """Debian's default site plus a proxy_pass: two findings a newcomer can act on for the kit's app;
    for another app one finding and two notes (HTTP/1.0, the /metrics advice)."""
    control = NEGATIVE / "lint" / "nginx" / "debian-default-site.conf"
    code, report = lint_json(capsys, "--app", "streamkit", str(control))
    assert code == 1
    assert rule_names(report) == {"buffering", "http1"}
    for finding in report["findings"]:
        assert finding["line"] == 15  # the `location /` that proxies
        assert finding["fix"] and finding["docs"].startswith("https://nginx.org/")
    code, report = lint_json(capsys, "--app", "other", str(control))
    severities = {(f["rule"]["name"], f["severity"]) for f in report["findings"]}
    assert code == 1 and severities == {("buffering", "error"), ("http1", "note"), ("metrics", "note")}


def _marker(control: Path, name: str) -> list[str]:
    if not control.is_file():
        return []
    for line in control.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"# {name}:"):
            return [word.strip() for word in line.split(":", 1)[1].split(",")]
    return []


def _expected_rules(control: Path) -> set[str]:
    name = str(control.relative_to(NEGATIVE))
    if name in STATIC_CONTROLS:
        return {STATIC_CONTROLS[name]} - {None}  # type: ignore[return-value]
    return set().union(*(RULES_FOR_CHECK.get(check, set()) for check in _marker(control, "catches")))


# Controls whose failing checks no lint rule covers (see RULES_FOR_CHECK, STATIC_CONTROLS) are
# left out; the e2e and static suites catch them.
OTHER_SUITES_CONTROLS = sorted(
    control
    for suite in NEGATIVE.iterdir()
    if suite.is_dir() and suite.name != "lint"
    for control in suite.iterdir()
    if _expected_rules(control)
)


@pytest.mark.parametrize("control", OTHER_SUITES_CONTROLS, ids=lambda p: str(p.relative_to(NEGATIVE)))
def test_lint_flags_other_suites_negative_controls(control: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each negative control of the e2e and static suites trips the lint rule that covers the
    contract check it fails: a finding with `--app streamkit`, or for advice (a template's /metrics
    guard removed) a note with `--app other`."""
    expected = _expected_rules(control)
    ping = ["--ping", str(SILENT_APP_PING)] if _marker(control, "app") == ["silent"] else []
    if expected - ADVICE:
        code, report = lint_json(capsys, "--app", "streamkit", *ping, str(control))
        assert code == 1 and rule_names(report) & expected, f"none of {expected} fired: {report['findings']}"
    if expected & ADVICE:
        _, report = lint_json(capsys, "--app", "other", *ping, str(control))
        notes = {f["rule"]["name"] for f in report["findings"] if f["severity"] == "note"}
        assert expected & ADVICE <= notes, report["findings"]
