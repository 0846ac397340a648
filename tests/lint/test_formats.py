"""Each format `streamkit lint` reads beyond the kit's own templates has a fixture that the right
rule catches and one that passes (issue 14, acceptance 3 and 5).

tests/lint/formats/<format>/bad-<rule>[-detail].<ext> must trip exactly <rule> (and exit 1);
good.<ext> must exit 0 with no finding. A Helm chart is a directory: helm-good/, helm-bad/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint.helpers import REPO, lint_json, rule_names
from tests.lint.test_negative_controls import expected_rule

FORMATS = REPO / "tests" / "lint" / "formats"
BAD = sorted(FORMATS.glob("*/bad-*"))
GOOD = sorted([*FORMATS.glob("*/good.*"), FORMATS / "helm-good"])


def test_every_format_has_a_good_and_a_bad_fixture() -> None:
    formats = {p.name for p in FORMATS.iterdir()} - {"helm-good", "helm-bad"} | {"helm"}
    with_bad = {p.parent.name for p in BAD} | {"helm"}
    with_good = {p.parent.name for p in FORMATS.glob("*/good.*")} | {"helm"}
    assert (
        formats
        == with_bad
        == with_good
        == {
            "helm",  # Helm chart templates
            "compose",  # Traefik labels and flags in a compose file
            "toml",  # Traefik TOML
            "crd",  # Traefik Middleware / IngressRoute / ServersTransport
            "ingress-nginx",  # annotations and the controller ConfigMap
            "istio",  # VirtualService / DestinationRule
            "aws",  # AWS Load Balancer Controller idle timeout
            "gke",  # BackendConfig timeoutSec
            "envoy-gateway",  # ClientTrafficPolicy / BackendTrafficPolicy
            "aigateway",  # Envoy AI Gateway AIGatewayRoute
            "ingress2gateway",  # ingress2gateway's HTTPRoutes
        }
    )


@pytest.mark.parametrize("fixture", BAD, ids=lambda p: str(p.relative_to(FORMATS)))
def test_bad_fixture_is_caught_by_its_rule(fixture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lint_json(capsys, str(fixture))
    assert rule_names(report) == {expected_rule(fixture.with_name(fixture.name.removeprefix("bad-")))}
    assert code == 1 and all(f["fix"] and f["docs"].startswith("https://") for f in report["findings"])


@pytest.mark.parametrize("fixture", GOOD, ids=lambda p: str(p.relative_to(FORMATS)))
def test_good_fixture_passes(fixture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lint_json(capsys, str(fixture))
    assert report["checked"], report["not_checked"]
    assert code == 0 and report["findings"] == []


def test_helm_chart_lints_what_parses_and_says_what_was_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lint_json(capsys, str(FORMATS / "helm-bad"))
    assert code == 1
    by_rule = {(f["rule"]["name"], f["severity"], Path(f["file"]).name) for f in report["findings"]}
    assert by_rule == {("idle-timeout", "error", "ingress.yaml"), ("config", "warning", "unparseable.yaml")}
    [skipped] = [f for f in report["findings"] if f["severity"] == "warning"]
    assert "skipped" in skipped["message"] and skipped["line"] == 8


def test_ingress2gateway_and_ai_gateway_findings_explain_the_default_and_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Acceptance 5: the 10 x total-deadline hazard, the 15 s default of an Ingress without the
    annotation, and AI Gateway's implicit 60 s are each named, with the fix."""
    expected = {
        "ingress2gateway/bad-total-timeout.yaml": "ingress2gateway's conversion of an ingress-nginx timeout "
        "(60 s × 10)",
        "ingress2gateway/bad-total-timeout-no-annotation.yaml": "Envoy Gateway's 15 s default applies",
        "aigateway/bad-total-timeout.yaml": "AI Gateway's implicit 60 s total timeout",
    }
    for name, words in expected.items():
        _, report = lint_json(capsys, str(FORMATS / name))
        [finding] = report["findings"]
        assert words in finding["message"], finding
        assert '`timeouts: {request: "0s"}`' in finding["fix"] and "streamIdleTimeout" in finding["fix"]


def test_yaml_that_cannot_be_a_config_is_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mapping used as a key parses as YAML but cannot be a manifest: a plain file is not checked
    (exit 2, with the reason); in a Helm chart, that document is skipped with a warning."""
    plain = tmp_path / "complex.yaml"
    plain.write_text("apiVersion: v1\nkind: ConfigMap\n? {a: 1}\n: b\n")
    code, report = lint_json(capsys, str(plain))
    assert code == 2 and "unsupported YAML" in report["not_checked"][0]["why"]
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("a:\n  b: 1\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  {{ toYaml .Values.a }}: x\n"
    )
    code, report = lint_json(capsys, str(chart))
    assert code == 0 and [f["severity"] for f in report["findings"]] == ["warning"]
