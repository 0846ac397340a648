"""HAProxy cfg: a small section/keyword reader (the format is line-based) and the checks.

`defaults` sections feed the proxies (frontend/backend/listen) that follow them. Defaults
(docs/timeouts.md, HAProxy rows): `timeout client/server` unset = infinite; `compression` without `type`
compresses every content type, text/event-stream included; servers speak HTTP/1.1 unless
`proto h2`; idle server connections are purged from `pool-purge-delay` (default 5 s).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from streamkit.lint import rules
from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report

NAME = "haproxy"
DOCS = "https://docs.haproxy.org/dev/configuration.html"
SECTIONS = ("global", "defaults", "frontend", "backend", "listen")
PROXIES = ("frontend", "backend", "listen")
_SECTION = re.compile(rf"^({'|'.join(SECTIONS)})\b", re.MULTILINE)
DEFAULT_PURGE_DELAY = 5.0
# Bind addresses that are not TCP (TCP_USER_TIMEOUT does not apply): UNIX sockets, abstract
# namespaces, inherited file descriptors, QUIC/UDP.
NOT_TCP_BINDS = ("/", "unix@", "abns@", "abnsz@", "fd@", "sockpair@", "quic4@", "quic6@", "udp@", "udp4@", "udp6@")


def detect(path: Path, text: str) -> bool:
    return (path.suffix == ".cfg" or "haproxy" in path.name) and bool(_SECTION.search(text))


@dataclass
class Line:
    number: int
    words: list[str]


@dataclass
class Section:
    kind: str
    name: str
    line: int
    lines: list[Line] = field(default_factory=list)
    defaults: Section | None = None

    def find(self, *prefix: str) -> Line | None:
        """The last line starting with these words, here or in the defaults section in effect."""
        for section in (self, self.defaults):
            if section is None:
                continue
            hits = [line for line in section.lines if line.words[: len(prefix)] == list(prefix)]
            if hits:
                return hits[-1]
        return None

    def all(self, *prefix: str) -> list[Line]:
        return [line for line in self.lines if line.words[: len(prefix)] == list(prefix)]


def read(text: str) -> list[Section]:
    sections: list[Section] = []
    defaults: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].rstrip()
        if not content.strip():
            continue
        try:
            words = shlex.split(content, posix=True)
        except ValueError:
            words = content.split()
        if not raw[0].isspace() and words[0] in SECTIONS:
            section = Section(words[0], words[1] if len(words) > 1 else "", number, defaults=defaults)
            if section.kind == "defaults":
                section.defaults = None
                defaults = section
            sections.append(section)
        elif sections:
            sections[-1].lines.append(Line(number, words))
    return sections


def _check(section: Section, report: Report, budget: Budget, acls_by_name: dict[str, bool]) -> None:
    where = f"{section.kind} {section.name}".strip()
    report = report.on_route(where)  # findings name the frontend/backend/listen section
    sides = {"frontend": ("client",), "backend": ("server",), "listen": ("client", "server")}[section.kind]
    for side in sides:
        line = section.find("timeout", side)
        value = seconds(line.words[2], "ms") if line and len(line.words) > 2 else None
        if line and len(line.words) > 2 and value is None:
            # HAProxy refuses to start on it (units: us ms s m h d), so nothing else here can be judged.
            report.error(
                f"{where}: `timeout {side} {line.words[2]}` is not a duration HAProxy accepts",
                "write it as a number with one of the units us, ms, s, m, h, d (e.g. `1h`)",
                line=line.number,
            )
            continue
        problem = rules.idle_too_short(value, budget.ping, f"{where}: timeout {side}")
        if problem and line:
            report.add(
                line.number,
                rules.IDLE_TIMEOUT,
                problem + " (an inactivity timeout)",
                f"raise it, e.g. `timeout {side} 1h` (timeout tunnel does not apply to SSE)",
                f"{DOCS}#4-timeout%20{side}",
            )
    for line in section.all("http-response", "wait-for-body"):
        if rules.SSE_MEDIA_TYPE in " ".join(line.words):
            continue  # its condition names event streams (to leave them out)
        report.add(
            line.number,
            rules.BUFFERING,
            f"{where}: `http-response wait-for-body` holds the response until its body is complete (or the "
            "time runs out): the headers and every event wait",
            "remove it, or apply it only to non-streaming responses "
            "(`unless { res.hdr(content-type) -m beg text/event-stream }`)",
            f"{DOCS}#4.2-http-response%20wait-for-body",
        )
    algo = section.find("compression", "algo")
    if algo is not None:
        types = section.find("compression", "type") or section.find("compression", "type-res")
        listed = types.words[2:] if types else []
        if types is None or rules.SSE_MEDIA_TYPE in listed:
            report.add(
                (types or algo).number,
                rules.COMPRESSION,
                f"{where}: compression "
                + (
                    f"type lists {rules.SSE_MEDIA_TYPE}"
                    if types
                    else f"without `compression type` compresses every type, {rules.SSE_MEDIA_TYPE} included"
                ),
                "add `compression type text/html text/plain application/json` (no text/event-stream)",
                f"{DOCS}#4-compression",
            )
    for line in section.all("server") + section.all("default-server"):
        words = line.words
        if _option(words, "proto") == "h2" or "h2" in _option(words, "alpn").split(","):
            report.add(
                line.number,
                rules.HTTP1,
                f"{where}: server line asks for HTTP/2; uvicorn speaks HTTP/1.1 only",
                "remove `proto h2` / `alpn h2` from the server line",
                f"{DOCS}#5.2-proto",
            )
        if _option(words, "pool-purge-delay"):
            value = seconds(_option(words, "pool-purge-delay"), "ms")
            problem = rules.pool_too_long(
                value, budget.keepalive, budget.keepalive_source, f"{where}: pool-purge-delay"
            )
            if problem:
                report.add(
                    line.number,
                    rules.KEEPALIVE,
                    problem,
                    f"keep `pool-purge-delay` at its default ({DEFAULT_PURGE_DELAY:g}s) or below the app's keep-alive",
                    f"{DOCS}#5.2-pool-purge-delay",
                )
    if section.kind in ("frontend", "listen"):
        _check_binds(section, report, budget, where)
    if section.kind in ("frontend", "listen") and _forwards(section) and not _guards_metrics(section, acls_by_name):
        report.add(
            section.line,
            rules.METRICS,
            f"{where} forwards every path, {rules.METRICS_PATH} included, to the app: {rules.METRICS_EXPOSED}",
            f"add `http-request deny if {{ path_beg {rules.METRICS_PATH} }}` (or allow only your Prometheus)",
            f"{DOCS}#4.2-http-request%20deny",
        )


def _check_binds(section: Section, report: Report, budget: Budget, where: str) -> None:
    """SK10: every client-facing TCP `bind` sets `tcp-ut`, short enough for the dead-peer budget."""
    if budget.dead_peer <= 0:
        return
    suggested = f"tcp-ut {round(rules.dead_peer_user_timeout(budget.ping, budget.dead_peer) * 1000)}ms"
    for line in section.all("bind"):
        address = line.words[1] if len(line.words) > 1 else ""
        if address.startswith(NOT_TCP_BINDS):
            continue
        docs = f"{DOCS}#5.1-tcp-ut"
        raw = _option(line.words, "tcp-ut")
        value = seconds(raw, "ms") if raw else 0.0
        if value is None:
            report.error(
                f"{where}: `tcp-ut {raw}` is not a duration HAProxy accepts",
                "write it as a number with one of the units us, ms, s, m, h, d (e.g. `7500ms`)",
                line=line.number,
            )
            continue
        if value <= 0:  # absent, or 0 (the kernel's default: off)
            report.add(
                line.number,
                rules.DEAD_PEER,
                f"{where}: `bind {address}` has no `tcp-ut`: {rules.DEAD_PEER_UNBOUNDED}",
                f"add `{suggested}` to the bind line (TCP_USER_TIMEOUT; see {rules.DEAD_PEER_DOCS})",
                docs,
            )
            continue
        problem = rules.dead_peer_too_long(value, budget.ping, budget.dead_peer, f"{where}: `bind {address}` tcp-ut")
        if problem:
            report.add(line.number, rules.DEAD_PEER, problem, f"lower it, e.g. `{suggested}`", docs)


def _option(words: list[str], name: str) -> str:
    """The value after keyword `name` on a server line ('' when absent)."""
    return words[words.index(name) + 1] if name in words[:-1] else ""


def _forwards(section: Section) -> bool:
    return bool(section.all("default_backend") or section.all("use_backend") or section.all("server"))


def _guards_metrics(section: Section, acls: dict[str, bool]) -> bool:
    """An `http-request deny|return|tarpit` whose condition names /metrics (inline or through an acl),
    or a `use_backend` for /metrics."""
    local = dict(acls)
    for line in section.all("acl"):
        if len(line.words) > 1:
            local[line.words[1]] = rules.METRICS_PATH in " ".join(line.words[2:])
    for line in section.lines:
        words = line.words
        if (
            words[:1] == ["http-request"]
            and len(words) > 1
            and words[1] in ("deny", "return", "tarpit", "silent-drop", "reject")
        ):
            condition = " ".join(words[2:])
            if rules.METRICS_PATH in condition or any(local.get(w.lstrip("!")) for w in words[2:]):
                return True
        if words[:1] == ["use_backend"] and (
            rules.METRICS_PATH in " ".join(words) or any(local.get(w.lstrip("!")) for w in words[2:])
        ):
            return True
    return False


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        report = Report(path)
        sections = read(path.read_text(encoding="utf-8"))
        if not any(s.kind in PROXIES for s in sections):
            report.error("no frontend, backend or listen section found")
        for section in sections:
            if section.kind in PROXIES:
                _check(section, report, budget, {})
        findings.extend(report.findings)
    return findings
