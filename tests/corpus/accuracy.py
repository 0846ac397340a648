"""`streamkit lint` against real-world configurations: the accuracy table in the README.

Each file under tests/corpus/configs/ (each Helm chart: a directory, labelled in its Chart.yaml)
reproduces the settings a public project or issue thread reported (the source link and the
reported outcome are in its header; the text is ours) and says, in header lines parsed below:

    # corpus: broken | working        what its authors reported
    # format: nginx | kubernetes | traefik | caddy | haproxy | envoy | helm
    # rule: buffering                 (broken) the streaming rule that must fire...
    # route: location /events         (broken) ...on a route whose name contains this ('-': the format names none)
    # lint-args: --stream-path /x     (optional) what a user would pass
    # source: https://...             # reported: ...      # reason: ...

A broken file is a true positive when the expected rule fires on the expected route (a false
negative otherwise); a working file is a false positive when any streaming rule (SK1-SK4) fires.
Regenerate the README table after a change with `.venv/bin/python -m tests.corpus.accuracy`;
tests/corpus/test_accuracy.py fails while the README is stale.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONFIGS = Path(__file__).resolve().parent / "configs"
START, END = "<!-- corpus-accuracy:start -->", "<!-- corpus-accuracy:end -->"
STREAMING = {"buffering", "compression", "idle-timeout", "total-timeout"}
_HEADER = re.compile(r"^\s*#\s*(corpus|format|rule|route|lint-args|source|reported|reason):\s*(.*?)\s*$")


@dataclass
class Entry:
    path: Path
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.fields["corpus"] == "broken"

    @property
    def format(self) -> str:
        return self.fields["format"]


@dataclass
class Outcome:
    entry: Entry
    verdict: str  # TP, FN (broken); TN, FP (working)
    detail: str
    code: int = 0  # the exit code a user would see


def entries() -> list[Entry]:
    """One entry per file, and one per Helm chart (a directory with a Chart.yaml, whose header
    carries the labels)."""
    charts = {p.parent for p in CONFIGS.rglob("Chart.yaml")}
    found = []
    for path in sorted(p for p in CONFIGS.rglob("*") if p.is_file() and not charts.intersection(p.parents)) + sorted(
        charts
    ):
        fields: dict[str, str] = {}
        header = path / "Chart.yaml" if path.is_dir() else path
        for line in header.read_text(encoding="utf-8").splitlines()[:20]:
            match = _HEADER.match(line)
            if match:
                fields[match.group(1)] = match.group(2)
        found.append(Entry(path, fields))
    return found


def lint(entry: Entry) -> tuple[int, dict[str, object]]:
    """Run the real CLI in-process, as a user would (no --app: the app behind is theirs)."""
    from streamkit.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["lint", "--json", *entry.fields.get("lint-args", "").split(), str(entry.path)])
    return code, json.loads(out.getvalue())


def judge(entry: Entry) -> Outcome:
    code, report = lint(entry)
    findings = [f for f in report["findings"] if isinstance(f, dict) and f["severity"] == "error"]  # type: ignore[union-attr]
    streaming = [f for f in findings if f["rule"]["name"] in STREAMING]
    if not report["checked"]:
        return Outcome(entry, "FN" if entry.broken else "FP", f"not checked: {report['not_checked']}", code)
    if entry.broken:
        route = entry.fields.get("route", "-")
        hits = [
            f for f in streaming if f["rule"]["name"] == entry.fields["rule"] and (route == "-" or route in f["route"])
        ]
        seen = ", ".join(f"{f['rule']['name']} @ {f['route'] or '-'}" for f in streaming) or "nothing"
        return Outcome(
            entry, "TP" if hits and code == 1 else "FN", f"expected {entry.fields['rule']} @ {route}; saw {seen}"
        )
    seen = ", ".join(f"{f['rule']['name']} @ {f['route'] or '-'}" for f in streaming)
    return Outcome(entry, "FP" if streaming else "TN", seen or "no streaming finding", code)


def table(outcomes: list[Outcome]) -> str:
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for outcome in outcomes:
        rows[outcome.entry.format][outcome.verdict] += 1
        rows["all"][outcome.verdict] += 1
    lines = [
        "| format | broken | flagged (TP) | missed (FN) | working | clean (TN) | false alarm (FP) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in [*sorted(k for k in rows if k != "all"), "all"]:
        r = rows[name]
        label = "**all**" if name == "all" else name
        lines.append(
            f"| {label} | {r['TP'] + r['FN']} | {r['TP']} | {r['FN']} | {r['TN'] + r['FP']} | {r['TN']} | {r['FP']} |"
        )
    total = rows["all"]
    broken, working = total["TP"] + total["FN"], total["TN"] + total["FP"]
    lines.append("")
    lines.append(
        f"{len(outcomes)} configurations: {total['TP']} of {broken} broken ones flagged by the expected rule on the "
        f"expected route ({100 * total['TP'] / max(broken, 1):.0f} %), {total['FP']} of {working} working ones "
        f"flagged on a streaming rule ({100 * total['FP'] / max(working, 1):.0f} %)."
    )
    return "\n".join(lines)


def render(outcomes: list[Outcome]) -> str:
    return f"{START}\n{table(outcomes)}\n{END}"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def write_readme(outcomes: list[Outcome]) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    README.write_text(text[:start] + render(outcomes) + text[end:], encoding="utf-8")


if __name__ == "__main__":
    results = [judge(e) for e in entries()]
    write_readme(results)
    for result in results:
        if result.verdict in ("FN", "FP"):
            print(f"{result.verdict} {result.entry.path.relative_to(REPO)}: {result.detail}", file=sys.stderr)
    print(table(results))
