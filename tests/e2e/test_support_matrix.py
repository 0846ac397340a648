"""The support matrix counts what it says: contract checks only, and controls over the same checks."""

from __future__ import annotations

from tests.e2e.harness import CONTRACT
from tests.e2e.test_negative import CONTROLS
from tests.support_matrix import classify, render


def _results(**outcomes: str) -> dict[str, dict[str, str]]:
    """Every nginx contract check and control passed, but for `outcomes` (name -> outcome)."""
    results = {f"c-{check}": {"proxy": "nginx", "kind": "check", "name": check} for check in CONTRACT}
    results |= {
        f"n-{c.path.name}": {"proxy": "nginx", "kind": "control", "name": c.path.name}
        for c in CONTROLS
        if c.proxy == "nginx"
    }
    results["o-demo"] = {"proxy": "nginx", "kind": "static", "name": "test_demo"}
    results["o-hints"] = {"proxy": "nginx", "kind": "other", "name": "test_streams_without_app_hints"}
    for entry in results.values():
        entry["outcome"] = outcomes.get(entry["name"], "passed")
    return results


def _row(table: str, first: str) -> list[str]:
    return next(line for line in table.splitlines() if line.startswith(f"| {first} |")).split(" | ")


def test_counts_contract_checks_only_and_controls_over_the_same_set() -> None:
    all_passed = _row(render(_results(), {}), "nginx")
    assert all_passed[2] == f"{len(CONTRACT)}/{len(CONTRACT)}"
    # Another e2e test or a static test failing changes its own column, not the contract count.
    other_failed = _row(render(_results(test_streams_without_app_hints="failed", test_demo="failed"), {}), "nginx")
    assert other_failed[2] == all_passed[2] and other_failed[3] == all_passed[3]
    assert other_failed[4:6] == ["0/1", "0/1"]
    # A contract check failing, and a control not caught, show in the contract columns.
    failed = render(_results(heartbeats="failed", **{"no-heartbeats.control": "failed"}), {})
    assert _row(failed, "nginx")[2] == f"{len(CONTRACT) - 1}/{len(CONTRACT)}"
    assert _row(failed, "heartbeats")[-1] == "FAIL · NOT caught |"


def test_classify() -> None:
    assert classify("tests/e2e/test_contract.py::test_contract[caddy-heartbeats]") == ("caddy", "check", "heartbeats")
    assert classify("tests/e2e/test_negative.py::test_control_is_caught[envoy/route-timeout.yaml]") == (
        "envoy",
        "control",
        "route-timeout.yaml",
    )
    assert classify("tests/e2e/test_demo.py::test_demo_once_prints_a_passing_report_and_urls[caddy]")[1] == "static"
    assert classify("tests/e2e/test_haproxy_specific.py::test_disconnect_while_tokens_flow")[:2] == ("haproxy", "other")
    assert classify("tests/e2e/test_negative.py::test_every_control_file_says_what_it_catches") is None
