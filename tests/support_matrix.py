"""The README's support matrix, generated from the e2e results of a test run and checked against them.

During a run, `tests/conftest.py` hands every e2e report to `record()`. At the end of a run that
executed the whole e2e suite, `check_readme()` renders the matrix and compares it with the block
between the markers in README.md: a mismatch fails the run. After a change, refresh the README with
`python -m tests.support_matrix` (it reruns nothing: it reads the last run's results).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RESULTS = REPO / "test-artifacts" / "support-matrix.json"
START, END = "<!-- support-matrix:start -->", "<!-- support-matrix:end -->"
E2E = "tests/e2e/"

# Hops that the suite cannot run on this machine, stated as such (no container engine, no cloud).
STATIC_ROWS = [
    (
        "Kubernetes: Gateway API + Envoy Gateway on kind",
        "see infra/k8s",
        "offline: kustomize build, schema "
        "and budget checks; the kind flow runs the same contract where Docker is available",
        "—",
    ),
    (
        "AWS ALB, GCP LB, Azure App Gateway, Cloudflare",
        "Terraform modules",
        "offline: HCL invariants, validation blocks, checkov",
        "—",
    ),
]

_outcomes: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
_collected: set[str] = set()
_ran: set[str] = set()


def _proxy_of(nodeid: str) -> tuple[str, str] | None:
    """('nginx', 'contract'|'negative') for an e2e test id parametrized by a proxy."""
    from streamkit.proxies import PROXIES

    match = re.search(r"\[([a-z]+)(?:/[^\]]*)?[^\]]*\]$", nodeid)
    if not nodeid.startswith(E2E) or not match or match.group(1) not in PROXIES:
        return None
    kind = "negative" if "test_negative" in nodeid else "contract"
    return match.group(1), kind


def collected(items: list[pytest.Item]) -> None:
    _collected.update(item.nodeid for item in items if _proxy_of(item.nodeid) is not None)


def record(report: pytest.TestReport) -> None:
    found = _proxy_of(report.nodeid)
    if found is None or (report.when != "call" and not (report.skipped or report.failed)):
        return
    proxy, kind = found
    _ran.add(report.nodeid)
    _outcomes[proxy][kind][report.outcome] += 1


def render(results: dict[str, dict[str, dict[str, int]]], versions: dict[str, str]) -> str:
    from streamkit.proxies import PROXIES
    from streamkit.proxies.base import CAPABILITIES

    lines = [
        "| Hop | Tested version | Contract checks passed | Negative controls caught | Not supported |",
        "|---|---|---|---|---|",
    ]
    for proxy in sorted(results):
        contract, negative = results[proxy].get("contract", {}), results[proxy].get("negative", {})
        missing = sorted(CAPABILITIES - PROXIES[proxy].capabilities)
        note = f"{', '.join(missing)} (see [infra/{proxy}](infra/{proxy}/README.md))" if missing else "—"
        lines.append(f"| {proxy} | {versions.get(proxy, '?')} | {_count(contract)} | {_count(negative)} | {note} |")
    lines.extend(f"| {hop} | {version} | {what} | {neg} | — |" for hop, version, what, neg in STATIC_ROWS)
    return "\n".join(lines)


def _count(outcomes: dict[str, int]) -> str:
    total = sum(outcomes.values())
    passed = outcomes.get("passed", 0)
    skipped = outcomes.get("skipped", 0)
    text = f"{passed}/{total}"
    return text + (f" ({skipped} skipped)" if skipped else "")


def readme_block() -> str:
    text = README.read_text()
    if START not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme(table: str) -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def finish(session: pytest.Session) -> None:
    """At session end: save the results; when the full e2e suite ran, compare with the README."""
    if not _ran:
        return
    from streamkit.proxies import PROXIES

    versions = {name: proxy.version() for name, proxy in PROXIES.items()}
    plain = {p: {k: dict(v) for k, v in kinds.items()} for p, kinds in _outcomes.items()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"results": plain, "versions": versions}, indent=1))
    if _collected - _ran or session.testsfailed:
        return  # a partial or failing run says nothing about the matrix
    table = render(plain, versions)
    if table != readme_block():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nREADME support matrix does not match this run. Refresh it with "
            f"`.venv/bin/python -m tests.support_matrix`; this run's matrix:\n{table}",
            file=sys.stderr,
        )


def main() -> int:
    data = json.loads(RESULTS.read_text())
    write_readme(render(data["results"], data["versions"]))
    print(readme_block())
    return 0


if __name__ == "__main__":
    sys.exit(main())
