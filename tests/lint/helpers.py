"""Helpers for the `streamkit lint` tests: run the real CLI entry point in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamkit.cli import main

REPO = Path(__file__).resolve().parents[2]
NEGATIVE = REPO / "tests" / "negative"


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """(exit code, parsed --json output) of `streamkit lint --json ARGS...`."""
    code = main(["lint", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def rule_names(report: dict[str, Any]) -> set[str]:
    return {finding["rule"]["name"] for finding in report["findings"]}
