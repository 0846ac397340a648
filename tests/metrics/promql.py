"""Metric names referenced by a PromQL expression (rules) or a Grafana query (dashboard).

Neither Debian's promtool 2.42 nor its server API can list the selectors of an expression, so
this is a small tokenizer. It is strict: any character it does not understand raises
`PromQLError`, so a construct it cannot read fails the test instead of hiding a metric name.
Grafana's `label_values(selector, label)` and `$variables` are understood too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

# Keywords followed by a parenthesised list of LABEL names (not metrics).
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Keywords and literals that stand alone.
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+)
  | (?P<matchers>\{)
  | (?P<range>\[)
  | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:ms|[smhdwy])*)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>,@])
    """,
    re.VERBOSE,
)
_NAME_MATCHER = re.compile(r"""__name__\s*=\s*["']([a-zA-Z_:][a-zA-Z0-9_:]*)["']""")
_MODIFIER_FIRST = re.compile(r"(?i)(by|without)\s*\(")
_GRAFANA_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<args>.*)\)\s*$", re.DOTALL)


class PromQLError(ValueError):
    pass


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """Index just past the bracket that closes the one at `start`, skipping quoted strings."""
    depth, i = 0, start
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            end = expr.find(char, i + 1)
            while end != -1 and char != "`" and expr[end - 1] == "\\":
                end = expr.find(char, end + 1)
            if end == -1:
                raise PromQLError(f"unterminated string at {i} in {expr!r}")
            i = end + 1
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise PromQLError(f"unbalanced {opening!r} at {start} in {expr!r}")


def metric_names(expr: str) -> set[str]:
    """Every metric (or recorded series) name an expression selects."""
    names: set[str] = set()
    i = depth = 0
    while i < len(expr):
        match = _TOKEN.match(expr, i)
        if match is None:
            raise PromQLError(f"cannot read {expr[i : i + 20]!r} at {i} in {expr!r}")
        kind, text = match.lastgroup, match.group()
        end = match.end()
        if kind == "matchers":
            end = _closing(expr, i, "{", "}")
            names.update(_NAME_MATCHER.findall(expr[i:end]))
        elif kind == "range":
            end = _closing(expr, i, "[", "]")
        elif kind in ("open", "close"):
            depth += 1 if kind == "open" else -1
            if depth < 0:
                raise PromQLError(f"unbalanced ')' at {i} in {expr!r}")
        elif kind == "name":
            following = expr[end:].lstrip()
            word = text.lower()
            if word in LABEL_LIST_KEYWORDS:
                if following.startswith("("):
                    start = len(expr) - len(following)
                    end = _closing(expr, start, "(", ")")
            elif following.startswith("(") or _MODIFIER_FIRST.match(following):
                pass  # a function or an aggregation (`sum by (...) (...)`): a metric is never called
            elif word not in KEYWORDS:
                names.add(text)
        i = end
    if depth:
        raise PromQLError(f"unbalanced '(' in {expr!r}")
    return names


def grafana_query_names(query: str) -> set[str]:
    """Metric names of a Grafana Prometheus query: a PromQL expression or a templating function."""
    found = _GRAFANA_LABEL_VALUES.match(query)
    if found is None:
        return metric_names(query)
    args = found.group("args")
    # label_values(label) has no selector; label_values(selector, label) selects a metric.
    depth = 0
    for index, char in enumerate(args):
        depth += char in "({["
        depth -= char in ")}]"
        if char == "," and depth == 0:
            return metric_names(args[:index])
    return set()


# --- the expressions of the kit's rule files and dashboard ------------------------------------


def rule_expressions(path: Path) -> list[str]:
    """Every `expr` of a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def recorded_names(path: Path) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every Prometheus query of a Grafana dashboard: panel targets and templating variables."""
    queries = [t["expr"] for panel in dashboard.get("panels", []) for t in panel.get("targets", []) if "expr" in t]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def referenced_names(rule_files: Iterable[Path], dashboard: Path | None) -> dict[str, set[str]]:
    """Metric name -> the files that reference it."""
    found: dict[str, set[str]] = {}
    for path in rule_files:
        for expr in rule_expressions(path):
            for name in metric_names(expr):
                found.setdefault(name, set()).add(path.name)
    if dashboard is not None:
        for query in dashboard_queries(json.loads(dashboard.read_text())):
            for name in grafana_query_names(query):
                found.setdefault(name, set()).add(dashboard.name)
    return found


def unknown_names(referenced: dict[str, set[str]], exported: set[str], recorded: set[str]) -> list[str]:
    """Referenced names that are neither a sample name the app exports (with its exact `_bucket`,
    `_sum`, `_count` or `_total` suffix) nor a series the recording rules define."""
    return sorted(
        f"{name} (in {', '.join(sorted(files))})"
        for name, files in referenced.items()
        if name not in (recorded if ":" in name else exported)
    )
