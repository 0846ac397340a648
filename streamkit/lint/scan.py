"""Find config files under the given paths, tell their format, and run each format's checks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from streamkit.lint import caddy, envoy, haproxy, helm, k8s, kustomize, nginx, terraform, traefik, traefik_sources
from streamkit.lint.findings import ERROR, NOTE, Budget, Finding
from streamkit.lint.rules import CONFIG, DEAD_PEER, DEAD_PEER_DOCS, Rule, dead_peer_note

# Order matters: the first format whose detect() accepts a file owns it.
FORMATS: tuple[ModuleType, ...] = (
    terraform,
    caddy,
    envoy,
    helm,
    traefik,
    traefik_sources,
    kustomize,
    k8s,
    haproxy,
    nginx,
)
SKIPPED_DIRS = {".git", ".terraform", ".venv", "node_modules", "__pycache__"}
MAX_BYTES = 2_000_000  # config files are small; anything bigger is not one
KNOWN = (
    "nginx, Caddyfile, Envoy, Traefik (YAML, TOML, compose labels), HAProxy, Kubernetes, Helm templates, "
    "kustomize, Terraform"
)
NOT_A_CONFIG = "not a config format streamkit lint reads"


@dataclass(frozen=True)
class FormatNote:
    """A rule a format's config cannot express (SK10 on nginx, Caddy, Traefik): said once per format,
    with what to do instead; never a finding (nothing in the files can be changed to satisfy it)."""

    rule: Rule
    format: str
    message: str
    docs: str

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": {"id": self.rule.id, "name": self.rule.name, "title": self.rule.title},
            "format": self.format,
            "message": self.message,
            "docs": self.docs,
        }


@dataclass
class Result:
    """Findings, the files checked per format, the files not checked with the reason, and the
    rules some checked format cannot express."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, list[Path]] = field(default_factory=dict)
    not_checked: list[tuple[str, str]] = field(default_factory=list)
    notes: list[FormatNote] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]


def _read(path: Path) -> tuple[str | None, str]:
    """(text, why not) of a candidate config file."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None, f"larger than {MAX_BYTES // 1_000_000} MB"
        return path.read_text(encoding="utf-8"), ""
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"


def detect(path: Path) -> ModuleType | None:
    text, _ = _read(path)
    return None if text is None else next((fmt for fmt in FORMATS if fmt.detect(path, text)), None)


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(root).parts[:-1])
    )


def is_kit_infra(path: str) -> bool:
    """A file under the kit's own infra/ directory (whose app is streamkit)."""
    for parent in Path(path).resolve().parents:
        if parent.name == "infra" and (parent.parent / "streamkit" / "lint").is_dir():
            return (parent.parent / "app" / "settings.py").is_file()
    return False


def lint(paths: list[Path], budget: Budget, app: str = "auto") -> Result:
    """Findings for every config under `paths`, with the files checked and not checked."""
    groups: dict[ModuleType, set[Path]] = defaultdict(set)
    result = Result()
    explicit_errors: list[Finding] = []
    for root in paths:
        if not root.exists():
            explicit_errors.append(Finding(str(root), 1, CONFIG, "no such file or directory", "", ""))
            continue
        for path in _files(root):
            text, why = _read(path)
            fmt = None if text is None else next((f for f in FORMATS if f.detect(path, text)), None)
            if fmt is not None:
                groups[fmt].add(path)
            elif path == root:
                why = why or f"{NOT_A_CONFIG} ({KNOWN})"
                explicit_errors.append(Finding(str(path), 1, CONFIG, why, "", ""))
            else:
                result.not_checked.append((str(path), why or NOT_A_CONFIG))
    checked = {fmt: sorted(groups[fmt]) for fmt in FORMATS if groups[fmt]}
    findings = list(explicit_errors)
    for fmt, files in checked.items():
        findings.extend(fmt.check(files, budget))
    findings = [tiered for f in _without_repeats(findings) if (tiered := _tier(f, app)) is not None]
    result.findings = sorted(findings, key=lambda f: (f.path, f.line, f.rule.id, f.route, f.message))
    unreadable = {f.path for f in result.errors}
    result.not_checked += [(f.path, f.message) for f in result.errors]
    result.checked = {fmt.NAME: [p for p in files if str(p) not in unreadable] for fmt, files in checked.items()}
    result.checked = {name: files for name, files in result.checked.items() if files}
    if budget.dead_peer > 0:
        for name in result.checked:
            message = dead_peer_note(name)
            if message and all(note.message != message for note in result.notes):  # Traefik YAML + labels: once
                result.notes.append(FormatNote(DEAD_PEER, name, message, DEAD_PEER_DOCS))
    return result


def _tier(finding: Finding, app: str) -> Finding | None:
    """The tiers of streamkit/lint/rules.py: streaming rules stay findings; app rules are findings
    when the app behind the config is streamkit, notes otherwise; advice (SK7) is a note for
    another app and dropped for streamkit's (whose public port has no /metrics)."""
    if not (finding.is_app_rule or finding.is_advice):
        return finding
    kit = app == "streamkit" or (app == "auto" and is_kit_infra(finding.path.removesuffix(kustomize.RENDERED)))
    if finding.is_advice:
        return None if kit else replace(finding, severity=NOTE)
    return replace(finding, severity=ERROR if kit else NOTE)


def _without_repeats(findings: list[Finding]) -> list[Finding]:
    """Exact repeats are dropped, and a finding of a rendered kustomization that a raw manifest
    already reported (same rule and message: the message names the resource). Findings of
    different files are never merged."""
    seen: set[tuple[str, str, int, str, str]] = set()
    raw: set[tuple[str, str]] = set()
    unique: list[Finding] = []
    for finding in sorted(findings, key=lambda f: f.path.endswith(kustomize.RENDERED)):
        key = (finding.path, finding.rule.id, finding.line, finding.route, finding.message)
        rendered = finding.path.endswith(kustomize.RENDERED)
        if key in seen or (rendered and not finding.is_error and (finding.rule.id, finding.message) in raw):
            continue
        seen.add(key)
        if not rendered:
            raw.add((finding.rule.id, finding.message))
        unique.append(finding)
    return unique
