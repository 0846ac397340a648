"""What `streamkit lint` reports: findings, the timeout budget they are judged against, durations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from streamkit.lint.rules import ADVICE_RULES, APP_RULES, CONFIG, Rule, prefix_matches, regex_matches

# Severities (the tiers: streamkit/lint/rules.py). `error`: a streaming rule is broken, or an app
# rule for the kit's own app (exit 1). `note`: an app rule (keep-alive, HTTP/1.1 to uvicorn, drain,
# dead peers) on a config whose app is not said to be streamkit, or advice (SK7 /metrics) for
# another app (reported, exit unaffected). `warning`: part of a config could not be followed (an
# absent include, a Helm template that does not parse): the rest was checked.
ERROR, NOTE, WARNING = "error", "note", "warning"


@dataclass(frozen=True)
class Budget:
    """The app-side numbers every hop is checked against (defaults: `app.settings.Settings()`),
    and the streaming routes (`--stream-path`; empty = every proxying route streams)."""

    ping: float
    max_stream: float
    keepalive: float
    keepalive_source: str = "--keepalive"
    stream_paths: tuple[str, ...] = ()
    drain: float = 0.0  # the app's drain window (DRAIN_SECONDS); 0: rule SK8 is not checked
    dead_peer: float = 0.0  # the app's dead-peer budget (DEAD_PEER_TIMEOUT); 0: rule SK10 is not checked

    def with_keepalive(self, seconds: float, source: str) -> Budget:
        return replace(self, keepalive=seconds, keepalive_source=source)

    def streams(self, pattern: str, kind: str = "prefix") -> bool:
        """Whether a route matching `pattern` (kind prefix, exact, regex or elementwise) may carry a
        streaming path. Without --stream-path every route may; with it, a route streams when it is
        under a streaming prefix or a streaming prefix falls in it."""
        if not self.stream_paths:
            return True
        for stream in self.stream_paths:
            if kind == "regex":
                if regex_matches(pattern, stream):
                    return True
            elif kind == "exact":
                if prefix_matches(stream, pattern):
                    return True
            elif prefix_matches(stream, pattern) or prefix_matches(pattern, stream, elementwise=kind == "elementwise"):
                return True
        return False


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: Rule
    message: str
    fix: str
    docs: str
    route: str = ""  # the route it is about (`location /v1/`, `Ingress api path /`), "" for the whole file
    severity: str = ERROR
    # A hazard that matters for the kit's own app only, under a streaming rule (e.g. an HTTPRoute
    # whose idle guard is off: the kit relies on it; other apps end hung streams themselves).
    app_only: bool = False

    @property
    def is_error(self) -> bool:
        """The config could not be checked (unreadable, unknown format, missing tool)."""
        return self.rule == CONFIG and self.severity == ERROR

    @property
    def fails(self) -> bool:
        """A broken streaming rule (or an app rule when the app is streamkit): exit 1."""
        return self.rule != CONFIG and self.severity == ERROR

    @property
    def is_app_rule(self) -> bool:
        return self.rule in APP_RULES or self.app_only

    @property
    def is_advice(self) -> bool:
        """Advice for apps unlike the kit's (SK7): a note for another app, not reported for the kit's."""
        return self.rule in ADVICE_RULES

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["file"] = self.path
        data["rule"] = {"id": self.rule.id, "name": self.rule.name, "title": self.rule.title}
        return data


@dataclass
class Report:
    """Findings of one file (or one group of files read together), with a shorthand to add them."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    route: str = ""  # the route findings added through this report are about

    def on_route(self, route: str) -> Report:
        """A view of this report whose findings name `route` (they land in the same list)."""
        return Report(self.path, self.findings, route)

    def add(
        self,
        line: int,
        rule: Rule,
        message: str,
        fix: str,
        docs: str,
        path: Path | str | None = None,
        route: str = "",
        app_only: bool = False,
    ) -> None:
        self.findings.append(
            Finding(
                str(path or self.path), max(line, 1), rule, message, fix, docs, route or self.route, app_only=app_only
            )
        )

    def error(self, message: str, fix: str = "", line: int = 1, path: Path | str | None = None) -> None:
        self.add(line, CONFIG, message, fix, "", path)

    def warn(self, message: str, fix: str = "", line: int = 1, path: Path | str | None = None) -> None:
        """Part of the config could not be followed; the rest is checked."""
        self.findings.append(Finding(str(path or self.path), max(line, 1), CONFIG, message, fix, "", "", WARNING))
