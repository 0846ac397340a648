"""`streamkit lint` given files it cannot read: exit 2 and the reason, never a crash, a pass or a
misleading verdict (issue #15). Each case is a shipped config broken in one way, written to a tmp dir.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint.helpers import REPO, lint_json

INFRA = REPO / "infra"
LATIN1_COMMENT = b"# caf\xe9 (a Latin-1 byte: not UTF-8)\n"


def _shipped(name: str) -> bytes:
    return (INFRA / name).read_bytes()


CASES: dict[str, tuple[str, bytes, str]] = {
    # id: (file name, content, a word the reason must contain)
    "envoy-yaml-syntax": ("envoy.yaml", b"static_resources:\n  listeners: [\n    - name: x\n", "parse"),
    "traefik-yaml-tab": ("dynamic.yml", b"http:\n  routers:\n\t- tab: indented\n", "parse"),
    "k8s-yaml-syntax": (
        "httproute.yaml",
        b"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nspec: [\n",
        "parse",
    ),
    "terraform-hcl-syntax": ("main.tf", b'resource "aws_lb" "x" {\n  idle_timeout = \n', "parse"),
    "terraform-hcl-unclosed": ("main.tf", b'resource "aws_lb" "x" {\n  idle_timeout = 4000\n', "parse"),
    "missing-file": ("", b"", "no such file"),
    "haproxy-not-utf8": ("haproxy.cfg", _shipped("haproxy/haproxy.cfg") + LATIN1_COMMENT, "UTF-8"),
    "envoy-not-utf8": ("envoy.yaml", _shipped("envoy/envoy.yaml") + LATIN1_COMMENT, "UTF-8"),
    # HAProxy refuses `1hour` (units: us ms s m h d): an SK0 error, not a clean report.
    "haproxy-bad-duration": (
        "haproxy.cfg",
        _shipped("haproxy/haproxy.cfg").replace(b"timeout server 1h", b"timeout server 1hour"),
        "1hour",
    ),
}
def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes) -> tuple[int, str]:
    path = tmp_path / (name or "absent.cfg")
    if name:
        path.write_bytes(content)
    code, report = lint_json(capsys, str(path))
    reasons = [f["message"] for f in report["findings"] if f["rule"]["id"] == "SK0"]
    return code, " ".join(reasons + [entry["why"] for entry in report["not_checked"]])


@pytest.mark.parametrize("case", CASES)
def test_unreadable_config_exits_2_with_the_reason(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, word = CASES[case]
    code, reasons = _run(tmp_path, capsys, name, content)
    assert code == 2 and word.lower() in reasons.lower(), (code, reasons)
