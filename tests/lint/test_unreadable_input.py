"""`streamkit lint` given files it cannot read: exit 2 and the reason, never a crash, a pass or a
misleading verdict (issue #15). Each case is a shipped config broken in one way, written to a tmp dir.

Cases marked xfail(strict=True) fail today; each names what streamkit/lint needs. When lint learns
it, the case passes, strict xfail turns that into a failure, and the marker is removed.
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
}
NEEDS_LINT = {
    # id: (file name, content, reason word, what streamkit/lint needs)
    "haproxy-not-utf8": (
        "haproxy.cfg",
        _shipped("haproxy/haproxy.cfg") + LATIN1_COMMENT,
        "UTF-8",
        "streamkit/lint: a file that is not UTF-8 reports 'not valid UTF-8 (byte N)', not 'not a config format'",
    ),
    "envoy-not-utf8": (
        "envoy.yaml",
        _shipped("envoy/envoy.yaml") + LATIN1_COMMENT,
        "UTF-8",
        "streamkit/lint: a file that is not UTF-8 reports 'not valid UTF-8 (byte N)', not 'not a config format'",
    ),
    "haproxy-bad-duration": (
        "haproxy.cfg",
        _shipped("haproxy/haproxy.cfg").replace(b"timeout server 1h", b"timeout server 1hour"),
        "1hour",
        "streamkit/lint (haproxy reader, streamkit/lint/durations.py): a timeout HAProxy refuses (`1hour`) is an "
        "SK0 error with exit 2; today lint reports the file clean",
    ),
}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes) -> tuple[int, str]:
    path = tmp_path / (name or "absent.cfg")
    if name:
        path.write_bytes(content)
    code, report = lint_json(capsys, str(path))
    return code, " ".join(f["message"] for f in report["findings"] if f["rule"]["id"] == "SK0")


@pytest.mark.parametrize("case", CASES)
def test_unreadable_config_exits_2_with_the_reason(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, word = CASES[case]
    code, reasons = _run(tmp_path, capsys, name, content)
    assert code == 2 and word.lower() in reasons.lower(), (code, reasons)


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=NEEDS_LINT[case][3])) for case in NEEDS_LINT],
)
def test_unreadable_config_lint_does_not_explain_yet(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, word, _ = NEEDS_LINT[case]
    code, reasons = _run(tmp_path, capsys, name, content)
    assert code == 2 and word.lower() in reasons.lower(), (code, reasons)
