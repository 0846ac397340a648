"""Render prometheusrule.yaml (next to this file) from the kit's Prometheus rule files.

    cd infra/k8s/components/monitoring && python render_prometheusrule.py > prometheusrule.yaml

The rule files in infra/observability/prometheus/ are the one source (promtool checks and tests
them); this wraps their groups, unchanged, in a Prometheus Operator PrometheusRule.
tests/static/test_k8s.py::test_prometheusrule_matches_observability_rules fails when the two drift.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

RULE_FILES = ("infra/observability/prometheus/recording.yaml", "infra/observability/prometheus/alerts.yaml")

HEADER = """\
# GENERATED from infra/observability/prometheus/{recording,alerts}.yaml: do not edit here.
# Regenerate: cd infra/k8s/components/monitoring && python render_prometheusrule.py > prometheusrule.yaml
# Hop: Prometheus (Operator) rule evaluation. What to replace: the `release` label if your
# Prometheus selects rules by another label (kube-prometheus-stack: `release: <helm release>`).
# Proven by: tests/static/test_k8s.py::test_prometheusrule_matches_observability_rules
# Ref: https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.PrometheusRule
"""


REPO = Path(__file__).resolve().parents[4]


def rule_groups(root: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for name in RULE_FILES:
        groups.extend(yaml.safe_load((root / name).read_text())["groups"])
    return groups


def render(root: Path) -> str:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "streamkit", "labels": {"release": "prometheus"}},
        "spec": {"groups": rule_groups(root)},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render(REPO))
