"""The README's support matrix, generated from the e2e results of a test run and checked against them.

During a run, `tests/conftest.py` hands every e2e report to `record()`. At the end of a run that
executed the whole e2e suite, `finish()` renders the matrix and compares it with the block between
the markers in README.md: a mismatch fails the run. After a change, refresh the README with
`python -m tests.support_matrix` (it reruns nothing: it reads the last run's results).

What is counted, per proxy:
- contract checks: the checks of tests/e2e/harness.py CONTRACT that the proxy supports, each run on
  the shipped config (test_contract, and the silent-upstream disconnect); nothing else;
- negative controls, over the SAME checks: a check counts as caught when every control naming it
  (tests/negative/<proxy>/, `# catches:`) was caught; or as n/a with the reason
  (tests/e2e/test_negative.py NOT_APPLICABLE);
- other e2e tests (the other side of the timeout, streaming without the app's hints, the
  proxy-specific files) and static/demo tests (config marks, derived controls, `streamkit demo`),
  each listed apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# The last run's results: outside the checkout (tests write nothing into it, tests/checkout.py), one
# file per checkout; STREAMKIT_RESULTS_DIR puts it where a CI job can keep it.
RESULTS = Path(
    os.environ.get("STREAMKIT_RESULTS_DIR") or tempfile.gettempdir(),
    f"streamkit-support-matrix-{hashlib.sha256(str(REPO).encode()).hexdigest()[:12]}.json",
)
START, END = "<!-- support-matrix:start -->", "<!-- support-matrix:end -->"
E2E = "tests/e2e/"

# Hops that the suite cannot run on this machine, stated as such (no container engine, no cloud).
STATIC_ROWS = [
    (
        "Kubernetes: Gateway API + Envoy Gateway on kind",
        "see infra/k8s",
        "offline: kustomize build, schema "
        "and budget checks; the kind flow runs the same contract where Docker is available",
    ),
    (
        "AWS ALB, GCP LB, Azure App Gateway, Cloudflare",
        "Terraform modules",
        "offline: HCL invariants, validation blocks, checkov",
    ),
]

SPECIFIC = re.compile(r"^tests/e2e/test_(?P<proxy>[a-z]+)_specific\.py::")
PARAMS = re.compile(r"\[(?P<params>[^\]]*)\]$")
# Test functions (or files) whose results are static/demo checks, not behaviour through a proxy.
STATIC_TESTS = ("test_derived_controls_differ_in_one_setting", "test_substitute.py", "test_demo.py")

_results: dict[str, dict[str, str]] = {}
_collected: set[str] = set()


def classify(nodeid: str) -> tuple[str, str, str] | None:
    """(proxy, kind, name) of an e2e test that runs for one proxy; kind: check|control|other|static."""
    from streamkit.proxies import PROXIES

    if not nodeid.startswith(E2E):
        return None
    path, _, test = nodeid.partition("::")
    specific = SPECIFIC.match(nodeid)
    if specific and specific["proxy"] in PROXIES:
        return specific["proxy"], "other", test
    params = PARAMS.search(test)
    proxy = re.match(r"[a-z]+", params["params"]) if params else None
    if params is None or proxy is None or proxy.group(0) not in PROXIES:
        return None
    name, function = proxy.group(0), test.split("[")[0]
    if function == "test_contract":
        return name, "check", params["params"].split("-", 1)[1]
    if function == "test_client_disconnect_while_upstream_silent":
        return name, "check", "disconnect_silent"
    if function == "test_control_is_caught":
        return name, "control", params["params"].split("/", 1)[1]
    if any(marker in (function, Path(path).name) for marker in STATIC_TESTS):
        return name, "static", test
    return name, "other", test


def collected(nodeids: list[str]) -> None:
    _collected.update(nodeid for nodeid in nodeids if classify(nodeid) is not None)


def record(report: pytest.TestReport) -> None:
    found = classify(report.nodeid)
    if found is None or (report.when != "call" and not (report.skipped or report.failed)):
        return
    proxy, kind, name = found
    previous = _results.get(report.nodeid, {}).get("outcome")
    if previous != "failed":  # a failing teardown after a passing call still fails the test
        _results[report.nodeid] = {"proxy": proxy, "kind": kind, "name": name, "outcome": report.outcome}


def _outcomes(results: dict[str, dict[str, str]], proxy: str, kind: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in results.values():
        if entry["proxy"] == proxy and entry["kind"] == kind:
            found.setdefault(entry["name"], []).append(entry["outcome"])
    return found


def _ratio(outcomes: dict[str, list[str]]) -> str:
    flat = [outcome for runs in outcomes.values() for outcome in runs]
    passed, skipped = flat.count("passed"), flat.count("skipped")
    return f"{passed}/{len(flat)}" + (f" ({skipped} skipped)" if skipped else "")


def render(results: dict[str, dict[str, str]], versions: dict[str, str]) -> str:
    from streamkit.proxies import PROXIES
    from streamkit.proxies.base import CAPABILITIES
    from tests.e2e.harness import CONTRACT
    from tests.e2e.test_negative import CONTROLS, NOT_APPLICABLE, coverage

    proxies = sorted({entry["proxy"] for entry in results.values()})
    summary = [
        "| Hop | Tested version | Contract checks passed | Negative controls, same checks | Other e2e tests "
        "| Static / demo tests | Not supported |",
        "|---|---|---|---|---|---|---|",
    ]
    cells: dict[str, dict[str, str]] = {check: {} for check in CONTRACT}
    notes: list[str] = []
    for name in proxies:
        proxy = PROXIES[name]
        checks, controls = _outcomes(results, name, "check"), _outcomes(results, name, "control")
        supported = [c for c in CONTRACT if not CONTRACT[c] or CONTRACT[c] in proxy.capabilities]
        passed = sum(1 for c in supported if checks.get(c) == ["passed"])
        caught = na = 0
        for check in CONTRACT:
            result = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}.get((checks.get(check) or ["?"])[0], "?")
            how = coverage(proxy, check, CONTROLS, NOT_APPLICABLE)
            if how.startswith("control: "):
                files = how.removeprefix("control: ").split(", ")
                ok = all(controls.get(file) == ["passed"] for file in files)
                caught += ok and check in supported
                control = "caught" if ok else "NOT caught"
            else:
                reason = how.removeprefix("n/a: ") or "no control (gap)"
                if reason not in notes:
                    notes.append(reason)
                na += check in supported
                control = f"n/a [{notes.index(reason) + 1}]"
            cells[check][name] = f"{result} · {control}"
        missing = sorted(CAPABILITIES - proxy.capabilities)
        note = f"{', '.join(missing)} (see [infra/{name}](infra/{name}/README.md))" if missing else "—"
        control_cell = f"{caught}/{len(supported)} caught" + (f", {na} n/a" if na else "")
        other, static = _ratio(_outcomes(results, name, "other")), _ratio(_outcomes(results, name, "static"))
        summary.append(
            f"| {name} | {versions.get(name, '?')} | {passed}/{len(supported)} | {control_cell} | {other} "
            f"| {static} | {note} |"
        )
    summary.extend(f"| {hop} | {version} | {what} | — | — | — | — |" for hop, version, what in STATIC_ROWS)
    inventory = ["| Contract check | " + " | ".join(proxies) + " |", "|---|" + "---|" * len(proxies)]
    inventory += [f"| {check} | " + " | ".join(cells[check][p] for p in proxies) + " |" for check in CONTRACT]
    footnotes = [f"- [{number}] {reason}" for number, reason in enumerate(notes, start=1)]
    heading = "Per contract check (the shipped config · its negative control):"
    return "\n".join([*summary, "", heading, "", *inventory, "", *footnotes])


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
    if not _results or hasattr(session.config, "workerinput"):
        return  # nothing of the matrix ran, or a pytest-xdist worker (its controller has every result)
    from streamkit.proxies import PROXIES

    versions = {name: proxy.version() for name, proxy in PROXIES.items()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": _results, "versions": versions}, indent=1))
    if _collected - set(_results) or session.testsfailed:
        return  # a partial or failing run says nothing about the matrix
    table = render(_results, versions)
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
