"""Find config files under the given paths, tell their format, and run each format's checks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from types import ModuleType

from streamkit.lint import caddy, envoy, haproxy, k8s, kustomize, nginx, terraform, traefik
from streamkit.lint.findings import Budget, Finding, Report

# Order matters: the first format whose detect() accepts a file owns it.
FORMATS: tuple[ModuleType, ...] = (terraform, caddy, envoy, traefik, kustomize, k8s, haproxy, nginx)
SKIPPED_DIRS = {".git", ".terraform", ".venv", "node_modules", "__pycache__"}
MAX_BYTES = 2_000_000  # config files are small; anything bigger is not one
KNOWN = "nginx, Caddyfile, Envoy, Traefik, HAProxy, Kubernetes, kustomize, Terraform"


def detect(path: Path) -> ModuleType | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return next((fmt for fmt in FORMATS if fmt.detect(path, text)), None)


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(root).parts[:-1])
    )


def lint(paths: list[Path], budget: Budget) -> tuple[list[Finding], dict[str, list[Path]]]:
    """Findings for every config under `paths`, and the files checked per format."""
    groups: dict[ModuleType, set[Path]] = defaultdict(set)
    findings: list[Finding] = []
    for root in paths:
        if not root.exists():
            findings.append(_error(root, "no such file or directory"))
            continue
        for path in _files(root):
            fmt = detect(path)
            if fmt is not None:
                groups[fmt].add(path)
            elif path == root:
                findings.append(_error(path, f"not a config format streamkit lint reads ({KNOWN})"))
    checked = {fmt: sorted(groups[fmt]) for fmt in FORMATS if groups[fmt]}
    for fmt, files in checked.items():
        findings.extend(fmt.check(files, budget))
    findings = _without_repeats(findings)
    return sorted(findings, key=lambda f: (f.path, f.line, f.rule.id)), {f.NAME: v for f, v in checked.items()}


def _error(path: Path, message: str) -> Finding:
    report = Report(path)
    report.error(message)
    return report.findings[0]


def _without_repeats(findings: list[Finding]) -> list[Finding]:
    """A finding of a rendered kustomization that a raw manifest already reported is dropped."""
    seen: set[tuple[str, str]] = set()
    unique: list[Finding] = []
    for finding in sorted(findings, key=lambda f: f.path.endswith(kustomize.RENDERED)):
        key = (finding.rule.id, finding.message)
        if key not in seen or finding.is_error:
            seen.add(key)
            unique.append(finding)
    return unique
