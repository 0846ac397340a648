"""What `streamkit lint` reports: findings, the timeout budget they are judged against, durations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from streamkit.lint.rules import CONFIG, Rule


@dataclass(frozen=True)
class Budget:
    """The app-side numbers every hop is checked against (defaults: `app.settings.Settings()`)."""

    ping: float
    max_stream: float
    keepalive: float
    keepalive_source: str = "--keepalive"
    drain: float = 0.0  # the app's drain window (DRAIN_SECONDS); 0: rule SK8 is not checked

    def with_keepalive(self, seconds: float, source: str) -> Budget:
        return replace(self, keepalive=seconds, keepalive_source=source)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: Rule
    message: str
    fix: str
    docs: str

    @property
    def is_error(self) -> bool:
        """The config could not be checked (unreadable, unknown format, missing tool)."""
        return self.rule == CONFIG

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["rule"] = {"id": self.rule.id, "name": self.rule.name, "title": self.rule.title}
        return data


@dataclass
class Report:
    """Findings of one file (or one group of files read together), with a shorthand to add them."""

    path: Path
    findings: list[Finding] = field(default_factory=list)

    def add(self, line: int, rule: Rule, message: str, fix: str, docs: str, path: Path | str | None = None) -> None:
        self.findings.append(Finding(str(path or self.path), max(line, 1), rule, message, fix, docs))

    def error(self, message: str, fix: str = "", line: int = 1, path: Path | str | None = None) -> None:
        self.add(line, CONFIG, message, fix, "", path)
